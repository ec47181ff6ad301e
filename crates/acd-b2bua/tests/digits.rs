//! Digits in the flow with simulated time: prompts one after another,
//! collection (maximum, terminator, inter-digit timeout, no input),
//! barge-in, type-ahead, SIP INFO digits, and a snapshot mid-collection.

mod sim;

use std::time::Duration;

use acd_b2bua::{
    CallId, CollectSpec, EdgeCore, Input, IvrAction, IvrEvent, MediaCommand, MediaEvent, PlayToken,
    Snapshot,
};
use sim::*;

fn digit_config() -> acd_b2bua::CoreConfig {
    let mut cfg = config();
    for p in ["menu", "long", "en/welcome"] {
        cfg.prompts.insert(p.to_string());
    }
    cfg
}

fn digit_sim() -> Sim {
    Sim::with_config(digit_config())
}

fn collect(max: u32, first_ms: u32, inter_ms: u32) -> IvrAction {
    IvrAction::Collect(CollectSpec {
        min_digits: 1,
        max_digits: max,
        terminator: Some('#'),
        first_digit_timeout_ms: first_ms,
        inter_digit_timeout_ms: inter_ms,
    })
}

fn play(prompts: &[&str], barge_in: bool) -> IvrAction {
    IvrAction::Play {
        prompts: prompts.iter().map(|p| p.to_string()).collect(),
        barge_in,
    }
}

/// The prompts played so far, with their tokens.
fn plays(sim: &Sim) -> Vec<(String, PlayToken)> {
    sim.media
        .iter()
        .filter_map(|(_, m)| match m {
            MediaCommand::Play { prompt, token, .. } => Some((prompt.clone(), *token)),
            _ => None,
        })
        .collect()
}

fn last_play(sim: &Sim) -> PlayToken {
    plays(sim).last().expect("a prompt plays").1
}

fn finished(sim: &mut Sim, call: &CallId, token: PlayToken) {
    sim.input(Input::Media(MediaEvent::PromptFinished {
        call: call.clone(),
        token,
    }));
}

fn press(sim: &mut Sim, call: &CallId, keys: &str) {
    for digit in keys.chars() {
        sim.input(Input::Media(MediaEvent::Digit {
            call: call.clone(),
            digit,
        }));
    }
}

fn last_event(sim: &Sim) -> IvrEvent {
    sim.ivr.last().expect("a step").event.clone()
}

fn stops(sim: &Sim) -> usize {
    sim.media
        .iter()
        .filter(|(_, m)| *m == MediaCommand::StopPlayback)
        .count()
}

#[test]
fn a_menu_prompt_never_reports_its_end_and_collects_up_to_the_terminator() {
    let mut sim = digit_sim();
    let (call, _) = in_flow(&mut sim, "m1");
    sim.ivr_reply(vec![play(&["menu"], false), collect(4, 5000, 2000)]);
    let steps = sim.ivr.len();
    let token = last_play(&sim);
    // Long after the prompt would end: nothing, it is still "playing".
    sim.advance(Duration::from_secs(30));
    assert_eq!(sim.ivr.len(), steps, "no timer runs during the prompt");
    finished(&mut sim, &call, token);
    assert_eq!(
        sim.ivr.len(),
        steps,
        "a menu's prompt end is not PromptFinished"
    );
    press(&mut sim, &call, "12");
    sim.advance(Duration::from_millis(1500));
    press(&mut sim, &call, "#");
    assert_eq!(sim.ivr.len(), steps + 1);
    assert_eq!(
        last_event(&sim),
        IvrEvent::Digits {
            digits: "12".into()
        }
    );
}

#[test]
fn collection_ends_at_max_digits_and_the_rest_is_type_ahead() {
    let mut sim = digit_sim();
    let (call, _) = in_flow(&mut sim, "m2");
    sim.ivr_reply(vec![collect(2, 5000, 2000)]);
    press(&mut sim, &call, "423");
    assert_eq!(
        last_event(&sim),
        IvrEvent::Digits {
            digits: "42".into()
        }
    );
    // '3' and '9' came while the step was out: the next collection takes
    // them at once, without waiting.
    press(&mut sim, &call, "9");
    let steps = sim.ivr.len();
    sim.ivr_reply(vec![play(&["menu"], true), collect(2, 5000, 2000)]);
    assert_eq!(sim.ivr.len(), steps + 1);
    assert_eq!(
        last_event(&sim),
        IvrEvent::Digits {
            digits: "39".into()
        }
    );
    assert!(
        !plays(&sim).iter().any(|(p, _)| p == "menu"),
        "a barge-in prompt already answered by type-ahead is skipped"
    );
}

#[test]
fn inter_digit_timeout_ends_with_what_was_pressed() {
    let mut sim = digit_sim();
    let (call, _) = in_flow(&mut sim, "m3");
    sim.ivr_reply(vec![collect(6, 5000, 2000)]);
    let steps = sim.ivr.len();
    sim.advance(Duration::from_millis(4000));
    press(&mut sim, &call, "5");
    sim.advance(Duration::from_millis(1900));
    press(&mut sim, &call, "6");
    sim.advance(Duration::from_millis(1999));
    assert_eq!(sim.ivr.len(), steps, "each digit re-arms the timer");
    sim.advance(Duration::from_millis(2));
    assert_eq!(
        last_event(&sim),
        IvrEvent::Digits {
            digits: "56".into()
        }
    );
    // The old timers are gone: nothing more happens.
    sim.advance(Duration::from_secs(20));
    assert_eq!(sim.ivr.len(), steps + 1);
}

#[test]
fn no_digit_after_the_prompt_is_no_input() {
    let mut sim = digit_sim();
    let (call, _) = in_flow(&mut sim, "m4");
    sim.ivr_reply(vec![play(&["menu"], true), collect(1, 3000, 3000)]);
    let steps = sim.ivr.len();
    let token = last_play(&sim);
    sim.advance(Duration::from_secs(2));
    finished(&mut sim, &call, token);
    sim.advance(Duration::from_millis(2999));
    assert_eq!(sim.ivr.len(), steps, "counted from the prompt's end");
    sim.advance(Duration::from_millis(2));
    assert_eq!(last_event(&sim), IvrEvent::NoInput);
}

#[test]
fn barge_in_stops_the_prompt_and_the_digit_is_the_first_collected() {
    let mut sim = digit_sim();
    let (call, _) = in_flow(&mut sim, "m5");
    sim.ivr_reply(vec![play(&["long", "menu"], true), collect(2, 5000, 2000)]);
    let token = last_play(&sim);
    press(&mut sim, &call, "3");
    assert_eq!(stops(&sim), 1, "the prompt stopped");
    assert_eq!(plays(&sim).len(), 1, "the second prompt never started");
    // The stopped prompt's end may still be reported: it is ignored.
    finished(&mut sim, &call, token);
    press(&mut sim, &call, "1");
    assert_eq!(
        last_event(&sim),
        IvrEvent::Digits {
            digits: "31".into()
        }
    );
}

#[test]
fn digits_during_a_prompt_without_barge_in_are_discarded() {
    let mut sim = digit_sim();
    let (call, _) = in_flow(&mut sim, "m6");
    sim.ivr_reply(vec![play(&["menu"], false), collect(1, 3000, 3000)]);
    let token = last_play(&sim);
    press(&mut sim, &call, "7");
    assert_eq!(stops(&sim), 0);
    finished(&mut sim, &call, token);
    sim.advance(Duration::from_millis(3001));
    assert_eq!(last_event(&sim), IvrEvent::NoInput, "the 7 was dropped");
}

#[test]
fn prompts_play_one_after_another_then_prompt_finished() {
    let mut sim = digit_sim();
    let (call, _) = in_flow(&mut sim, "m7");
    sim.ivr_reply(vec![play(&["en/welcome", "missing", "menu"], false)]);
    let steps = sim.ivr.len();
    let first = last_play(&sim);
    assert_eq!(plays(&sim)[0].0, "en/welcome");
    finished(&mut sim, &call, first);
    assert_eq!(sim.ivr.len(), steps, "one prompt of two played");
    let second = last_play(&sim);
    assert_ne!(second, first);
    assert_eq!(
        plays(&sim).last().unwrap().0,
        "menu",
        "an unknown prompt is skipped"
    );
    finished(&mut sim, &call, first);
    assert_eq!(
        sim.ivr.len(),
        steps,
        "a repeated end of the first is ignored"
    );
    finished(&mut sim, &call, second);
    assert_eq!(last_event(&sim), IvrEvent::PromptFinished);
    assert_eq!(sim.ivr.len(), steps + 1);
}

#[test]
fn barge_in_on_a_play_alone_ends_it_and_keeps_the_digit_for_the_next_collect() {
    let mut sim = digit_sim();
    let (call, _) = in_flow(&mut sim, "m8");
    sim.ivr_reply(vec![play(&["long"], true)]);
    press(&mut sim, &call, "2");
    assert_eq!(stops(&sim), 1);
    assert_eq!(last_event(&sim), IvrEvent::PromptFinished);
    sim.ivr_reply(vec![play(&["menu"], true), collect(1, 5000, 5000)]);
    assert_eq!(last_event(&sim), IvrEvent::Digits { digits: "2".into() });
}

#[test]
fn type_ahead_is_bounded() {
    let mut sim = digit_sim();
    let (call, _) = in_flow(&mut sim, "m9");
    let many = "1".repeat(40);
    press(&mut sim, &call, &many);
    sim.ivr_reply(vec![IvrAction::Collect(CollectSpec {
        min_digits: 1,
        max_digits: 0,
        terminator: None,
        first_digit_timeout_ms: 1000,
        inter_digit_timeout_ms: 1000,
    })]);
    sim.advance(Duration::from_millis(1001));
    let IvrEvent::Digits { digits } = last_event(&sim) else {
        panic!("digits expected");
    };
    assert_eq!(digits.len(), acd_b2bua::digits::TYPEAHEAD_MAX);
}

fn info(call_id: &str, tag: &str, cseq: u32, ctype: &str, body: &str) -> String {
    let ctype = if ctype.is_empty() {
        String::new()
    } else {
        format!("Content-Type: {ctype}\r\n")
    };
    format!(
        "INFO sip:acd@10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKinfo{cseq}\r\nMax-Forwards: 70\r\nFrom: \"Bob\" <sip:0215551234@10.0.0.2>;tag=caller1\r\nTo: <sip:5550100@10.0.0.1>;tag={tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} INFO\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn last_status(sim: &Sim) -> u16 {
    sim.responses().last().expect("a response").status
}

#[test]
fn sip_info_digits_join_the_same_stream() {
    let mut sim = digit_sim();
    let (call, tag) = in_flow(&mut sim, "i1");
    sim.ivr_reply(vec![play(&["menu"], true), collect(3, 5000, 2000)]);
    let relay = "application/dtmf-relay";
    sim.sip(
        &info("i1", &tag, 2, relay, "Signal=4\r\nDuration=160\r\n"),
        udp(TRUNK),
    );
    assert_eq!(last_status(&sim), 200);
    assert_eq!(stops(&sim), 1, "an INFO digit barges in too");
    press(&mut sim, &call, "5");
    sim.sip(&info("i1", &tag, 3, "application/dtmf", "6"), udp(TRUNK));
    assert_eq!(last_status(&sim), 200);
    assert_eq!(
        last_event(&sim),
        IvrEvent::Digits {
            digits: "456".into()
        }
    );
    // Refusals, and nothing reaches the flow.
    sim.ivr_reply(vec![collect(1, 5000, 2000)]);
    let steps = sim.ivr.len();
    sim.sip(&info("i1", &tag, 4, "application/xml", "<x/>"), udp(TRUNK));
    let resp = sim.responses().last().copied().cloned().unwrap();
    assert_eq!(resp.status, 415);
    assert!(resp
        .headers
        .get("Accept")
        .is_some_and(|a| a.contains("application/dtmf-relay")));
    sim.sip(&info("i1", &tag, 5, relay, "Signal=99\r\n"), udp(TRUNK));
    assert_eq!(last_status(&sim), 400);
    sim.sip(&info("i1", &tag, 6, "", ""), udp(TRUNK));
    assert_eq!(last_status(&sim), 200, "an empty INFO");
    assert_eq!(sim.ivr.len(), steps);
    // Out of any dialog: 481.
    sim.sip(
        &info("i1", "nosuchtag", 7, relay, "Signal=1\r\n"),
        udp(TRUNK),
    );
    assert_eq!(last_status(&sim), 481);
    // Queued: 200, and the digit goes nowhere.
    sim.sip(&info("i1", &tag, 8, "application/dtmf", "1"), udp(TRUNK));
    assert_eq!(last_event(&sim), IvrEvent::Digits { digits: "1".into() });
    sim.ivr_reply(vec![IvrAction::Enqueue {
        queue: "sales".into(),
        priority: 0,
        skills: Default::default(),
        data: Default::default(),
    }]);
    sim.sip(&info("i1", &tag, 9, "application/dtmf", "2"), udp(TRUNK));
    assert_eq!(last_status(&sim), 200);
    assert_eq!(sim.core.call_phase(&call), Some("queued"));
}

#[test]
fn the_media_learns_the_callers_telephone_event_type() {
    let mut sim = digit_sim();
    let (call, _) = in_flow(&mut sim, "t1");
    assert!(sim
        .media
        .iter()
        .any(|(c, m)| *c == call && *m == MediaCommand::TelephoneEvent { pt: Some(101) }));
}

#[test]
fn a_collection_in_progress_survives_a_snapshot() {
    let mut sim = digit_sim();
    let (call, _) = in_flow(&mut sim, "s1");
    sim.ivr_reply(vec![collect(4, 5000, 3000)]);
    press(&mut sim, &call, "12");
    sim.advance(Duration::from_millis(1000));
    let json = sim.core.snapshot(sim.now).to_json();
    let back = Snapshot::from_json(&json).expect("snapshot decodes");
    sim.core = EdgeCore::restore(digit_config(), back, sim.now);
    let steps = sim.ivr.len();
    press(&mut sim, &call, "3");
    sim.advance(Duration::from_millis(2999));
    assert_eq!(sim.ivr.len(), steps, "the inter-digit timer restarted");
    sim.advance(Duration::from_millis(2));
    assert_eq!(
        last_event(&sim),
        IvrEvent::Digits {
            digits: "123".into()
        }
    );
}
