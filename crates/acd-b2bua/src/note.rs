//! The call note: what the edge saw of one inbound call (arrival, the first
//! flow, the caller's IVR inputs, how it ended here, the survey score), sent
//! to the distributor exactly once, when the caller's leg ends, through the
//! same reliable outbox as every other report. The distributor logs it as
//! `CallNoted`, so call records come from its event stream alone.
//!
//! The per-call part ([`NoteState`]) lives in the call (and so in the
//! hand-over snapshot); a step is a few bytes per key pressed and nothing
//! happens per RTP packet.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::call::{Call, Phase};
use crate::core::EdgeCore;
use crate::ids::{CallId, Side};
use crate::io::{IvrEvent, ToDistributor};
use crate::teardown::EndReason;

/// IVR inputs kept per note (the distributor's `MAX_NOTE_STEPS`); later ones
/// are dropped and counted.
pub const MAX_NOTE_STEPS: usize = 32;
/// Longest text field of a note (the distributor refuses longer ones).
pub const MAX_NOTE_TEXT: usize = 256;
/// The flow variable a survey flow stores the caller's answer in.
pub const SURVEY_SCORE_VAR: &str = "survey_score";

/// The edge's account of a call, as sent (`EdgeMessage.note`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallNote {
    pub call: CallId,
    /// Unix ms, the edge's clock.
    pub arrived_at_ms: u64,
    pub left_at_ms: u64,
    pub did: String,
    /// The caller's number (From user part).
    pub caller: String,
    /// The flow that ran first.
    pub flow: String,
    pub steps: Vec<NoteStep>,
    pub outcome: EdgeOutcome,
    /// 1–5 from the post-call survey.
    pub survey_score: Option<u8>,
}

/// One input in the IVR: the node that asked and what the caller keyed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteStep {
    pub at_ms: u64,
    pub node: String,
    pub input: String,
}

/// How the caller's leg ended, seen from the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeOutcome {
    /// Went to a queue (the distributor's own events tell the rest).
    Queued,
    /// The flow ended the call (served by the IVR alone).
    SelfServed,
    /// The caller hung up in the IVR before reaching a queue.
    AbandonedInIvr,
    /// Left a voicemail.
    Voicemail,
    /// Sent elsewhere (a SIP URI, a closing message) without a queue.
    Redirected,
    /// Refused after the call was created (media, distributor).
    Refused,
    /// Lost by the edge (no ACK, media timeout, drain deadline).
    Failed,
}

impl EdgeOutcome {
    /// The wire name (`acd_routing::EdgeOutcome` in snake_case).
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeOutcome::Queued => "queued",
            EdgeOutcome::SelfServed => "self_served",
            EdgeOutcome::AbandonedInIvr => "abandoned_in_ivr",
            EdgeOutcome::Voicemail => "voicemail",
            EdgeOutcome::Redirected => "redirected",
            EdgeOutcome::Refused => "refused",
            EdgeOutcome::Failed => "failed",
        }
    }
}

/// What the note of a call in progress has gathered so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteState {
    pub arrived_at_ms: u64,
    /// The flow that ran first (`Call::flow` changes on a redirect or survey).
    pub flow: String,
    #[serde(default)]
    pub steps: Vec<NoteStep>,
    /// Inputs past [`MAX_NOTE_STEPS`], not kept.
    #[serde(default)]
    pub dropped_steps: u32,
    /// The call was handed to a queue at least once.
    #[serde(default)]
    pub queued: bool,
    /// The flow recorded a voicemail.
    #[serde(default)]
    pub voicemail: bool,
    /// The survey flow of the queue whose agent was last connected (empty: none).
    #[serde(default)]
    pub survey_flow: String,
    /// The agent hung up and the caller is in the survey flow.
    #[serde(default)]
    pub surveying: bool,
}

impl NoteState {
    pub fn new(arrived_at_ms: u64, flow: &str) -> NoteState {
        NoteState {
            arrived_at_ms,
            flow: clip(flow),
            ..NoteState::default()
        }
    }

    /// Keeps one input; `false` when the note is full (the input is dropped).
    fn push(&mut self, step: NoteStep) -> bool {
        if self.steps.len() >= MAX_NOTE_STEPS {
            self.dropped_steps = self.dropped_steps.saturating_add(1);
            return false;
        }
        self.steps.push(step);
        true
    }
}

/// `text` cut to [`MAX_NOTE_TEXT`] bytes on a character boundary.
fn clip(text: &str) -> String {
    if text.len() <= MAX_NOTE_TEXT {
        return text.to_string();
    }
    let mut end = MAX_NOTE_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// How a call that ends for `reason` in `phase` ended, for its note.
pub(crate) fn outcome(note: &NoteState, phase: &Phase, reason: EndReason) -> EdgeOutcome {
    if reason == EndReason::Rejected {
        // The distributor refused the enqueue: it holds no record of the call.
        return EdgeOutcome::Refused;
    }
    if note.queued {
        return EdgeOutcome::Queued;
    }
    if note.voicemail {
        return EdgeOutcome::Voicemail;
    }
    if matches!(phase, Phase::Bridged(leg) if leg.transfer.is_some()) {
        // The flow connected the caller to an external URI.
        return EdgeOutcome::Redirected;
    }
    match reason {
        EndReason::Hangup(Side::Caller) | EndReason::CallerCancel => EdgeOutcome::AbandonedInIvr,
        EndReason::Flow => EdgeOutcome::SelfServed,
        EndReason::Redirected | EndReason::Hangup(Side::Agent) => EdgeOutcome::Redirected,
        EndReason::Rejected => EdgeOutcome::Refused,
        EndReason::NoAck(_)
        | EndReason::SessionExpired(_)
        | EndReason::MediaTimeout(_)
        | EndReason::DialogGone(_)
        | EndReason::DrainDeadline => EdgeOutcome::Failed,
    }
}

/// The survey flow's answer, when the call ends in it: 1–5, else none.
fn survey_score(note: &NoteState, phase: &Phase) -> Option<u8> {
    let Phase::Ivr { session, .. } = phase else {
        return None;
    };
    if !note.surveying {
        return None;
    }
    let score = session.variables.get(SURVEY_SCORE_VAR)?.trim().parse().ok();
    score.filter(|s| (1..=5).contains(s))
}

impl EdgeCore {
    /// A digit string the caller gave at the call's current node (a menu
    /// choice or collected digits); the survey's answer is its score, not a step.
    pub(crate) fn note_input(&mut self, id: &CallId, event: &IvrEvent, now: Instant) {
        let IvrEvent::Digits { digits } = event else {
            return;
        };
        let at_ms = self.unix_ms(now);
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let Phase::Ivr { session, .. } = &call.phase else {
            return;
        };
        let Some(note) = call.note.as_deref_mut().filter(|n| !n.surveying) else {
            return;
        };
        let step = NoteStep {
            at_ms,
            node: clip(&session.node),
            input: clip(digits),
        };
        if !note.push(step) {
            metrics::counter!("acd_edge_note_steps_dropped_total").increment(1);
        }
    }

    /// Marks what the note needs from the flow's actions.
    pub(crate) fn note_mut(&mut self, id: &CallId) -> Option<&mut NoteState> {
        self.calls.get_mut(id)?.note.as_deref_mut()
    }

    /// Sends the note of a call whose caller leg just ended (the call is
    /// already forgotten); calls without one (callback legs, calls restored
    /// from a snapshot older than notes) send nothing.
    pub(crate) fn send_note(&mut self, call: &Call, outcome: EdgeOutcome, now: Instant) {
        let Some(note) = call.note.as_deref() else {
            return;
        };
        let survey_score = survey_score(note, &call.phase);
        if note.surveying {
            let answered = if survey_score.is_some() {
                "answered"
            } else {
                "unanswered"
            };
            metrics::counter!("acd_edge_surveys_total", "outcome" => answered).increment(1);
        }
        metrics::counter!("acd_edge_call_notes_total", "outcome" => outcome.as_str()).increment(1);
        let from = crate::incoming::caller_info(&call.caller.invite, &call.did);
        let msg = CallNote {
            call: call.id.clone(),
            arrived_at_ms: note.arrived_at_ms,
            left_at_ms: self.unix_ms(now).max(note.arrived_at_ms),
            did: clip(&call.did),
            caller: clip(&from.number),
            flow: note.flow.clone(),
            steps: note.steps.clone(),
            outcome,
            survey_score,
        };
        // Debug: "call ended" says the same at info, once per call.
        tracing::debug!(call_id = %call.id, outcome = outcome.as_str(), steps = msg.steps.len(), dropped_steps = note.dropped_steps, ?survey_score, "call noted");
        self.report(ToDistributor::Note(msg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_clipped_on_a_character_boundary() {
        assert_eq!(clip("5550100"), "5550100");
        let long = "я".repeat(200); // 400 bytes
        let c = clip(&long);
        assert!(c.len() <= MAX_NOTE_TEXT && c.len() >= MAX_NOTE_TEXT - 1);
        assert!(long.starts_with(&c));
    }

    #[test]
    fn steps_past_the_limit_are_dropped_and_counted() {
        let mut n = NoteState::new(1, "sales");
        for i in 0..MAX_NOTE_STEPS + 3 {
            let kept = n.push(NoteStep {
                at_ms: i as u64,
                node: "menu".into(),
                input: "1".into(),
            });
            assert_eq!(kept, i < MAX_NOTE_STEPS);
        }
        assert_eq!(n.steps.len(), MAX_NOTE_STEPS);
        assert_eq!(n.dropped_steps, 3);
    }

    #[test]
    fn only_a_survey_answer_of_one_to_five_is_a_score() {
        let phase = |v: &str| Phase::Ivr {
            session: acd_ivr::Session {
                variables: [(SURVEY_SCORE_VAR.to_string(), v.to_string())].into(),
                ..Default::default()
            },
            step: crate::ids::StepNo(1),
            wait: crate::call::IvrWait::Reply(IvrEvent::PromptFinished),
            typeahead: String::new(),
        };
        let mut note = NoteState::new(1, "sales");
        assert_eq!(survey_score(&note, &phase("4")), None, "not surveying");
        note.surveying = true;
        assert_eq!(survey_score(&note, &phase("4")), Some(4));
        for bad in ["0", "6", "", "x", "44"] {
            assert_eq!(survey_score(&note, &phase(bad)), None, "{bad:?}");
        }
        assert_eq!(survey_score(&note, &Phase::Queued), None);
    }
}
