//! In-process load on the media relay (and prompt playout), measured by CPU time of
//! the media threads per packet and by the added latency a packet sees.
//!
//! Ignored by default (a measurement, not a check). Run on a release build:
//!
//! ```text
//! CALLS=500 SECS=10 cargo test --release -p acd-edge --test media_load -- --ignored --nocapture
//! ```
//!
//! `MODE=play` plays a looping prompt to every caller instead of relaying.
//! `PORT_BASE` (default 62100) is the first port of the edge's RTP range (4 ports a
//! call); the simulated phones use ephemeral ports. The generator and the receiver
//! run on threads named `load-gen` / `load-rcv`; every other thread's CPU counts as
//! the media engine's.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_edge::media::{self, MediaCmd, MediaOptions, PortPool};
use acd_media::{Codec, MediaConfig, Prompt};
use nix::libc;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const TICK: Duration = Duration::from_millis(20);

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// utime + stime of every thread of this process except the load's own, in µs.
fn engine_cpu_us() -> u64 {
    let tick = 1_000_000 / 100; // USER_HZ is 100 on Linux
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten() {
        let Ok(task) = task else { continue };
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if head.contains("load-") {
            continue;
        }
        let f: Vec<&str> = rest.split_whitespace().collect();
        // Fields after the name: state is [0], utime [11], stime [12].
        let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        total += ticks * tick;
    }
    total
}

fn rtp(seq: u16, ssrc: u32, stamp_ns: u64) -> [u8; 172] {
    let mut p = [0xffu8; 172];
    p[0] = 0x80;
    p[1] = 0; // PCMU
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p[12..20].copy_from_slice(&stamp_ns.to_be_bytes());
    p
}

struct Call {
    caller: UdpSocket,
    agent: UdpSocket,
    edge_a: SocketAddr,
    edge_b: SocketAddr,
    _handle: media::MediaHandle,
}

fn phone() -> UdpSocket {
    let s = UdpSocket::bind((LOOPBACK, 0)).expect("phone socket");
    s.set_nonblocking(true).expect("nonblocking");
    s
}

/// Receives on every phone socket until `until` (counting from `from`); returns (packets, latencies in µs).
fn receive(
    calls: &[Call],
    t0: Instant,
    from: Instant,
    until: Instant,
    relay: bool,
) -> (u64, Vec<u32>) {
    // SAFETY: plain epoll syscalls on sockets that outlive the loop.
    let ep = unsafe { libc::epoll_create1(0) };
    assert!(ep >= 0);
    let mut socks = Vec::new();
    for c in calls {
        socks.push(&c.caller);
        socks.push(&c.agent);
    }
    for (i, s) in socks.iter().enumerate() {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        assert_eq!(
            unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, s.as_raw_fd(), &raw mut ev) },
            0
        );
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut lat = Vec::with_capacity(4_000_000);
    let mut got = 0u64;
    let mut buf = [0u8; 2048];
    while Instant::now() < until {
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), 256, 50) };
        for ev in events.iter().take(n.max(0) as usize) {
            let s = socks[ev.u64 as usize];
            while let Ok((len, _)) = s.recv_from(&mut buf) {
                if Instant::now() < from {
                    continue;
                }
                got += 1;
                if relay && len >= 20 {
                    let mut stamp = [0u8; 8];
                    stamp.copy_from_slice(&buf[12..20]);
                    let sent = t0 + Duration::from_nanos(u64::from_be_bytes(stamp));
                    let us = Instant::now().saturating_duration_since(sent).as_micros();
                    if lat.len() < lat.capacity() {
                        lat.push(u32::try_from(us).unwrap_or(u32::MAX));
                    }
                }
            }
        }
    }
    unsafe { libc::close(ep) };
    (got, lat)
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture on a release build"]
fn relay_load() {
    let n = env("CALLS", 200) as usize;
    let secs = env("SECS", 10);
    let base = env("PORT_BASE", 62100) as u16;
    let play = std::env::var("MODE").is_ok_and(|m| m == "play");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let pool = PortPool::new(LOOPBACK, base, base + 4 * n as u16 + 3);
    let (ev_tx, _ev_rx) = tokio::sync::mpsc::unbounded_channel();
    let prompt = Arc::new(Prompt::from_samples(
        (0..20_000).map(|i| ((i * 37) % 20_000) as i16).collect(),
    ));
    let opts = MediaOptions {
        config: MediaConfig {
            inactivity: None,
            ..MediaConfig::default()
        },
        ..MediaOptions::default()
    };
    let calls: Vec<Call> = (0..n)
        .map(|i| {
            let caller = phone();
            let agent = phone();
            let h = media::start_with(
                &pool,
                format!("load-{i}"),
                caller.local_addr().unwrap(),
                Codec::Pcmu,
                ev_tx.clone(),
                opts.clone(),
            )
            .expect("media started");
            if play {
                h.send(MediaCmd::Play {
                    prompt: prompt.clone(),
                    name: "p".into(),
                    looping: true,
                    token: 1,
                });
            } else {
                h.send(MediaCmd::Bridge {
                    agent_remote: agent.local_addr().unwrap(),
                    agent_codec: Codec::Pcmu,
                });
            }
            Call {
                edge_a: SocketAddr::new(LOOPBACK, h.caller_port),
                edge_b: SocketAddr::new(LOOPBACK, h.agent_port),
                caller,
                agent,
                _handle: h,
            }
        })
        .collect();
    let calls = Arc::new(calls);
    let t0 = Instant::now();
    let start = t0 + Duration::from_millis(200);
    let stop = start + Duration::from_secs(secs);
    let gen = {
        let calls = calls.clone();
        std::thread::Builder::new()
            .name("load-gen".into())
            .spawn(move || {
                let mut sent = 0u64;
                if play {
                    return sent; // the prompts need no generator
                }
                let mut tick = 0u32;
                loop {
                    let at = start + TICK * tick;
                    if at >= stop {
                        break;
                    }
                    std::thread::sleep(at.saturating_duration_since(Instant::now()));
                    for (i, c) in calls.iter().enumerate() {
                        let seq = tick as u16;
                        let stamp = t0.elapsed().as_nanos() as u64;
                        sent += u64::from(
                            c.caller
                                .send_to(&rtp(seq, i as u32, stamp), c.edge_a)
                                .is_ok(),
                        );
                        let stamp = t0.elapsed().as_nanos() as u64;
                        sent += u64::from(
                            c.agent
                                .send_to(&rtp(seq, 0x8000_0000 | i as u32, stamp), c.edge_b)
                                .is_ok(),
                        );
                    }
                    tick += 1;
                }
                sent
            })
            .expect("generator thread")
    };
    let rcv = {
        let calls = calls.clone();
        std::thread::Builder::new()
            .name("load-rcv".into())
            .spawn(move || receive(&calls, t0, start, stop + Duration::from_millis(300), !play))
            .expect("receiver thread")
    };
    std::thread::sleep(start.saturating_duration_since(Instant::now()));
    let cpu0 = engine_cpu_us();
    let sent = gen.join().expect("generator");
    let (got, mut lat) = rcv.join().expect("receiver");
    let cpu = engine_cpu_us() - cpu0;
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "RESULT mode={} calls={n} secs={secs} sent={sent} received={got} lost={} cpu_ms={} cpu_us_per_pkt={:.2} lat_us p50={} p90={} p99={} p999={} max={} loadavg={}",
        if play { "play" } else { "relay" },
        sent.saturating_sub(got),
        cpu / 1000,
        cpu as f64 / got.max(1) as f64,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(0.999),
        lat.last().copied().unwrap_or(0),
        load.trim()
    );
    assert!(got > 0, "no media came back");
}
