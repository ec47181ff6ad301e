//! The caller's keypad in the flow: the prompts of a reply played one after
//! another, digit collection, barge-in and type-ahead.
//!
//! A reply's `Play` and `Collect` actions are recorded first and carried out
//! once the whole reply is read ([`EdgeCore::start_input`]), so a `Play`
//! followed by a `Collect` (a menu) never reports `PromptFinished`: its end
//! starts the first-digit timeout instead.
//!
//! Digits come from RFC 4733 telephone-events (the media) and SIP INFO (the
//! caller's dialog) into one ordered stream per call. The two are not
//! deduplicated: a phone sending each key both ways is misconfigured, and
//! telling its two copies from two presses would need guessing by time.
//!
//! - While a step is out at a runner, digits wait in the call's type-ahead
//!   (at most [`TYPEAHEAD_MAX`]) for the next `Collect`.
//! - During a barge-in prompt a digit stops the prompts and becomes the
//!   first digit of the `Collect` that follows; with none following, the play
//!   ends (`PromptFinished`) and the digit waits in the type-ahead. A
//!   barge-in prompt is skipped when type-ahead is already waiting.
//! - During a prompt without barge-in digits are discarded (counted).
//! - A collection ends on `max_digits` (0: no maximum), on the terminator
//!   (not included), or on the inter-digit timeout (`Digits`); with no digit
//!   before the first-digit timeout it ends with `NoInput`. One timer per
//!   call (`TimerKind::Digits(step)`), re-armed per digit; a timer of an
//!   earlier step finds another step number and does nothing.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::call::{IvrWait, Phase};
use crate::core::EdgeCore;
use crate::ids::{CallId, PlayToken, StepNo};
use crate::io::{CollectSpec, IvrEvent, MediaCommand};
use crate::timers::TimerKind;

/// Digits kept for the next collection at most; more are discarded.
pub const TYPEAHEAD_MAX: usize = 32;

/// Where a digit came from (the metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigitSource {
    /// An RFC 4733 telephone-event in the caller's RTP.
    Rfc4733,
    /// A SIP INFO on the caller's dialog.
    Info,
}

impl DigitSource {
    pub fn label(self) -> &'static str {
        match self {
            DigitSource::Rfc4733 => "rfc4733",
            DigitSource::Info => "info",
        }
    }
}

/// What the last reply asked of the caller's ear and keypad.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// Prompts still to play, in order.
    pub prompts: VecDeque<String>,
    /// The prompt playing now.
    pub playing: Option<PlayToken>,
    pub barge_in: bool,
    /// The reply had a `Play`: it ends with `PromptFinished` unless a
    /// `Collect` follows.
    pub played: bool,
    pub collect: Option<Collecting>,
}

/// A `Collect` in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collecting {
    pub spec: CollectSpec,
    pub digits: String,
    /// The prompts before it are over: its timer runs.
    pub started: bool,
}

impl Collecting {
    /// Takes one digit; `true` when the collection is complete.
    fn push(&mut self, digit: char) -> bool {
        if self.spec.terminator == Some(digit) {
            return true;
        }
        self.digits.push(digit);
        let max = self.spec.max_digits as usize;
        max > 0 && self.digits.chars().count() >= max
    }

    /// The timeout that runs now: first digit, or between digits.
    fn timeout(&self) -> Duration {
        let ms = if self.digits.is_empty() {
            self.spec.first_digit_timeout_ms
        } else {
            self.spec.inter_digit_timeout_ms
        };
        Duration::from_millis(u64::from(ms.max(1)))
    }
}

fn discard(reason: &'static str) {
    metrics::counter!("acd_edge_dtmf_discarded_total", "reason" => reason).increment(1);
}

impl EdgeCore {
    /// The flow's input state of a call waiting on prompts or digits.
    fn ivr_input(&mut self, id: &CallId) -> Option<(StepNo, &mut Input, &mut String)> {
        match &mut self.calls.get_mut(id)?.phase {
            Phase::Ivr {
                step,
                wait: IvrWait::Input(input),
                typeahead,
                ..
            } => Some((*step, input, typeahead)),
            _ => None,
        }
    }

    /// The input state of the reply being read (a new one on its first
    /// `Play` or `Collect`).
    fn reply_input(&mut self, id: &CallId) -> Option<&mut Input> {
        let Phase::Ivr { wait, .. } = &mut self.calls.get_mut(id)?.phase else {
            return None;
        };
        if !matches!(wait, IvrWait::Input(_)) {
            *wait = IvrWait::Input(Box::default());
        }
        match wait {
            IvrWait::Input(input) => Some(input),
            IvrWait::Reply(_) | IvrWait::Record(_) => None,
        }
    }

    /// A reply's `Play`: queued until the whole reply is read.
    pub(crate) fn ivr_play(&mut self, id: &CallId, prompts: Vec<String>, barge_in: bool) {
        let (known, unknown): (Vec<String>, Vec<String>) = prompts
            .into_iter()
            .map(|p| self.prompt_or_neutral(p))
            .partition(|p| self.cfg.prompts.contains(p));
        if !unknown.is_empty() {
            metrics::counter!("acd_edge_ivr_prompts_missing_total").increment(unknown.len() as u64);
            tracing::warn!(call_id = %id, ?unknown, "unknown prompts, skipping them");
        }
        if let Some(input) = self.reply_input(id) {
            input.prompts.extend(known);
            input.barge_in = barge_in;
            input.played = true;
        }
    }

    /// `en/welcome` when the edge has it, else the language-neutral
    /// `welcome` if it has that (configs without prompt sets).
    fn prompt_or_neutral(&self, name: String) -> String {
        if self.cfg.prompts.contains(&name) {
            return name;
        }
        match name.split_once('/') {
            Some((_, neutral)) if self.cfg.prompts.contains(neutral) => neutral.to_string(),
            _ => name,
        }
    }

    /// A reply's `Collect`: starts when the prompts before it end.
    pub(crate) fn ivr_collect(&mut self, id: &CallId, spec: CollectSpec) {
        if let Some(input) = self.reply_input(id) {
            input.collect = Some(Collecting {
                spec,
                digits: String::new(),
                started: false,
            });
        }
    }

    /// After a reply's actions: play its first prompt, or start its
    /// collection, or report the (empty) play finished.
    pub(crate) fn start_input(&mut self, id: &CallId, now: Instant) {
        let Some((_, input, typeahead)) = self.ivr_input(id) else {
            return;
        };
        if input.playing.is_some() {
            return;
        }
        if input.barge_in && !typeahead.is_empty() {
            // The caller already answered what the prompt asks.
            input.prompts.clear();
        }
        self.next_prompt(id, now);
    }

    /// The next prompt of the reply, or what follows the last one.
    fn next_prompt(&mut self, id: &CallId, now: Instant) {
        let token = PlayToken(self.next_token);
        let Some((_, input, _)) = self.ivr_input(id) else {
            return;
        };
        if let Some(prompt) = input.prompts.pop_front() {
            input.playing = Some(token);
            self.next_token += 1;
            let cmd = MediaCommand::Play {
                prompt,
                looping: false,
                token,
            };
            return self.media(id, cmd);
        }
        input.playing = None;
        if input.collect.is_some() {
            self.start_collect(id, now);
        } else if input.played {
            self.ivr_step(id, IvrEvent::PromptFinished, now);
        }
    }

    /// The prompts are over: the collection takes the type-ahead, then
    /// waits for the first (or next) digit.
    fn start_collect(&mut self, id: &CallId, now: Instant) {
        let Some((step, input, typeahead)) = self.ivr_input(id) else {
            return;
        };
        let Some(c) = input.collect.as_mut() else {
            return;
        };
        c.started = true;
        let mut done = false;
        while !done {
            let Some(d) = typeahead.chars().next() else {
                break;
            };
            typeahead.remove(0);
            done = c.push(d);
        }
        if done {
            let digits = std::mem::take(&mut c.digits);
            return self.end_collect(id, IvrEvent::Digits { digits }, now);
        }
        let after = c.timeout();
        self.set_timer(id, TimerKind::Digits(step), after, now);
    }

    fn end_collect(&mut self, id: &CallId, event: IvrEvent, now: Instant) {
        if let Some((step, input, _)) = self.ivr_input(id) {
            input.collect = None;
            self.cancel_timer(id, TimerKind::Digits(step));
        }
        self.ivr_step(id, event, now);
    }

    /// A prompt ended; only the one playing for the current step counts.
    pub(crate) fn prompt_finished(&mut self, id: &CallId, token: PlayToken, now: Instant) {
        let current = self
            .ivr_input(id)
            .is_some_and(|(_, input, _)| input.playing == Some(token));
        if current {
            self.next_prompt(id, now);
        }
    }

    /// The first-digit or inter-digit timeout of step `fired`.
    pub(crate) fn digits_timeout(&mut self, id: &CallId, fired: StepNo, now: Instant) {
        let Some((step, input, _)) = self.ivr_input(id) else {
            return;
        };
        let Some(c) = input.collect.as_mut().filter(|c| c.started) else {
            return;
        };
        if step != fired {
            return;
        }
        let event = if c.digits.is_empty() {
            IvrEvent::NoInput
        } else {
            IvrEvent::Digits {
                digits: std::mem::take(&mut c.digits),
            }
        };
        self.end_collect(id, event, now);
    }

    /// A key the caller pressed, from either source.
    pub(crate) fn digit(&mut self, id: &CallId, digit: char, source: DigitSource, now: Instant) {
        metrics::counter!("acd_edge_dtmf_digits_total", "source" => source.label()).increment(1);
        tracing::info!(call_id = %id, %digit, source = source.label(), "digit");
        let Some(Phase::Ivr {
            wait, typeahead, ..
        }) = self.calls.get_mut(id).map(|c| &mut c.phase)
        else {
            return discard("not_in_ivr");
        };
        let input = match wait {
            IvrWait::Input(input) => input,
            // `#` ends a voicemail; other keys are part of the message.
            IvrWait::Record(_) => {
                if digit == '#' {
                    self.stop_recording(id);
                }
                return;
            }
            // A step is out at a runner: keep it for the next collection.
            IvrWait::Reply(_) => return type_ahead(typeahead, digit),
        };
        if input.playing.is_some() {
            if !input.barge_in {
                return discard("no_barge_in");
            }
            input.playing = None;
            input.prompts.clear();
            type_ahead(typeahead, digit);
            let collect = input.collect.is_some();
            self.media(id, MediaCommand::StopPlayback);
            return if collect {
                self.start_collect(id, now)
            } else {
                self.ivr_step(id, IvrEvent::PromptFinished, now)
            };
        }
        match input.collect.as_mut().filter(|c| c.started) {
            Some(c) => {
                if c.push(digit) {
                    let digits = std::mem::take(&mut c.digits);
                    return self.end_collect(id, IvrEvent::Digits { digits }, now);
                }
                let after = c.timeout();
                if let Some((step, _, _)) = self.ivr_input(id) {
                    self.set_timer(id, TimerKind::Digits(step), after, now);
                }
            }
            None => type_ahead(typeahead, digit),
        }
    }

    /// Tells the media the caller's telephone-event payload type.
    pub(crate) fn sync_telephone_event(&mut self, id: &CallId) {
        if let Some(call) = self.calls.get(id) {
            let pt = call.caller.sdp.telephone_event;
            self.media(id, MediaCommand::TelephoneEvent { pt });
        }
    }
}

fn type_ahead(buffer: &mut String, digit: char) {
    if buffer.len() >= TYPEAHEAD_MAX {
        return discard("typeahead_full");
    }
    buffer.push(digit);
}
