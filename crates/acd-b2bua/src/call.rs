//! A call's state: the caller's leg, where the call is in its life (a phase
//! carrying the data valid in it), and the agent's leg inside the phases
//! that have one. All of it serialises; deadlines live in `Timers`.

use std::net::SocketAddr;
use std::time::Duration;

use acd_media::sdp::{Direction, LocalMedia};
use acd_media::Codec;
use acd_sip::dialog::Dialog;
use acd_sip::{Peer, Request, TxKey};
use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, CallId, StepNo};
use crate::io::{Enqueue, MediaPorts};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    pub id: CallId,
    pub did: String,
    pub flow: String,
    pub caller: CallerLeg,
    /// Bound RTP ports; `None` while the shell allocates them.
    pub ports: Option<MediaPorts>,
    pub phase: Phase,
    /// What the call was enqueued with, to enqueue it again if the
    /// distributor loses it.
    pub enqueued: Option<Enqueue>,
    /// The trunk it came from (its concurrent-call count).
    #[serde(default)]
    pub trunk: Option<crate::trunks::TrunkId>,
    /// What its call note has gathered; `None`: no note is sent (callback
    /// legs, calls from a snapshot older than notes).
    #[serde(default)]
    pub note: Option<Box<crate::note::NoteState>>,
}

/// Where the call is in its life.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Phase {
    /// Waiting for the media sockets.
    Setup,
    /// In the flow.
    Ivr {
        session: acd_ivr::Session,
        step: StepNo,
        wait: IvrWait,
        /// Digits pressed while no collection ran (type-ahead), oldest
        /// first, for the next `Collect`.
        #[serde(default)]
        typeahead: String,
    },
    /// Waiting for an agent.
    Queued,
    /// An agent's phone rings.
    Ringing(Box<RingingAgent>),
    /// Caller and agent talk.
    Bridged(Box<AgentLeg>),
    /// The distributor let the call go: a last prompt plays (`token`), then
    /// BYE. Also where a redirect's failed transfer returns (`language` for
    /// its message).
    Closing {
        token: crate::ids::PlayToken,
        #[serde(default)]
        language: String,
    },
}

impl Phase {
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Setup => "setup",
            Phase::Ivr { .. } => "ivr",
            Phase::Queued => "queued",
            Phase::Ringing(_) => "ringing",
            Phase::Bridged(_) => "bridged",
            Phase::Closing { .. } => "closing",
        }
    }
}

/// What the flow waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IvrWait {
    /// A step with this event is out at a runner (sent again after a
    /// restore: runners are stateless, so a repeat is harmless).
    Reply(crate::io::IvrEvent),
    /// The prompts and digit collection of the last reply.
    Input(Box<crate::digits::Input>),
    /// The recording with this token (voicemail).
    Record(crate::ids::PlayToken),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallerLeg {
    pub invite: Request,
    pub invite_key: TxKey,
    pub peer: Peer,
    pub local_tag: String,
    /// The caller's offer, if the INVITE had one (else late offer: the
    /// caller answers our offer in its ACK).
    pub offer: Option<Vec<u8>>,
    pub sdp: LegSdp,
    pub state: CallerState,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CallerState {
    /// No final response yet (perhaps a 183 with early media).
    Proceeding { early_sent: bool },
    /// 200 OK sent.
    Answered(Box<Established>),
}

/// A confirmed dialog on one side and what we owe or expect on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Established {
    pub dialog: Dialog,
    /// Transport and last-resort next hop.
    pub peer: Peer,
    /// Our 2xx to an INVITE on this dialog that is not ACKed yet.
    pub awaiting_ack: Option<AwaitAck>,
    pub session_timer: Option<SessionTimer>,
    /// Our re-INVITE on this dialog that has no final response yet.
    pub reinvite_out: Option<TxKey>,
    /// Our description changed while an offer was in progress: offer again
    /// once it completes (§14.1: one offer at a time).
    #[serde(default)]
    pub reoffer_pending: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AwaitAck {
    pub cseq: u32,
    pub bytes: Vec<u8>,
    pub interval: Duration,
    /// Our 2xx carried an offer (late offer): the ACK carries the answer.
    pub offer_in_2xx: bool,
}

/// RFC 4028 session timer of one dialog.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct SessionTimer {
    pub interval: Duration,
    /// We refresh (re-INVITE at half the interval); else the peer must.
    pub we_refresh: bool,
}

/// An agent's phone is ringing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RingingAgent {
    pub agent: AgentId,
    pub extension: String,
    pub invite: Request,
    pub key: TxKey,
    pub peer: Peer,
    /// We sent CANCEL (ring-no-answer).
    pub cancelled: bool,
    pub sdp: LegSdp,
    /// Not an agent: the flow's transfer to an external URI, with the IVR
    /// phase to go back to if it fails.
    #[serde(default)]
    pub transfer: Option<Box<Phase>>,
    /// Ring-all: the other agents' phones rung for the same call; the
    /// first to answer takes it.
    #[serde(default)]
    pub forks: Vec<Fork>,
    /// The offered agent's own leg failed while forks still ring (`agent`
    /// stays the offered agent, for the failure report).
    #[serde(default)]
    pub main_gone: bool,
}

/// One more phone rung for a call (ring-all).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fork {
    pub agent: AgentId,
    pub extension: String,
    pub invite: Request,
    pub key: TxKey,
    pub peer: Peer,
    pub sdp: LegSdp,
}

/// The agent answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentLeg {
    pub agent: AgentId,
    pub key: TxKey,
    pub invite_cseq: u32,
    /// Our ACK, resent when the agent retransmits its 2xx.
    pub ack: Vec<u8>,
    pub ack_to: Peer,
    pub est: Established,
    pub sdp: LegSdp,
    /// Not an agent: the external URI the flow transferred the call to
    /// (the distributor never knew this call).
    #[serde(default)]
    pub transfer: Option<String>,
}

/// Our side of one leg's session description and what the far end said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegSdp {
    pub session_id: u64,
    pub version: u64,
    pub port: u16,
    pub codec: Codec,
    /// Payload type the far end uses for `codec`.
    pub pt: u8,
    pub telephone_event: Option<u8>,
    /// Our direction attribute.
    pub direction: Direction,
    /// Where the far end receives RTP; `None` until it told us.
    pub remote: Option<SocketAddr>,
    /// Last body we sent, to keep the version when nothing changed (RFC 3264 §8).
    pub last_sent: String,
}

impl LegSdp {
    pub fn new(session_id: u64, codec: Codec) -> LegSdp {
        LegSdp {
            session_id,
            version: session_id,
            port: 0,
            codec,
            pt: codec.payload_type().get(),
            telephone_event: None,
            direction: Direction::SendRecv,
            remote: None,
            last_sent: String::new(),
        }
    }

    /// Our description with exactly the negotiated codec.
    pub fn answer(&mut self, ip: std::net::IpAddr) -> String {
        let codecs = [(self.codec, self.pt)];
        self.render(ip, &codecs)
    }

    /// An offer of both G.711 laws, ours first.
    pub fn offer(&mut self, ip: std::net::IpAddr) -> String {
        let other = match self.codec {
            Codec::Pcmu => Codec::Pcma,
            Codec::Pcma => Codec::Pcmu,
        };
        let codecs = [
            (self.codec, self.codec.payload_type().get()),
            (other, other.payload_type().get()),
        ];
        self.telephone_event = self.telephone_event.or(Some(101));
        self.render(ip, &codecs)
    }

    fn render(&mut self, ip: std::net::IpAddr, codecs: &[(Codec, u8)]) -> String {
        let build = |version| {
            acd_media::sdp::build_sdp(&LocalMedia {
                ip,
                port: self.port,
                codecs,
                telephone_event: self.telephone_event,
                session_id: self.session_id,
                session_version: version,
                direction: self.direction,
            })
        };
        let same = build(self.version);
        if self.last_sent.is_empty() || same == self.last_sent {
            self.last_sent = same.clone();
            return same;
        }
        self.version += 1;
        let changed = build(self.version);
        self.last_sent = changed.clone();
        changed
    }
}
