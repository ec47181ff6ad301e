//! The post-call survey. A queue with `survey = { flow = "…" }` names the
//! flow in its offers (`Connect.survey_flow`). When the agent hangs up a
//! bridged call that has one, the caller is not hung up: the agent leg goes,
//! the distributor hears `CallEnded { by: Agent }` at once (the agent goes
//! to wrap-up as usual), and the caller runs the survey flow from its start,
//! as a redirect to a flow does. The flow asks for 1–5 into the variable
//! `survey_score`, thanks the caller and hangs up; the call's note carries
//! the answer. A caller who hangs up first gets no survey.

use std::time::Instant;

use crate::call::{CallerState, Phase};
use crate::core::EdgeCore;
use crate::ids::{CallId, Side};
use crate::io::ToDistributor;
use crate::teardown::EndReason;

impl EdgeCore {
    /// The agent hung up: starts the call's survey if it has one. `false`
    /// when the call ends as usual.
    pub(crate) fn start_survey(&mut self, id: &CallId, now: Instant) -> bool {
        let Some(call) = self.calls.get(id) else {
            return false;
        };
        let Phase::Bridged(leg) = &call.phase else {
            return false;
        };
        let flow = match call.note.as_deref() {
            Some(n) if !n.survey_flow.is_empty() && leg.transfer.is_none() => n.survey_flow.clone(),
            _ => return false,
        };
        if !matches!(call.caller.state, CallerState::Answered(_)) {
            return false;
        }
        if !self.cfg.flows.contains_key(&flow) {
            metrics::counter!("acd_edge_surveys_refused_total", "reason" => "unknown_flow")
                .increment(1);
            tracing::warn!(call_id = %id, %flow, "survey flow not loaded at this edge; hanging up");
            return false;
        }
        let leg = leg.clone();
        self.unbridge(id, &leg);
        self.report(ToDistributor::CallEnded {
            call: id.clone(),
            reason: EndReason::Hangup(Side::Agent).as_str().into(),
            by: EndReason::Hangup(Side::Agent).ended_by(),
        });
        if let Some(call) = self.calls.get_mut(id) {
            // The distributor no longer holds it: not a live call to announce.
            call.enqueued = None;
            if let Some(note) = call.note.as_deref_mut() {
                note.surveying = true;
            }
        }
        metrics::counter!("acd_edge_surveys_total", "outcome" => "started").increment(1);
        tracing::info!(call_id = %id, agent = %leg.agent, %flow, "agent hung up: caller stays for the survey");
        self.run_flow(id, flow, Default::default(), now);
        true
    }
}
