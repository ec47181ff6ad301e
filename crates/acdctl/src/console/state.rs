//! The console's state: a pure function of the agent's events and the keys
//! pressed. A key may ask for a request; the shell sends it and reports back.

use acd_proto::v1::agent_event::Kind;
use acd_proto::v1::{AgentEvent, AgentState, AgentStatus, CallOffer};

/// A key, as the console understands it (independent of the terminal library).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Esc,
    Backspace,
    Up,
    Down,
}

/// What the agent asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Ready,
    NotReady {
        reason: String,
    },
    /// Ends wrap-up: Ready, or NotReady with a reason.
    EndWrapUp {
        reason: String,
    },
    Accept {
        call: String,
    },
    Reject {
        call: String,
    },
    TransferToQueue {
        call: String,
        queue: String,
    },
    TransferToAgent {
        call: String,
        agent: String,
    },
    Logout,
    Quit,
}

/// What the keyboard is doing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Normal,
    /// Choosing a not-ready reason (index into `reasons`).
    PickReason { selected: usize },
    /// Typing a transfer target (a queue id, or an agent id).
    Transfer { input: String },
}

#[derive(Clone, Debug, Default)]
pub struct ConsoleState {
    pub agent: String,
    pub extension: String,
    pub status: Option<AgentStatus>,
    /// The call offered or in progress (the call pop).
    pub offer: Option<CallOffer>,
    pub connected: bool,
    pub reasons: Vec<String>,
    /// Queue ids, to tell a queue from an agent when transferring.
    pub queues: Vec<String>,
    pub mode: Mode,
    /// The last outcome or error, shown at the bottom.
    pub message: String,
    /// The last event seen: the Watch resumes after it, repeats are dropped.
    pub after_seq: u64,
}

impl ConsoleState {
    pub fn new(agent: &str, extension: &str) -> ConsoleState {
        ConsoleState {
            agent: agent.to_string(),
            extension: extension.to_string(),
            ..ConsoleState::default()
        }
    }

    pub fn state(&self) -> AgentState {
        self.status
            .as_ref()
            .and_then(|s| AgentState::try_from(s.state).ok())
            .unwrap_or(AgentState::Unspecified)
    }

    /// Applies one event of the Watch stream; a repeated seq is dropped.
    pub fn apply_event(&mut self, e: &AgentEvent) {
        if e.seq != 0 && e.seq <= self.after_seq {
            return;
        }
        self.after_seq = self.after_seq.max(e.seq);
        match &e.kind {
            Some(Kind::Status(s)) => self.status = Some(s.clone()),
            Some(Kind::Offer(o)) => {
                self.offer = Some(o.clone());
                self.connected = false;
            }
            Some(Kind::Connected(c))
                if self.offer.as_ref().is_some_and(|o| o.call_id == c.call_id) =>
            {
                self.connected = true;
            }
            Some(Kind::Finished(f)) => {
                if self.offer.as_ref().is_some_and(|o| o.call_id == f.call_id) {
                    self.offer = None;
                    self.connected = false;
                }
                self.message = format!("call {} finished: {}", f.call_id, f.reason);
            }
            Some(Kind::Connected(_)) | None => {}
        }
    }

    /// Reports the outcome of a request (a new status, or an error).
    pub fn apply_result(&mut self, result: Result<AgentStatus, String>) {
        match result {
            Ok(s) => {
                self.message = String::new();
                self.status = Some(s);
            }
            Err(e) => self.message = e,
        }
    }

    fn call_id(&self) -> Option<String> {
        self.offer.as_ref().map(|o| o.call_id.clone())
    }

    /// Applies a key; the request it asks for, if any.
    pub fn apply_key(&mut self, key: Key) -> Option<Request> {
        match std::mem::take(&mut self.mode) {
            Mode::Normal => self.normal_key(key),
            Mode::PickReason { selected } => self.reason_key(key, selected),
            Mode::Transfer { input } => self.transfer_key(key, input),
        }
    }

    fn normal_key(&mut self, key: Key) -> Option<Request> {
        let Key::Char(c) = key else {
            return None;
        };
        match c {
            'q' => Some(Request::Quit),
            'r' if self.state() == AgentState::WrapUp => Some(Request::EndWrapUp {
                reason: String::new(),
            }),
            'r' => Some(Request::Ready),
            'w' => Some(Request::EndWrapUp {
                reason: String::new(),
            }),
            'n' if self.reasons.is_empty() => Some(self.not_ready(String::new())),
            'n' => {
                self.mode = Mode::PickReason { selected: 0 };
                None
            }
            'a' => self.with_call(|call| Request::Accept { call }),
            'x' => self.with_call(|call| Request::Reject { call }),
            't' if self.connected => {
                self.mode = Mode::Transfer {
                    input: String::new(),
                };
                None
            }
            't' => {
                self.message = "no connected call to transfer".into();
                None
            }
            'l' => Some(Request::Logout),
            _ => None,
        }
    }

    fn with_call(&mut self, f: impl FnOnce(String) -> Request) -> Option<Request> {
        match self.call_id() {
            Some(call) => Some(f(call)),
            None => {
                self.message = "no call offered".into();
                None
            }
        }
    }

    fn not_ready(&self, reason: String) -> Request {
        if self.state() == AgentState::WrapUp {
            Request::EndWrapUp { reason }
        } else {
            Request::NotReady { reason }
        }
    }

    fn reason_key(&mut self, key: Key, selected: usize) -> Option<Request> {
        let last = self.reasons.len().saturating_sub(1);
        let pick = |i: usize| self.reasons.get(i).cloned();
        let chosen = match key {
            Key::Up => {
                self.mode = Mode::PickReason {
                    selected: selected.saturating_sub(1),
                };
                return None;
            }
            Key::Down => {
                self.mode = Mode::PickReason {
                    selected: (selected + 1).min(last),
                };
                return None;
            }
            Key::Esc => return None,
            Key::Enter => pick(selected),
            Key::Char(c) => match c.to_digit(10) {
                Some(d) if d >= 1 => pick(d as usize - 1),
                _ => {
                    self.mode = Mode::PickReason { selected };
                    return None;
                }
            },
            Key::Backspace => {
                self.mode = Mode::PickReason { selected };
                return None;
            }
        };
        chosen.map(|r| self.not_ready(r))
    }

    fn transfer_key(&mut self, key: Key, mut input: String) -> Option<Request> {
        match key {
            Key::Esc => None,
            Key::Enter => {
                let target = input.trim().to_string();
                let call = self.call_id()?;
                if target.is_empty() {
                    return None;
                }
                Some(if self.queues.contains(&target) {
                    Request::TransferToQueue {
                        call,
                        queue: target,
                    }
                } else {
                    Request::TransferToAgent {
                        call,
                        agent: target,
                    }
                })
            }
            Key::Backspace => {
                input.pop();
                self.mode = Mode::Transfer { input };
                None
            }
            Key::Char(c) => {
                input.push(c);
                self.mode = Mode::Transfer { input };
                None
            }
            Key::Up | Key::Down => {
                self.mode = Mode::Transfer { input };
                None
            }
        }
    }
}
