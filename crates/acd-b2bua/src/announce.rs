//! `QueueAnnouncement`: "You are caller number three. Your estimated wait
//! is two minutes." played to a caller on hold music, then the music again.
//! Only while the call waits (never over a ringing or talking agent); a
//! `Connect` cuts an announcement short. Not in snapshots: announcements
//! are not state (the next one comes on the distributor's timer).

use std::collections::VecDeque;
use std::time::Instant;

use crate::call::{CallerState, Phase};
use crate::core::EdgeCore;
use crate::ids::{CallId, PlayToken};
use crate::io::MediaCommand;
use crate::redirect::call_language;

/// An announcement under way: the fragment playing and those after it.
#[derive(Debug)]
pub(crate) struct Announcing {
    playing: PlayToken,
    rest: VecDeque<String>,
}

impl EdgeCore {
    pub(crate) fn announce(&mut self, id: &CallId, position: u32, estimated_wait_secs: u32) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let waiting = matches!(call.phase, Phase::Queued)
            && matches!(call.caller.state, CallerState::Answered(_));
        if !waiting || self.announcing.contains_key(id) {
            metrics::counter!("acd_edge_announcements_skipped_total", "reason" => "not_waiting")
                .increment(1);
            tracing::debug!(call_id = %id, phase = call.phase.name(), "announcement skipped");
            return;
        }
        let language = call_language(call, &self.cfg.flows);
        let fragments = announcement(&language, position, estimated_wait_secs);
        let total = fragments.len();
        let rest: VecDeque<String> = fragments
            .iter()
            .filter_map(|f| self.localized(f, &language))
            .collect();
        if rest.len() < total {
            metrics::counter!("acd_edge_ivr_prompts_missing_total")
                .increment((total - rest.len()) as u64);
            tracing::warn!(call_id = %id, %language, missing = total - rest.len(), "announcement prompts missing");
        }
        if rest.is_empty() {
            return;
        }
        metrics::counter!("acd_edge_announcements_total").increment(1);
        tracing::info!(call_id = %id, position, estimated_wait_secs, "queue announcement");
        self.announcing.insert(
            id.clone(),
            Announcing {
                playing: PlayToken(0),
                rest,
            },
        );
        self.next_fragment(id);
    }

    /// Plays the next fragment, or the hold music after the last.
    fn next_fragment(&mut self, id: &CallId) {
        let token = self.take_token();
        let Some(a) = self.announcing.get_mut(id) else {
            return;
        };
        match a.rest.pop_front() {
            Some(prompt) => {
                a.playing = token;
                self.play_once(id, prompt, token);
            }
            None => {
                self.announcing.remove(id);
                self.play_hold_music(id, token);
            }
        }
    }

    /// A fragment ended. `false` if `token` is not the announcement's.
    pub(crate) fn announcement_prompt_finished(&mut self, id: &CallId, token: PlayToken) -> bool {
        let queued = matches!(self.phase_of(id), Some(Phase::Queued));
        if !self.announcing.get(id).is_some_and(|a| a.playing == token) {
            if queued && !self.announcing.contains_key(id) {
                // Only announcements end while a call waits (the music
                // loops): one cut by a hand-over, whose rest is not in the
                // snapshot. The music again rather than silence.
                let token = self.take_token();
                self.play_hold_music(id, token);
                return true;
            }
            return false;
        }
        if queued {
            self.next_fragment(id);
        } else {
            self.announcing.remove(id);
        }
        true
    }

    /// An agent is rung: the hold music again if an announcement played.
    pub(crate) fn stop_announcement(&mut self, id: &CallId) {
        if self.announcing.remove(id).is_some() {
            let token = self.take_token();
            self.play_hold_music(id, token);
        }
    }

    /// `prompt` to the caller once; `token` comes back when it ends.
    pub(crate) fn play_once(&mut self, id: &CallId, prompt: String, token: PlayToken) {
        let cmd = MediaCommand::Play {
            prompt,
            looping: false,
            token,
        };
        self.media(id, cmd);
    }

    /// Forgets an announcement without playing anything else.
    pub(crate) fn drop_announcement(&mut self, id: &CallId) {
        self.announcing.remove(id);
    }

    /// Prompts the edge itself plays (announcements, a redirect's last
    /// message) ended; `false`: the token is the flow's.
    pub(crate) fn own_prompt_finished(
        &mut self,
        id: &CallId,
        token: PlayToken,
        now: Instant,
    ) -> bool {
        self.announcement_prompt_finished(id, token) || self.closing_prompt_finished(id, token, now)
    }
}

/// The fragments (without language) of an announcement: the position,
/// then the wait in whole minutes rounded up, "less than a minute" below
/// one; a zero leaves its part out.
pub(crate) fn announcement(language: &str, position: u32, wait_secs: u32) -> Vec<String> {
    let mut out = Vec::new();
    if position > 0 {
        out.push("queue_position".to_string());
        out.extend(acd_ivr::say_number(language, &position.to_string()));
    }
    if wait_secs > 0 {
        out.push("queue_ewt".to_string());
        if wait_secs < 60 {
            out.push("less_than_a_minute".to_string());
        } else {
            let minutes = wait_secs.div_ceil(60);
            out.extend(acd_ivr::say_number(language, &minutes.to_string()));
            out.push(if minutes == 1 { "minute" } else { "minutes" }.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::announcement;

    #[test]
    fn position_then_wait_rounded_up() {
        assert_eq!(
            announcement("en", 3, 61),
            ["queue_position", "num_3", "queue_ewt", "num_2", "minutes"]
        );
        assert_eq!(announcement("en", 0, 60), ["queue_ewt", "num_1", "minute"]);
        assert_eq!(
            announcement("en", 21, 0),
            ["queue_position", "num_20", "num_1"]
        );
        assert_eq!(
            announcement("ru", 0, 59),
            ["queue_ewt", "less_than_a_minute"]
        );
        assert!(announcement("en", 0, 0).is_empty());
    }
}
