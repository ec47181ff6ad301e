//! The RTP streams: one socket per side (A = callers, B = agents) for all
//! calls, packets paced per tick and sent with `sendmmsg`, received with
//! `recvmmsg`. Every buffer is allocated before the first packet; the packet
//! path only writes into them.
//!
//! A PCMU payload carries a probe (magic, call index, direction, sequence,
//! send time on CLOCK_MONOTONIC): relays rewrite RTP headers (SSRC, seq,
//! timestamp) but forward a G.711 payload as it is, so the receiver matches
//! packets by payload.

use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::hist::Histogram;

pub const HEADER: usize = 12;
pub const PAYLOAD: usize = 160;
pub const PACKET: usize = HEADER + PAYLOAD;
/// "RTPL": marks a probe payload.
pub const MAGIC: u32 = 0x5254_504c;
/// One packet per 20 ms per direction per call (PCMU, ptime 20).
pub const PERIOD_NS: u64 = 20_000_000;
/// Messages per `sendmmsg`/`recvmmsg` call.
const BATCH: usize = 64;
/// Receive buffers are larger than a probe so an oversize packet is seen as such.
const RECV_BUF: usize = 512;

/// Direction of a stream: 0 = A (caller) to B (agent), 1 = B to A.
pub const A_TO_B: usize = 0;
pub const B_TO_A: usize = 1;

pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps until CLOCK_MONOTONIC reaches `deadline_ns` (absolute, so ticks do not drift).
fn sleep_until(deadline_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: plain syscall with a valid timespec; EINTR just ends the sleep early.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    };
}

fn ssrc(call: u32, dir: usize) -> u32 {
    0x5100_0000 ^ (call << 1) ^ dir as u32
}

/// Writes a probe packet (header and the first 24 bytes of the payload; the
/// rest of the payload is PCMU silence, written once).
pub fn fill(pkt: &mut [u8; PACKET], call: u32, dir: usize, seq: u32, now_ns: u64) {
    pkt[0] = 0x80;
    pkt[1] = 0; // PT 0 PCMU
    pkt[2..4].copy_from_slice(&(seq as u16).to_be_bytes());
    pkt[4..8].copy_from_slice(&seq.wrapping_mul(PAYLOAD as u32).to_be_bytes());
    pkt[8..12].copy_from_slice(&ssrc(call, dir).to_be_bytes());
    let p = &mut pkt[HEADER..];
    p[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    p[4..8].copy_from_slice(&call.to_be_bytes());
    p[8..12].copy_from_slice(&(dir as u32).to_be_bytes());
    p[12..16].copy_from_slice(&seq.to_be_bytes());
    p[16..24].copy_from_slice(&now_ns.to_be_bytes());
}

/// What a received probe says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub call: u32,
    pub dir: usize,
    pub seq: u32,
    pub sent_ns: u64,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The probe in an RTP packet (CSRCs and a header extension skipped), if any.
pub fn parse(pkt: &[u8]) -> Option<Probe> {
    let b0 = *pkt.first()?;
    if b0 >> 6 != 2 {
        return None;
    }
    let mut off = HEADER + 4 * usize::from(b0 & 0x0f);
    if b0 & 0x10 != 0 {
        let words = u16::from_be_bytes(pkt.get(off + 2..off + 4)?.try_into().ok()?);
        off += 4 + 4 * usize::from(words);
    }
    let p = pkt.get(off..)?;
    if be32(p, 0)? != MAGIC {
        return None;
    }
    let dir = be32(p, 8)? as usize;
    let hi = u64::from(be32(p, 16)?);
    let lo = u64::from(be32(p, 20)?);
    (dir <= 1).then_some(Probe {
        call: be32(p, 4)?,
        dir,
        seq: be32(p, 12)?,
        sent_ns: hi << 32 | lo,
    })
}

/// Large socket buffers: a 2-core machine shared with the relay can leave
/// the receiver off-CPU for milliseconds. Returns the effective sizes.
pub fn tune_socket(sock: &UdpSocket, bytes: i32) -> (i32, i32) {
    let fd = sock.as_raw_fd();
    let set = |opt_force, opt| {
        let v = bytes;
        let len = std::mem::size_of::<i32>() as libc::socklen_t;
        let p = &v as *const i32 as *const libc::c_void;
        // SAFETY: setsockopt reads an i32 of the given length; FORCE needs
        // CAP_NET_ADMIN, else the plain option is capped at rmem_max/wmem_max.
        unsafe {
            if libc::setsockopt(fd, libc::SOL_SOCKET, opt_force, p, len) != 0 {
                libc::setsockopt(fd, libc::SOL_SOCKET, opt, p, len);
            }
        }
    };
    set(libc::SO_RCVBUFFORCE, libc::SO_RCVBUF);
    set(libc::SO_SNDBUFFORCE, libc::SO_SNDBUF);
    let get = |opt| {
        let mut v: i32 = 0;
        let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `v`.
        unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                &mut v as *mut i32 as *mut libc::c_void,
                &mut len,
            )
        };
        v
    };
    (get(libc::SO_RCVBUF), get(libc::SO_SNDBUF))
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// One iovec per buffer (the buffers must not move afterwards).
fn iovecs<const N: usize>(bufs: &mut [[u8; N]]) -> Vec<libc::iovec> {
    bufs.iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr() as *mut libc::c_void,
            iov_len: N,
        })
        .collect()
}

/// Where each call's streams go: `dst[call][dir]` is the address the
/// direction's sending socket sends to (the relay's port for that leg).
pub struct Targets {
    pub dst: Vec<[SocketAddrV4; 2]>,
}

/// One socket's pending `sendmmsg` batch; the header arrays point into the
/// buffers, which never move after `new`.
struct SendBatch {
    bufs: Vec<[u8; PACKET]>,
    addrs: Vec<libc::sockaddr_in>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    calls: Vec<u32>,
    len: usize,
}

impl SendBatch {
    fn new() -> Box<Self> {
        let mut b = Box::new(SendBatch {
            bufs: vec![[0xff; PACKET]; BATCH],
            addrs: vec![sockaddr(SocketAddrV4::new([0, 0, 0, 0].into(), 0)); BATCH],
            iovs: Vec::new(),
            // SAFETY: mmsghdr is plain data; all-zero is a valid value.
            hdrs: vec![unsafe { std::mem::zeroed() }; BATCH],
            calls: vec![0; BATCH],
            len: 0,
        });
        b.iovs = iovecs(&mut b.bufs);
        for i in 0..BATCH {
            let h = &mut b.hdrs[i].msg_hdr;
            h.msg_name = &mut b.addrs[i] as *mut libc::sockaddr_in as *mut libc::c_void;
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_iov = &mut b.iovs[i];
            h.msg_iovlen = 1;
        }
        b
    }
}

/// What the sender did.
pub struct SendReport {
    /// Packets accepted by the kernel per call and direction.
    pub sent: Vec<[u32; 2]>,
    pub send_errors: u64,
    /// Worst lateness of a tick behind its schedule (generator starved).
    pub max_late_us: u64,
    /// Call frames (one packet each way) skipped because the sender was
    /// starved for more than a period: not sent, so not lost either.
    pub skipped: u64,
}

/// Paces every call's two streams until `stop`: call `i`'s packets are due
/// at `start + k * 20 ms + i * 20 ms / n`, so the load is spread evenly over
/// the period; due packets are sent once per tick of about `tick` in
/// batches.
pub fn run_sender(
    socks: [&UdpSocket; 2],
    targets: &Targets,
    tick: Duration,
    stop: &AtomicBool,
    sent_total: &AtomicU64,
) -> SendReport {
    let n = targets.dst.len().max(1) as u64;
    let mut batches = [SendBatch::new(), SendBatch::new()];
    let mut report = SendReport {
        sent: vec![[0; 2]; targets.dst.len()],
        send_errors: 0,
        max_late_us: 0,
        skipped: 0,
    };
    if targets.dst.is_empty() {
        return report;
    }
    let fds = [socks[0].as_raw_fd(), socks[1].as_raw_fd()];
    let tick_ns = tick.as_nanos().max(100_000) as u64;
    let start = mono_ns() + 2_000_000;
    let (mut frame, mut idx) = (0u64, 0u64);
    let due = |frame: u64, idx: u64| start + frame * PERIOD_NS + idx * PERIOD_NS / n;
    while !stop.load(Ordering::Relaxed) {
        let now = mono_ns();
        let first = due(frame, idx);
        if first <= now {
            report.max_late_us = report.max_late_us.max((now - first) / 1000);
        }
        // Starved for more than a period (a loaded machine): skip what is
        // overdue rather than send it in one burst the relay would queue.
        while due(frame, idx) + PERIOD_NS < now {
            report.skipped += 1;
            idx += 1;
            if idx == n {
                idx = 0;
                frame += 1;
            }
        }
        while due(frame, idx) <= now {
            let call = idx as u32;
            for dir in [A_TO_B, B_TO_A] {
                let b = &mut batches[dir];
                fill(&mut b.bufs[b.len], call, dir, frame as u32, now);
                b.addrs[b.len] = sockaddr(targets.dst[idx as usize][dir]);
                b.calls[b.len] = call;
                b.len += 1;
                if b.len == BATCH {
                    flush(fds[dir], b, dir, &mut report, sent_total);
                }
            }
            idx += 1;
            if idx == n {
                idx = 0;
                frame += 1;
            }
        }
        for dir in [A_TO_B, B_TO_A] {
            flush(fds[dir], &mut batches[dir], dir, &mut report, sent_total);
        }
        sleep_until(due(frame, idx).max(now + tick_ns));
    }
    report
}

fn flush(fd: i32, b: &mut SendBatch, dir: usize, report: &mut SendReport, total: &AtomicU64) {
    // The send time is stamped right before the syscall, so time spent
    // filling the batch is not counted as the relay's.
    let now = mono_ns().to_be_bytes();
    for buf in &mut b.bufs[..b.len] {
        buf[HEADER + 16..HEADER + 24].copy_from_slice(&now);
    }
    let mut done = 0usize;
    while done < b.len {
        // SAFETY: hdrs[done..len] point at live buffers/addresses of `b`.
        let r = unsafe {
            libc::sendmmsg(
                fd,
                b.hdrs.as_mut_ptr().add(done),
                (b.len - done) as libc::c_uint,
                0,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            // The message at `done` is refused (e.g. ENOBUFS): count it, go on.
            report.send_errors += 1;
            done += 1;
            continue;
        }
        for j in done..done + r as usize {
            report.sent[b.calls[j] as usize][dir] += 1;
        }
        total.fetch_add(r as u64, Ordering::Relaxed);
        done += r as usize;
    }
    b.len = 0;
}

/// Per stream (call, direction) receive counters, in flat arrays sized
/// before the first packet.
pub struct RecvStats {
    pub received: Vec<[u32; 2]>,
    pub duplicates: Vec<[u32; 2]>,
    pub reordered: Vec<[u32; 2]>,
    max_seq: Vec<[i64; 2]>,
    seen: Vec<u64>,
    words: usize,
    /// One-way latency of packets sent in the steady window (from `steady_from_ns`).
    pub hist: [Histogram; 2],
    /// Every packet's latency, warm-up included.
    pub hist_all: Histogram,
    pub steady_from_ns: u64,
    /// Worst latency (µs) of the packets sent in each 100 ms from
    /// `timeline_from_ns`: one stall tells a one-off from a periodic pause.
    pub timeline_max_us: Vec<u64>,
    pub timeline_from_ns: u64,
    /// Datagrams that are no probe of ours, or name a call or direction
    /// that cannot arrive on that socket.
    pub foreign: u64,
    /// Probes with a sequence beyond the run's length (cannot be tracked).
    pub out_of_range: u64,
}

impl RecvStats {
    pub fn new(calls: usize, max_frames: usize) -> Self {
        let words = max_frames.div_ceil(64);
        RecvStats {
            received: vec![[0; 2]; calls],
            duplicates: vec![[0; 2]; calls],
            reordered: vec![[0; 2]; calls],
            max_seq: vec![[-1; 2]; calls],
            seen: vec![0; calls * 2 * words],
            words,
            hist: [Histogram::new(), Histogram::new()],
            hist_all: Histogram::new(),
            steady_from_ns: 0,
            timeline_max_us: vec![0; max_frames.div_ceil(5)],
            timeline_from_ns: 0,
            foreign: 0,
            out_of_range: 0,
        }
    }

    /// Accounts one datagram received on the socket where `want_dir` arrives.
    pub fn account(&mut self, pkt: &[u8], want_dir: usize, now_ns: u64) {
        let Some(p) = parse(pkt) else {
            self.foreign += 1;
            return;
        };
        let c = p.call as usize;
        if p.dir != want_dir || c >= self.received.len() {
            self.foreign += 1;
            return;
        }
        let seq = p.seq as usize;
        if seq >= self.words * 64 {
            self.out_of_range += 1;
            return;
        }
        let word = (c * 2 + p.dir) * self.words + seq / 64;
        let bit = 1u64 << (seq % 64);
        if self.seen[word] & bit != 0 {
            self.duplicates[c][p.dir] += 1;
            return;
        }
        self.seen[word] |= bit;
        self.received[c][p.dir] += 1;
        if (seq as i64) < self.max_seq[c][p.dir] {
            self.reordered[c][p.dir] += 1;
        } else {
            self.max_seq[c][p.dir] = seq as i64;
        }
        let us = now_ns.saturating_sub(p.sent_ns) / 1000;
        self.hist_all.record(us);
        let slot = p.sent_ns.saturating_sub(self.timeline_from_ns) / 100_000_000;
        if let Some(worst) = self.timeline_max_us.get_mut(slot as usize) {
            *worst = (*worst).max(us);
        }
        if p.sent_ns >= self.steady_from_ns {
            self.hist[p.dir].record(us);
        }
    }
}

/// One socket's `recvmmsg` buffers (header arrays point into them).
struct RecvBatch {
    bufs: Vec<[u8; RECV_BUF]>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl RecvBatch {
    fn new() -> Box<Self> {
        let mut b = Box::new(RecvBatch {
            bufs: vec![[0; RECV_BUF]; BATCH],
            iovs: Vec::new(),
            // SAFETY: mmsghdr is plain data; all-zero is a valid value.
            hdrs: vec![unsafe { std::mem::zeroed() }; BATCH],
        });
        b.iovs = iovecs(&mut b.bufs);
        for i in 0..BATCH {
            b.hdrs[i].msg_hdr.msg_iov = &mut b.iovs[i];
            b.hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        b
    }
}

/// Receives on both sockets until `stop`: socket A gets the B-to-A
/// direction, socket B the A-to-B one. `received_total` counts probes and
/// anything else, for the relay's CPU per packet.
pub fn run_receiver(
    socks: [&UdpSocket; 2],
    stats: &mut RecvStats,
    stop: &AtomicBool,
    received_total: &AtomicU64,
) {
    let mut batches = [RecvBatch::new(), RecvBatch::new()];
    let mut fds = [
        libc::pollfd {
            fd: socks[0].as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: socks[1].as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // Socket A (index 0) receives what B sends, and the other way round.
    let want = [B_TO_A, A_TO_B];
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: two valid pollfds.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, 20) };
        if r <= 0 {
            continue;
        }
        for s in 0..2 {
            if fds[s].revents & libc::POLLIN == 0 {
                continue;
            }
            let b = &mut batches[s];
            loop {
                // SAFETY: BATCH headers pointing at this batch's buffers.
                let n = unsafe {
                    libc::recvmmsg(
                        fds[s].fd,
                        b.hdrs.as_mut_ptr(),
                        BATCH as libc::c_uint,
                        libc::MSG_DONTWAIT,
                        std::ptr::null_mut(),
                    )
                };
                if n <= 0 {
                    break;
                }
                let now = mono_ns();
                for j in 0..n as usize {
                    let len = (b.hdrs[j].msg_len as usize).min(RECV_BUF);
                    stats.account(&b.bufs[j][..len], want[s], now);
                }
                received_total.fetch_add(n as u64, Ordering::Relaxed);
                if (n as usize) < BATCH {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_survives_a_header_rewrite() {
        let mut pkt = [0xffu8; PACKET];
        fill(&mut pkt, 42, B_TO_A, 7, 123_456_789_012);
        // A relay's new SSRC, seq and timestamp change nothing.
        pkt[2..12].copy_from_slice(&[9; 10]);
        let p = parse(&pkt).expect("probe");
        assert_eq!(
            p,
            Probe {
                call: 42,
                dir: B_TO_A,
                seq: 7,
                sent_ns: 123_456_789_012
            }
        );
        assert!(parse(&pkt[..20]).is_none());
        let mut other = pkt;
        other[HEADER] = 0;
        assert!(parse(&other).is_none());
    }

    #[test]
    fn counts_duplicates_reorders_and_strangers() {
        let mut s = RecvStats::new(2, 100);
        let mut pkt = [0xffu8; PACKET];
        for seq in [0, 2, 1, 2] {
            fill(&mut pkt, 1, A_TO_B, seq, 0);
            s.account(&pkt, A_TO_B, 5_000);
        }
        fill(&mut pkt, 1, B_TO_A, 0, 0);
        s.account(&pkt, A_TO_B, 5_000); // wrong socket
        fill(&mut pkt, 5, A_TO_B, 0, 0);
        s.account(&pkt, A_TO_B, 5_000); // no such call
        assert_eq!(s.received[1][A_TO_B], 3);
        assert_eq!(s.duplicates[1][A_TO_B], 1);
        assert_eq!(s.reordered[1][A_TO_B], 1);
        assert_eq!(s.foreign, 2);
        assert_eq!(s.hist[A_TO_B].summary().p50_us, 5);
    }
}
