//! The wire protocol of a live hand-over between two processes over a Unix
//! stream socket. No tokio here: both sides call it from a blocking thread,
//! and the tests drive it over a socketpair.
//!
//! ```text
//! new ─ frame: Request {version}                                  ─▶ old
//! old ─ frame: Header {version, descriptors[], payload_len}       ─▶ new
//! old ─ frame: payload (the snapshot, JSON)                       ─▶ new
//! old ─ batches: [u16 count] + SCM_RIGHTS(count ≤ 253 descriptors) ─▶ new
//! new ─ frame: Reply::Done | Reply::Abort(reason)                 ─▶ old
//! ```
//! A frame is a big-endian u32 length and that many bytes. Every read asks
//! for exactly the bytes of its frame, so no read ever swallows the bytes
//! that carry the descriptors (the kernel would close them).

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{Deserialize, Serialize};

/// Bumped on every incompatible change; a newer header is refused (the old
/// process then keeps serving).
pub const VERSION: u32 = 1;
/// Descriptors per `sendmsg`: Linux refuses more than 253 (SCM_MAX_FD).
pub const MAX_FDS_PER_MESSAGE: usize = 253;
/// Largest frame accepted (a snapshot of thousands of calls is a few MB).
const MAX_FRAME: usize = 512 << 20;

/// What one passed descriptor is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FdKind {
    SipUdp,
    SipTcpListener,
    SipTlsListener,
    GrpcListener,
    MetricsListener,
    /// One of a call's four media sockets.
    Rtp {
        call: String,
        leg: MediaLeg,
        rtcp: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaLeg {
    Caller,
    Agent,
}

/// Asks the running process for its sockets and state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub version: u32,
}

/// Describes everything that follows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub version: u32,
    /// One entry per descriptor, in the order they are sent.
    pub descriptors: Vec<FdKind>,
    pub payload_len: u64,
}

/// The new process's last word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Serving: the old process may exit.
    Done,
    /// Not serving: the old process resumes.
    Abort(String),
}

/// A received hand-over: the header, the payload and the descriptors in
/// header order.
#[derive(Debug)]
pub struct Transfer {
    pub header: Header,
    pub payload: Vec<u8>,
    pub fds: Vec<OwnedFd>,
}

#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error("hand-over socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("hand-over protocol version {got} is newer than this build's {VERSION}")]
    Version { got: u32 },
    #[error("hand-over message does not decode: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("hand-over: {0}")]
    Protocol(String),
    #[error("hand-over aborted by the new process: {0}")]
    Aborted(String),
}

/// Received descriptors by what they are; each can be taken once. What is
/// not taken is closed when this is dropped.
#[derive(Debug, Default)]
pub struct Descriptors {
    by_kind: std::collections::HashMap<FdKind, OwnedFd>,
}

impl Descriptors {
    /// Pairs the header's table with the descriptors in order.
    pub fn new(kinds: Vec<FdKind>, fds: Vec<OwnedFd>) -> Descriptors {
        Descriptors {
            by_kind: kinds.into_iter().zip(fds).collect(),
        }
    }

    pub fn take(&mut self, kind: &FdKind) -> Option<OwnedFd> {
        self.by_kind.remove(kind)
    }

    pub fn len(&self) -> usize {
        self.by_kind.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_kind.is_empty()
    }
}

fn write_frame(sock: &mut UnixStream, bytes: &[u8]) -> Result<(), HandoverError> {
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME)
        .ok_or_else(|| HandoverError::Protocol(format!("frame of {} bytes", bytes.len())))?;
    sock.write_all(&len.to_be_bytes())?;
    sock.write_all(bytes)?;
    Ok(())
}

fn read_frame(sock: &mut UnixStream) -> Result<Vec<u8>, HandoverError> {
    let mut len = [0u8; 4];
    sock.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(HandoverError::Protocol(format!(
            "frame of {len} bytes (at most {MAX_FRAME})"
        )));
    }
    let mut buf = vec![0u8; len];
    sock.read_exact(&mut buf)?;
    Ok(buf)
}

fn write_json<T: Serialize>(sock: &mut UnixStream, v: &T) -> Result<(), HandoverError> {
    write_frame(sock, &serde_json::to_vec(v)?)
}

fn read_json<T: for<'de> Deserialize<'de>>(sock: &mut UnixStream) -> Result<T, HandoverError> {
    Ok(serde_json::from_slice(&read_frame(sock)?)?)
}

/// New process: ask for the hand-over.
pub fn send_request(sock: &mut UnixStream) -> Result<(), HandoverError> {
    write_json(sock, &Request { version: VERSION })
}

/// Old process: read the request; a newer protocol is refused.
pub fn recv_request(sock: &mut UnixStream) -> Result<Request, HandoverError> {
    let req: Request = read_json(sock)?;
    if req.version > VERSION {
        return Err(HandoverError::Version { got: req.version });
    }
    Ok(req)
}

/// Old process: the header, the payload, then the descriptors (same order
/// as `descriptors`) in batches of at most [`MAX_FDS_PER_MESSAGE`].
pub fn send_transfer(
    sock: &mut UnixStream,
    descriptors: Vec<FdKind>,
    payload: &[u8],
    fds: &[BorrowedFd<'_>],
) -> Result<(), HandoverError> {
    if descriptors.len() != fds.len() {
        return Err(HandoverError::Protocol(format!(
            "{} descriptors described, {} given",
            descriptors.len(),
            fds.len()
        )));
    }
    let header = Header {
        version: VERSION,
        descriptors,
        payload_len: payload.len() as u64,
    };
    write_json(sock, &header)?;
    write_frame(sock, payload)?;
    for batch in fds.chunks(MAX_FDS_PER_MESSAGE) {
        let raw: Vec<RawFd> = batch.iter().map(AsRawFd::as_raw_fd).collect();
        let count = (raw.len() as u16).to_be_bytes();
        let iov = [IoSlice::new(&count)];
        let cmsg = [ControlMessage::ScmRights(&raw)];
        let sent = sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
            .map_err(std::io::Error::from)?;
        if sent != count.len() {
            return Err(HandoverError::Protocol("short descriptor batch".into()));
        }
    }
    Ok(())
}

/// New process: everything [`send_transfer`] sent. A header of a newer
/// version is refused before anything else is read.
pub fn recv_transfer(sock: &mut UnixStream) -> Result<Transfer, HandoverError> {
    let header: Header = read_json(sock)?;
    if header.version > VERSION {
        return Err(HandoverError::Version {
            got: header.version,
        });
    }
    let payload = read_frame(sock)?;
    if payload.len() as u64 != header.payload_len {
        return Err(HandoverError::Protocol(format!(
            "payload of {} bytes, header says {}",
            payload.len(),
            header.payload_len
        )));
    }
    let want = header.descriptors.len();
    let mut fds = Vec::with_capacity(want);
    while fds.len() < want {
        recv_batch(sock, &mut fds)?;
    }
    if fds.len() != want {
        return Err(HandoverError::Protocol(format!(
            "{} descriptors received, {want} described",
            fds.len()
        )));
    }
    Ok(Transfer {
        header,
        payload,
        fds,
    })
}

/// One `recvmsg`: its count and its descriptors (owned at once, so an error
/// later closes them).
fn recv_batch(sock: &mut UnixStream, fds: &mut Vec<OwnedFd>) -> Result<(), HandoverError> {
    let mut count = [0u8; 2];
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS_PER_MESSAGE]);
    let mut got = Vec::new();
    let (bytes, truncated) = {
        let mut iov = [IoSliceMut::new(&mut count)];
        let msg = recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(std::io::Error::from)?;
        for c in msg.cmsgs().map_err(std::io::Error::from)? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                // SAFETY: the kernel just installed these descriptors in
                // this process for us; nothing else owns them.
                got.extend(
                    raw.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        (msg.bytes, msg.flags.contains(MsgFlags::MSG_CTRUNC))
    };
    let received = got.len();
    fds.extend(got);
    if bytes == 0 {
        return Err(HandoverError::Protocol(
            "the old process closed the socket mid-transfer".into(),
        ));
    }
    if bytes != count.len() {
        // The rest of the count: a stream may split it (never in practice).
        sock.read_exact(&mut count[bytes..])?;
    }
    if truncated {
        return Err(HandoverError::Protocol(
            "descriptors lost (control data truncated; out of descriptors?)".into(),
        ));
    }
    let announced = u16::from_be_bytes(count) as usize;
    if announced != received {
        return Err(HandoverError::Protocol(format!(
            "batch announced {announced} descriptors, {received} arrived"
        )));
    }
    Ok(())
}

/// New process: tell the old one how it went.
pub fn send_reply(sock: &mut UnixStream, reply: &Reply) -> Result<(), HandoverError> {
    write_json(sock, reply)
}

/// Old process: the new one's verdict. A closed socket is an abort.
pub fn recv_reply(sock: &mut UnixStream) -> Result<(), HandoverError> {
    match read_json(sock) {
        Ok(Reply::Done) => Ok(()),
        Ok(Reply::Abort(why)) => Err(HandoverError::Aborted(why)),
        Err(HandoverError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(
            HandoverError::Aborted("the new process closed the socket".into()),
        ),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// A pipe per pair of descriptors: what the write end gets, the read
    /// end received on the other side yields, so each passed fd is checked
    /// to be the one described at its index.
    #[test]
    fn six_hundred_descriptors_cross_in_batches_in_order() {
        let (mut old, mut new) = UnixStream::pair().unwrap();
        let pipes: Vec<(std::fs::File, std::fs::File)> = (0..300)
            .map(|_| {
                let (r, w) = nix::unistd::pipe().unwrap();
                (std::fs::File::from(r), std::fs::File::from(w))
            })
            .collect();
        let mut kinds = Vec::new();
        let mut fds: Vec<BorrowedFd<'_>> = Vec::new();
        for (i, (r, w)) in pipes.iter().enumerate() {
            for (end, rtcp) in [(r, false), (w, true)] {
                kinds.push(FdKind::Rtp {
                    call: format!("c{i}"),
                    leg: MediaLeg::Caller,
                    rtcp,
                });
                fds.push(end.as_fd());
            }
        }
        assert_eq!(fds.len(), 600);
        let payload = b"{\"snapshot\":true}".to_vec();
        let sender = std::thread::scope(|s| {
            let h = s.spawn(|| {
                send_request(&mut new).unwrap();
                recv_transfer(&mut new)
            });
            recv_request(&mut old).unwrap();
            send_transfer(&mut old, kinds.clone(), &payload, &fds).unwrap();
            h.join().unwrap()
        });
        let t = sender.unwrap();
        assert_eq!(t.header.descriptors, kinds);
        assert_eq!(t.payload, payload);
        assert_eq!(t.fds.len(), 600);
        // Write through each received write end; read through the original
        // read end of the same pipe (and the other way round).
        for (i, (r, _)) in pipes.iter().enumerate() {
            let mut w = std::fs::File::from(t.fds[2 * i + 1].try_clone().unwrap());
            w.write_all(&(i as u32).to_be_bytes()).unwrap();
            let mut got = [0u8; 4];
            (&*r).read_exact(&mut got).unwrap();
            assert_eq!(u32::from_be_bytes(got), i as u32, "pipe {i}");
        }
        send_reply(&mut new, &Reply::Done).unwrap();
        recv_reply(&mut old).unwrap();
    }

    #[test]
    fn a_newer_header_is_refused() {
        let (mut old, mut new) = UnixStream::pair().unwrap();
        write_json(
            &mut old,
            &Header {
                version: VERSION + 1,
                descriptors: vec![FdKind::SipUdp],
                payload_len: 0,
            },
        )
        .unwrap();
        match recv_transfer(&mut new) {
            Err(HandoverError::Version { got }) => assert_eq!(got, VERSION + 1),
            other => panic!("{other:?}"),
        }
        write_json(
            &mut new,
            &Request {
                version: VERSION + 1,
            },
        )
        .unwrap();
        assert!(matches!(
            recv_request(&mut old),
            Err(HandoverError::Version { .. })
        ));
    }

    #[test]
    fn an_abort_or_a_closed_socket_is_an_abort() {
        let (mut old, mut new) = UnixStream::pair().unwrap();
        send_reply(&mut new, &Reply::Abort("cannot restore".into())).unwrap();
        assert!(
            matches!(recv_reply(&mut old), Err(HandoverError::Aborted(w)) if w == "cannot restore")
        );
        drop(new);
        assert!(matches!(
            recv_reply(&mut old),
            Err(HandoverError::Aborted(_))
        ));
    }

    #[test]
    fn descriptors_and_their_table_must_agree() {
        let (mut old, _new) = UnixStream::pair().unwrap();
        let f = std::fs::File::open("/dev/null").unwrap();
        let e = send_transfer(&mut old, vec![], b"", &[f.as_fd()]);
        assert!(matches!(e, Err(HandoverError::Protocol(_))));
    }
}
