//! The media threads: no allocation per relayed or played packet, and a dropped
//! handle frees its ports. Port block 147 (tests/src/ports.rs): the edge's RTP range
//! is 2500..=2599; the simulated phones use ephemeral ports.
//!
//! No tokio runtime here: the media threads need none, and an idle runtime would
//! only add allocations of its own to the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_edge::media::{self, MediaCmd, MediaHandle, MediaOptions, PortPool};
use acd_media::{Codec, MediaConfig, Prompt};

/// Counts every allocation of the process.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const RTP_MIN: u16 = 2500;
const RTP_MAX: u16 = 2599;

fn phone() -> UdpSocket {
    let s = UdpSocket::bind((LOOPBACK, 0)).expect("phone socket");
    s.set_nonblocking(true).expect("nonblocking");
    s
}

fn pcmu(seq: u16, ssrc: u32) -> [u8; 172] {
    let mut p = [0x55u8; 172];
    p[0] = 0x80;
    p[1] = 0;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p
}

/// Datagrams waiting on `s` (read without allocating).
fn drain(s: &UdpSocket) -> u64 {
    let mut buf = [0u8; 2048];
    let mut n = 0;
    while s.recv_from(&mut buf).is_ok() {
        n += 1;
    }
    n
}

fn options() -> MediaOptions {
    MediaOptions {
        config: MediaConfig {
            inactivity: None,
            ..MediaConfig::default()
        },
        ..MediaOptions::default()
    }
}

/// Media for a caller at `remote`, events dropped.
fn started(pool: &Arc<PortPool>, name: String, remote: SocketAddr, codec: Codec) -> MediaHandle {
    let (ev_tx, _) = tokio::sync::mpsc::unbounded_channel();
    media::start_with(pool, name, remote, codec, ev_tx, options()).expect("media started")
}

struct Bridged {
    caller: UdpSocket,
    agent: UdpSocket,
    handle: MediaHandle,
}

fn bridged(pool: &Arc<PortPool>, i: usize) -> Bridged {
    let (caller, agent) = (phone(), phone());
    let remote = caller.local_addr().unwrap();
    let handle = started(pool, format!("bridged-{i}"), remote, Codec::Pcmu);
    handle.send(MediaCmd::Bridge {
        agent_remote: agent.local_addr().unwrap(),
        agent_codec: Codec::Pcmu,
    });
    Bridged {
        caller,
        agent,
        handle,
    }
}

#[test]
fn relaying_and_playing_allocate_nothing_per_packet() {
    // 16 calls, 32 port pairs of 2500..=2579 (the rest is the other test's).
    let pool = PortPool::new(LOOPBACK, RTP_MIN, RTP_MIN + 79);
    let calls: Vec<Bridged> = (0..8).map(|i| bridged(&pool, i)).collect();
    let prompt = Arc::new(Prompt::from_samples(
        (0..4000).map(|i| ((i * 53) % 16000) as i16).collect(),
    ));
    let listeners: Vec<(UdpSocket, MediaHandle)> = (0..8)
        .map(|i| {
            let caller = phone();
            let remote = caller.local_addr().unwrap();
            let h = started(&pool, format!("played-{i}"), remote, Codec::Pcma);
            h.send(MediaCmd::Play {
                prompt: prompt.clone(),
                name: "loop".into(),
                looping: true,
                token: 1,
            });
            (caller, h)
        })
        .collect();

    let start = Instant::now();
    let warm = start + Duration::from_millis(500);
    let end = warm + Duration::from_secs(1);
    let (mut sent, mut relayed, mut played) = (0u64, 0u64, 0u64);
    let mut before = None;
    let mut tick = 0u32;
    loop {
        let at = start + Duration::from_millis(20) * tick;
        if at >= end {
            break;
        }
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        if before.is_none() && at >= warm {
            // Buffers, heaps and queues have their working size by now.
            before = Some(ALLOCS.load(Ordering::Relaxed));
            (sent, relayed, played) = (0, 0, 0);
        }
        for (i, c) in calls.iter().enumerate() {
            let edge_a = SocketAddr::new(LOOPBACK, c.handle.caller_port);
            let edge_b = SocketAddr::new(LOOPBACK, c.handle.agent_port);
            let seq = tick as u16;
            sent += u64::from(c.caller.send_to(&pcmu(seq, i as u32), edge_a).is_ok());
            sent += u64::from(
                c.agent
                    .send_to(&pcmu(seq, 0x100 + i as u32), edge_b)
                    .is_ok(),
            );
            relayed += drain(&c.caller) + drain(&c.agent);
        }
        for (l, _) in &listeners {
            played += drain(l);
        }
        tick += 1;
    }
    let allocs = ALLOCS.load(Ordering::Relaxed) - before.expect("warmed up");
    // 8 calls x 2 legs x 50 packets/s relayed, 8 x 50 played, over 1 s.
    assert!(sent >= 750, "sent {sent}");
    assert!(relayed * 10 >= sent * 9, "relayed {relayed} of {sent}");
    assert!(played >= 300, "played {played}");
    assert!(
        allocs <= 8,
        "{allocs} allocations while relaying {relayed} and playing {played} packets"
    );
    drop(listeners);
    drop(calls);
}

#[test]
fn a_dropped_handle_frees_its_ports_and_stops_relaying() {
    // The other half of the block's range: this test runs beside the one above.
    let pool = PortPool::new(LOOPBACK, RTP_MIN + 80, RTP_MAX);
    let all = pool.free_ports();
    let c = bridged(&pool, 100);
    let edge_a = SocketAddr::new(LOOPBACK, c.handle.caller_port);
    assert_eq!(pool.free_ports(), all - 2);
    // Relayed while the handle lives (poll until it is: the bridge is queued).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = 0;
    let mut seq = 0u16;
    while got == 0 {
        assert!(Instant::now() < deadline, "nothing relayed within 5 s");
        seq += 1;
        c.caller.send_to(&pcmu(seq, 7), edge_a).unwrap();
        std::thread::sleep(Duration::from_millis(10));
        got = drain(&c.agent);
    }
    let Bridged {
        caller,
        agent,
        handle,
    } = c;
    drop(handle);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pool.free_ports() != all {
        assert!(Instant::now() < deadline, "ports not back within 5 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The port is closed now: nothing reaches the agent any more.
    let _ = caller.send_to(&pcmu(seq + 1, 7), edge_a);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(drain(&agent), 0, "relayed after the handle was dropped");
}
