//! Registrations beyond this edge: reported to the distributor, and remote
//! bindings (from `Connect` or a `Bindings` update) used to ring an agent.

mod sim;

use std::time::Duration;

use acd_b2bua::{
    AgentContact, AgentId, CallId, EdgeCore, FromDistributor, Input, IvrAction, SiteBinding,
    ToDistributor,
};
use acd_sip::Transport;
use sim::*;

const UNIX_T0_MS: u64 = 1_800_000_000_000;

/// Challenge once, then REGISTER with nonce counts 1, 2, … from the phone.
struct Phone {
    challenge: String,
    nc: u32,
}

impl Phone {
    fn new(sim: &mut Sim) -> Phone {
        sim.sip(&register("c0", 1, None), udp(PHONE));
        let challenge = sim
            .last_response(401)
            .and_then(|r| r.headers.get("WWW-Authenticate"))
            .expect("challenge")
            .to_string();
        Phone { challenge, nc: 0 }
    }

    fn register(&mut self, sim: &mut Sim, expires: u32) {
        self.nc += 1;
        let auth = acd_sip::auth::client_authorization(
            &self.challenge,
            "1001",
            "secret",
            "REGISTER",
            "sip:10.0.0.1",
            "abc",
            self.nc,
        )
        .expect("authorization");
        let text = register(&format!("r{}", self.nc), self.nc + 1, Some(&auth))
            .replace("Expires: 3600", &format!("Expires: {expires}"));
        sim.sent.clear();
        sim.sip(&text, udp(PHONE));
        assert!(sim.last_response(200).is_some(), "registered");
    }
}

fn bindings(sim: &mut Sim) -> Vec<SiteBinding> {
    std::mem::take(&mut sim.dist)
        .into_iter()
        .filter_map(|m| match m {
            ToDistributor::Binding(b) => Some(b),
            _ => None,
        })
        .collect()
}

fn edge_a() -> Sim {
    let mut cfg = config();
    cfg.edge_id = "edge-a".into();
    Sim::with_config(cfg)
}

#[test]
fn register_refresh_unregister_and_expiry_are_reported_sparingly() {
    let mut sim = edge_a();
    let mut phone = Phone::new(&mut sim);
    phone.register(&mut sim, 600);
    let reported = bindings(&mut sim);
    assert_eq!(reported.len(), 1, "{reported:?}");
    let b = &reported[0];
    assert_eq!(
        (
            b.aor.as_str(),
            b.contact.as_str(),
            b.source.as_str(),
            b.edge_id.as_str()
        ),
        (
            "1001",
            "sip:1001@10.0.0.3:5062",
            "udp:10.0.0.3:5062",
            "edge-a"
        )
    );
    assert_eq!(b.expires_at_ms, UNIX_T0_MS + 600_000);

    // A refresh a minute later moves the expiry by less than a third of the
    // lifetime: nothing to tell.
    sim.advance(Duration::from_secs(60));
    phone.register(&mut sim, 600);
    assert!(bindings(&mut sim).is_empty());
    // Five minutes on, it is reported with the new expiry.
    sim.advance(Duration::from_secs(240));
    phone.register(&mut sim, 600);
    let reported = bindings(&mut sim);
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].expires_at_ms, UNIX_T0_MS + 900_000);

    // Unregistering reports a removal, and no expiry follows.
    phone.register(&mut sim, 0);
    let reported = bindings(&mut sim);
    assert_eq!(reported.len(), 1);
    assert_eq!(
        (reported[0].expires_at_ms, reported[0].aor.as_str()),
        (0, "1001")
    );
    sim.advance(Duration::from_secs(3600));
    assert!(bindings(&mut sim).is_empty());

    // Registered again (a fresh nonce: the old one is stale by now) and left
    // to run out: the expiry is reported.
    let mut phone = Phone::new(&mut sim);
    phone.register(&mut sim, 60);
    assert_eq!(bindings(&mut sim).len(), 1);
    sim.advance(Duration::from_secs(59));
    assert!(bindings(&mut sim).is_empty());
    sim.advance(Duration::from_secs(2));
    let reported = bindings(&mut sim);
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].expires_at_ms, 0);
    assert_eq!(sim.core.registrations(sim.now), 0);
}

/// A call from the trunk, answered and waiting in a queue.
fn queued_call(sim: &mut Sim) -> CallId {
    sim.sip(&invite("q1", "q1", Some(SDP_CALLER), "", "UDP"), udp(TRUNK));
    let tag = sim
        .last_response(200)
        .and_then(|r| r.headers.to_tag())
        .expect("answered")
        .to_string();
    let call = sim.ivr.last().expect("IVR started").call.clone();
    sim.sip(
        &caller_request("ACK", "q1", &tag, 1, "ack1", None, ""),
        udp(TRUNK),
    );
    sim.ivr_reply(vec![IvrAction::Enqueue {
        queue: "sales".into(),
        priority: 0,
        skills: Default::default(),
        data: Default::default(),
    }]);
    assert_eq!(sim.core.call_phase(&call), Some("queued"));
    sim.sent.clear();
    call
}

fn connect(sim: &mut Sim, call: &CallId, contact: Option<AgentContact>) {
    sim.input(Input::Distributor {
        term: 1,
        cmd: FromDistributor::Connect {
            call: call.clone(),
            agent: AgentId("alice".into()),
            extension: "1001".into(),
            contact,
            auto_answer: false,
            ring_also: Vec::new(),
            survey_flow: String::new(),
        },
    });
}

#[test]
fn connect_with_a_remote_udp_contact_sends_the_invite_to_its_source() {
    let mut sim = Sim::new();
    let call = queued_call(&mut sim);
    connect(
        &mut sim,
        &call,
        Some(AgentContact {
            contact: "sip:1001@10.0.0.9:5062".into(),
            source: "udp:192.0.2.9:40000".into(),
        }),
    );
    let (to, msg) = sim
        .sent
        .iter()
        .find(|(_, m)| matches!(m, acd_sip::Message::Request(r) if r.method.as_str() == "INVITE"))
        .expect("the agent's phone is rung");
    assert_eq!(to.addr, "192.0.2.9:40000".parse().expect("addr"));
    assert_eq!(to.transport, Transport::Udp);
    let acd_sip::Message::Request(req) = msg else {
        unreachable!()
    };
    assert_eq!(req.uri, "sip:1001@10.0.0.9:5062");
    assert_eq!(sim.core.call_phase(&call), Some("ringing"));
}

#[test]
fn without_any_binding_the_connect_fails_at_once() {
    let mut sim = Sim::new();
    let call = queued_call(&mut sim);
    connect(&mut sim, &call, None);
    assert!(matches!(
        sim.dist.last(),
        Some(ToDistributor::AgentFailed { call: c, .. }) if *c == call
    ));
    assert_eq!(sim.count_requests("INVITE"), 0);
}

fn remote(expires_at_ms: u64) -> SiteBinding {
    SiteBinding {
        aor: "1001".into(),
        contact: "sip:1001@10.0.0.9:5062".into(),
        source: "udp:192.0.2.9:40000".into(),
        expires_at_ms,
        edge_id: "edge-b".into(),
    }
}

#[test]
fn a_remote_binding_from_an_update_rings_the_phone_and_survives_a_snapshot() {
    let mut sim = Sim::new();
    sim.input(Input::Distributor {
        term: 1,
        cmd: FromDistributor::Bindings {
            full: true,
            bindings: vec![remote(UNIX_T0_MS + 600_000)],
        },
    });
    assert_eq!(sim.core.remote_bindings(sim.now), 1);
    // A hand-over (or restart with a snapshot) keeps them.
    let snap = sim.core.snapshot(sim.now);
    let back = acd_b2bua::Snapshot::from_json(&snap.to_json()).expect("decodes");
    sim.core = EdgeCore::restore(config(), back, sim.now);
    assert_eq!(sim.core.remote_bindings(sim.now), 1);

    let call = queued_call(&mut sim);
    connect(&mut sim, &call, None);
    let invite_to: Vec<_> = sim
        .sent
        .iter()
        .filter(|(_, m)| matches!(m, acd_sip::Message::Request(r) if r.method.as_str() == "INVITE"))
        .map(|(to, _)| to.addr)
        .collect();
    assert_eq!(invite_to, vec!["192.0.2.9:40000".parse().expect("addr")]);

    // An incremental removal forgets it.
    sim.input(Input::Distributor {
        term: 1,
        cmd: FromDistributor::Bindings {
            full: false,
            bindings: vec![remote(0)],
        },
    });
    assert_eq!(sim.core.remote_bindings(sim.now), 0);
}

#[test]
fn our_own_binding_wins_over_the_offered_contact() {
    let mut sim = Sim::new();
    sim.registered_agent();
    let call = queued_call(&mut sim);
    connect(
        &mut sim,
        &call,
        Some(AgentContact {
            contact: "sip:1001@10.0.0.9:5062".into(),
            source: "udp:192.0.2.9:40000".into(),
        }),
    );
    let (to, _) = sim.sent.last().expect("INVITE sent");
    assert_eq!(to.addr, PHONE);
}

#[test]
fn a_full_update_lacking_our_binding_makes_us_report_it_again() {
    let mut sim = edge_a();
    let mut phone = Phone::new(&mut sim);
    phone.register(&mut sim, 600);
    assert_eq!(bindings(&mut sim).len(), 1);
    // The distributor restarted without a standby: its full set is empty.
    sim.input(Input::Distributor {
        term: 1,
        cmd: FromDistributor::Bindings {
            full: true,
            bindings: vec![],
        },
    });
    let again = bindings(&mut sim);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].edge_id, "edge-a");
    // A full set that has it changes nothing.
    sim.input(Input::Distributor {
        term: 1,
        cmd: FromDistributor::Bindings {
            full: true,
            bindings: again,
        },
    });
    assert!(bindings(&mut sim).is_empty());
}
