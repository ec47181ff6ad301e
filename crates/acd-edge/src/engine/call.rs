//! A call's state: the caller's leg, the agent's leg, where the call is in
//! its life, and helpers shared by the handlers.

use acd_proto::v1 as pb;
use acd_sip::dialog::{Dialog, Retransmit2xx};
use acd_sip::message::NameAddr;
use acd_sip::{Peer, Request, Response, Transport, TxKey};
use std::time::Instant;

use crate::media::MediaHandle;
use crate::registrar::contact_peer;
use acd_media::Codec;

pub(super) enum Phase {
    Ivr,
    Queued,
    /// Ringing an agent.
    Connecting,
    Bridged,
}

pub(super) struct CallerLeg {
    pub(super) invite: Request,
    pub(super) invite_key: TxKey,
    pub(super) peer: Peer,
    pub(super) local_tag: String,
    pub(super) sdp: String,
    pub(super) codec: Codec,
    pub(super) answered: bool,
    pub(super) dialog: Option<Dialog>,
    pub(super) retransmit: Option<Retransmit2xx>,
}

pub(super) struct AgentLeg {
    pub(super) agent_id: String,
    pub(super) invite: Request,
    pub(super) key: TxKey,
    pub(super) peer: Peer,
    pub(super) sdp: String,
    pub(super) ring_deadline: Option<Instant>,
    pub(super) dialog: Option<Dialog>,
    pub(super) cancelled: bool,
}

pub(super) struct Call {
    pub(super) span: tracing::Span,
    pub(super) did: String,
    pub(super) flow_id: String,
    pub(super) caller: CallerLeg,
    pub(super) agent: Option<AgentLeg>,
    pub(super) media: MediaHandle,
    pub(super) phase: Phase,
    pub(super) session: pb::IvrSession,
    /// Token of the prompt whose end advances the IVR.
    pub(super) prompt_token: u64,
    pub(super) digit_deadline: Option<Instant>,
    /// What the call was enqueued with, to enqueue it again if the
    /// distributor loses it.
    pub(super) enqueued: Option<pb::EnqueueCall>,
}

/// Which side of a call a SIP Call-ID belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Side {
    Caller,
    Agent,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum EndReason {
    CallerHangup,
    CallerCancel,
    AgentHangup,
    Flow,
    Rejected,
    NoAck,
}

impl EndReason {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            EndReason::CallerHangup => "caller hung up",
            EndReason::CallerCancel => "caller cancelled",
            EndReason::AgentHangup => "agent hung up",
            EndReason::Flow => "flow hung up",
            EndReason::Rejected => "rejected by distributor",
            EndReason::NoAck => "no ACK from caller",
        }
    }
}

impl Call {
    /// SIP Call-IDs of the call's legs (the keys of `Engine::dialogs`).
    pub(super) fn sip_call_ids(&self) -> impl Iterator<Item = &str> {
        let caller = self.caller.invite.headers.call_id();
        let agent = self.agent.as_ref().and_then(|a| a.invite.headers.call_id());
        caller.into_iter().chain(agent)
    }
}

/// §8.2.6.2: a final response to a request without a To tag gets one.
/// Responses that create a dialog carry the call's own tag already.
pub(super) fn with_local_tag(resp: Response) -> Response {
    if resp.status >= 200 && resp.headers.to_tag().is_none() {
        resp.with_to_tag(&acd_sip::transaction::new_tag(rand::random()))
    } else {
        resp
    }
}

/// A UAS copies Record-Route into responses that create a dialog
/// (RFC 3261 §12.1.1), verbatim: proxies rely on their own parameters
/// (`lr`, `du`, `transport`) coming back unchanged.
pub(super) fn copy_record_route(req: &Request, resp: &mut Response) {
    let routes: Vec<String> = req
        .headers
        .get_all("Record-Route")
        .map(str::to_string)
        .collect();
    for r in routes {
        resp.headers.push("Record-Route", r);
    }
}

/// Caller data for the distributor and the agent's call pop.
pub(super) fn caller_data(invite: &Request, did: &str) -> pb::Caller {
    let from = invite.headers.get("From").and_then(NameAddr::parse);
    pb::Caller {
        from_uri: from.map(|f| f.uri.to_string()).unwrap_or_default(),
        display_name: from
            .and_then(|f| f.display)
            .map(|d| d.trim_matches('"').to_string())
            .unwrap_or_default(),
        did: did.to_string(),
        variables: Default::default(),
    }
}

/// Where an in-dialog request goes: the first route (its `du` if present),
/// else the remote target, else where the dialog's peer sent from.
pub(super) fn next_hop(d: &Dialog, fallback: Peer) -> Peer {
    let target = d
        .route_set
        .first()
        .and_then(|r| NameAddr::parse(r).map(|n| n.uri.to_string()))
        .map(
            |uri| match acd_sip::message::Uri::parse(&uri).and_then(|u| u.param("du").flatten()) {
                Some(du) => du.to_string(),
                None => uri,
            },
        )
        .unwrap_or_else(|| d.remote_target.clone());
    match contact_peer(target.trim_matches(|c| c == '<' || c == '>')) {
        // Over TCP the dialog stays on the connection it came in on.
        Some(p) if fallback.transport == Transport::Udp => p,
        _ => fallback,
    }
}
