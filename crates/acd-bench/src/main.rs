//! `acd-rtpload`: sends and timestamps real RTP for N bridged calls, both
//! directions, 50 packets/s each (PCMU, 20 ms), through acd (calls set up
//! over SIP), through rtpengine (calls set up over its ng protocol), or
//! straight from one socket to the other (`direct`, the baseline). Reports
//! loss, duplicates, reordering, one-way latency percentiles and the relay's
//! CPU per relayed packet. Loopback only, bounded in calls and time.

mod hist;
mod ng;
mod procstat;
mod report;
mod rtp;
mod sdp;
mod sip;

use std::net::{IpAddr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use crate::report::{CpuWindow, Figures};
use crate::rtp::{RecvStats, Targets};

const MAX_CALLS: usize = 6000;
const MAX_HOLD_SECS: u64 = 120;

#[derive(Parser, Debug)]
#[command(
    name = "acd-rtpload",
    about = "RTP load generator for acd's media bench"
)]
pub struct Cli {
    /// Bridged calls (at most 6000).
    #[arg(long, default_value_t = 20)]
    calls: usize,
    /// Seconds every call carries RTP both ways (at most 120).
    #[arg(long, default_value_t = 10)]
    hold: u64,
    /// Call setups (and teardowns) per second.
    #[arg(long, default_value_t = 200)]
    cps: u32,
    /// Caller-side RTP socket (A).
    #[arg(long, default_value = "127.0.0.1:61000")]
    rtp_a: SocketAddrV4,
    /// Agent-side RTP socket (B).
    #[arg(long, default_value = "127.0.0.1:61001")]
    rtp_b: SocketAddrV4,
    /// The relay's pid: its CPU (all threads) over the steady window and its RSS.
    #[arg(long)]
    pid: Option<u32>,
    /// The relay's RTP port range (MIN-MAX), to sample its receive queues mid-hold.
    #[arg(long, value_parser = parse_range)]
    relay_ports: Option<(u16, u16)>,
    /// Seconds after the first packet before the steady (CPU) window opens.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Wait for late packets after the last one is sent, in ms.
    #[arg(long, default_value_t = 300)]
    drain_ms: u64,
    /// Pacing tick in microseconds.
    #[arg(long, default_value_t = 1000)]
    tick_us: u64,
    /// Print the whole figure set as one JSON object (instead of the summary and RESULT lines).
    #[arg(long)]
    json: bool,
    /// With --json: per-call counters too.
    #[arg(long)]
    per_call: bool,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Calls through `acd run`: a UAC calls the DID, a UAS answers acd's transfer.
    Acd {
        /// acd's SIP address (UDP).
        #[arg(long, default_value = "127.0.0.1:40000")]
        acd: SocketAddr,
        /// The DID whose flow transfers to the UAS (or enqueues, with --uac-only).
        #[arg(long, default_value = "5550900")]
        did: String,
        /// The generator's SIP socket (UAC and UAS).
        #[arg(long, default_value = "127.0.0.1:40010")]
        sip: SocketAddrV4,
        /// Callers only, no RTP sent (e.g. calls waiting in a queue): hold, then hang up.
        #[arg(long)]
        uac_only: bool,
    },
    /// Calls through rtpengine, set up over its ng control port.
    Rtpengine {
        #[arg(long, default_value = "127.0.0.1:40002")]
        ng: SocketAddr,
    },
    /// From one socket straight to the other (no relay): the baseline.
    Direct,
}

fn main() {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(f) => {
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string(&f.to_json(cli.per_call)).unwrap_or_default()
                );
            } else {
                f.print_summary();
            }
            std::process::exit(if f.ok() { 0 } else { 1 });
        }
        Err(e) => {
            eprintln!("acd-rtpload: {e:#}");
            std::process::exit(2);
        }
    }
}

fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s.split_once('-').ok_or("MIN-MAX")?;
    let (a, b) = (a.parse().map_err(|_| "MIN")?, b.parse().map_err(|_| "MAX")?);
    if a > b {
        return Err("MIN > MAX".into());
    }
    Ok((a, b))
}

fn check_bounds(cli: &Cli) -> Result<()> {
    if cli.calls == 0 || cli.calls > MAX_CALLS {
        bail!("--calls must be 1..={MAX_CALLS}");
    }
    if cli.hold == 0 || cli.hold > MAX_HOLD_SECS {
        bail!("--hold must be 1..={MAX_HOLD_SECS} s");
    }
    if cli.cps == 0 || cli.drain_ms > 10_000 || cli.warmup >= cli.hold {
        bail!("--cps must be > 0, --drain-ms <= 10000, --warmup < --hold");
    }
    let mut addrs: Vec<IpAddr> = vec![(*cli.rtp_a.ip()).into(), (*cli.rtp_b.ip()).into()];
    match &cli.mode {
        Mode::Acd { acd, sip, .. } => addrs.extend([acd.ip(), (*sip.ip()).into()]),
        Mode::Rtpengine { ng } => addrs.push(ng.ip()),
        Mode::Direct => {}
    }
    if let Some(a) = addrs.iter().find(|a| !a.is_loopback()) {
        bail!("loopback only: {a} is not");
    }
    Ok(())
}

/// Both RTP sockets, bound and with large buffers.
fn rtp_sockets(cli: &Cli) -> Result<[UdpSocket; 2]> {
    let a = UdpSocket::bind(cli.rtp_a).with_context(|| format!("bind RTP A {}", cli.rtp_a))?;
    let b = UdpSocket::bind(cli.rtp_b).with_context(|| format!("bind RTP B {}", cli.rtp_b))?;
    Ok([a, b])
}

fn run(cli: &Cli) -> Result<Figures> {
    check_bounds(cli)?;
    let socks = rtp_sockets(cli)?;
    let bufs = rtp::tune_socket(&socks[0], 8 << 20);
    rtp::tune_socket(&socks[1], 8 << 20);
    let mut f = Figures::new(cli, bufs);
    match &cli.mode {
        Mode::Direct => {
            let dst = vec![[cli.rtp_b, cli.rtp_a]; cli.calls];
            f.established = cli.calls;
            hold_rtp(cli, &socks, &dst, &mut f, std::thread::sleep);
        }
        Mode::Rtpengine { ng } => {
            let mut ng = ng::Ng::new(*ng)?;
            let dst = rtpengine_setup(cli, &mut ng)?;
            f.established = dst.len();
            hold_rtp(cli, &socks, &dst, &mut f, std::thread::sleep);
            for i in 0..dst.len() {
                let (cid, tag) = (ng_call_id(i), format!("f{i}"));
                if ng
                    .command(&[("command", "delete"), ("call-id", &cid), ("from-tag", &tag)])
                    .is_err()
                {
                    f.teardown_failures += 1;
                }
            }
        }
        Mode::Acd {
            acd,
            did,
            sip,
            uac_only,
        } => acd_run(cli, &socks, *acd, did, *sip, *uac_only, &mut f)?,
    }
    Ok(f)
}

/// Call-IDs unique per run: a previous run's calls may linger in rtpengine.
fn ng_call_id(i: usize) -> String {
    format!("rtpload-{}-{i}", std::process::id())
}

/// Offer and answer per call at `--cps`; the addresses each side sends to.
fn rtpengine_setup(cli: &Cli, ng: &mut ng::Ng) -> Result<Vec<[SocketAddrV4; 2]>> {
    let start = Instant::now();
    let mut dst = Vec::with_capacity(cli.calls);
    for i in 0..cli.calls {
        pace(start, i, cli.cps);
        let (cid, from, to) = (ng_call_id(i), format!("f{i}"), format!("t{i}"));
        let offer = sdp::pcmu(cli.rtp_a, i as u64 + 1);
        let r = ng.command(&[
            ("command", "offer"),
            ("call-id", &cid),
            ("from-tag", &from),
            ("sdp", &offer),
        ])?;
        let to_b = r.get_str("sdp").as_deref().and_then(sdp::audio_addr);
        let answer = sdp::pcmu(cli.rtp_b, i as u64 + 1);
        let r = ng.command(&[
            ("command", "answer"),
            ("call-id", &cid),
            ("from-tag", &from),
            ("to-tag", &to),
            ("sdp", &answer),
        ])?;
        let to_a = r.get_str("sdp").as_deref().and_then(sdp::audio_addr);
        match (to_a, to_b) {
            (Some(a), Some(b)) => dst.push([a, b]),
            _ => bail!("call {i}: no audio address in rtpengine's SDP: {r:?}"),
        }
    }
    Ok(dst)
}

/// Sleeps until call `i`'s slot at `cps` calls/s from `start`.
fn pace(start: Instant, i: usize, cps: u32) {
    let at = start + Duration::from_secs_f64(i as f64 / f64::from(cps));
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}

fn acd_run(
    cli: &Cli,
    socks: &[UdpSocket; 2],
    acd: SocketAddr,
    did: &str,
    local: SocketAddrV4,
    uac_only: bool,
    f: &mut Figures,
) -> Result<()> {
    let cfg = sip::SipConfig {
        local,
        acd,
        did: did.to_string(),
        rtp_a: cli.rtp_a,
        rtp_b: cli.rtp_b,
        uac_only,
    };
    let mut ua = sip::Ua::new(cfg, cli.calls)?;
    let start = Instant::now();
    for i in 0..cli.calls {
        let at = start + Duration::from_secs_f64(i as f64 / f64::from(cli.cps));
        ua.pump(at, |_| false);
        ua.start_call(i, Instant::now());
    }
    // Every call answered (both legs) or failed; Timer B bounds it.
    let n = cli.calls;
    ua.pump(Instant::now() + Duration::from_secs(34), |u| {
        u.settled() == n
    });
    let mut index = Vec::new();
    let dst: Vec<[SocketAddrV4; 2]> = if uac_only {
        Vec::new()
    } else {
        (0..n)
            .filter_map(|i| ua.media_of(i).map(|d| (i, d)))
            .map(|(i, d)| {
                index.push(i);
                d
            })
            .collect()
    };
    f.established = if uac_only {
        ua.established()
    } else {
        dst.len()
    };
    if uac_only {
        hold_quiet(cli, f, |d| ua.pump(Instant::now() + d, |_| false));
    } else {
        hold_rtp(cli, socks, &dst, f, |d| {
            ua.pump(Instant::now() + d, |_| false)
        });
    }
    f.call_index = index;
    let start = Instant::now();
    for i in 0..n {
        let at = start + Duration::from_secs_f64(i as f64 / f64::from(cli.cps));
        ua.pump(at, |_| false);
        ua.hang_up(i, Instant::now());
    }
    ua.pump(Instant::now() + Duration::from_secs(34), |u| {
        u.teardown_pending() == 0
    });
    f.teardown_failures = ua.teardown_pending() as u64;
    f.sip = Some((ua.counters.clone(), std::mem::take(&mut ua.setup_ms)));
    Ok(())
}

/// The CPU and RSS snapshot at one end of the steady window.
struct Snap {
    at: Instant,
    relay_us: Option<u64>,
    own_us: Option<u64>,
    packets: u64,
}

fn snap(pid: Option<u32>, received: &AtomicU64) -> Snap {
    Snap {
        at: Instant::now(),
        relay_us: pid.and_then(procstat::cpu_us),
        own_us: procstat::cpu_us(std::process::id()),
        packets: received.load(Ordering::Relaxed),
    }
}

fn window(a: &Snap, b: &Snap, pid: Option<u32>) -> CpuWindow {
    CpuWindow {
        secs: b.at.duration_since(a.at).as_secs_f64(),
        packets: b.packets.saturating_sub(a.packets),
        relay_pid: pid,
        relay_cpu_us: a.relay_us.zip(b.relay_us).map(|(x, y)| y.saturating_sub(x)),
        generator_cpu_us: a.own_us.zip(b.own_us).map(|(x, y)| y.saturating_sub(x)),
    }
}

/// No RTP (waiting callers): hold, with the relay's RSS in the middle.
fn hold_quiet(cli: &Cli, f: &mut Figures, mut wait: impl FnMut(Duration)) {
    let none = AtomicU64::new(0);
    wait(Duration::from_secs(cli.warmup));
    let a = snap(cli.pid, &none);
    f.rss_kib = cli.pid.and_then(procstat::rss_kib);
    wait(Duration::from_secs(cli.hold - cli.warmup));
    f.cpu = Some(window(&a, &snap(cli.pid, &none), cli.pid));
}

/// Streams RTP for every call in `dst` for `--hold` seconds; `wait(d)`
/// passes time on the main thread (serving SIP meanwhile in acd mode).
fn hold_rtp(
    cli: &Cli,
    socks: &[UdpSocket; 2],
    dst: &[[SocketAddrV4; 2]],
    f: &mut Figures,
    mut wait: impl FnMut(Duration),
) {
    let targets = Targets { dst: dst.to_vec() };
    let frames = (cli.hold * 50 + 100) as usize;
    let mut stats = RecvStats::new(dst.len(), frames);
    stats.timeline_from_ns = rtp::mono_ns();
    stats.steady_from_ns = stats.timeline_from_ns + cli.warmup * 1_000_000_000;
    let (send_stop, recv_stop) = (AtomicBool::new(false), AtomicBool::new(false));
    let (sent_total, received_total) = (AtomicU64::new(0), AtomicU64::new(0));
    let udp_before = procstat::udp_buf_errors();
    let tick = Duration::from_micros(cli.tick_us);
    let sent = std::thread::scope(|s| {
        let recv = s.spawn(|| {
            rtp::run_receiver(
                [&socks[0], &socks[1]],
                &mut stats,
                &recv_stop,
                &received_total,
            )
        });
        let send = s.spawn(|| {
            rtp::run_sender(
                [&socks[0], &socks[1]],
                &targets,
                tick,
                &send_stop,
                &sent_total,
            )
        });
        wait(Duration::from_secs(cli.warmup));
        let a = snap(cli.pid, &received_total);
        wait(Duration::from_secs(cli.hold - cli.warmup) / 2);
        f.rss_kib = cli.pid.and_then(procstat::rss_kib);
        f.queues = procstat::udp_queues(&[cli.rtp_a.port(), cli.rtp_b.port()], cli.relay_ports);
        wait(Duration::from_secs(cli.hold - cli.warmup) / 2);
        let b = snap(cli.pid, &received_total);
        send_stop.store(true, Ordering::Relaxed);
        let sent = send.join();
        wait(Duration::from_millis(cli.drain_ms));
        recv_stop.store(true, Ordering::Relaxed);
        let _ = recv.join();
        f.cpu = Some(window(&a, &b, cli.pid));
        sent
    });
    f.udp_errors = udp_before
        .zip(procstat::udp_buf_errors())
        .map(|((r0, s0), (r1, s1))| (r1.saturating_sub(r0), s1.saturating_sub(s0)));
    match sent {
        Ok(sent) => f.set_rtp(sent, stats),
        Err(_) => f.sender_panicked = true,
    }
}
