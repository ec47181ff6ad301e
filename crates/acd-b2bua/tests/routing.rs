//! The routing engine's instructions at the edge, through the core with
//! simulated time: redirects (URI, message, flow, callback booked), queue
//! announcements, releasing the agent leg after a transfer, auto-answer,
//! dialling a callback's customer, and what the distributor is told
//! (caller number, who ended a call).

mod sim;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use acd_b2bua::{
    AgentId, CallId, CallbackOutcome, CallerInfo, DialCallback, EndedBy, FromDistributor, Input,
    MediaCommand, MediaEvent, PlayToken, RedirectTarget, ToDistributor,
};
use acd_sip::Request;
use sim::*;

const FAR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)), 5070);
const FAR_URI: &str = "sip:night@10.0.0.9:5070";
const CUSTOMER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 20)), 5060);

/// The prompts of these tests (English and neutral).
fn prompts_config() -> acd_b2bua::CoreConfig {
    let mut cfg = config();
    for p in [
        "en/night_closed",
        "en/callback_booked",
        "en/redirect_failed",
        "en/queue_position",
        "en/queue_ewt",
        "en/num_3",
        "en/num_2",
        "en/minutes",
        "en/less_than_a_minute",
    ] {
        cfg.prompts.insert(p.to_string());
    }
    cfg.trunks.push(acd_config::TrunkDef {
        name: "carrier".into(),
        sources: vec![acd_config::Cidr::try_from("10.0.0.2".to_string()).expect("cidr")],
        username: None,
        password: None,
        max_concurrent_calls: None,
        max_calls_per_second: None,
        dial: Some("sip:{number}@10.0.0.20:5060".into()),
    });
    cfg
}

fn dist(sim: &mut Sim, cmd: FromDistributor) {
    sim.input(Input::Distributor { term: 1, cmd });
}

fn redirect(sim: &mut Sim, call: &CallId, target: RedirectTarget) {
    let cmd = FromDistributor::Redirect {
        call: call.clone(),
        target,
        reason: "closed".into(),
    };
    dist(sim, cmd);
}

/// The prompts played to `call` since `from`, in order, with their tokens.
fn played(sim: &Sim, call: &CallId, from: usize) -> Vec<(String, bool, PlayToken)> {
    sim.media[from..]
        .iter()
        .filter(|(c, _)| c == call)
        .filter_map(|(_, m)| match m {
            MediaCommand::Play {
                prompt,
                looping,
                token,
            } => Some((prompt.clone(), *looping, *token)),
            _ => None,
        })
        .collect()
}

fn finish(sim: &mut Sim, call: &CallId, token: PlayToken) {
    sim.input(Input::Media(MediaEvent::PromptFinished {
        call: call.clone(),
        token,
    }));
}

/// Nothing but the enqueue was reported for the call.
fn nothing_reported_after_enqueue(sim: &Sim) {
    let after: Vec<_> = sim
        .dist
        .iter()
        .filter(|m| !matches!(m, ToDistributor::Enqueue(_)))
        .collect();
    assert!(
        after.is_empty(),
        "the distributor no longer holds it: {after:?}"
    );
}

#[test]
fn the_enqueue_carries_the_callers_number() {
    let mut sim = Sim::new();
    let (_call, _tag) = queued_call(&mut sim, "n1");
    let Some(ToDistributor::Enqueue(e)) = sim.dist.last() else {
        panic!("enqueued");
    };
    assert_eq!(e.caller.number, "0215551234");
    assert_eq!(e.caller.from_uri, "sip:0215551234@10.0.0.2");
}

#[test]
fn a_message_redirect_plays_the_prompt_then_hangs_up_quietly() {
    let mut sim = Sim::with_config(prompts_config());
    let (call, tag) = queued_call(&mut sim, "m1");
    let mark = sim.media.len();
    sim.sent.clear();
    redirect(
        &mut sim,
        &call,
        RedirectTarget::Message("night_closed".into()),
    );
    let plays = played(&sim, &call, mark);
    assert_eq!(plays.len(), 1);
    assert_eq!(
        (plays[0].0.as_str(), plays[0].1),
        ("en/night_closed", false)
    );
    assert_eq!(sim.core.call_phase(&call), Some("closing"));
    assert_eq!(sim.count_requests("BYE"), 0, "not before the message ends");
    finish(&mut sim, &call, plays[0].2);
    let bye = sim.last_request("BYE").expect("BYE to the caller");
    assert_eq!(bye.headers.from_tag(), Some(tag.as_str()));
    assert_eq!(sim.core.active_calls(), 0);
    nothing_reported_after_enqueue(&sim);
}

#[test]
fn a_booked_callback_confirms_and_hangs_up_without_an_abandon() {
    let mut sim = Sim::with_config(prompts_config());
    let (call, _tag) = queued_call(&mut sim, "cb1");
    let mark = sim.media.len();
    redirect(
        &mut sim,
        &call,
        RedirectTarget::Callback("callback_booked".into()),
    );
    let plays = played(&sim, &call, mark);
    assert_eq!(plays[0].0, "en/callback_booked");
    // The caller hangs up during the confirmation: still no abandon.
    let tag = sim
        .last_response(200)
        .and_then(|r| r.headers.to_tag())
        .expect("tag")
        .to_string();
    sim.sip(
        &caller_request("BYE", "cb1", &tag, 2, "bye1", None, ""),
        udp(TRUNK),
    );
    assert_eq!(sim.core.active_calls(), 0);
    nothing_reported_after_enqueue(&sim);
}

#[test]
fn a_redirect_without_its_prompt_hangs_up_at_once() {
    let mut sim = Sim::new();
    let (call, _tag) = queued_call(&mut sim, "np1");
    sim.sent.clear();
    redirect(
        &mut sim,
        &call,
        RedirectTarget::Message("night_closed".into()),
    );
    assert!(sim.last_request("BYE").is_some());
    assert_eq!(sim.core.active_calls(), 0);
    nothing_reported_after_enqueue(&sim);
}

/// A queued call redirected to `FAR_URI`: the INVITE sent there.
fn redirected_to_far(sim: &mut Sim, sip_call_id: &str) -> (CallId, Request) {
    let (call, _tag) = queued_call(sim, sip_call_id);
    sim.sent.clear();
    redirect(sim, &call, RedirectTarget::Uri(FAR_URI.into()));
    let inv = sim.last_request("INVITE").expect("far end rung").clone();
    assert_eq!(inv.uri, FAR_URI);
    assert_eq!(sim.core.call_phase(&call), Some("ringing"));
    (call, inv)
}

#[test]
fn a_uri_redirect_bridges_the_far_end_without_telling_the_distributor() {
    let mut sim = Sim::with_config(prompts_config());
    let (call, inv) = redirected_to_far(&mut sim, "u1");
    sim.sip(
        &phone_response(&inv, 200, "OK", "far1", Some(SDP_AGENT)),
        udp(FAR),
    );
    assert_eq!(sim.core.call_phase(&call), Some("bridged"));
    sim.sip(
        &phone_request(&inv, "BYE", "far1", 1, "fbye", None),
        udp(FAR),
    );
    assert_eq!(sim.core.active_calls(), 0);
    nothing_reported_after_enqueue(&sim);
}

#[test]
fn a_failed_uri_redirect_plays_a_message_and_hangs_up() {
    let mut sim = Sim::with_config(prompts_config());
    let (call, inv) = redirected_to_far(&mut sim, "u2");
    let mark = sim.media.len();
    sim.sip(
        &phone_response(&inv, 486, "Busy Here", "far1", None),
        udp(FAR),
    );
    let plays = played(&sim, &call, mark);
    assert_eq!(
        plays.last().map(|p| p.0.as_str()),
        Some("en/redirect_failed")
    );
    assert_eq!(sim.core.call_phase(&call), Some("closing"));
    let token = plays.last().expect("played").2;
    finish(&mut sim, &call, token);
    assert!(sim.last_request("BYE").is_some());
    assert_eq!(sim.core.active_calls(), 0);
    nothing_reported_after_enqueue(&sim);
}

#[test]
fn a_flow_redirect_runs_the_flow_from_its_start() {
    let mut cfg = prompts_config();
    let night = cfg.flows.get("main").cloned().expect("flow");
    cfg.flows.insert("night".into(), night);
    let mut sim = Sim::with_config(cfg);
    let (call, _tag) = queued_call(&mut sim, "f1");
    let steps = sim.ivr.len();
    redirect(&mut sim, &call, RedirectTarget::Flow("night".into()));
    assert_eq!(sim.core.call_phase(&call), Some("ivr"));
    let step = sim.ivr.get(steps).expect("a step of the new flow");
    assert_eq!(step.flow, "night");
    assert!(
        matches!(step.event, acd_b2bua::IvrEvent::Started { ref caller, .. } if caller == "0215551234")
    );
    // It may enqueue again: a new record at the distributor.
    sim.ivr_reply(vec![acd_b2bua::IvrAction::Enqueue {
        queue: "night".into(),
        priority: 0,
        skills: Default::default(),
        data: Default::default(),
    }]);
    assert!(matches!(sim.dist.last(), Some(ToDistributor::Enqueue(e)) if e.queue == "night"));
}

#[test]
fn a_redirect_for_a_call_already_ringing_an_agent_is_ignored() {
    let mut sim = Sim::with_config(prompts_config());
    sim.registered_agent();
    let (call, _tag) = queued_call(&mut sim, "r1");
    sim.connect(&call, 1);
    assert_eq!(sim.core.call_phase(&call), Some("ringing"));
    redirect(
        &mut sim,
        &call,
        RedirectTarget::Message("night_closed".into()),
    );
    assert_eq!(sim.core.call_phase(&call), Some("ringing"));
}

fn announce(sim: &mut Sim, call: &CallId, position: u32, secs: u32) {
    let cmd = FromDistributor::Announce {
        call: call.clone(),
        position,
        estimated_wait_secs: secs,
    };
    dist(sim, cmd);
}

#[test]
fn an_announcement_says_position_and_wait_then_the_music_resumes() {
    let mut sim = Sim::with_config(prompts_config());
    let (call, _tag) = queued_call(&mut sim, "a1");
    let mark = sim.media.len();
    announce(&mut sim, &call, 3, 61);
    let want = [
        "en/queue_position",
        "en/num_3",
        "en/queue_ewt",
        "en/num_2",
        "en/minutes",
    ];
    for (i, name) in want.iter().enumerate() {
        let plays = played(&sim, &call, mark);
        assert_eq!(plays.len(), i + 1, "one fragment at a time");
        assert_eq!((plays[i].0.as_str(), plays[i].1), (*name, false));
        finish(&mut sim, &call, plays[i].2);
    }
    let plays = played(&sim, &call, mark);
    assert_eq!(
        plays.last().map(|p| (p.0.as_str(), p.1)),
        Some(("moh", true)),
        "hold music again"
    );
    assert_eq!(sim.core.call_phase(&call), Some("queued"));
    // Under a minute.
    let mark = sim.media.len();
    announce(&mut sim, &call, 0, 20);
    let plays = played(&sim, &call, mark);
    assert_eq!(plays[0].0, "en/queue_ewt");
    finish(&mut sim, &call, plays[0].2);
    assert_eq!(played(&sim, &call, mark)[1].0, "en/less_than_a_minute");
}

#[test]
fn no_announcement_over_a_ringing_agent_and_a_connect_cuts_one_short() {
    let mut sim = Sim::with_config(prompts_config());
    sim.registered_agent();
    let (call, _tag) = queued_call(&mut sim, "a2");
    let mark = sim.media.len();
    announce(&mut sim, &call, 3, 0);
    let first = played(&sim, &call, mark)[0].clone();
    assert_eq!(first.0, "en/queue_position");
    sim.connect(&call, 1);
    assert_eq!(sim.core.call_phase(&call), Some("ringing"));
    let plays = played(&sim, &call, mark);
    assert_eq!(
        plays.last().map(|p| p.0.as_str()),
        Some("moh"),
        "music while it rings"
    );
    // The cut fragment's end plays nothing more.
    finish(&mut sim, &call, first.2);
    let count = played(&sim, &call, mark).len();
    announce(&mut sim, &call, 2, 0);
    assert_eq!(
        played(&sim, &call, mark).len(),
        count,
        "nothing over the ringing"
    );
}

fn release(sim: &mut Sim, call: &CallId) {
    let cmd = FromDistributor::Release {
        call: call.clone(),
        agent: AgentId("alice".into()),
        reason: "transferred".into(),
    };
    dist(sim, cmd);
}

#[test]
fn a_release_hangs_up_the_agent_and_a_next_connect_rings_again() {
    let mut sim = Sim::new();
    let (call, _tag, inv) = bridged_call(&mut sim, "rel1");
    let mark = sim.media.len();
    release(&mut sim, &call);
    let bye = sim.last_request("BYE").expect("BYE to the agent");
    assert_eq!(bye.headers.to_tag(), Some("ph1"));
    assert_eq!(sim.core.call_phase(&call), Some("queued"));
    assert!(sim.media[mark..]
        .iter()
        .any(|(c, m)| *c == call && *m == MediaCommand::Unbridge));
    assert_eq!(
        played(&sim, &call, mark)
            .last()
            .map(|p| (p.0.as_str(), p.1)),
        Some(("moh", true))
    );
    let reported = sim.dist.len();
    // The old agent's BYE crossing ours finds no dialog.
    sim.sip(
        &phone_request(&inv, "BYE", "ph1", 3, "late", None),
        udp(PHONE),
    );
    assert_eq!(sim.responses().last().map(|r| r.status), Some(481));
    assert_eq!(sim.core.call_phase(&call), Some("queued"));
    sim.sent.clear();
    sim.connect(&call, 1);
    let inv2 = sim.last_request("INVITE").expect("rung again").clone();
    sim.sip(
        &phone_response(&inv2, 200, "OK", "ph2", Some(SDP_AGENT)),
        udp(PHONE),
    );
    assert_eq!(sim.core.call_phase(&call), Some("bridged"));
    assert!(sim.dist[reported..]
        .iter()
        .any(|m| matches!(m, ToDistributor::AgentAnswered { .. })));
}

#[test]
fn a_release_while_the_agent_rings_cancels() {
    let mut sim = Sim::new();
    sim.registered_agent();
    let (call, _tag) = queued_call(&mut sim, "rel2");
    sim.connect(&call, 1);
    let inv = sim.last_request("INVITE").expect("rung").clone();
    release(&mut sim, &call);
    assert!(sim.last_request("CANCEL").is_some());
    assert_eq!(sim.core.call_phase(&call), Some("queued"));
    let reported = sim.dist.len();
    sim.sip(
        &phone_response(&inv, 487, "Request Terminated", "ph1", None),
        udp(PHONE),
    );
    assert_eq!(
        sim.dist.len(),
        reported,
        "no AgentFailed for a released leg"
    );
}

#[test]
fn auto_answer_is_asked_in_the_agents_invite() {
    let mut sim = Sim::new();
    sim.registered_agent();
    let (call, _tag) = queued_call(&mut sim, "aa1");
    dist(
        &mut sim,
        FromDistributor::Connect {
            call: call.clone(),
            agent: AgentId("alice".into()),
            extension: "1001".into(),
            contact: None,
            auto_answer: true,
            ring_also: Vec::new(),
            survey_flow: String::new(),
        },
    );
    let inv = sim.last_request("INVITE").expect("rung");
    assert_eq!(
        inv.headers.get("Call-Info"),
        Some("<sip:10.0.0.1:5060>;answer-after=0")
    );
    assert_eq!(
        inv.headers.get("Alert-Info"),
        Some("<http://127.0.0.1>;info=alert-autoanswer")
    );
    let (call2, _) = {
        let mut sim2 = Sim::new();
        sim2.registered_agent();
        let q = queued_call(&mut sim2, "aa2");
        sim2.connect(&q.0, 1);
        let inv = sim2.last_request("INVITE").expect("rung");
        assert!(
            inv.headers.get("Call-Info").is_none(),
            "not asked by default"
        );
        q
    };
    let _ = call2;
}

#[test]
fn who_ended_a_bridged_call_is_reported() {
    let mut sim = Sim::new();
    let (_call, tag, _inv) = bridged_call(&mut sim, "by1");
    sim.sip(
        &caller_request("BYE", "by1", &tag, 2, "bye1", None, ""),
        udp(TRUNK),
    );
    assert!(matches!(
        sim.dist.last(),
        Some(ToDistributor::CallEnded {
            by: EndedBy::Caller,
            ..
        })
    ));
    let mut sim = Sim::new();
    let (_call, _tag, inv) = bridged_call(&mut sim, "by2");
    sim.sip(
        &phone_request(&inv, "BYE", "ph1", 2, "pbye", None),
        udp(PHONE),
    );
    assert!(matches!(
        sim.dist.last(),
        Some(ToDistributor::CallEnded {
            by: EndedBy::Agent,
            ..
        })
    ));
    let mut sim = Sim::new();
    let (call, _tag, _inv) = bridged_call(&mut sim, "by3");
    sim.input(Input::Media(MediaEvent::Inactive {
        call,
        side: acd_b2bua::Side::Caller,
    }));
    assert!(matches!(
        sim.dist.last(),
        Some(ToDistributor::CallEnded {
            by: EndedBy::Failure,
            ..
        })
    ));
}

fn dial_spec(call: &str, number: &str, trunk: &str) -> DialCallback {
    DialCallback {
        call: CallId(call.into()),
        number: number.into(),
        trunk: trunk.into(),
        ring_secs: 10,
        attempt: 1,
        agent: AgentId("alice".into()),
        extension: "1001".into(),
        contact: None,
        auto_answer: false,
        caller: CallerInfo {
            did: "5550100".into(),
            number: "79161234567".into(),
            ..Default::default()
        },
    }
}

/// Dials a callback through the carrier trunk; returns the customer INVITE.
fn dialling(sim: &mut Sim, call: &str) -> Request {
    sim.sent.clear();
    dist(
        sim,
        FromDistributor::Dial(Box::new(dial_spec(call, "79161234567", "carrier"))),
    );
    let inv = sim
        .last_request("INVITE")
        .expect("customer dialled")
        .clone();
    assert_eq!(inv.uri, "sip:79161234567@10.0.0.20:5060");
    assert_eq!(sim.sent.last().map(|(p, _)| *p), Some(udp(CUSTOMER)));
    assert!(
        String::from_utf8_lossy(&inv.body).contains("m=audio 400"),
        "our offer on the call's bound caller port"
    );
    inv
}

fn callback_result(sim: &Sim) -> Option<(CallbackOutcome, u16)> {
    sim.dist.iter().rev().find_map(|m| match m {
        ToDistributor::CallbackResult {
            outcome,
            sip_status,
            ..
        } => Some((*outcome, *sip_status)),
        _ => None,
    })
}

#[test]
fn an_answered_callback_rings_the_agent_and_bridges() {
    let mut sim = Sim::with_config(prompts_config());
    sim.registered_agent();
    let inv = dialling(&mut sim, "in1:cb");
    sim.sip(
        &phone_response(&inv, 180, "Ringing", "cust1", None),
        udp(CUSTOMER),
    );
    assert!(callback_result(&sim).is_none());
    sim.sip(
        &phone_response(&inv, 200, "OK", "cust1", Some(SDP_CALLER)),
        udp(CUSTOMER),
    );
    assert_eq!(
        callback_result(&sim),
        Some((CallbackOutcome::Answered, 200))
    );
    let call = CallId("in1:cb".into());
    assert!(
        sim.last_request("ACK").is_some(),
        "customer's 200 acknowledged"
    );
    assert_eq!(sim.core.call_phase(&call), Some("ringing"), "agent rung");
    let agent_inv = sim.last_request("INVITE").expect("agent INVITE").clone();
    assert!(agent_inv.uri.contains("1001@10.0.0.3"));
    // The customer's 200 again: ACK again, no BYE.
    let acks = sim.count_requests("ACK");
    sim.sip(
        &phone_response(&inv, 200, "OK", "cust1", Some(SDP_CALLER)),
        udp(CUSTOMER),
    );
    assert_eq!(sim.count_requests("ACK"), acks + 1);
    assert_eq!(sim.count_requests("BYE"), 0);
    sim.sip(
        &phone_response(&agent_inv, 200, "OK", "ph1", Some(SDP_AGENT)),
        udp(PHONE),
    );
    assert_eq!(sim.core.call_phase(&call), Some("bridged"));
    assert!(sim
        .dist
        .iter()
        .any(|m| matches!(m, ToDistributor::AgentAnswered { call: c, .. } if *c == call)));
    // The customer hangs up: BYE in their dialog (our tag is theirs' To).
    let customer_bye = format!(
        "BYE sip:acd@10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.20:5060;branch=z9hG4bKcb1\r\nMax-Forwards: 70\r\nFrom: {};tag=cust1\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        inv.headers.get("To").unwrap_or(""),
        inv.headers.get("From").unwrap_or(""),
        inv.headers.call_id().unwrap_or(""),
    );
    sim.sip(&customer_bye, udp(CUSTOMER));
    assert_eq!(sim.responses().last().map(|r| r.status), Some(200));
    assert_eq!(sim.core.active_calls(), 0);
    assert!(matches!(
        sim.dist.last(),
        Some(ToDistributor::CallEnded {
            by: EndedBy::Caller,
            ..
        })
    ));
}

#[test]
fn a_busy_customer_is_reported_busy() {
    let mut sim = Sim::with_config(prompts_config());
    let inv = dialling(&mut sim, "in2:cb");
    sim.sip(
        &phone_response(&inv, 486, "Busy Here", "cust1", None),
        udp(CUSTOMER),
    );
    assert_eq!(callback_result(&sim), Some((CallbackOutcome::Busy, 486)));
    assert_eq!(sim.core.active_calls(), 0);
    assert!(sim
        .media
        .iter()
        .any(|(c, m)| c.0 == "in2:cb" && *m == MediaCommand::Release));
}

#[test]
fn an_unanswered_customer_is_cancelled_after_ring_secs() {
    let mut sim = Sim::with_config(prompts_config());
    let inv = dialling(&mut sim, "in3:cb");
    sim.sip(
        &phone_response(&inv, 180, "Ringing", "cust1", None),
        udp(CUSTOMER),
    );
    sim.advance(Duration::from_secs(9));
    assert_eq!(sim.count_requests("CANCEL"), 0);
    sim.advance(Duration::from_secs(2));
    // (Retransmitted over UDP until answered.)
    assert!(
        sim.count_requests("CANCEL") >= 1,
        "cancelled after ring_secs"
    );
    sim.sip(
        &phone_response(&inv, 487, "Request Terminated", "cust1", None),
        udp(CUSTOMER),
    );
    assert_eq!(
        callback_result(&sim),
        Some((CallbackOutcome::NoAnswer, 487))
    );
    let other = dialling(&mut sim, "in4:cb");
    sim.sip(
        &phone_response(&other, 480, "Temporarily Unavailable", "c", None),
        udp(CUSTOMER),
    );
    assert_eq!(
        callback_result(&sim),
        Some((CallbackOutcome::NoAnswer, 480))
    );
}

#[test]
fn a_callback_that_cannot_be_dialled_fails_at_once() {
    let mut sim = Sim::with_config(prompts_config());
    for (number, trunk) in [("79161234567", ""), ("7916;evil", "carrier"), ("1", "nope")] {
        sim.dist.clear();
        dist(
            &mut sim,
            FromDistributor::Dial(Box::new(dial_spec("x:cb", number, trunk))),
        );
        assert_eq!(
            callback_result(&sim),
            Some((CallbackOutcome::Failed, 0)),
            "{number} via {trunk:?}"
        );
    }
    assert_eq!(sim.count_requests("INVITE"), 0);
    // A SIP URI without a trunk is dialled as is.
    dist(
        &mut sim,
        FromDistributor::Dial(Box::new(dial_spec("y:cb", "sip:cust@10.0.0.20:5060", ""))),
    );
    assert_eq!(
        sim.last_request("INVITE").map(|r| r.uri.clone()).as_deref(),
        Some("sip:cust@10.0.0.20:5060")
    );
}

#[test]
fn an_announcement_cut_by_a_hand_over_gives_way_to_the_music() {
    let mut sim = Sim::with_config(prompts_config());
    let (call, _tag) = queued_call(&mut sim, "ho1");
    let mark = sim.media.len();
    announce(&mut sim, &call, 3, 0);
    let first = played(&sim, &call, mark)[0].clone();
    let snap = sim.core.snapshot(sim.now).to_json();
    let back = acd_b2bua::Snapshot::from_json(&snap).expect("snapshot parses");
    sim.core = acd_b2bua::EdgeCore::restore(prompts_config(), back, sim.now);
    let mark = sim.media.len();
    finish(&mut sim, &call, first.2);
    assert_eq!(
        played(&sim, &call, mark)
            .last()
            .map(|p| (p.0.as_str(), p.1)),
        Some(("moh", true)),
        "not silence"
    );
    assert_eq!(sim.core.call_phase(&call), Some("queued"));
}

const PHONE2: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 4)), 5062);

/// A queued call rung at alice (registered) and bob (ring-all, a contact
/// from the offer); returns the call and the INVITEs to alice and bob.
fn ringing_all(sim: &mut Sim, sip_call_id: &str) -> (CallId, Request, Request) {
    sim.registered_agent();
    let (call, _tag) = queued_call(sim, sip_call_id);
    sim.sent.clear();
    let bob = acd_b2bua::RingTarget {
        agent: AgentId("bob".into()),
        extension: "1002".into(),
        contact: Some(acd_b2bua::AgentContact {
            contact: "sip:1002@10.0.0.4:5062".into(),
            source: String::new(),
        }),
        auto_answer: false,
    };
    dist(
        sim,
        FromDistributor::Connect {
            call: call.clone(),
            agent: AgentId("alice".into()),
            extension: "1001".into(),
            contact: None,
            auto_answer: false,
            ring_also: vec![bob],
            survey_flow: String::new(),
        },
    );
    let invite_to = |sim: &Sim, to: SocketAddr| {
        sim.sent
            .iter()
            .find_map(|(p, m)| match m {
                acd_sip::Message::Request(r) if r.method.as_str() == "INVITE" && p.addr == to => {
                    Some(r.clone())
                }
                _ => None,
            })
            .expect("INVITE sent")
    };
    let (alice, bob) = (invite_to(sim, PHONE), invite_to(sim, PHONE2));
    assert_eq!(sim.core.call_phase(&call), Some("ringing"));
    (call, alice, bob)
}

fn cancels_to(sim: &Sim, to: SocketAddr) -> usize {
    sim.sent
        .iter()
        .filter(|(p, m)| {
            p.addr == to
                && matches!(m, acd_sip::Message::Request(r) if r.method.as_str() == "CANCEL")
        })
        .count()
}

#[test]
fn ring_all_the_first_phone_to_answer_takes_the_call() {
    let mut sim = Sim::new();
    let (call, alice, bob) = ringing_all(&mut sim, "ra1");
    let reported = sim.dist.len();
    sim.sip(
        &phone_response(&alice, 180, "Ringing", "al1", None),
        udp(PHONE),
    );
    sim.sip(
        &phone_response(&bob, 200, "OK", "bob1", Some(SDP_AGENT)),
        udp(PHONE2),
    );
    assert_eq!(sim.core.call_phase(&call), Some("bridged"));
    assert!(cancels_to(&sim, PHONE) >= 1, "alice's phone cancelled");
    assert_eq!(cancels_to(&sim, PHONE2), 0);
    assert!(matches!(
        &sim.dist[reported..],
        [ToDistributor::AgentAnswered { agent, .. }] if agent.0 == "bob"
    ));
    // Alice's phone confirms the CANCEL: nothing more is reported.
    sim.sip(
        &phone_response(&alice, 487, "Request Terminated", "al1", None),
        udp(PHONE),
    );
    assert_eq!(sim.dist.len(), reported + 1);
    assert_eq!(sim.core.call_phase(&call), Some("bridged"));
}

#[test]
fn ring_all_reports_a_failure_only_when_every_phone_failed() {
    let mut sim = Sim::new();
    let (call, alice, bob) = ringing_all(&mut sim, "ra2");
    let reported = sim.dist.len();
    sim.sip(
        &phone_response(&alice, 486, "Busy Here", "al1", None),
        udp(PHONE),
    );
    assert_eq!(sim.dist.len(), reported, "bob still rings");
    assert_eq!(sim.core.call_phase(&call), Some("ringing"));
    sim.sip(
        &phone_response(&bob, 486, "Busy Here", "bob1", None),
        udp(PHONE2),
    );
    assert!(matches!(
        &sim.dist[reported..],
        [ToDistributor::AgentFailed { agent, sip_status: 486, .. }] if agent.0 == "alice"
    ));
    assert_eq!(sim.core.call_phase(&call), Some("queued"));
}

#[test]
fn ring_all_no_answer_cancels_every_phone() {
    let mut sim = Sim::new();
    let (call, alice, bob) = ringing_all(&mut sim, "ra3");
    let reported = sim.dist.len();
    sim.advance(Duration::from_secs(16));
    assert!(cancels_to(&sim, PHONE) >= 1 && cancels_to(&sim, PHONE2) >= 1);
    sim.sip(
        &phone_response(&bob, 487, "Request Terminated", "bob1", None),
        udp(PHONE2),
    );
    assert_eq!(sim.dist.len(), reported);
    sim.sip(
        &phone_response(&alice, 487, "Request Terminated", "al1", None),
        udp(PHONE),
    );
    assert!(matches!(
        &sim.dist[reported..],
        [ToDistributor::AgentFailed { agent, .. }] if agent.0 == "alice"
    ));
    assert_eq!(sim.core.call_phase(&call), Some("queued"));
}

#[test]
fn ring_all_ending_the_call_cancels_every_phone() {
    let mut sim = Sim::new();
    let (_call, _alice, _bob) = ringing_all(&mut sim, "ra4");
    // The drain deadline ends it (as a caller's CANCEL or BYE would).
    sim.input(Input::EndAll);
    assert!(cancels_to(&sim, PHONE) >= 1 && cancels_to(&sim, PHONE2) >= 1);
    assert_eq!(sim.core.active_calls(), 0);
}
