//! Building blocks shared by the end-to-end tests.

use std::time::Duration;

use crate::env::TestEnv;
use crate::sipp::{SippCmd, SippOutcome, SippRun};

/// Bound of one SIPp run in the end-to-end tests.
pub const SIPP_LIMIT: Duration = Duration::from_secs(90);

/// REGISTERs `ext` with `password` at the edge (register.xml, SIPp slot
/// `slot`), Contact pointing at `contact_port`; runs to completion.
pub async fn register(
    env: &TestEnv,
    slot: u16,
    ext: &str,
    password: &str,
    contact_port: u16,
) -> SippOutcome {
    register_with(env, slot, "register.xml", ext, password, contact_port).await
}

pub async fn register_with(
    env: &TestEnv,
    slot: u16,
    scenario: &str,
    ext: &str,
    password: &str,
    contact_port: u16,
) -> SippOutcome {
    SippCmd::new(
        &format!("register-{ext}-{slot}"),
        scenario,
        env.ports.sipp(slot),
    )
    .remote(env.sip_addr())
    .service(ext)
    .auth(ext, password)
    .key("contact_port", contact_port)
    .arg("-default_behaviors")
    .arg("all,-bye")
    .limit(Duration::from_secs(20))
    .spawn(env)
    .await
    .expect("spawn register SIPp")
    .wait()
    .await
}

/// Starts an agent softphone (UAS) on SIPp slot `slot` answering with media
/// to `rtp_port`; `hangup_after_ms` selects agent_answer_hangup.xml.
pub async fn agent_phone(
    env: &TestEnv,
    name: &str,
    slot: u16,
    rtp_port: u16,
    hangup_after_ms: Option<u64>,
) -> SippRun {
    let scenario = if hangup_after_ms.is_some() {
        "agent_answer_hangup.xml"
    } else {
        "agent_answer.xml"
    };
    let mut cmd = SippCmd::new(name, scenario, env.ports.sipp(slot))
        .key("rtpport", rtp_port)
        .limit(SIPP_LIMIT);
    if let Some(ms) = hangup_after_ms {
        cmd = cmd.pause_ms(ms);
    }
    cmd.spawn(env).await.expect("spawn agent SIPp")
}

/// A trunk call command (not started) from SIPp slot `slot` to `did`.
pub fn trunk(
    env: &TestEnv,
    name: &str,
    scenario: &str,
    slot: u16,
    did: &str,
    rtp_port: u16,
) -> SippCmd {
    SippCmd::new(name, scenario, env.ports.sipp(slot))
        .remote(env.sip_addr())
        .service(did)
        .key("caller", "0611223344")
        .key("rtpport", rtp_port)
        .limit(SIPP_LIMIT)
}

/// Starts an agent softphone (UAS) on SIPp slot `slot` playing `scenario`
/// (agent_reject.xml, agent_ring_forever.xml ...), one call; `rtpport` is set
/// for scenarios that answer with SDP.
pub async fn agent_phone_scenario(
    env: &TestEnv,
    name: &str,
    scenario: &str,
    slot: u16,
    rtp_port: u16,
) -> SippRun {
    SippCmd::new(name, scenario, env.ports.sipp(slot))
        .key("rtpport", rtp_port)
        .limit(SIPP_LIMIT)
        .spawn(env)
        .await
        .expect("spawn agent SIPp")
}
