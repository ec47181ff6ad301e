//! Whole calls through the core with simulated time: both legs, CANCEL
//! races, loss, retransmissions, hold, late offer, session timers.

mod sim;

use std::time::Duration;

use acd_b2bua::{Input, IvrAction, MediaCommand, MediaEvent, ToDistributor};
use acd_sip::{Message, Method};
use sim::*;

#[test]
fn a_whole_call_from_trunk_to_agent_and_back() {
    let mut sim = Sim::new();
    let (call, tag, _inv) = bridged_call(&mut sim, "c1");
    sim.sip(
        &caller_request("BYE", "c1", &tag, 2, "bye1", None, ""),
        udp(TRUNK),
    );
    assert!(sim.last_response(200).is_some());
    let bye = sim.last_request("BYE").expect("BYE to the agent");
    assert_eq!(bye.headers.to_tag(), Some("ph1"));
    assert!(
        matches!(sim.dist.last(), Some(ToDistributor::CallEnded { call: c, .. }) if *c == call)
    );
    assert_eq!(sim.core.active_calls(), 0);
    assert!(sim
        .media
        .iter()
        .any(|(c, m)| *c == call && *m == MediaCommand::Release));
}

#[test]
fn bye_with_the_right_call_id_but_wrong_tags_gets_481_and_the_call_lives() {
    let mut sim = Sim::new();
    let (call, tag, inv) = bridged_call(&mut sim, "c2");
    sim.sip(
        &caller_request("BYE", "c2", "not-our-tag", 2, "evil1", None, ""),
        udp(TRUNK),
    );
    assert_eq!(sim.responses().last().map(|r| r.status), Some(481));
    // Right To tag, wrong From tag: still not this dialog.
    let forged = caller_request("BYE", "c2", &tag, 2, "evil2", None, "")
        .replace("tag=caller1", "tag=mallory");
    sim.sip(&forged, udp(TRUNK));
    assert_eq!(sim.responses().last().map(|r| r.status), Some(481));
    // The agent leg's Call-ID with a wrong phone tag.
    sim.sip(
        &phone_request(&inv, "BYE", "not-the-phone", 5, "evil3", None),
        udp(PHONE),
    );
    assert_eq!(sim.responses().last().map(|r| r.status), Some(481));
    assert_eq!(sim.core.call_phase(&call), Some("bridged"));
    assert_eq!(sim.count_requests("BYE"), 0);
    // The real phone hangs up.
    sim.sip(
        &phone_request(&inv, "BYE", "ph1", 2, "pbye", None),
        udp(PHONE),
    );
    assert_eq!(sim.core.active_calls(), 0);
    assert_eq!(
        sim.last_request("BYE").and_then(|r| r.headers.to_tag()),
        Some("caller1")
    );
}

#[test]
fn an_invite_answered_over_tcp_and_never_acked_is_ended_and_never_offered() {
    let mut sim = Sim::new();
    sim.sip(&invite("t1", "t1", Some(SDP_CALLER), "", "TCP"), tcp(TRUNK));
    assert!(sim.last_response(200).is_some());
    let call = sim.ivr.last().unwrap().call.clone();
    sim.ivr_reply(vec![IvrAction::Enqueue {
        queue: "sales".into(),
        priority: 0,
        skills: Default::default(),
        data: Default::default(),
    }]);
    sim.sent.clear();
    // No retransmission on a reliable transport...
    sim.advance(Duration::from_secs(10));
    assert!(sim.responses().is_empty(), "TCP: no 2xx retransmission");
    // ...but no ACK within 64*T1 ends the dialog.
    sim.advance(Duration::from_secs(30));
    assert_eq!(sim.core.active_calls(), 0);
    assert!(
        sim.last_request("BYE").is_some(),
        "BYE sent to the silent caller"
    );
    assert!(matches!(sim.dist.last(), Some(ToDistributor::Abandon { call: c }) if *c == call));
    // An offer arriving now is answered with Abandon, not a ringing phone.
    sim.registered_agent();
    sim.connect(&call, 1);
    assert_eq!(sim.count_requests("INVITE"), 0);
    assert!(matches!(
        sim.dist.last(),
        Some(ToDistributor::Abandon { .. })
    ));
}

#[test]
fn udp_2xx_is_retransmitted_until_the_ack_then_stops() {
    let mut sim = Sim::new();
    sim.sip(&invite("u1", "u1", Some(SDP_CALLER), "", "UDP"), udp(TRUNK));
    let tag = sim
        .last_response(200)
        .unwrap()
        .headers
        .to_tag()
        .unwrap()
        .to_string();
    sim.sent.clear();
    sim.advance(Duration::from_millis(1600)); // T1, 2T1 → resent at 0.5 s and 1.5 s
    assert_eq!(
        sim.responses().iter().filter(|r| r.status == 200).count(),
        2
    );
    sim.sip(
        &caller_request("ACK", "u1", &tag, 1, "ack", None, ""),
        udp(TRUNK),
    );
    sim.sent.clear();
    sim.advance(Duration::from_secs(60));
    assert!(sim.responses().iter().all(|r| r.status != 200));
    assert_eq!(sim.core.active_calls(), 1);
}

#[test]
fn a_lost_ack_is_recovered_by_the_retransmitted_2xx() {
    let mut sim = Sim::new();
    sim.sip(&invite("u2", "u2", Some(SDP_CALLER), "", "UDP"), udp(TRUNK));
    // The first 200 is lost; the caller's INVITE retransmission is absorbed.
    sim.sip(&invite("u2", "u2", Some(SDP_CALLER), "", "UDP"), udp(TRUNK));
    assert_eq!(
        sim.core.active_calls(),
        1,
        "a retransmitted INVITE is not a new call"
    );
    sim.sent.clear();
    sim.advance(Duration::from_millis(600));
    let tag = sim
        .last_response(200)
        .expect("2xx resent")
        .headers
        .to_tag()
        .unwrap()
        .to_string();
    sim.sip(
        &caller_request("ACK", "u2", &tag, 1, "ack", None, ""),
        udp(TRUNK),
    );
    sim.advance(Duration::from_secs(40));
    assert_eq!(sim.core.active_calls(), 1);
}

#[test]
fn caller_cancel_while_the_agent_rings_then_the_agent_answers_gets_ack_and_bye() {
    let mut cfg = config();
    cfg.flows.get_mut("main").unwrap().answer = acd_ivr::AnswerMode::Early;
    let mut sim = Sim::with_config(cfg);
    sim.registered_agent();
    sim.sip(&invite("x1", "x1", Some(SDP_CALLER), "", "UDP"), udp(TRUNK));
    assert!(sim.last_response(183).is_some(), "early media");
    let call = sim.ivr.last().unwrap().call.clone();
    sim.ivr_reply(vec![IvrAction::Enqueue {
        queue: "sales".into(),
        priority: 0,
        skills: Default::default(),
        data: Default::default(),
    }]);
    sim.connect(&call, 1);
    let inv = sim.last_request("INVITE").unwrap().clone();
    sim.sent.clear();
    // The caller gives up...
    let cancel = invite("x1", "x1", None, "", "UDP")
        .replace("INVITE sip:", "CANCEL sip:")
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    sim.sip(&cancel, udp(TRUNK));
    assert!(sim.last_response(487).is_some(), "INVITE terminated");
    assert!(sim.last_request("CANCEL").is_some(), "agent leg cancelled");
    assert!(matches!(
        sim.dist.last(),
        Some(ToDistributor::Abandon { .. })
    ));
    // ...just as the phone answers: its 200 crosses our CANCEL.
    sim.sent.clear();
    sim.sip(
        &phone_response(&inv, 200, "OK", "ph9", Some(SDP_AGENT)),
        udp(PHONE),
    );
    let ack = sim.last_request("ACK").expect("the 200 is acknowledged");
    assert_eq!(ack.headers.to_tag(), Some("ph9"));
    let bye = sim.last_request("BYE").expect("and hung up");
    assert_eq!(bye.headers.to_tag(), Some("ph9"));
    // The phone retransmits the 200 (it did not see the ACK): ACK again, no second call.
    sim.sent.clear();
    sim.sip(
        &phone_response(&inv, 200, "OK", "ph9", Some(SDP_AGENT)),
        udp(PHONE),
    );
    assert!(sim.last_request("ACK").is_some());
    assert_eq!(
        sim.count_requests("BYE"),
        0,
        "a retransmitted 2xx gets the ACK again, not a second BYE"
    );
    assert_eq!(sim.core.active_calls(), 0);
}

#[test]
fn ring_no_answer_cancel_crossing_the_answer_returns_the_call_to_the_queue() {
    let mut sim = Sim::new();
    sim.registered_agent();
    let (call, _tag) = queued_call(&mut sim, "r1");
    sim.connect(&call, 1);
    let inv = sim.last_request("INVITE").unwrap().clone();
    sim.advance(Duration::from_secs(16));
    assert!(sim.last_request("CANCEL").is_some(), "ring-no-answer");
    sim.sent.clear();
    sim.sip(
        &phone_response(&inv, 200, "OK", "ph2", Some(SDP_AGENT)),
        udp(PHONE),
    );
    assert!(sim.last_request("ACK").is_some());
    assert!(sim.last_request("BYE").is_some());
    assert!(
        matches!(sim.dist.last(), Some(ToDistributor::AgentFailed { reason, .. }) if reason == "no answer")
    );
    assert_eq!(sim.core.call_phase(&call), Some("queued"));
    // The phone resends its 200 (our ACK was lost): ACK again, one BYE only.
    sim.sent.clear();
    sim.sip(
        &phone_response(&inv, 200, "OK", "ph2", Some(SDP_AGENT)),
        udp(PHONE),
    );
    assert!(sim.last_request("ACK").is_some());
    assert_eq!(sim.count_requests("BYE"), 0, "a second BYE for one dialog");
    assert_eq!(sim.core.call_phase(&call), Some("queued"));
}

#[test]
fn an_agent_rejecting_sends_the_call_back_with_the_status() {
    let mut sim = Sim::new();
    sim.registered_agent();
    let (call, _tag) = queued_call(&mut sim, "r2");
    sim.connect(&call, 1);
    let inv = sim.last_request("INVITE").unwrap().clone();
    sim.sip(
        &phone_response(&inv, 486, "Busy Here", "ph3", None),
        udp(PHONE),
    );
    assert!(matches!(
        sim.dist.last(),
        Some(ToDistributor::AgentFailed {
            sip_status: 486,
            ..
        })
    ));
    assert_eq!(sim.core.call_phase(&call), Some("queued"));
    // A second offer rings again.
    sim.connect(&call, 1);
    assert_eq!(sim.core.call_phase(&call), Some("ringing"));
}

#[test]
fn caller_hold_is_answered_recvonly_and_passed_to_the_agent() {
    let mut sim = Sim::new();
    let (call, tag, inv) = bridged_call(&mut sim, "h1");
    let hold = SDP_CALLER
        .replace("a=sendrecv", "a=sendonly")
        .replace("o=c 1 1", "o=c 1 2");
    sim.sip(
        &caller_request("INVITE", "h1", &tag, 2, "hold1", Some(&hold), ""),
        udp(TRUNK),
    );
    let ok = sim.last_response(200).expect("re-INVITE answered");
    let body = String::from_utf8_lossy(&ok.body).to_string();
    assert!(
        body.contains("a=recvonly"),
        "answer mirrors sendonly: {body}"
    );
    let reinv = sim
        .last_request("INVITE")
        .expect("hold passed to the agent");
    assert_eq!(reinv.headers.to_tag(), Some("ph1"));
    assert!(String::from_utf8_lossy(&reinv.body).contains("a=sendonly"));
    assert!(sim.media.iter().any(|(c, m)| *c == call
        && matches!(
            m,
            MediaCommand::Update {
                direction: acd_media::sdp::Direction::RecvOnly,
                ..
            }
        )));
    // The phone answers recvonly; we ACK it.
    let reinv = reinv.clone();
    let answer = SDP_AGENT.replace("a=sendrecv", "a=recvonly");
    sim.sent.clear();
    sim.sip(
        &phone_response(&reinv, 200, "OK", "ph1", Some(&answer)),
        udp(PHONE),
    );
    let ack = sim.last_request("ACK").expect("re-INVITE acknowledged");
    assert_eq!(
        ack.headers.cseq().map(|c| c.0),
        reinv.headers.cseq().map(|c| c.0)
    );
    // The caller's ACK, then unhold: sendrecv travels the same way.
    sim.sip(
        &caller_request("ACK", "h1", &tag, 2, "hack", None, ""),
        udp(TRUNK),
    );
    let unhold = SDP_CALLER.replace("o=c 1 1", "o=c 1 3");
    sim.sent.clear();
    sim.sip(
        &caller_request("INVITE", "h1", &tag, 3, "unhold", Some(&unhold), ""),
        udp(TRUNK),
    );
    assert!(String::from_utf8_lossy(&sim.last_response(200).unwrap().body).contains("a=sendrecv"));
    let reinv2 = sim.last_request("INVITE").expect("unhold passed on");
    assert!(String::from_utf8_lossy(&reinv2.body).contains("a=sendrecv"));
    let _ = inv;
}

#[test]
fn update_renegotiates_inside_its_own_transaction() {
    let mut sim = Sim::new();
    let (_call, tag, _inv) = bridged_call(&mut sim, "up1");
    let pcma_only = SDP_CALLER
        .replace("RTP/AVP 0 8 101", "RTP/AVP 8")
        .replace("o=c 1 1", "o=c 1 2");
    sim.sip(
        &caller_request("UPDATE", "up1", &tag, 2, "upd", Some(&pcma_only), ""),
        udp(TRUNK),
    );
    let ok = sim.last_response(200).expect("UPDATE answered");
    let body = String::from_utf8_lossy(&ok.body).to_string();
    assert!(body.contains("m=audio 40000 RTP/AVP 8"), "{body}");
    assert!(body.contains("o=acd"), "{body}");
}

#[test]
fn a_late_offer_invite_gets_our_offer_and_its_ack_the_answer() {
    let mut sim = Sim::new();
    sim.sip(&invite("lo1", "lo1", None, "", "UDP"), udp(TRUNK));
    let ok = sim.last_response(200).expect("answered with an offer");
    let body = String::from_utf8_lossy(&ok.body).to_string();
    assert!(
        body.contains("RTP/AVP 0 8 101"),
        "offer of both laws: {body}"
    );
    let tag = ok.headers.to_tag().unwrap().to_string();
    let call = sim.ivr.last().unwrap().call.clone();
    let answer = SDP_CALLER
        .replace("RTP/AVP 0 8 101", "RTP/AVP 8")
        .replace("m=audio 6000", "m=audio 6100");
    sim.sip(
        &caller_request("ACK", "lo1", &tag, 1, "ack", Some(&answer), ""),
        udp(TRUNK),
    );
    let update = sim.media.iter().rev().find_map(|(c, m)| match m {
        MediaCommand::Update { remote, codec, .. } if *c == call => Some((*remote, *codec)),
        _ => None,
    });
    assert_eq!(
        update,
        Some((
            Some("10.0.0.2:6100".parse().unwrap()),
            acd_media::Codec::Pcma
        ))
    );
}

#[test]
fn an_invite_without_contact_is_refused() {
    let mut sim = Sim::new();
    let text = invite("nc1", "nc1", Some(SDP_CALLER), "", "UDP")
        .replace("Contact: <sip:bob@10.0.0.2:5060>\r\n", "");
    sim.sip(&text, udp(TRUNK));
    assert_eq!(sim.responses().last().map(|r| r.status), Some(400));
    assert_eq!(sim.core.active_calls(), 0);
    assert!(sim.media.is_empty(), "no RTP port reserved");
}

#[test]
fn a_late_or_duplicated_ivr_reply_is_ignored() {
    let mut sim = Sim::new();
    sim.sip(
        &invite("iv1", "iv1", Some(SDP_CALLER), "", "UDP"),
        udp(TRUNK),
    );
    let first = sim.ivr.last().unwrap().clone();
    sim.ivr_reply(vec![IvrAction::Play {
        prompts: vec!["welcome".into()],
        barge_in: false,
    }]);
    let token = sim.media.iter().rev().find_map(|(_, m)| match m {
        MediaCommand::Play { token, .. } => Some(*token),
        _ => None,
    });
    // The same reply again (a runner retried): nothing happens.
    let plays = sim.media.len();
    sim.input(Input::IvrReply {
        call: first.call.clone(),
        step: first.step,
        reply: Ok(acd_b2bua::IvrReply {
            session: None,
            actions: vec![IvrAction::Hangup {
                reason: "late".into(),
            }],
        }),
    });
    assert_eq!(sim.core.active_calls(), 1, "stale reply did not hang up");
    assert_eq!(sim.media.len(), plays);
    // The prompt ends: step 2 goes out.
    sim.input(Input::Media(MediaEvent::PromptFinished {
        call: first.call.clone(),
        token: token.unwrap(),
    }));
    assert_eq!(sim.ivr.last().unwrap().step.0, first.step.0 + 1);
}

#[test]
fn a_caller_that_never_refreshes_its_session_is_hung_up() {
    let mut sim = Sim::new();
    let extra = "Supported: timer\r\nSession-Expires: 90\r\n";
    sim.sip(
        &invite("st1", "st1", Some(SDP_CALLER), extra, "UDP"),
        udp(TRUNK),
    );
    let ok = sim.last_response(200).unwrap();
    assert_eq!(ok.headers.get("Session-Expires"), Some("90;refresher=uac"));
    assert_eq!(ok.headers.get("Require"), Some("timer"));
    let tag = ok.headers.to_tag().unwrap().to_string();
    sim.sip(
        &caller_request("ACK", "st1", &tag, 1, "ack", None, ""),
        udp(TRUNK),
    );
    // A refresh at 45 s keeps it alive past 90 s...
    sim.advance(Duration::from_secs(45));
    sim.sip(
        &caller_request("UPDATE", "st1", &tag, 2, "ref1", None, ""),
        udp(TRUNK),
    );
    sim.advance(Duration::from_secs(50));
    assert_eq!(sim.core.active_calls(), 1);
    // ...then silence: BYE before the interval runs out.
    sim.advance(Duration::from_secs(60));
    assert_eq!(sim.core.active_calls(), 0);
    assert!(sim.last_request("BYE").is_some());
}

#[test]
fn a_too_short_session_interval_gets_422() {
    let mut sim = Sim::new();
    sim.sip(
        &invite(
            "st2",
            "st2",
            Some(SDP_CALLER),
            "Session-Expires: 30\r\n",
            "UDP",
        ),
        udp(TRUNK),
    );
    let r = sim.last_response(422).expect("422");
    assert_eq!(r.headers.get("Min-SE"), Some("90"));
}

#[test]
fn we_refresh_the_agent_leg_and_end_the_call_when_the_phone_is_gone() {
    let mut sim = Sim::new();
    sim.registered_agent();
    let (call, _tag) = queued_call(&mut sim, "st3");
    sim.connect(&call, 1);
    let inv = sim.last_request("INVITE").unwrap().clone();
    assert_eq!(inv.headers.get("Session-Expires"), Some("1800"));
    let mut ok = phone_response(&inv, 200, "OK", "ph4", Some(SDP_AGENT));
    ok = ok.replace(
        "Content-Type:",
        "Session-Expires: 120;refresher=uac\r\nContent-Type:",
    );
    sim.sip(&ok, udp(PHONE));
    sim.sent.clear();
    sim.advance(Duration::from_secs(61));
    let refresh = sim
        .last_request("INVITE")
        .expect("refresh at half the interval")
        .clone();
    sim.sip(
        &phone_response(
            &refresh,
            481,
            "Call/Transaction Does Not Exist",
            "ph4",
            None,
        ),
        udp(PHONE),
    );
    assert_eq!(sim.core.active_calls(), 0);
    assert!(matches!(
        sim.dist.last(),
        Some(ToDistributor::CallEnded { .. })
    ));
}

#[test]
fn media_inactivity_ends_an_answered_call() {
    let mut sim = Sim::new();
    let (call, _tag, _inv) = bridged_call(&mut sim, "m1");
    sim.input(Input::Media(MediaEvent::Inactive {
        call: call.clone(),
        side: acd_b2bua::Side::Caller,
    }));
    assert_eq!(sim.core.active_calls(), 0);
    assert_eq!(sim.count_requests("BYE"), 2, "both legs hung up");
}

#[test]
fn a_stale_distributor_term_is_refused() {
    let mut sim = Sim::new();
    sim.registered_agent();
    let (call, _tag) = queued_call(&mut sim, "f1");
    sim.connect(&call, 5);
    let inv = sim.last_request("INVITE").unwrap().clone();
    sim.sip(
        &phone_response(&inv, 486, "Busy Here", "ph5", None),
        udp(PHONE),
    );
    sim.sent.clear();
    sim.connect(&call, 4);
    assert_eq!(sim.count_requests("INVITE"), 0, "old leader ignored");
}

#[test]
fn when_late_the_edge_sheds_new_calls_with_503_and_keeps_the_old_ones() {
    let mut sim = Sim::new();
    let (call, _tag) = queued_call(&mut sim, "o1");
    // The loop is 300 ms behind for a while.
    for i in 0..30 {
        let text = invite(
            &format!("late{i}"),
            &format!("late{i}"),
            Some(SDP_CALLER),
            "",
            "UDP",
        );
        let msg = acd_sip::parse(text.as_bytes()).unwrap();
        let received = sim.now;
        sim.now += Duration::from_millis(300);
        sim.input(Input::Sip {
            msg,
            from: udp(TRUNK),
            received,
        });
    }
    let shed: Vec<_> = sim
        .responses()
        .into_iter()
        .filter(|r| r.status == 503)
        .collect();
    assert!(
        shed.len() >= 20,
        "most late INVITEs shed, got {}",
        shed.len()
    );
    assert!(shed.iter().all(|r| r.headers.get("Retry-After").is_some()));
    assert!(
        sim.core.call_phase(&call).is_some(),
        "accepted call untouched"
    );
}

/// `max_calls` (the shell caps it at what the RTP range holds) sheds at the
/// door: 503 + Retry-After without a call record or a media allocation, so an
/// edge at its limit refuses at once instead of binding ports in vain; a
/// call that ends makes room again.
#[test]
fn at_max_calls_new_invites_are_shed_before_any_media_allocation() {
    let mut cfg = config();
    cfg.admission.max_calls = 2;
    let mut sim = Sim::with_config(cfg);
    let (first, tag) = queued_call(&mut sim, "m1");
    sim.sip(&invite("m2", "m2", Some(SDP_CALLER), "", "UDP"), udp(TRUNK));
    assert_eq!(sim.responses().last().map(|r| r.status), Some(200));
    let allocations = |sim: &Sim| {
        sim.media
            .iter()
            .filter(|(_, m)| matches!(m, MediaCommand::Allocate { .. }))
            .count()
    };
    assert_eq!(allocations(&sim), 2);
    for i in 0..5 {
        let id = format!("over{i}");
        sim.sip(&invite(&id, &id, Some(SDP_CALLER), "", "UDP"), udp(TRUNK));
        let r = sim.responses().last().copied().unwrap().clone();
        assert_eq!(r.status, 503, "{r:?}");
        assert!(r.headers.get("Retry-After").is_some(), "{r:?}");
    }
    assert_eq!(allocations(&sim), 2, "a shed INVITE allocated media");
    assert_eq!(sim.core.active_calls(), 2);
    assert!(
        sim.core.call_phase(&first).is_some(),
        "accepted call untouched"
    );

    // The first caller hangs up: the next INVITE is admitted.
    sim.sip(
        &caller_request("BYE", "m1", &tag, 2, "bye1", None, ""),
        udp(TRUNK),
    );
    assert_eq!(sim.core.active_calls(), 1);
    sim.sip(&invite("m3", "m3", Some(SDP_CALLER), "", "UDP"), udp(TRUNK));
    assert_eq!(sim.responses().last().map(|r| r.status), Some(200));
    assert_eq!(allocations(&sim), 3);
}

#[test]
fn draining_refuses_new_calls_and_options_with_503() {
    let mut sim = Sim::new();
    sim.input(Input::Drain);
    sim.sip(&invite("d1", "d1", Some(SDP_CALLER), "", "UDP"), udp(TRUNK));
    assert_eq!(sim.responses().last().map(|r| r.status), Some(503));
    let options = "OPTIONS sip:10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKo1\r\nMax-Forwards: 70\r\nFrom: <sip:p@10.0.0.2>;tag=o\r\nTo: <sip:10.0.0.1>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    sim.sip(options, udp(TRUNK));
    let r = sim.responses().last().copied().unwrap().clone();
    assert_eq!(r.status, 503);
    assert!(r.headers.get("Allow").is_some());
}

#[test]
fn lossy_network_calls_still_complete() {
    // Drop every other 200 OK the edge sends to the caller.
    let mut sim = Sim::new();
    let mut n = 0;
    sim.lose = Some(Box::new(move |m: &Message| {
        if let Message::Response(r) = m {
            if r.status == 200 && r.headers.cseq().map(|c| c.1) == Some(Method::Invite) {
                n += 1;
                return n % 2 == 1;
            }
        }
        false
    }));
    sim.sip(&invite("l1", "l1", Some(SDP_CALLER), "", "UDP"), udp(TRUNK));
    assert!(sim.last_response(200).is_none(), "first 200 lost");
    sim.advance(Duration::from_millis(600));
    let tag = sim
        .last_response(200)
        .expect("retransmission arrives")
        .headers
        .to_tag()
        .unwrap()
        .to_string();
    sim.sip(
        &caller_request("ACK", "l1", &tag, 1, "ack", None, ""),
        udp(TRUNK),
    );
    sim.advance(Duration::from_secs(40));
    assert_eq!(sim.core.active_calls(), 1);
}

fn trunk(
    sources: &[&str],
    credentials: Option<(&str, &str)>,
    max_calls: Option<u32>,
) -> acd_config::TrunkDef {
    acd_config::TrunkDef {
        name: "carrier".into(),
        sources: sources
            .iter()
            .map(|s| acd_config::Cidr::try_from(s.to_string()).unwrap())
            .collect(),
        username: credentials.map(|c| c.0.to_string()),
        password: credentials.map(|c| c.1.to_string()),
        max_concurrent_calls: max_calls,
        max_calls_per_second: None,
        dial: None,
    }
}

#[test]
fn an_invite_from_an_unknown_source_is_refused_before_any_port_is_reserved() {
    let mut cfg = config();
    cfg.trunks = vec![trunk(&["10.9.0.0/16"], None, None)];
    let mut sim = Sim::with_config(cfg);
    sim.sip(&invite("t1", "t1", Some(SDP_CALLER), "", "UDP"), udp(TRUNK));
    assert_eq!(sim.responses().last().map(|r| r.status), Some(403));
    assert!(sim.media.is_empty(), "no RTP port reserved");
    assert_eq!(sim.core.active_calls(), 0);
}

#[test]
fn a_trunk_with_credentials_must_authenticate_its_invites() {
    let mut cfg = config();
    cfg.trunks = vec![trunk(&["10.0.0.0/24"], Some(("carrier", "s3cret")), None)];
    let mut sim = Sim::with_config(cfg);
    sim.sip(&invite("t2", "t2", Some(SDP_CALLER), "", "UDP"), udp(TRUNK));
    let challenge = sim
        .last_response(401)
        .and_then(|r| r.headers.get("WWW-Authenticate"))
        .expect("challenged")
        .to_string();
    assert!(sim.media.is_empty());
    let auth = acd_sip::auth::client_authorization(
        &challenge,
        "carrier",
        "s3cret",
        "INVITE",
        "sip:5550100@10.0.0.1",
        "c1",
        1,
    )
    .unwrap();
    let extra = format!("Authorization: {auth}\r\n");
    sim.sip(
        &invite("t2", "t2b", Some(SDP_CALLER), &extra, "UDP")
            .replace("CSeq: 1 INVITE", "CSeq: 2 INVITE"),
        udp(TRUNK),
    );
    assert!(
        sim.last_response(200).is_some(),
        "authenticated INVITE answered"
    );
    // A wrong password is refused.
    let bad = acd_sip::auth::client_authorization(
        &challenge,
        "carrier",
        "nope",
        "INVITE",
        "sip:5550100@10.0.0.1",
        "c2",
        1,
    )
    .unwrap();
    sim.sip(
        &invite(
            "t3",
            "t3",
            Some(SDP_CALLER),
            &format!("Authorization: {bad}\r\n"),
            "UDP",
        ),
        udp(TRUNK),
    );
    assert_eq!(sim.responses().last().map(|r| r.status), Some(403));
    assert_eq!(sim.core.active_calls(), 1);
}

#[test]
fn a_trunk_at_its_concurrent_call_cap_gets_503_until_a_call_ends() {
    let mut cfg = config();
    cfg.trunks = vec![trunk(&["10.0.0.2"], None, Some(1))];
    let mut sim = Sim::with_config(cfg);
    let (_call, tag) = queued_call(&mut sim, "cap1");
    sim.sip(
        &invite("cap2", "cap2", Some(SDP_CALLER), "", "UDP"),
        udp(TRUNK),
    );
    assert_eq!(sim.responses().last().map(|r| r.status), Some(503));
    sim.sip(
        &caller_request("BYE", "cap1", &tag, 2, "byecap", None, ""),
        udp(TRUNK),
    );
    assert_eq!(sim.core.active_calls(), 0);
    sim.sip(
        &invite("cap3", "cap3", Some(SDP_CALLER), "", "UDP"),
        udp(TRUNK),
    );
    assert!(sim.last_response(200).is_some(), "a slot is free again");
}

#[test]
fn unhold_while_the_hold_reinvite_is_still_out_is_offered_once_it_completes() {
    let mut sim = Sim::new();
    let (_call, tag, _inv) = bridged_call(&mut sim, "h2");
    let hold = SDP_CALLER
        .replace("a=sendrecv", "a=sendonly")
        .replace("o=c 1 1", "o=c 1 2");
    sim.sip(
        &caller_request("INVITE", "h2", &tag, 2, "hold", Some(&hold), ""),
        udp(TRUNK),
    );
    sim.sip(
        &caller_request("ACK", "h2", &tag, 2, "hack", None, ""),
        udp(TRUNK),
    );
    let hold_to_phone = sim.last_request("INVITE").expect("hold passed on").clone();
    // The caller unholds before the phone answered our hold re-INVITE.
    let unhold = SDP_CALLER.replace("o=c 1 1", "o=c 1 3");
    sim.sip(
        &caller_request("INVITE", "h2", &tag, 3, "unhold", Some(&unhold), ""),
        udp(TRUNK),
    );
    assert!(String::from_utf8_lossy(&sim.last_response(200).unwrap().body).contains("a=sendrecv"));
    assert_eq!(
        sim.count_requests("INVITE"),
        1,
        "one offer at a time towards the phone"
    );
    // The phone answers the hold; the waiting unhold goes out at once.
    let answer = SDP_AGENT.replace("a=sendrecv", "a=recvonly");
    sim.sip(
        &phone_response(&hold_to_phone, 200, "OK", "ph1", Some(&answer)),
        udp(PHONE),
    );
    assert_eq!(sim.count_requests("INVITE"), 2);
    let unhold_to_phone = sim.last_request("INVITE").unwrap();
    assert!(String::from_utf8_lossy(&unhold_to_phone.body).contains("a=sendrecv"));
}

#[test]
fn a_491_glare_is_retried_after_a_random_pause() {
    let mut sim = Sim::new();
    let (_call, tag, _inv) = bridged_call(&mut sim, "g1");
    let hold = SDP_CALLER
        .replace("a=sendrecv", "a=sendonly")
        .replace("o=c 1 1", "o=c 1 2");
    sim.sip(
        &caller_request("INVITE", "g1", &tag, 2, "hold", Some(&hold), ""),
        udp(TRUNK),
    );
    let first = sim.last_request("INVITE").unwrap().clone();
    sim.sip(
        &phone_response(&first, 491, "Request Pending", "ph1", None),
        udp(PHONE),
    );
    assert_eq!(sim.count_requests("INVITE"), 1);
    sim.advance(Duration::from_millis(2000));
    assert_eq!(sim.count_requests("INVITE"), 1, "not before 2.1 s");
    sim.advance(Duration::from_millis(2100));
    assert_eq!(sim.count_requests("INVITE"), 2, "offered again within 4 s");
    assert!(
        String::from_utf8_lossy(&sim.last_request("INVITE").unwrap().body).contains("a=sendonly")
    );
}

#[test]
fn a_tcp_dialog_announces_its_contact_as_the_route_when_the_connection_closes() {
    let mut sim = Sim::new();
    // The trunk's connection comes from an ephemeral port; its Contact is 5060.
    let conn: std::net::SocketAddr = "10.0.0.2:40123".parse().unwrap();
    let text = invite("rt1", "rt1", Some(SDP_CALLER), "", "TCP").replace(
        "Contact: <sip:bob@10.0.0.2:5060>",
        "Contact: <sip:bob@10.0.0.2:5060;transport=tcp>",
    );
    sim.sip(&text, tcp(conn));
    assert!(sim.last_response(200).is_some());
    assert_eq!(sim.routes, vec![(tcp(conn), tcp(TRUNK))]);
    // Over UDP there is nothing to announce.
    sim.sip(
        &invite("rt2", "rt2", Some(SDP_CALLER), "", "UDP"),
        udp(TRUNK),
    );
    assert_eq!(sim.routes.len(), 1);
    // A restored core announces the routes of its dialogs again.
    let snap = sim.core.snapshot(sim.now);
    sim.core = acd_b2bua::EdgeCore::restore(config(), snap, sim.now);
    sim.routes.clear();
    sim.drain();
    assert_eq!(sim.routes, vec![(tcp(conn), tcp(TRUNK))]);
}

#[test]
fn a_session_refresh_with_the_same_sdp_leaves_the_media_alone() {
    let mut sim = Sim::new();
    let (call, tag, _inv) = bridged_call(&mut sim, "sr1");
    sim.media.clear();
    // A refresh re-INVITE repeats the caller's description unchanged.
    sim.sip(
        &caller_request("INVITE", "sr1", &tag, 2, "refresh", Some(SDP_CALLER), ""),
        udp(TRUNK),
    );
    assert!(sim.last_response(200).is_some());
    assert!(
        !sim.media
            .iter()
            .any(|(c, m)| *c == call && matches!(m, MediaCommand::Update { .. })),
        "an unchanged description must not renegotiate (it would reopen the RTP latch): {:?}",
        sim.media
    );
    // A new address does.
    let moved = SDP_CALLER
        .replace("m=audio 6000", "m=audio 6200")
        .replace("o=c 1 1", "o=c 1 2");
    sim.sip(
        &caller_request("ACK", "sr1", &tag, 2, "rack", None, ""),
        udp(TRUNK),
    );
    sim.sip(
        &caller_request("INVITE", "sr1", &tag, 3, "move", Some(&moved), ""),
        udp(TRUNK),
    );
    assert!(sim.media.iter().any(|(c, m)| *c == call
        && matches!(m, MediaCommand::Update { remote: Some(r), .. } if r.port() == 6200)));
}

#[test]
fn a_repeated_connect_for_the_same_agent_is_ignored_while_ringing_and_bridged() {
    // After a fail-over the distributor sends the offers of offered calls again.
    let mut sim = Sim::new();
    sim.registered_agent();
    let (call, _tag) = queued_call(&mut sim, "dup1");
    sim.connect(&call, 1);
    assert_eq!(sim.count_requests("INVITE"), 1);
    let inv = sim.last_request("INVITE").expect("agent rung").clone();
    let reports = sim.dist.len();
    sim.connect(&call, 1);
    assert_eq!(
        sim.count_requests("INVITE"),
        1,
        "the phone is not rung twice"
    );
    assert_eq!(sim.dist.len(), reports, "nothing reported for the repeat");
    assert_eq!(sim.core.call_phase(&call), Some("ringing"));

    sim.sip(
        &phone_response(&inv, 200, "OK", "ph1", Some(SDP_AGENT)),
        udp(PHONE),
    );
    assert_eq!(sim.core.call_phase(&call), Some("bridged"));
    let reports = sim.dist.len();
    sim.sent.clear();
    sim.connect(&call, 1);
    assert_eq!(sim.core.call_phase(&call), Some("bridged"));
    assert_eq!(sim.count_requests("INVITE"), 0);
    assert_eq!(
        sim.dist.len(),
        reports,
        "no AgentFailed for the bridged call"
    );
}
