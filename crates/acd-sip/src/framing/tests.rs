use super::*;
use crate::message::Method;

const OPTIONS: &[u8] = b"OPTIONS sip:edge SIP/2.0\r\n\
Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK-1\r\n\
From: <sip:a@x>;tag=1\r\n\
To: <sip:b@y>\r\n\
Call-ID: c1\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 5\r\n\
\r\n\
hello";

fn drain(f: &mut StreamFramer) -> Result<Vec<Frame>, FramingError> {
    let mut out = Vec::new();
    while let Some(frame) = f.poll()? {
        out.push(frame);
    }
    Ok(out)
}

fn body_of(frame: &Frame) -> &[u8] {
    match frame {
        Frame::Message(m) => m.body(),
        Frame::Ping => panic!("expected a message, got a ping"),
    }
}

#[test]
fn whole_message_in_one_read() {
    let mut f = StreamFramer::new(65536);
    f.push(OPTIONS);
    let frames = drain(&mut f).unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(body_of(&frames[0]), b"hello");
    assert!(!f.in_message());
    assert_eq!(f.buffered(), 0);
}

#[test]
fn byte_by_byte_yields_the_message_once_complete() {
    let mut f = StreamFramer::new(65536);
    for (i, b) in OPTIONS.iter().enumerate() {
        f.push(&[*b]);
        let frames = drain(&mut f).unwrap();
        if i + 1 < OPTIONS.len() {
            assert!(frames.is_empty(), "message yielded early at byte {i}");
            assert!(f.in_message());
        } else {
            assert_eq!(frames.len(), 1);
            assert_eq!(body_of(&frames[0]), b"hello");
        }
    }
}

#[test]
fn pipelined_messages_and_split_reads() {
    let mut stream = Vec::new();
    for _ in 0..3 {
        stream.extend_from_slice(OPTIONS);
    }
    for chunk in [1, 7, 100, 1000] {
        let mut f = StreamFramer::new(65536);
        let mut got = 0;
        for piece in stream.chunks(chunk) {
            f.push(piece);
            got += drain(&mut f).unwrap().len();
        }
        assert_eq!(got, 3, "chunk size {chunk}");
    }
}

#[test]
fn double_crlf_is_a_ping_single_crlf_is_skipped() {
    let mut f = StreamFramer::new(65536);
    f.push(b"\r\n\r\n");
    assert!(matches!(drain(&mut f).unwrap()[..], [Frame::Ping]));
    f.push(b"\r\n");
    assert!(drain(&mut f).unwrap().is_empty());
    assert!(!f.in_message(), "a lone CRLF is not the start of a message");
    f.push(OPTIONS);
    let frames = drain(&mut f).unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(body_of(&frames[0]), b"hello");
    // A ping split over two reads.
    f.push(b"\r\n\r");
    assert!(drain(&mut f).unwrap().is_empty());
    f.push(b"\n");
    assert!(matches!(drain(&mut f).unwrap()[..], [Frame::Ping]));
}

#[test]
fn lf_only_line_ends_are_accepted() {
    let text = String::from_utf8(OPTIONS.to_vec())
        .unwrap()
        .replace("\r\n", "\n");
    let mut f = StreamFramer::new(65536);
    f.push(text.as_bytes());
    let frames = drain(&mut f).unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(body_of(&frames[0]), b"hello");
}

#[test]
fn missing_content_length_means_empty_body() {
    let mut f = StreamFramer::new(65536);
    f.push(b"OPTIONS sip:e SIP/2.0\r\nCall-ID: x\r\n\r\nOPTIONS sip:e SIP/2.0\r\n\r\n");
    let frames = drain(&mut f).unwrap();
    assert_eq!(frames.len(), 2);
    assert!(body_of(&frames[0]).is_empty());
}

#[test]
fn garbage_start_line_is_an_error_with_a_400_when_salvageable() {
    let mut f = StreamFramer::new(65536);
    f.push(OPTIONS);
    f.push(
        b"OPTIONS sip:edge SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK-2\r\n\
From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: c2\r\nCSeq: 2 OPTIONS\r\n\
Content-Length: nope\r\n\r\n",
    );
    // The first message still comes out before the error.
    assert!(matches!(f.poll(), Ok(Some(Frame::Message(_)))));
    let err = f.poll().unwrap_err();
    assert!(matches!(err.error, ParseError::BadContentLength(_)));
    let resp = String::from_utf8(err.bad_request.unwrap()).unwrap();
    assert!(resp.starts_with("SIP/2.0 400 "), "{resp}");
    assert!(resp.contains("Call-ID: c2"), "{resp}");
    // Poisoned: nothing more comes out, whatever is pushed.
    f.push(OPTIONS);
    assert!(matches!(f.poll(), Ok(None)));
}

#[test]
fn binary_garbage_is_an_error_without_a_400() {
    let mut f = StreamFramer::new(65536);
    f.push(b"\x00\x01\x02 garbage\r\n\r\n");
    let err = f.poll().unwrap_err();
    assert!(err.bad_request.is_none());
}

#[test]
fn endless_header_section_is_bounded() {
    let mut f = StreamFramer::new(1024);
    f.push(b"OPTIONS sip:e SIP/2.0\r\n");
    let mut err = None;
    for _ in 0..200 {
        f.push(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        if let Err(e) = f.poll() {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("header section over the limit must fail");
    assert_eq!(err.error, ParseError::HeadersTooLarge);
    assert!(f.buffered() == 0, "buffer released after the error");
}

#[test]
fn declared_body_over_the_limit_fails_before_it_arrives() {
    let mut f = StreamFramer::new(1024);
    f.push(
        b"INVITE sip:e SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK-3\r\n\
From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: c3\r\nCSeq: 1 INVITE\r\n\
Content-Length: 999999\r\n\r\n",
    );
    let err = f.poll().unwrap_err();
    assert_eq!(err.error, ParseError::MessageTooLarge { limit: 1024 });
    let resp = String::from_utf8(err.bad_request.unwrap()).unwrap();
    assert!(resp.contains("larger than 1024"), "{resp}");
}

/// Feeding n bytes one at a time must cost O(n): the scan position is
/// kept between reads, so each byte is examined a bounded number of times.
#[test]
fn byte_by_byte_feeding_is_linear() {
    let mut msg = b"OPTIONS sip:edge SIP/2.0\r\nCall-ID: c\r\n".to_vec();
    while msg.len() < 60_000 {
        msg.extend_from_slice(b"X-Pad: 0123456789abcdef0123456789abcdef\r\n");
    }
    msg.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    let mut f = StreamFramer::new(65536);
    let mut frames = 0;
    for b in &msg {
        f.push(&[*b]);
        frames += drain(&mut f).unwrap().len();
    }
    assert_eq!(frames, 1);
    let n = msg.len() as u64;
    assert!(
        f.scanned_bytes() <= 2 * n,
        "scanned {} bytes for {n} bytes of input",
        f.scanned_bytes()
    );
}

#[test]
fn many_pipelined_messages_keep_the_buffer_small() {
    let mut f = StreamFramer::new(65536);
    let mut frames = 0;
    for _ in 0..10_000 {
        f.push(OPTIONS);
        f.push(b"\r\n\r\n");
        frames += drain(&mut f).unwrap().len();
        assert!(f.buf.len() <= 2 * COMPACT_AT + OPTIONS.len());
    }
    assert_eq!(frames, 20_000);
    assert!(f.scanned_bytes() <= 2 * 10_000 * (OPTIONS.len() as u64 + 4));
}

#[test]
fn request_method_survives_framing() {
    let mut f = StreamFramer::new(65536);
    f.push(OPTIONS);
    match f.poll() {
        Ok(Some(Frame::Message(Message::Request(r)))) => assert_eq!(r.method, Method::Options),
        other => panic!("{other:?}"),
    }
}
