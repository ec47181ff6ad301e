//! What goes into the core and what comes out of it. Every output is one
//! variant of [`Output`]; the shell drains them with `poll_output()` and
//! sleeps until `poll_timeout()`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Instant;

use acd_media::sdp::Direction;
use acd_media::Codec;
use acd_sip::{Message, Peer};
use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, CallId, PlayToken, Side, StepNo};

/// Everything the core reacts to.
#[derive(Debug)]
#[non_exhaustive]
pub enum Input {
    /// A parsed SIP message; `received` is when its bytes arrived, so the
    /// core can see how late its loop runs.
    Sip {
        msg: Message,
        from: Peer,
        received: Instant,
    },
    /// A command from the distributor, with the leader's term (fencing).
    Distributor {
        term: u64,
        cmd: FromDistributor,
    },
    /// The answer to an IVR step (or why no runner answered).
    IvrReply {
        call: CallId,
        step: StepNo,
        reply: Result<IvrReply, String>,
    },
    /// Media sockets for a call are bound.
    MediaReady {
        call: CallId,
        ports: MediaPorts,
    },
    /// Media sockets could not be bound.
    MediaFailed {
        call: CallId,
        reason: String,
    },
    Media(MediaEvent),
    /// Stop taking new calls; existing dialogs carry on.
    Drain,
    /// The drain deadline passed: end every call left (BYE on both legs).
    EndAll,
    /// The config was reloaded: new calls see these numbers, flows and
    /// prompts; calls in progress keep their flow (its id and its session).
    Reconfigure(Box<Reconfigure>),
}

/// What a config reload changes at the edge.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconfigure {
    /// DID → flow id.
    pub dids: BTreeMap<String, String>,
    pub flows: BTreeMap<String, acd_ivr::Flow>,
    /// Names of the prompts the media can play.
    pub prompts: BTreeSet<String>,
}

/// Commands from the distributor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FromDistributor {
    /// Ring this agent's extension and bridge the call on answer.
    Connect {
        call: CallId,
        agent: AgentId,
        extension: String,
        /// The extension's binding as the distributor knew it at the offer
        /// (another edge's registration, or ours from before a restart).
        contact: Option<AgentContact>,
        /// Ask the phone to answer by itself (Call-Info answer-after=0).
        auto_answer: bool,
        /// Ring-all: ring these agents too; the first to answer takes the
        /// call (`AgentAnswered` names them).
        ring_also: Vec<RingTarget>,
        /// Post-call survey: when the agent hangs up, the caller stays for
        /// this flow (empty: no survey).
        survey_flow: String,
    },
    Queued {
        call: CallId,
        queue: String,
        position: u32,
    },
    Rejected {
        call: CallId,
        reason: String,
    },
    /// The distributor does not hold a call we announced (it lost it).
    Unknown {
        call: CallId,
    },
    /// The site's registration bindings: all of them (`full`, on attach) or
    /// those that changed (an expiry of 0 removes).
    Bindings {
        full: bool,
        bindings: Vec<SiteBinding>,
    },
    /// The queue cannot serve the call (overflow, after hours): the
    /// distributor no longer holds it; do `target` with the caller.
    Redirect {
        call: CallId,
        target: RedirectTarget,
        /// Why (`closed`, `full`, `max_wait`…), for logs.
        reason: String,
    },
    /// Tell the waiting caller their place and/or estimated wait (0: not said).
    Announce {
        call: CallId,
        position: u32,
        estimated_wait_secs: u32,
    },
    /// A callback's turn: dial the customer, then ring the reserved agent.
    Dial(Box<DialCallback>),
    /// The agent handed the call on: drop the agent leg, the caller waits
    /// on hold for the next `Connect`.
    Release {
        call: CallId,
        agent: AgentId,
        reason: String,
    },
}

/// What a redirect does with the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectTarget {
    /// Transfer to this SIP URI (ring-back meanwhile; on failure a message and BYE).
    Uri(String),
    /// Play this prompt, then hang up.
    Message(String),
    /// Run this IVR flow from its start.
    Flow(String),
    /// The caller's place is kept as a callback: play this prompt (empty:
    /// none), then hang up without an abandon.
    Callback(String),
}

/// `DialCallback`: call the customer back for the virtual call `call`
/// (`<inbound>:cb`), then ring `agent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialCallback {
    pub call: CallId,
    pub number: String,
    /// The `[[trunks]]` name whose `dial` template makes the request URI;
    /// empty: `number` is a SIP URI.
    pub trunk: String,
    pub ring_secs: u32,
    pub attempt: u32,
    pub agent: AgentId,
    pub extension: String,
    pub contact: Option<AgentContact>,
    pub auto_answer: bool,
    pub caller: CallerInfo,
}

/// Who ended a connected call (the agent API's `CallFinished`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndedBy {
    #[default]
    Unspecified,
    Caller,
    Agent,
    /// The edge lost the call (media timeout, shutdown).
    Failure,
}

/// How dialling a callback's customer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallbackOutcome {
    Answered,
    Busy,
    NoAnswer,
    Failed,
}

/// An agent to ring: whom, where, and whether the phone should answer by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingTarget {
    pub agent: AgentId,
    pub extension: String,
    pub contact: Option<AgentContact>,
    pub auto_answer: bool,
}

/// Where to ring an extension registered elsewhere, as `ConnectAgent` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentContact {
    /// The Contact URI as registered.
    pub contact: String,
    /// Where its REGISTER came from, `udp:10.0.0.7:5062` (may be empty).
    pub source: String,
}

/// A registration binding as the distributor replicates it: reported by the
/// edge holding it, sent to every edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteBinding {
    /// The extension (AOR user part).
    pub aor: String,
    pub contact: String,
    /// Where the REGISTER came from (`udp:10.0.0.7:5062`).
    pub source: String,
    /// Absolute expiry, Unix ms; 0 removes the binding.
    pub expires_at_ms: u64,
    /// The edge holding the registration.
    pub edge_id: String,
}

/// Reports to the distributor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ToDistributor {
    Enqueue(Enqueue),
    Abandon {
        call: CallId,
    },
    AgentAnswered {
        call: CallId,
        agent: AgentId,
    },
    AgentFailed {
        call: CallId,
        agent: AgentId,
        reason: String,
        sip_status: u16,
    },
    CallEnded {
        call: CallId,
        reason: String,
        #[serde(default)]
        by: EndedBy,
    },
    /// A phone registered here, moved, refreshed materially, unregistered or
    /// expired (`expires_at_ms` 0).
    Binding(SiteBinding),
    /// The flow asked to call the caller back later (virtual hold).
    Callback(CallbackRequest),
    /// How dialling a callback's customer (`DialCallback`) went; 0: no SIP status.
    CallbackResult {
        call: CallId,
        outcome: CallbackOutcome,
        sip_status: u16,
    },
    /// The edge's account of an inbound call whose caller leg ended (once per call).
    Note(crate::note::CallNote),
}

/// A callback the flow asked for; the distributor keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRequest {
    /// The inbound call that asked (the distributor's dedupe key).
    pub call: CallId,
    pub queue: String,
    pub number: String,
    pub priority: i32,
    /// The voicemail file (`Recorded.file`), if one was left.
    pub voicemail: Option<String>,
    /// Caller data with the flow's `data` merged into its variables.
    pub caller: CallerInfo,
    /// When the caller asked (Unix ms, the edge's clock).
    pub requested_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enqueue {
    pub call: CallId,
    pub queue: String,
    pub priority: i32,
    pub caller: CallerInfo,
    /// Skills the call needs beyond the queue's own (skill → minimum level).
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
}

/// Caller data for the distributor and the agent's call pop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerInfo {
    pub from_uri: String,
    /// The From URI's user part alone (`79161234567`).
    #[serde(default)]
    pub number: String,
    pub display_name: String,
    pub did: String,
    pub variables: BTreeMap<String, String>,
}

/// One step of the stateless IVR for the shell to run on some runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvrStep {
    pub call: CallId,
    pub step: StepNo,
    pub flow: String,
    pub session: acd_ivr::Session,
    pub event: IvrEvent,
}

/// The interpreter's events and actions are the core's too.
pub use acd_ivr::{Action as IvrAction, CollectSpec, Event as IvrEvent};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvrReply {
    pub session: Option<acd_ivr::Session>,
    pub actions: Vec<IvrAction>,
}

/// The two RTP ports of a call (caller leg, agent leg).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaPorts {
    pub caller: u16,
    pub agent: u16,
}

/// What the call's media must do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaCommand {
    /// Bind the call's RTP sockets; answer with `MediaReady` / `MediaFailed`.
    Allocate {
        caller_remote: Option<SocketAddr>,
        caller_codec: Codec,
    },
    Play {
        prompt: String,
        looping: bool,
        token: PlayToken,
    },
    StopPlayback,
    /// The payload type of the caller's RFC 4733 telephone-events (its SDP's
    /// `telephone-event/8000`), for digit detection; `None`: none negotiated.
    TelephoneEvent {
        pt: Option<u8>,
    },
    /// Record the caller (voicemail): after a beep if `beep`, at most
    /// `max_ms`, ended by `silence_ms` of silence or `StopRecording`; the
    /// shell writes the file and answers `Recorded` / `RecordFailed`.
    Record {
        max_ms: u32,
        silence_ms: u32,
        beep: bool,
        token: PlayToken,
    },
    /// End the recording now (`#` pressed).
    StopRecording,
    /// The agent answered: relay both ways.
    Bridge {
        agent_remote: SocketAddr,
        agent_codec: Codec,
    },
    /// The agent leg is gone but the caller stays (released for a transfer):
    /// stop relaying, forget the agent side.
    Unbridge,
    /// A (re-)negotiation changed a leg: `remote` is set when its address or
    /// codec moved (the media reopens its latch then), else only the
    /// direction changed.
    Update {
        side: Side,
        remote: Option<SocketAddr>,
        codec: Codec,
        direction: Direction,
    },
    /// The call is over: close its sockets.
    Release,
}

/// What the media reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaEvent {
    PromptFinished {
        call: CallId,
        token: PlayToken,
    },
    /// No RTP on this leg for the configured media timeout.
    Inactive {
        call: CallId,
        side: Side,
    },
    /// The caller pressed a key, as an RFC 4733 telephone-event (once per
    /// press; SIP INFO digits come in as SIP).
    Digit {
        call: CallId,
        digit: char,
    },
    /// The recording `token` is written: `file` is its name under the
    /// voicemail directory.
    Recorded {
        call: CallId,
        token: PlayToken,
        file: String,
        duration_ms: u32,
    },
    /// The recording `token` could not be made (nothing said, disk error).
    RecordFailed {
        call: CallId,
        token: PlayToken,
        reason: String,
    },
}

/// Everything the core asks the shell to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Output {
    Transmit {
        to: Peer,
        bytes: Vec<u8>,
    },
    /// A dialog runs over the stream connection `connection` (its far end
    /// opened it); if that connection is gone when a request must go to it,
    /// dial the dialog's remote target `target` instead (RFC 3261 §12.2.1.1),
    /// never the connection's ephemeral source port.
    StreamRoute {
        connection: Peer,
        target: Peer,
    },
    Distributor(ToDistributor),
    Ivr(IvrStep),
    Media {
        call: CallId,
        cmd: MediaCommand,
    },
}
