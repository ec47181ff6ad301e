//! The media shell: a few dedicated threads (one per core by default), each an epoll
//! loop over the sockets of the calls it owns.
//!
//! Per ready socket the thread drains datagrams with `recvmmsg` into preallocated
//! buffers, feeds them to the call's core, and sends what the core forwards with one
//! `sendmmsg` (the packets are rewritten in place, never copied). Every call's
//! deadlines (prompt frames, inactivity, recordings) live in one binary heap per
//! thread; the epoll timeout is the earliest of them. Commands arrive in a mutexed
//! inbox with an eventfd wake. Nothing on the packet or tick path allocates once the
//! buffers and the heap have grown to their working size.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use acd_media::{Leg, RxOutcome};
use nix::libc;

use super::{count_drop, Flow, MediaCmd, MediaTask};

/// Datagrams read per `recvmmsg`.
const BATCH: usize = 32;
/// Receive buffer per datagram; larger datagrams are truncated (G.711 RTP is 172 bytes).
const BUF: usize = 2048;
/// `recvmmsg` rounds per ready socket before the other sockets get their turn
/// (level-triggered epoll brings a still-readable socket back).
const ROUNDS: usize = 4;
/// Ready sockets handled per `epoll_wait`.
const EVENTS: usize = 256;
/// Epoll data of the eventfd; call sockets never produce it (slot bits are < 2^30).
const WAKE: u64 = u64::MAX;

/// Threads to start; 0 means one per core. Read when the first call starts.
static THREADS: AtomicUsize = AtomicUsize::new(0);
static WORKERS: OnceLock<Result<Vec<Arc<Worker>>, String>> = OnceLock::new();
/// Identifies a call to the thread that owns it (never reused in a process).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Sets how many media threads to start (0: one per core). Takes effect only before
/// the first call's media starts.
pub fn set_threads(n: usize) {
    THREADS.store(n, Ordering::Relaxed);
}

/// What the async side asks of a media thread.
pub(super) enum Msg {
    Add(u64, Box<MediaTask>),
    Cmd(u64, MediaCmd),
    Remove(u64),
}

/// The async side's view of one media thread.
pub(super) struct Worker {
    inbox: Mutex<Vec<Msg>>,
    wake: OwnedFd,
    /// Calls owned, for placing new calls on the least loaded thread.
    calls: AtomicUsize,
}

impl Worker {
    /// Queues `msg` and wakes the thread if the queue was empty (it drains it whole).
    pub(super) fn post(&self, msg: Msg) {
        let was_empty = {
            let mut q = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
            let empty = q.is_empty();
            q.push(msg);
            empty
        };
        if was_empty {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to an eventfd we own.
            let n = unsafe { libc::write(self.wake.as_raw_fd(), (&raw const one).cast(), 8) };
            if n != 8 {
                // Only a counter overflow could refuse, and then the thread is awake anyway.
                metrics::counter!("acd_rtp_errors_total", "kind" => "wake_failed").increment(1);
            }
        }
    }
}

/// A new call's id and the thread with the fewest calls, starting the threads on
/// first use.
pub(super) fn place() -> std::io::Result<(u64, Arc<Worker>)> {
    let workers = WORKERS
        .get_or_init(start_workers)
        .as_ref()
        .map_err(|e| std::io::Error::other(e.clone()))?;
    let w = workers
        .iter()
        .min_by_key(|w| w.calls.load(Ordering::Relaxed))
        .ok_or_else(|| std::io::Error::other("no media threads"))?;
    w.calls.fetch_add(1, Ordering::Relaxed);
    Ok((NEXT_ID.fetch_add(1, Ordering::Relaxed), w.clone()))
}

fn start_workers() -> Result<Vec<Arc<Worker>>, String> {
    let n = match THREADS.load(Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    (0..n)
        .map(|i| {
            start_worker(i).map_err(|e| {
                metrics::counter!("acd_rtp_errors_total", "kind" => "thread_failed").increment(1);
                format!("media thread {i}: {e}")
            })
        })
        .collect()
}

fn cvt(r: libc::c_int) -> std::io::Result<libc::c_int> {
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn start_worker(i: usize) -> std::io::Result<Arc<Worker>> {
    // SAFETY: plain syscalls; each fd is owned at once.
    let ep = unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
    let wake = unsafe {
        OwnedFd::from_raw_fd(cvt(libc::eventfd(
            0,
            libc::EFD_CLOEXEC | libc::EFD_NONBLOCK,
        ))?)
    };
    epoll_ctl(&ep, libc::EPOLL_CTL_ADD, wake.as_raw_fd(), WAKE)?;
    let worker = Arc::new(Worker {
        inbox: Mutex::new(Vec::with_capacity(64)),
        wake,
        calls: AtomicUsize::new(0),
    });
    let w = worker.clone();
    std::thread::Builder::new()
        .name(format!("acd-media-{i}"))
        .spawn(move || Thread::new(w, ep).run())?;
    Ok(worker)
}

fn epoll_ctl(ep: &OwnedFd, op: libc::c_int, fd: RawFd, data: u64) -> std::io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: data,
    };
    // SAFETY: `ev` lives across the call; the kernel copies it.
    cvt(unsafe { libc::epoll_ctl(ep.as_raw_fd(), op, fd, &raw mut ev) }).map(drop)
}

/// The four sockets of a call, in epoll-data order.
const SOCKETS: [(Leg, Flow); 4] = [
    (Leg::A, Flow::Rtp),
    (Leg::A, Flow::Rtcp),
    (Leg::B, Flow::Rtp),
    (Leg::B, Flow::Rtcp),
];

/// Epoll data of socket `k` of the call in `slot` (generation `gen`, so a stale
/// event from a freed slot is recognised).
fn data(gen: u32, slot: u32, k: usize) -> u64 {
    (u64::from(gen) << 32) | (u64::from(slot) << 2) | k as u64
}

fn undata(d: u64) -> (u32, u32, usize) {
    (
        (d >> 32) as u32,
        ((d & 0xffff_ffff) >> 2) as u32,
        (d & 3) as usize,
    )
}

struct Slot {
    gen: u32,
    call: Option<Box<MediaTask>>,
}

/// The calls of one thread: slots addressed from epoll data, ids from commands.
#[derive(Default)]
struct Calls {
    slots: Vec<Slot>,
    free: Vec<u32>,
    ids: HashMap<u64, u32>,
}

impl Calls {
    fn get_mut(&mut self, slot: u32, gen: u32) -> Option<&mut MediaTask> {
        let s = self.slots.get_mut(slot as usize)?;
        if s.gen != gen {
            return None;
        }
        s.call.as_deref_mut()
    }

    fn insert(&mut self, id: u64, call: Box<MediaTask>) -> (u32, u32) {
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot { gen: 0, call: None });
                (self.slots.len() - 1) as u32
            }
        };
        let s = &mut self.slots[slot as usize];
        s.call = Some(call);
        self.ids.insert(id, slot);
        (slot, s.gen)
    }

    fn remove(&mut self, id: u64) -> Option<Box<MediaTask>> {
        let slot = self.ids.remove(&id)?;
        let s = self.slots.get_mut(slot as usize)?;
        let call = s.call.take();
        s.gen = s.gen.wrapping_add(1);
        self.free.push(slot);
        call
    }
}

/// Preallocated `recvmmsg` / `sendmmsg` state. The headers point into the boxed
/// arrays, which never move or grow, so they are set up once.
struct Batch {
    bufs: Box<[[u8; BUF]]>,
    addrs: Box<[libc::sockaddr_storage]>,
    iov: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
    tx_addrs: Box<[libc::sockaddr_storage]>,
    tx_iov: Box<[libc::iovec]>,
    tx_hdrs: Box<[libc::mmsghdr]>,
    tx_n: usize,
    /// Headers the kernel wrote in the last receive (they need resetting).
    used: usize,
}

fn zeroed<T>(n: usize) -> Box<[T]> {
    // SAFETY: only used for libc's plain-data structs, for which all-zero is valid.
    (0..n).map(|_| unsafe { std::mem::zeroed() }).collect()
}

const STORAGE_LEN: libc::socklen_t = std::mem::size_of::<libc::sockaddr_storage>() as _;

impl Batch {
    fn new() -> Self {
        let mut b = Batch {
            bufs: vec![[0u8; BUF]; BATCH].into_boxed_slice(),
            addrs: zeroed(BATCH),
            iov: zeroed(BATCH),
            hdrs: zeroed(BATCH),
            tx_addrs: zeroed(BATCH),
            tx_iov: zeroed(BATCH),
            tx_hdrs: zeroed(BATCH),
            tx_n: 0,
            used: BATCH,
        };
        for i in 0..BATCH {
            b.iov[i] = libc::iovec {
                iov_base: b.bufs[i].as_mut_ptr().cast(),
                iov_len: BUF,
            };
            let h = &mut b.hdrs[i].msg_hdr;
            h.msg_name = (&raw mut b.addrs[i]).cast();
            h.msg_iov = &raw mut b.iov[i];
            h.msg_iovlen = 1;
            let t = &mut b.tx_hdrs[i].msg_hdr;
            t.msg_name = (&raw mut b.tx_addrs[i]).cast();
            t.msg_iov = &raw mut b.tx_iov[i];
            t.msg_iovlen = 1;
        }
        b
    }

    /// Reads up to [`BATCH`] datagrams from `fd`; 0 when none is waiting.
    fn recv(&mut self, fd: RawFd) -> usize {
        // Most reads return one datagram: reset only what the last one wrote.
        for h in self.hdrs.iter_mut().take(self.used) {
            h.msg_hdr.msg_namelen = STORAGE_LEN;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: every header points at live buffers of the lengths it declares.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ) {
                metrics::counter!("acd_rtp_errors_total", "kind" => "recv_failed").increment(1);
            }
            self.used = 0;
            return 0;
        }
        self.used = n as usize;
        n as usize
    }

    /// Datagram `i` of the last [`recv`](Self::recv) and its source.
    fn datagram(&mut self, i: usize) -> (Option<SocketAddr>, &mut [u8]) {
        let len = (self.hdrs[i].msg_len as usize).min(BUF);
        (to_std(&self.addrs[i]), &mut self.bufs[i][..len])
    }

    /// Queues datagram `i` (rewritten in place) for `to`.
    fn queue(&mut self, i: usize, to: SocketAddr) {
        let j = self.tx_n;
        let len = (self.hdrs[i].msg_len as usize).min(BUF);
        self.tx_iov[j] = libc::iovec {
            iov_base: self.bufs[i].as_mut_ptr().cast(),
            iov_len: len,
        };
        self.tx_hdrs[j].msg_hdr.msg_namelen = from_std(to, &mut self.tx_addrs[j]);
        self.tx_n += 1;
    }

    /// Sends the queued datagrams from `fd`; returns how many went out.
    fn flush(&mut self, fd: RawFd) -> usize {
        let n = std::mem::take(&mut self.tx_n);
        let mut done = 0;
        while done < n {
            // SAFETY: headers `done..n` point at live buffers and addresses.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    self.tx_hdrs.as_mut_ptr().add(done),
                    (n - done) as libc::c_uint,
                    0,
                )
            };
            if r <= 0 {
                if r < 0
                    && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
                {
                    continue;
                }
                // A full socket buffer or an unreachable peer: UDP drops, and so do we.
                metrics::counter!("acd_rtp_errors_total", "kind" => "send_failed")
                    .increment((n - done) as u64);
                break;
            }
            done += r as usize;
        }
        done
    }
}

fn to_std(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*(std::ptr::from_ref(ss).cast::<libc::sockaddr_in>()) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe { &*(std::ptr::from_ref(ss).cast::<libc::sockaddr_in6>()) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn from_std(addr: SocketAddr, ss: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            let s = unsafe { &mut *(std::ptr::from_mut(ss).cast::<libc::sockaddr_in>()) };
            s.sin_family = libc::AF_INET as libc::sa_family_t;
            s.sin_port = a.port().to_be();
            s.sin_addr = libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above.
            let s = unsafe { &mut *(std::ptr::from_mut(ss).cast::<libc::sockaddr_in6>()) };
            s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            s.sin6_port = a.port().to_be();
            s.sin6_flowinfo = a.flowinfo();
            s.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            s.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// A deadline of the call in `slot` (generation `gen`).
type Timer = Reverse<(Instant, u32, u32)>;

/// One media thread's state.
struct Thread {
    worker: Arc<Worker>,
    ep: OwnedFd,
    calls: Calls,
    /// Every call's earliest deadline; entries a call has since moved are skipped.
    timers: BinaryHeap<Timer>,
    batch: Batch,
    /// The inbox, swapped out to be handled without the lock.
    pending: Vec<Msg>,
}

impl Thread {
    fn new(worker: Arc<Worker>, ep: OwnedFd) -> Self {
        Thread {
            worker,
            ep,
            calls: Calls::default(),
            timers: BinaryHeap::with_capacity(1024),
            batch: Batch::new(),
            pending: Vec::with_capacity(64),
        }
    }

    fn run(mut self) {
        let mut events: Vec<libc::epoll_event> =
            vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS];
        loop {
            let timeout = self.timeout_ms(Instant::now());
            // SAFETY: `events` has room for EVENTS entries.
            let n = unsafe {
                libc::epoll_wait(
                    self.ep.as_raw_fd(),
                    events.as_mut_ptr(),
                    EVENTS as libc::c_int,
                    timeout,
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    metrics::counter!("acd_rtp_errors_total", "kind" => "epoll_failed")
                        .increment(1);
                    tracing::error!(error = %e, "media thread: epoll_wait failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            for ev in &events[..n as usize] {
                let d = ev.u64;
                if d == WAKE {
                    self.inbox();
                } else {
                    self.readable(d);
                }
            }
            self.expire(Instant::now());
        }
    }

    /// Milliseconds until the earliest deadline, rounded up (-1: none).
    fn timeout_ms(&self, now: Instant) -> libc::c_int {
        let Some(Reverse((at, _, _))) = self.timers.peek() else {
            return -1;
        };
        let wait = at.saturating_duration_since(now);
        let ms = wait.as_micros().div_ceil(1000);
        libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
    }

    fn inbox(&mut self) {
        let mut count = [0u8; 8];
        // SAFETY: reads 8 bytes into a live buffer; resets the eventfd.
        let _ = unsafe {
            libc::read(
                self.worker.wake.as_raw_fd(),
                count.as_mut_ptr().cast(),
                count.len(),
            )
        };
        {
            let mut q = self.worker.inbox.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::swap(&mut *q, &mut self.pending);
        }
        let mut pending = std::mem::take(&mut self.pending);
        for msg in pending.drain(..) {
            self.message(msg);
        }
        self.pending = pending;
    }

    fn message(&mut self, msg: Msg) {
        let now = Instant::now();
        match msg {
            Msg::Add(id, call) => self.add(id, call, now),
            Msg::Remove(id) => {
                if let Some(call) = self.remove(id) {
                    call.ended(None, now);
                }
            }
            Msg::Cmd(id, MediaCmd::HandOver(tx)) => {
                if let Some(call) = self.remove(id) {
                    call.ended(Some(tx), now);
                }
            }
            Msg::Cmd(id, cmd) => {
                let Some(&slot) = self.calls.ids.get(&id) else {
                    return;
                };
                let Some(s) = self.calls.slots.get_mut(slot as usize) else {
                    return;
                };
                let gen = s.gen;
                if let Some(call) = s.call.as_deref_mut() {
                    call.command(cmd, now);
                    call.drain(now);
                    schedule(&mut self.timers, slot, gen, call);
                }
            }
        }
    }

    fn add(&mut self, id: u64, call: Box<MediaTask>, now: Instant) {
        let fds: [RawFd; 4] = SOCKETS.map(|(leg, flow)| call.socket(leg, flow).as_raw_fd());
        let (slot, gen) = self.calls.insert(id, call);
        for (k, fd) in fds.iter().enumerate() {
            if let Err(e) = epoll_ctl(&self.ep, libc::EPOLL_CTL_ADD, *fd, data(gen, slot, k)) {
                metrics::counter!("acd_rtp_errors_total", "kind" => "epoll_failed").increment(1);
                tracing::error!(error = %e, "media socket not watched");
            }
        }
        if let Some(call) = self.calls.get_mut(slot, gen) {
            call.drain(now);
            schedule(&mut self.timers, slot, gen, call);
        }
    }

    /// Takes the call off this thread; its sockets are no longer watched (a hand-over
    /// passes copies of them on, which would otherwise keep the registrations alive).
    fn remove(&mut self, id: u64) -> Option<Box<MediaTask>> {
        let call = self.calls.remove(id)?;
        for (leg, flow) in SOCKETS {
            let fd = call.socket(leg, flow).as_raw_fd();
            if epoll_ctl(&self.ep, libc::EPOLL_CTL_DEL, fd, 0).is_err() {
                metrics::counter!("acd_rtp_errors_total", "kind" => "epoll_failed").increment(1);
            }
        }
        self.worker.calls.fetch_sub(1, Ordering::Relaxed);
        Some(call)
    }

    /// Socket `k` of a call is readable: drain it through the core.
    fn readable(&mut self, d: u64) {
        let (gen, slot, k) = undata(d);
        let Thread {
            calls,
            batch,
            timers,
            ..
        } = self;
        let Some(call) = calls.get_mut(slot, gen) else {
            return;
        };
        let (leg, flow) = SOCKETS[k];
        let fd = call.socket(leg, flow).as_raw_fd();
        let mut now = None;
        for _ in 0..ROUNDS {
            let n = batch.recv(fd);
            if n == 0 {
                break;
            }
            // One clock read per batch, not per packet.
            let t = Instant::now();
            relay_batch(call, batch, leg, flow, n, t);
            now = Some(t);
            if n < BATCH {
                break;
            }
        }
        // Nothing read (a spurious wake-up): nothing changed.
        let Some(now) = now else { return };
        call.drain(now);
        schedule(timers, slot, gen, call);
    }

    /// Runs every call whose deadline has come.
    fn expire(&mut self, now: Instant) {
        while let Some(&Reverse((at, slot, gen))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(call) = self.calls.get_mut(slot, gen) else {
                continue;
            };
            if call.scheduled != Some(at) {
                continue; // superseded by an earlier entry
            }
            call.scheduled = None;
            call.core.handle_timeout(now);
            call.drain(now);
            schedule(&mut self.timers, slot, gen, call);
        }
    }
}

/// Feeds `n` received datagrams to the core and sends the forwarded ones, batched
/// per outgoing socket.
fn relay_batch(
    call: &mut MediaTask,
    batch: &mut Batch,
    leg: Leg,
    flow: Flow,
    n: usize,
    now: Instant,
) {
    let mut out_leg = None;
    let mut sent = 0;
    for i in 0..n {
        let (from, packet) = batch.datagram(i);
        let Some(from) = from else {
            continue;
        };
        match call.handle(leg, flow, from, packet, now) {
            RxOutcome::Forward { leg: out, to } => {
                if out_leg.is_some_and(|l| l != out) {
                    if let Some(l) = out_leg {
                        sent += batch.flush(call.socket(l, flow).as_raw_fd());
                    }
                }
                out_leg = Some(out);
                batch.queue(i, to);
            }
            RxOutcome::Absorbed => {}
            RxOutcome::Dropped(reason) => count_drop(reason),
        }
    }
    if let Some(l) = out_leg {
        sent += batch.flush(call.socket(l, flow).as_raw_fd());
    }
    call.count_relayed(flow, sent as u64);
}

/// Makes sure the heap holds the call's next deadline. A deadline that moved later
/// (media kept arriving) keeps its earlier entry, which on expiry finds nothing due
/// and schedules the real one: at most a few entries per call, one push per change.
fn schedule(timers: &mut BinaryHeap<Timer>, slot: u32, gen: u32, call: &mut MediaTask) {
    let Some(at) = call.core.poll_timeout() else {
        return;
    };
    if call.scheduled.is_none_or(|s| at < s) {
        call.scheduled = Some(at);
        timers.push(Reverse((at, slot, gen)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_round_trip_through_sockaddr_storage() {
        for a in [
            "127.0.0.1:4000".parse::<SocketAddr>().unwrap(),
            "[::1]:5004".parse().unwrap(),
            "[fe80::1%2]:9".parse().unwrap(),
        ] {
            // SAFETY: all-zero is a valid sockaddr_storage.
            let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let len = from_std(a, &mut ss);
            assert!(len as usize <= std::mem::size_of::<libc::sockaddr_storage>());
            assert_eq!(to_std(&ss), Some(a));
        }
    }

    #[test]
    fn epoll_data_names_slot_socket_and_generation() {
        assert_eq!(undata(data(7, 123_456, 3)), (7, 123_456, 3));
        assert_ne!(data(u32::MAX, 1_000_000, 3), WAKE);
    }
}
