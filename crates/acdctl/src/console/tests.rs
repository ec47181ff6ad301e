use super::state::{ConsoleState, Key, Mode, Request};
use super::view::render;
use acd_proto::v1::agent_event::Kind;
use acd_proto::v1::{
    AgentEvent, AgentState, AgentStatus, CallConnected, CallFinished, CallOffer, Caller,
};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const NOW: u64 = 1_800_000_000_000;

fn status(state: AgentState, reason: &str, wrap_until: u64) -> AgentStatus {
    AgentStatus {
        agent_id: "alice".into(),
        name: "Alice".into(),
        state: state as i32,
        extension: "1001".into(),
        reason: reason.into(),
        wrap_up_until_ms: wrap_until,
        ..Default::default()
    }
}

fn ev(seq: u64, kind: Kind) -> AgentEvent {
    AgentEvent {
        seq,
        kind: Some(kind),
    }
}

fn offer() -> CallOffer {
    CallOffer {
        call_id: "c42".into(),
        queue_id: "support".into(),
        caller: Some(Caller {
            from_uri: "sip:79161234567@carrier".into(),
            display_name: "Ivan Petrov".into(),
            did: "5550247".into(),
            variables: [("order".to_string(), "12345".to_string())].into(),
            number: "79161234567".into(),
        }),
        enqueued_at_ms: NOW - 35_000,
        priority: 10,
        explanation: "longest idle (42 s)".into(),
        ..Default::default()
    }
}

/// The screen as text, one string per row.
fn screen(s: &ConsoleState, now: u64) -> String {
    let mut t = Terminal::new(TestBackend::new(100, 20)).expect("terminal");
    t.draw(|f| render(s, now, f.area(), f.buffer_mut()))
        .expect("draw");
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn console() -> ConsoleState {
    let mut s = ConsoleState::new("alice", "1001");
    s.reasons = vec!["break".into(), "lunch".into()];
    s.queues = vec!["sales".into(), "support".into()];
    s
}

#[test]
fn header_shows_state_reason_and_wrap_up_countdown() {
    let mut s = console();
    s.apply_event(&ev(
        1,
        Kind::Status(status(AgentState::NotReady, "lunch", 0)),
    ));
    let text = screen(&s, NOW);
    assert!(text.contains("Alice (alice) at 1001   NOT_READY"), "{text}");
    assert!(text.contains("reason: lunch"), "{text}");
    s.apply_event(&ev(
        2,
        Kind::Status(status(AgentState::WrapUp, "", NOW + 4_200)),
    ));
    let text = screen(&s, NOW);
    assert!(text.contains("WRAP_UP"), "{text}");
    assert!(text.contains("wrap-up: 5 s left"), "{text}");
}

#[test]
fn the_call_pop_shows_the_caller() {
    let mut s = console();
    s.apply_event(&ev(1, Kind::Status(status(AgentState::Reserved, "", 0))));
    s.apply_event(&ev(2, Kind::Offer(offer())));
    let text = screen(&s, NOW);
    for want in [
        "OFFERED  call c42",
        "caller: 79161234567  Ivan Petrov",
        "DID: 5550247   queue: support   priority: 10",
        "waited: 35 s",
        "order = 12345",
        "why you: longest idle (42 s)",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    s.apply_event(&ev(
        3,
        Kind::Connected(CallConnected {
            call_id: "c42".into(),
        }),
    ));
    assert!(screen(&s, NOW).contains("CONNECTED  call c42"));
    s.apply_event(&ev(
        4,
        Kind::Finished(CallFinished {
            call_id: "c42".into(),
            reason: "caller hung up".into(),
            code: 1,
        }),
    ));
    let text = screen(&s, NOW);
    assert!(text.contains("no call"), "{text}");
    assert!(text.contains("call c42 finished: caller hung up"), "{text}");
}

#[test]
fn repeated_events_after_a_reconnect_are_dropped() {
    let mut s = console();
    s.apply_event(&ev(5, Kind::Offer(offer())));
    s.apply_event(&ev(
        6,
        Kind::Finished(CallFinished {
            call_id: "c42".into(),
            reason: "caller hung up".into(),
            code: 1,
        }),
    ));
    // The re-attached stream replays seq 5: no ghost call pop.
    s.apply_event(&ev(5, Kind::Offer(offer())));
    assert!(s.offer.is_none());
    assert_eq!(s.after_seq, 6);
}

#[test]
fn keys_make_requests() {
    let mut s = console();
    s.apply_event(&ev(1, Kind::Status(status(AgentState::NotReady, "", 0))));
    assert_eq!(s.apply_key(Key::Char('r')), Some(Request::Ready));
    assert_eq!(s.apply_key(Key::Char('a')), None, "no offer yet");
    assert_eq!(s.message, "no call offered");
    s.apply_event(&ev(2, Kind::Offer(offer())));
    assert_eq!(
        s.apply_key(Key::Char('a')),
        Some(Request::Accept { call: "c42".into() })
    );
    assert_eq!(
        s.apply_key(Key::Char('x')),
        Some(Request::Reject { call: "c42".into() })
    );
    // Not ready: pick a reason with the arrows or a digit.
    assert_eq!(s.apply_key(Key::Char('n')), None);
    assert!(screen(&s, NOW).contains(">1 break   2 lunch"));
    assert_eq!(s.apply_key(Key::Down), None);
    assert_eq!(
        s.apply_key(Key::Enter),
        Some(Request::NotReady {
            reason: "lunch".into()
        })
    );
    assert_eq!(s.mode, Mode::Normal);
    s.apply_key(Key::Char('n'));
    assert_eq!(s.apply_key(Key::Esc), None);
    assert_eq!(s.mode, Mode::Normal);
    // In wrap-up, `r` and a reason end it.
    s.apply_event(&ev(3, Kind::Status(status(AgentState::WrapUp, "", NOW))));
    assert_eq!(
        s.apply_key(Key::Char('r')),
        Some(Request::EndWrapUp {
            reason: String::new()
        })
    );
    s.apply_key(Key::Char('n'));
    assert_eq!(
        s.apply_key(Key::Char('1')),
        Some(Request::EndWrapUp {
            reason: "break".into()
        })
    );
    assert_eq!(s.apply_key(Key::Char('l')), Some(Request::Logout));
    assert_eq!(s.apply_key(Key::Char('q')), Some(Request::Quit));
}

#[test]
fn transfer_types_a_queue_or_an_agent() {
    let mut s = console();
    s.apply_event(&ev(1, Kind::Offer(offer())));
    assert_eq!(s.apply_key(Key::Char('t')), None);
    assert_eq!(s.message, "no connected call to transfer");
    s.apply_event(&ev(
        2,
        Kind::Connected(CallConnected {
            call_id: "c42".into(),
        }),
    ));
    s.apply_key(Key::Char('t'));
    for c in "salez".chars() {
        s.apply_key(Key::Char(c));
    }
    s.apply_key(Key::Backspace);
    s.apply_key(Key::Char('s'));
    assert!(screen(&s, NOW).contains("transfer to (queue or agent id): sales_"));
    assert_eq!(
        s.apply_key(Key::Enter),
        Some(Request::TransferToQueue {
            call: "c42".into(),
            queue: "sales".into()
        })
    );
    s.apply_key(Key::Char('t'));
    for c in "bob".chars() {
        s.apply_key(Key::Char(c));
    }
    assert_eq!(
        s.apply_key(Key::Enter),
        Some(Request::TransferToAgent {
            call: "c42".into(),
            agent: "bob".into()
        })
    );
}

#[test]
fn request_errors_show_at_the_bottom() {
    let mut s = console();
    s.apply_result(Err("acdctl: FAILED_PRECONDITION: agent is on a call".into()));
    assert!(screen(&s, NOW).contains("FAILED_PRECONDITION: agent is on a call"));
    s.apply_result(Ok(status(AgentState::Ready, "", 0)));
    assert!(s.message.is_empty());
    assert!(screen(&s, NOW).contains("READY"));
}
