//! The call note (one per inbound call, when the caller's leg ends: arrival,
//! first flow, IVR inputs, outcome, survey score) and the post-call survey
//! (the agent hangs up, the caller stays for the queue's survey flow).

mod sim;

use acd_b2bua::{
    CallId, CallNote, CollectSpec, EdgeOutcome, EndedBy, Input, IvrAction, IvrReply, MediaCommand,
    MediaEvent, Snapshot, ToDistributor,
};
use sim::*;

const SURVEY: &str = "survey";

fn survey_sim() -> Sim {
    let mut cfg = config();
    cfg.flows.insert(
        SURVEY.into(),
        acd_ivr::Flow {
            start: "ask".into(),
            fallback_queue: "sales".into(),
            ..Default::default()
        },
    );
    Sim::with_config(cfg)
}

/// Answers the last IVR step as the runner would at `node`, with `vars` set.
fn reply_at(sim: &mut Sim, node: &str, vars: &[(&str, &str)], actions: Vec<IvrAction>) {
    let step = sim.ivr.last().cloned().expect("an IVR step was sent");
    let mut session = step.session;
    session.node = node.into();
    for (k, v) in vars {
        session.variables.insert(k.to_string(), v.to_string());
    }
    sim.input(Input::IvrReply {
        call: step.call,
        step: step.step,
        reply: Ok(IvrReply {
            session: Some(session),
            actions,
        }),
    });
}

fn collect(max: u32) -> IvrAction {
    IvrAction::Collect(CollectSpec {
        min_digits: 1,
        max_digits: max,
        terminator: Some('#'),
        first_digit_timeout_ms: 5000,
        inter_digit_timeout_ms: 2000,
    })
}

fn press(sim: &mut Sim, call: &CallId, keys: &str) {
    for digit in keys.chars() {
        sim.input(Input::Media(MediaEvent::Digit {
            call: call.clone(),
            digit,
        }));
    }
}

/// The caller keys `keys` at `node` (a collection of exactly that many digits).
fn answer_at(sim: &mut Sim, call: &CallId, node: &str, keys: &str) {
    reply_at(sim, node, &[], vec![collect(keys.len() as u32)]);
    press(sim, call, keys);
}

fn enqueue() -> IvrAction {
    IvrAction::Enqueue {
        queue: "sales".into(),
        priority: 0,
        skills: Default::default(),
        data: Default::default(),
    }
}

fn notes(sim: &Sim) -> Vec<&CallNote> {
    sim.notes.iter().collect()
}

/// The one note sent for `call`.
fn note_of<'a>(sim: &'a Sim, call: &CallId) -> &'a CallNote {
    let all: Vec<_> = notes(sim).into_iter().filter(|n| n.call == *call).collect();
    assert_eq!(all.len(), 1, "exactly one note for {call}: {all:?}");
    all[0]
}

fn steps(note: &CallNote) -> Vec<(&str, &str)> {
    note.steps
        .iter()
        .map(|s| (s.node.as_str(), s.input.as_str()))
        .collect()
}

fn byes_to_caller(sim: &Sim) -> usize {
    sim.sent
        .iter()
        .filter(|(to, m)| {
            to.addr == TRUNK
                && matches!(m, acd_sip::Message::Request(r) if r.method.as_str() == "BYE")
        })
        .count()
}

/// A caller who chose `1` at the menu, queued and bridged to alice, whose
/// queue has `survey` as its survey flow. Returns the call, our To tag
/// towards the caller, and the INVITE sent to alice's phone.
fn bridged_after_menu(
    sim: &mut Sim,
    sip_call_id: &str,
    survey: &str,
) -> (CallId, String, acd_sip::Request) {
    sim.registered_agent();
    let (call, tag) = in_flow(sim, sip_call_id);
    answer_at(sim, &call, "menu", "1");
    reply_at(sim, "queue", &[], vec![enqueue()]);
    sim.connect_with_survey(&call, 1, survey);
    let inv = sim.last_request("INVITE").expect("agent rung").clone();
    sim.sip(
        &phone_response(&inv, 200, "OK", "ph1", Some(SDP_AGENT)),
        udp(PHONE),
    );
    assert_eq!(sim.core.call_phase(&call), Some("bridged"));
    sim.sent.clear();
    (call, tag, inv)
}

#[test]
fn a_queued_call_is_noted_once_with_its_ivr_inputs() {
    let mut sim = Sim::new();
    let (call, tag, _) = bridged_after_menu(&mut sim, "q1", "");
    assert!(notes(&sim).is_empty(), "no note while the caller is on");
    sim.sip(
        &caller_request("BYE", "q1", &tag, 2, "bye1", None, ""),
        udp(TRUNK),
    );
    let note = note_of(&sim, &call);
    assert_eq!(note.outcome, EdgeOutcome::Queued);
    assert_eq!(steps(note), [("menu", "1")]);
    assert_eq!(
        (note.did.as_str(), note.caller.as_str(), note.flow.as_str()),
        ("5550100", "0215551234", "main")
    );
    assert!(note.arrived_at_ms >= 1_800_000_000_000);
    assert!(note.left_at_ms >= note.arrived_at_ms);
    assert_eq!(note.survey_score, None);
    // Retransmitted BYE: still one note.
    sim.sip(
        &caller_request("BYE", "q1", &tag, 2, "bye1", None, ""),
        udp(TRUNK),
    );
    note_of(&sim, &call);
}

#[test]
fn an_ivr_only_call_with_inputs_is_self_served() {
    let mut sim = Sim::new();
    let (call, _) = in_flow(&mut sim, "s1");
    answer_at(&mut sim, &call, "language", "2");
    answer_at(&mut sim, &call, "order", "4711");
    reply_at(
        &mut sim,
        "bye",
        &[],
        vec![IvrAction::Hangup {
            reason: "done".into(),
        }],
    );
    let note = note_of(&sim, &call);
    assert_eq!(note.outcome, EdgeOutcome::SelfServed);
    assert_eq!(steps(note), [("language", "2"), ("order", "4711")]);
    assert!(note.steps[0].at_ms <= note.steps[1].at_ms);
    assert!(!sim
        .dist
        .iter()
        .any(|m| matches!(m, ToDistributor::Enqueue(_))));
}

#[test]
fn a_caller_hanging_up_in_the_ivr_is_abandoned_there_with_its_inputs() {
    let mut sim = Sim::new();
    let (call, tag) = in_flow(&mut sim, "a1");
    answer_at(&mut sim, &call, "menu", "3");
    reply_at(&mut sim, "account", &[], vec![collect(6)]);
    sim.sip(
        &caller_request("BYE", "a1", &tag, 2, "bye1", None, ""),
        udp(TRUNK),
    );
    let note = note_of(&sim, &call);
    assert_eq!(note.outcome, EdgeOutcome::AbandonedInIvr);
    assert_eq!(
        steps(note),
        [("menu", "3")],
        "the unfinished collection is no input"
    );
    assert!(
        !sim.dist
            .iter()
            .any(|m| matches!(m, ToDistributor::Abandon { .. })),
        "the distributor never held it"
    );
}

#[test]
fn refused_calls_are_noted_refused() {
    // The media cannot be bound: 503 after the call was created.
    let mut sim = Sim::new();
    sim.auto_media = false;
    sim.sip(&invite("r1", "r1", Some(SDP_CALLER), "", "UDP"), udp(TRUNK));
    let call = sim.media.last().expect("allocation asked").0.clone();
    sim.input(Input::MediaFailed {
        call: call.clone(),
        reason: "no ports".into(),
    });
    assert!(sim.last_response(503).is_some());
    assert_eq!(note_of(&sim, &call).outcome, EdgeOutcome::Refused);

    // The distributor refuses the enqueue.
    let mut sim = Sim::new();
    let (call, _) = queued_call(&mut sim, "r2");
    sim.input(Input::Distributor {
        term: 1,
        cmd: acd_b2bua::FromDistributor::Rejected {
            call: call.clone(),
            reason: "no such queue".into(),
        },
    });
    assert_eq!(note_of(&sim, &call).outcome, EdgeOutcome::Refused);
}

#[test]
fn the_agent_hanging_up_starts_the_survey_and_the_note_carries_the_score() {
    let mut sim = survey_sim();
    let (call, _tag, inv) = bridged_after_menu(&mut sim, "v1", SURVEY);
    sim.dist.clear();
    sim.sip(
        &phone_request(&inv, "BYE", "ph1", 2, "pbye", None),
        udp(PHONE),
    );
    assert!(sim.last_response(200).is_some(), "the agent's BYE answered");
    assert_eq!(
        sim.dist,
        [ToDistributor::CallEnded {
            call: call.clone(),
            reason: "agent hung up".into(),
            by: EndedBy::Agent,
        }],
        "the agent's call ends at once, nothing more yet"
    );
    assert_eq!(byes_to_caller(&sim), 0, "the caller stays");
    assert_eq!(sim.core.call_phase(&call), Some("ivr"));
    assert!(sim
        .media
        .iter()
        .any(|(c, m)| *c == call && matches!(m, MediaCommand::Unbridge)));
    let step = sim.ivr.last().expect("survey step");
    assert_eq!(step.flow, SURVEY);
    assert!(matches!(step.event, acd_b2bua::IvrEvent::Started { .. }));
    assert!(
        sim.core.queued_calls().is_empty(),
        "not a live call of the distributor's"
    );
    answer_at(&mut sim, &call, "ask", "4");
    reply_at(
        &mut sim,
        "thanks",
        &[("survey_score", "4")],
        vec![IvrAction::Hangup {
            reason: "survey done".into(),
        }],
    );
    assert_eq!(byes_to_caller(&sim), 1, "the flow hangs up the caller");
    let note = note_of(&sim, &call);
    assert_eq!(note.survey_score, Some(4));
    assert_eq!(note.outcome, EdgeOutcome::Queued);
    assert_eq!(note.flow, "main", "the first flow, not the survey");
    assert_eq!(
        steps(note),
        [("menu", "1")],
        "the survey's answer is a score, not a step"
    );
    assert_eq!(
        sim.dist
            .iter()
            .filter(|m| matches!(m, ToDistributor::CallEnded { .. }))
            .count(),
        1
    );
}

#[test]
fn a_survey_answer_outside_one_to_five_or_a_caller_leaving_gives_no_score() {
    let mut sim = survey_sim();
    let (call, tag, inv) = bridged_after_menu(&mut sim, "v2", SURVEY);
    sim.sip(
        &phone_request(&inv, "BYE", "ph1", 2, "pbye", None),
        udp(PHONE),
    );
    reply_at(&mut sim, "ask", &[("survey_score", "9")], vec![collect(1)]);
    sim.sip(
        &caller_request("BYE", "v2", &tag, 2, "bye1", None, ""),
        udp(TRUNK),
    );
    let note = note_of(&sim, &call);
    assert_eq!(note.survey_score, None);
    assert_eq!(note.outcome, EdgeOutcome::Queued);
}

#[test]
fn a_survey_without_an_ivr_runner_says_goodbye_rather_than_queue_again() {
    let mut sim = survey_sim();
    let (call, _, inv) = bridged_after_menu(&mut sim, "v3", SURVEY);
    sim.sip(
        &phone_request(&inv, "BYE", "ph1", 2, "pbye", None),
        udp(PHONE),
    );
    let step = sim.ivr.last().cloned().expect("survey step");
    sim.dist.clear();
    sim.input(Input::IvrReply {
        call: step.call,
        step: step.step,
        reply: Err("no runner".into()),
    });
    assert!(sim.dist.is_empty(), "no Enqueue: {:?}", sim.dist);
    assert_eq!(byes_to_caller(&sim), 1);
    let note = note_of(&sim, &call);
    assert_eq!(
        (note.outcome, note.survey_score),
        (EdgeOutcome::Queued, None)
    );
}

#[test]
fn no_survey_when_the_caller_hangs_up_first_or_the_queue_has_none() {
    let mut sim = survey_sim();
    let (call, tag, _) = bridged_after_menu(&mut sim, "n1", SURVEY);
    let steps_before = sim.ivr.len();
    sim.sip(
        &caller_request("BYE", "n1", &tag, 2, "bye1", None, ""),
        udp(TRUNK),
    );
    assert_eq!(sim.ivr.len(), steps_before, "no survey step");
    assert_eq!(sim.core.call_phase(&call), None);
    assert!(sim.dist.iter().any(|m| matches!(
        m,
        ToDistributor::CallEnded {
            by: EndedBy::Caller,
            ..
        }
    )));
    assert_eq!(note_of(&sim, &call).survey_score, None);

    // A queue without a survey, and one whose flow this edge lacks: the
    // agent's BYE ends the caller's leg too.
    for flow in ["", "missing"] {
        let mut sim = survey_sim();
        let (call, _, inv) = bridged_after_menu(&mut sim, "n2", flow);
        sim.sip(
            &phone_request(&inv, "BYE", "ph1", 2, "pbye", None),
            udp(PHONE),
        );
        assert_eq!(byes_to_caller(&sim), 1, "survey {flow:?}: caller hung up");
        assert_eq!(note_of(&sim, &call).outcome, EdgeOutcome::Queued);
    }
}

#[test]
fn the_note_so_far_survives_a_hand_over_and_older_snapshots_still_load() {
    let mut sim = survey_sim();
    let (call, tag) = in_flow(&mut sim, "h1");
    answer_at(&mut sim, &call, "menu", "2");
    let json = sim.core.snapshot(sim.now).to_json();
    let back = Snapshot::from_json(&json).expect("snapshot reads");
    sim.core = acd_b2bua::EdgeCore::restore(sim_config_with_survey(), back, sim.now);
    sim.drain();
    sim.sip(
        &caller_request("BYE", "h1", &tag, 2, "bye1", None, ""),
        udp(TRUNK),
    );
    let note = note_of(&sim, &call);
    assert_eq!(steps(note), [("menu", "2")]);
    assert_eq!(note.outcome, EdgeOutcome::AbandonedInIvr);

    // A snapshot from before notes: its calls load and end without one.
    let mut sim = Sim::new();
    let (call, tag) = in_flow(&mut sim, "h2");
    let mut v: serde_json::Value =
        serde_json::from_slice(&sim.core.snapshot(sim.now).to_json()).expect("json");
    for c in v["calls"].as_array_mut().expect("calls") {
        c.as_object_mut().expect("call").remove("note");
    }
    let old = Snapshot::from_json(&serde_json::to_vec(&v).expect("json")).expect("old snapshot");
    sim.core = acd_b2bua::EdgeCore::restore(config(), old, sim.now);
    sim.drain();
    sim.sip(
        &caller_request("BYE", "h2", &tag, 2, "bye1", None, ""),
        udp(TRUNK),
    );
    assert_eq!(sim.core.call_phase(&call), None);
    assert!(notes(&sim).iter().all(|n| n.call != call));
}

fn sim_config_with_survey() -> acd_b2bua::CoreConfig {
    let mut cfg = config();
    cfg.flows.insert(SURVEY.into(), acd_ivr::Flow::default());
    cfg
}
