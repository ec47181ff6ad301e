//! `CallRedirect`: the queue cannot serve a waiting call (overflow, after
//! hours) and the distributor let go of it. The edge transfers the caller
//! to a URI (the transfer machinery, ring-back meanwhile; on failure a
//! message and BYE), plays a message and hangs up, runs another flow, or
//! confirms a booked callback and hangs up. Nothing more is reported for
//! the call: the distributor no longer holds it (a later `Enqueue` from the
//! new flow is a new record).

use std::time::Instant;

use crate::call::{IvrWait, Phase};
use crate::core::EdgeCore;
use crate::ids::{CallId, PlayToken, StepNo};
use crate::incoming::{caller_info, caller_number};
use crate::io::{IvrEvent, MediaCommand, RedirectTarget};
use crate::teardown::EndReason;

/// Played when a redirect's transfer fails (or its flow is unknown).
pub(crate) const REDIRECT_FAILED: &str = "redirect_failed";

impl EdgeCore {
    pub(crate) fn redirect(
        &mut self,
        id: &CallId,
        target: RedirectTarget,
        reason: &str,
        now: Instant,
    ) {
        let span = tracing::info_span!("call", call_id = %id);
        let _e = span.enter();
        let Some(call) = self.calls.get_mut(id) else {
            // The caller hung up meanwhile; the distributor dropped it anyway.
            tracing::debug!(reason, "redirect for a call that is gone");
            return;
        };
        if !matches!(call.phase, Phase::Queued) {
            // An overflow only moves a waiting call; an offer crossed it.
            metrics::counter!("acd_edge_redirects_refused_total", "reason" => "not_queued")
                .increment(1);
            tracing::warn!(
                reason,
                phase = call.phase.name(),
                "redirect for a call not waiting; ignored"
            );
            return;
        }
        let language = call_language(call, &self.cfg.flows);
        let variables = call
            .enqueued
            .take()
            .map(|e| e.caller.variables)
            .unwrap_or_default();
        self.drop_announcement(id);
        let kind = match &target {
            RedirectTarget::Uri(_) => "uri",
            RedirectTarget::Message(_) => "message",
            RedirectTarget::Flow(_) => "flow",
            RedirectTarget::Callback(_) => "callback",
        };
        metrics::counter!("acd_edge_redirects_total", "kind" => kind).increment(1);
        tracing::info!(reason, ?target, "call redirected");
        match target {
            RedirectTarget::Uri(uri) => self.redirect_to_uri(id, uri, language, now),
            RedirectTarget::Message(prompt) | RedirectTarget::Callback(prompt) => {
                self.close_with(id, &prompt, &language, now)
            }
            RedirectTarget::Flow(flow) => self.redirect_to_flow(id, flow, variables, now),
        }
    }

    fn redirect_to_uri(&mut self, id: &CallId, uri: String, language: String, now: Instant) {
        let token = self.take_token();
        if let Some(call) = self.calls.get_mut(id) {
            // Where a failed transfer comes back to.
            call.phase = Phase::Closing {
                token: PlayToken(0),
                language,
            };
        }
        if let Err((why, label)) = self.ring_out(id, uri.clone(), 0, token, now) {
            tracing::warn!(%uri, why, "redirect transfer refused");
            metrics::counter!("acd_edge_transfers_total", "outcome" => label).increment(1);
            self.redirect_failed(id, now);
        }
    }

    /// Runs `flow` from its start for the caller: the flow may enqueue
    /// again. The session starts with the caller's variables, but the
    /// interpreter's `Started` begins every call clean, so only what the
    /// new flow sets counts (keeping them needs an IVR event for it).
    fn redirect_to_flow(
        &mut self,
        id: &CallId,
        flow: String,
        variables: std::collections::BTreeMap<String, String>,
        now: Instant,
    ) {
        if !self.cfg.flows.contains_key(&flow) {
            metrics::counter!("acd_edge_redirects_refused_total", "reason" => "unknown_flow")
                .increment(1);
            tracing::warn!(%flow, "redirect to a flow this edge does not have");
            return self.redirect_failed(id, now);
        }
        self.run_flow(id, flow, variables, now);
    }

    /// Runs `flow` (which this edge has) from its start for the caller,
    /// whatever the call did before (a redirect, the post-call survey).
    pub(crate) fn run_flow(
        &mut self,
        id: &CallId,
        flow: String,
        variables: std::collections::BTreeMap<String, String>,
        now: Instant,
    ) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let from = caller_info(&call.caller.invite, &call.did);
        call.flow = flow;
        // Kept in the session for a runner that merges them; today's
        // interpreter starts clean at `Started`.
        call.phase = Phase::Ivr {
            session: acd_ivr::Session {
                variables,
                ..Default::default()
            },
            step: StepNo(0),
            wait: IvrWait::Input(Box::default()),
            typeahead: String::new(),
        };
        let did = call.did.clone();
        self.media(id, MediaCommand::StopPlayback);
        self.ivr_step(
            id,
            IvrEvent::Started {
                did,
                caller: caller_number(&from.from_uri),
                caller_name: from.display_name,
            },
            now,
        );
    }

    /// Plays `prompt` (in the caller's language, else neutral), then BYE;
    /// at once when there is no such prompt.
    pub(crate) fn close_with(&mut self, id: &CallId, prompt: &str, language: &str, now: Instant) {
        let name = self.localized(prompt, language);
        let token = self.take_token();
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        match name {
            Some(prompt) => {
                call.phase = Phase::Closing {
                    token,
                    language: language.to_string(),
                };
                self.play_once(id, prompt, token);
            }
            None => {
                if !prompt.is_empty() {
                    metrics::counter!("acd_edge_ivr_prompts_missing_total").increment(1);
                    tracing::warn!(prompt, language, "redirect prompt not loaded; hanging up");
                }
                self.end_call(id, EndReason::Redirected, now);
            }
        }
    }

    /// The transfer of a redirect failed (or could not start): a message,
    /// then BYE.
    pub(crate) fn redirect_failed(&mut self, id: &CallId, now: Instant) {
        let language = match self.phase_of(id) {
            Some(Phase::Closing { language, .. }) => language.clone(),
            _ => String::new(),
        };
        self.close_with(id, REDIRECT_FAILED, &language, now);
    }

    /// The closing prompt ended: hang up. `false` if `token` is not one.
    pub(crate) fn closing_prompt_finished(
        &mut self,
        id: &CallId,
        token: PlayToken,
        now: Instant,
    ) -> bool {
        match self.phase_of(id) {
            Some(Phase::Closing { token: t, .. }) if *t == token => {
                self.end_call(id, EndReason::Redirected, now);
                true
            }
            _ => false,
        }
    }

    /// `<language>/<name>` if loaded, else the neutral `name` if loaded.
    pub(crate) fn localized(&self, name: &str, language: &str) -> Option<String> {
        if name.is_empty() {
            return None;
        }
        let with_language = format!("{language}/{name}");
        [with_language, name.to_string()]
            .into_iter()
            .find(|p| self.cfg.prompts.contains(p))
    }

    pub(crate) fn take_token(&mut self) -> PlayToken {
        let token = PlayToken(self.next_token);
        self.next_token += 1;
        token
    }
}

/// The caller's language: what the flow set (carried in the enqueue's
/// variables), else the flow's default.
pub(crate) fn call_language(
    call: &crate::call::Call,
    flows: &std::collections::BTreeMap<String, acd_ivr::Flow>,
) -> String {
    call.enqueued
        .as_ref()
        .and_then(|e| e.caller.variables.get(acd_ivr::vars::LANGUAGE))
        .filter(|l| !l.is_empty())
        .cloned()
        .or_else(|| flows.get(&call.flow).map(|f| f.default_language.clone()))
        .unwrap_or_else(|| "en".to_string())
}
