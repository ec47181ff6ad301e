//! Incremental framing for stream transports (TCP), linear in the bytes received.
//!
//! [`super::parse_stream`] is stateless: called after every read on a growing buffer it
//! rescans the whole header section each time, and once the head is complete it
//! re-parses it on every read until the body is in. A peer trickling a 64 KiB head
//! and a 1 MiB body a byte per segment made that quadratic (≈10¹⁰ byte visits per
//! connection; found while writing the `sip_stream` fuzz target). The framer keeps
//! how far it has searched and, once the head is parsed, how many bytes the message
//! needs, so each byte is looked at a bounded number of times. The message and the
//! errors are exactly those of `parse_stream` (the fuzz target checks it).

use super::{content_length, find_header_end, parse_head, parse_stream, ParseError};
use super::{Message, MAX_BODY_BYTES, MAX_HEADER_BYTES};

/// Buffers a byte stream and yields the SIP messages in it.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
    /// Bytes at the start of `buf` already searched for the end of the head.
    searched: usize,
    /// Once the head is complete: the length of the whole message.
    needed: Option<usize>,
}

impl StreamFramer {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet framed (e.g. to salvage a 400 after an error).
    #[must_use]
    pub fn buffer(&self) -> &[u8] {
        &self.buf
    }

    /// The next complete message, `Ok(None)` if more bytes are needed. After an error
    /// the stream cannot be resynchronised: close the connection.
    pub fn next_message(&mut self) -> Result<Option<Message>, ParseError> {
        let Some(needed) = self
            .needed
            .map_or_else(|| self.find_head(), |n| Ok(Some(n)))?
        else {
            return Ok(None);
        };
        if self.buf.len() < needed {
            return Ok(None);
        }
        // Complete: frame it once with the stateless parser, so both agree exactly.
        let Some((msg, used)) = parse_stream(&self.buf)? else {
            return Ok(None); // unreachable: the head and body are in the buffer
        };
        self.buf.drain(..used);
        self.searched = 0;
        self.needed = None;
        Ok(Some(msg))
    }

    /// Searches only the bytes not searched before; on finding the end of the head,
    /// parses it once for Content-Length and returns the message's total length.
    fn find_head(&mut self) -> Result<Option<usize>, ParseError> {
        // Leading CRLFs are keep-alives (RFC 5626 §3.5.1): consumed, never framed.
        let skip = self
            .buf
            .iter()
            .position(|b| *b != b'\r' && *b != b'\n')
            .unwrap_or(self.buf.len());
        if skip > 0 {
            self.buf.drain(..skip);
            self.searched = 0;
        }
        // A header end is at most 3 bytes ("\n\r\n"); resume 2 bytes back so one split
        // across reads is still seen.
        let from = self.searched.saturating_sub(2);
        let Some(end) = find_header_end(&self.buf[from..]).map(|e| from + e) else {
            self.searched = self.buf.len();
            if self.buf.len() > MAX_HEADER_BYTES {
                return Err(ParseError::HeadersTooLarge);
            }
            return Ok(None);
        };
        if end > MAX_HEADER_BYTES {
            return Err(ParseError::HeadersTooLarge);
        }
        let (_, headers) = parse_head(&self.buf[..end])?;
        let len = content_length(&headers)?.unwrap_or(0);
        if len > MAX_BODY_BYTES {
            return Err(ParseError::BodyTooLarge);
        }
        self.needed = Some(end + len);
        Ok(self.needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
        From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
        Content-Length: 4\r\n\r\nbody";

    #[test]
    fn byte_at_a_time_matches_parse_stream() {
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(OPTIONS);
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(OPTIONS);
        let mut f = StreamFramer::new();
        let mut got = Vec::new();
        for b in &stream {
            f.push(&[*b]);
            while let Some(m) = f.next_message().unwrap() {
                got.push(m);
            }
        }
        let (one, _) = parse_stream(OPTIONS).unwrap().unwrap();
        assert_eq!(got, vec![one.clone(), one]);
        assert!(f.buffer().is_empty());
    }

    #[test]
    fn errors_are_those_of_parse_stream() {
        let mut f = StreamFramer::new();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 2000000\r\n\r\n");
        assert_eq!(f.next_message(), Err(ParseError::BodyTooLarge));
        let mut f = StreamFramer::new();
        f.push(&vec![b'a'; MAX_HEADER_BYTES + 1]);
        assert_eq!(f.next_message(), Err(ParseError::HeadersTooLarge));
    }

    /// The quadratic case: a head trickled one byte per read is searched once, not once
    /// per read (`searched` only moves forward while the head is incomplete).
    #[test]
    fn trickled_head_is_searched_incrementally() {
        let mut f = StreamFramer::new();
        for (i, b) in OPTIONS.iter().take(40).enumerate() {
            f.push(&[*b]);
            assert_eq!(f.next_message(), Ok(None));
            assert_eq!(f.searched, i + 1);
        }
    }
}
