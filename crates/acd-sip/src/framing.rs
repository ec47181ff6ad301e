//! Incremental message framing for stream transports (TCP, TLS; RFC 3261
//! §18.3): bytes go in as they arrive, whole messages come out.
//!
//! The framer keeps its scan position between reads, so a peer that sends
//! one byte at a time costs O(n) in total, not O(n²): the end of the header
//! section is searched for once, then the framer only counts body bytes
//! until Content-Length is reached. Every message is bounded by
//! `max_message` bytes (and the header section also by
//! [`MAX_HEADER_BYTES`](crate::message::MAX_HEADER_BYTES)).
//!
//! Between messages, CR and LF are skipped; a double CRLF there is an
//! RFC 5626 §3.5.1 keep-alive ping, reported as [`Frame::Ping`] so the shell
//! answers [`PONG`].
//!
//! ```text
//! read() ─▶ push(bytes) ─▶ poll() until Ok(None) ─▶ Frame::Message / Frame::Ping
//!                                  └─▶ Err(FramingError): write its 400, close
//! ```

use crate::message::{
    bad_request_for, build, content_length, parse_head, Message, ParseError, MAX_HEADER_BYTES,
};

/// The answer to a double-CRLF keep-alive ping (RFC 5626 §3.5.1).
pub const PONG: &[u8] = b"\r\n";

/// Consumed bytes are dropped from the front of the buffer once they are at
/// least this many and at least half the buffer, so compaction stays linear.
const COMPACT_AT: usize = 4096;

/// What a stream yields.
#[derive(Debug)]
#[non_exhaustive]
pub enum Frame {
    Message(Message),
    /// A double CRLF between messages: answer with [`PONG`].
    Ping,
}

/// The stream cannot be resynchronised: answer `bad_request` (if any) on
/// the same connection, then close it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct FramingError {
    pub error: ParseError,
    /// A ready `400 Bad Request` when the broken message was a request
    /// whose Via/From/To/Call-ID/CSeq could be read.
    pub bad_request: Option<Vec<u8>>,
}

#[derive(Debug)]
enum State {
    /// Between messages; `crlf` is how much of "\r\n\r\n" was just seen.
    Between { crlf: u8 },
    /// Looking for the empty line; bytes before `scan` are known not to end it.
    Head { start: usize, scan: usize },
    /// Header section parsed; waiting until the buffer reaches `end`.
    Body {
        start: usize,
        head_end: usize,
        end: usize,
    },
    /// A framing error was reported; nothing more comes out.
    Failed,
}

/// Sans-IO stream framer. Feed with [`push`](Self::push), drain with
/// [`poll`](Self::poll) until it returns `Ok(None)`.
#[derive(Debug)]
pub struct StreamFramer {
    buf: Vec<u8>,
    /// First byte not yet consumed (in `Between`) or the current message's start.
    pos: usize,
    state: State,
    max_message: usize,
    scanned: u64,
}

impl StreamFramer {
    /// A framer accepting messages (header section + body) of at most
    /// `max_message` bytes.
    pub fn new(max_message: usize) -> StreamFramer {
        StreamFramer {
            buf: Vec::new(),
            pos: 0,
            state: State::Between { crlf: 0 },
            max_message,
            scanned: 0,
        }
    }

    /// Appends received bytes. Bytes after a framing error are ignored.
    pub fn push(&mut self, bytes: &[u8]) {
        if !matches!(self.state, State::Failed) {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// True while a message has started but is not complete: the shell's
    /// header/body timeout runs only then (keep-alives are not messages).
    pub fn in_message(&self) -> bool {
        matches!(self.state, State::Head { .. } | State::Body { .. })
    }

    /// Bytes held for an incomplete message.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes examined so far (each at most a small constant number of
    /// times): lets tests prove the framer is linear in its input.
    pub fn scanned_bytes(&self) -> u64 {
        self.scanned
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    #[must_use = "frames must be drained until Ok(None)"]
    pub fn poll(&mut self) -> Result<Option<Frame>, FramingError> {
        loop {
            match self.state {
                State::Failed => return Ok(None),
                State::Between { crlf } => match self.between(crlf) {
                    Some(frame) => return Ok(Some(frame)),
                    None if matches!(self.state, State::Between { .. }) => return Ok(None),
                    None => {}
                },
                State::Head { start, scan } => match self.head(start, scan) {
                    Ok(true) => {}
                    Ok(false) => return Ok(None),
                    Err(e) => return Err(e),
                },
                State::Body {
                    start,
                    head_end,
                    end,
                } => {
                    if self.buf.len() < end {
                        return Ok(None);
                    }
                    return self.finish(start, head_end, end).map(Some);
                }
            }
        }
    }

    /// Skips CR/LF; returns a ping on a double CRLF, or moves to `Head` at
    /// the first other byte.
    fn between(&mut self, mut crlf: u8) -> Option<Frame> {
        const PING: &[u8; 4] = b"\r\n\r\n";
        while let Some(&b) = self.buf.get(self.pos) {
            self.scanned += 1;
            match b {
                b'\r' | b'\n' => {
                    self.pos += 1;
                    crlf = if b == PING[usize::from(crlf)] {
                        crlf + 1
                    } else {
                        u8::from(b == b'\r')
                    };
                    if usize::from(crlf) == PING.len() {
                        self.state = State::Between { crlf: 0 };
                        self.compact();
                        return Some(Frame::Ping);
                    }
                }
                _ => {
                    self.state = State::Head {
                        start: self.pos,
                        scan: self.pos,
                    };
                    return None;
                }
            }
        }
        self.state = State::Between { crlf };
        self.compact();
        None
    }

    /// Resumes the search for the empty line at `scan`. Ok(true): the
    /// header section was parsed and the state moved on to `Body`.
    fn head(&mut self, start: usize, mut scan: usize) -> Result<bool, FramingError> {
        let limit = self.max_message.min(MAX_HEADER_BYTES);
        let found = loop {
            let Some(&b) = self.buf.get(scan) else {
                break None;
            };
            if b == b'\n' {
                // Needs up to two bytes of lookahead: stop here until they arrive.
                match (
                    self.buf.get(scan + 1).copied(),
                    self.buf.get(scan + 2).copied(),
                ) {
                    (Some(b'\n'), _) => break Some(scan + 2),
                    (Some(b'\r'), Some(b'\n')) => break Some(scan + 3),
                    (None, _) | (Some(b'\r'), None) => break None,
                    _ => {}
                }
            }
            self.scanned += 1;
            scan += 1;
        };
        let Some(head_end) = found else {
            if scan - start > limit {
                return Err(self.fail(ParseError::HeadersTooLarge, start, self.buf.len()));
            }
            self.state = State::Head { start, scan };
            return Ok(false);
        };
        if head_end - start > limit {
            return Err(self.fail(ParseError::HeadersTooLarge, start, head_end));
        }
        let (_, headers) = match parse_head(&self.buf[start..head_end]) {
            Ok(parsed) => parsed,
            Err(e) => return Err(self.fail(e, start, head_end)),
        };
        // §18.3: Content-Length is mandatory on streams; a missing one is 0.
        let len = match content_length(&headers) {
            Ok(len) => len.unwrap_or(0),
            Err(e) => return Err(self.fail(e, start, head_end)),
        };
        let end = head_end.saturating_add(len);
        if end - start > self.max_message {
            let e = ParseError::MessageTooLarge {
                limit: self.max_message,
            };
            return Err(self.fail(e, start, head_end));
        }
        self.state = State::Body {
            start,
            head_end,
            end,
        };
        Ok(true)
    }

    fn finish(&mut self, start: usize, head_end: usize, end: usize) -> Result<Frame, FramingError> {
        // The head parsed once already; parsing again here keeps the state
        // small (no parsed headers held while the body trickles in).
        let (line, headers) = match parse_head(&self.buf[start..head_end]) {
            Ok(parsed) => parsed,
            Err(e) => return Err(self.fail(e, start, head_end)),
        };
        let msg = build(line, headers, self.buf[head_end..end].to_vec());
        self.pos = end;
        self.state = State::Between { crlf: 0 };
        self.compact();
        Ok(Frame::Message(msg))
    }

    fn fail(&mut self, error: ParseError, start: usize, head_end: usize) -> FramingError {
        let bad_request = bad_request_for(&self.buf[start..head_end], &error.to_string());
        self.state = State::Failed;
        self.buf = Vec::new();
        self.pos = 0;
        FramingError { error, bad_request }
    }

    /// Only called between messages, when `pos` is the sole live offset.
    fn compact(&mut self) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos >= COMPACT_AT && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }
}

#[cfg(test)]
mod tests;
