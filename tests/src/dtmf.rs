//! Callers that press keys: SIPp trunk scenarios written per test with a
//! script of key presses, as RFC 4733 telephone-events (SIPp's own captures
//! `dtmf_2833_<key>.pcap`, payload type 101, offered as telephone-event in
//! the scenario's SDP) or as SIP INFO (`application/dtmf-relay` or
//! `application/dtmf`).
//!
//! SIPp replays a capture as it is: one SSRC, and each key's capture has its
//! own RTP timestamp, so the same key twice in one call reads as one press
//! (a retransmission) at a receiver that names events by timestamp, as
//! RFC 4733 asks. Scripts press distinct keys within a call.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::env::TestEnv;

/// Where Debian's `sip-tester` puts SIPp's RFC 2833 captures.
pub const PCAP_DIR: &str = "/usr/share/sip-tester";

/// One step of a caller's script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Press {
    /// Wait this long.
    Pause(u64),
    /// A key as RFC 4733 telephone-events in the caller's RTP.
    Rtp(char),
    /// A key in an INFO with `application/dtmf-relay` (`Signal=`, `Duration=`).
    InfoRelay(char),
    /// A key in an INFO with `application/dtmf` (the key alone).
    InfoDtmf(char),
    /// A capture of PCMA speech (e.g. [`SPEECH_PCAP`]) started from the
    /// caller's media port; it plays on while the script goes on. A script
    /// with audio offers PCMA first, so the edge takes it as PCMA.
    Audio(&'static str),
}

/// About 7 s of PCMA speech shipped with SIPp.
pub const SPEECH_PCAP: &str = "/usr/share/sip-tester/g711a.pcap";

/// The capture of `key`.
pub fn pcap_of(key: char) -> PathBuf {
    let name = match key {
        '*' => "star".to_string(),
        '#' => "pound".to_string(),
        k => k.to_string(),
    };
    Path::new(PCAP_DIR).join(format!("dtmf_2833_{name}.pcap"))
}

/// Writes a trunk scenario (UAC) into the test's log directory: INVITE with
/// SDP offering PCMU, PCMA (PCMA first with [`Press::Audio`]) and
/// telephone-event 101 on SIPp's media port,
/// ACK, the script, then it waits for the edge's BYE (the agent hangs up).
/// Every INFO must get 200. Returns the file's path.
pub fn trunk_scenario(env: &TestEnv, name: &str, script: &[Press]) -> PathBuf {
    let mut steps = String::new();
    let mut cseq = 1;
    for p in script {
        match *p {
            Press::Pause(ms) => {
                let _ = writeln!(steps, "  <pause milliseconds=\"{ms}\"/>");
            }
            Press::Rtp(key) => {
                // A capture lasts about 150 ms; the pause keeps presses apart.
                let _ = writeln!(
                    steps,
                    "  <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n  <pause milliseconds=\"300\"/>",
                    pcap_of(key).display()
                );
            }
            Press::InfoRelay(key) => {
                cseq += 1;
                let body = format!("Signal={key}\nDuration=160");
                steps.push_str(&info(cseq, "application/dtmf-relay", &body));
            }
            Press::InfoDtmf(key) => {
                cseq += 1;
                steps.push_str(&info(cseq, "application/dtmf", &key.to_string()));
            }
            Press::Audio(pcap) => {
                let _ = writeln!(
                    steps,
                    "  <nop><action><exec play_pcap_audio=\"{pcap}\"/></action></nop>"
                );
            }
        }
    }
    let codecs = if script.iter().any(|p| matches!(p, Press::Audio(_))) {
        "8 0 101"
    } else {
        "0 8 101"
    };
    let xml = SCENARIO
        .replace("@STEPS@", &steps)
        .replace("@CODECS@", codecs);
    let path = env.log_path(&format!("{name}.xml"));
    std::fs::write(&path, xml).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

fn info(cseq: u32, ctype: &str, body: &str) -> String {
    format!(
        r#"  <send retrans="500">
    <![CDATA[
      INFO [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      Max-Forwards: 70
      From: "Trunk Caller" <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: {cseq} INFO
      Contact: <sip:[caller]@[local_ip]:[local_port];transport=[transport]>
      Content-Type: {ctype}
      Content-Length: [len]

      {body}
    ]]>
  </send>
  <recv response="200"/>
"#
    )
}

const SCENARIO: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="trunk_dtmf">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      Max-Forwards: 70
      From: "Trunk Caller" <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:[caller]@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 2890844526 2890844526 IN IP[local_ip_type] [media_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP @CODECS@
      a=rtpmap:0 PCMU/8000
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=ptime:20
      a=sendrecv

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true" rtd="true" timeout="20000"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      Max-Forwards: 70
      From: "Trunk Caller" <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:[caller]@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
@STEPS@
  <recv request="BYE" timeout="60000"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"#;
