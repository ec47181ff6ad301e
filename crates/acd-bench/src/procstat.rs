//! CPU time and UDP error counters from /proc, read around the steady window.

/// CPU time of a process (all its live threads), in microseconds: the sum
/// of the threads' schedstat run time (ns resolution), else utime + stime
/// (clock-tick resolution). `None` when it cannot be read.
pub fn cpu_us(pid: u32) -> Option<u64> {
    schedstat_us(pid).or_else(|| stat_us(pid))
}

fn schedstat_us(pid: u32) -> Option<u64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let text = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        ns += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns / 1000)
}

fn stat_us(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, utime 14, stime 15 (1-based in proc(5)).
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) * 1_000_000 / clock_ticks())
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// `(RcvbufErrors, SndbufErrors)` of UDP, machine-wide (/proc/net/snmp):
/// a drop in any socket buffer on the box, the generator's or the relay's.
pub fn udp_buf_errors() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut lines = text.lines().filter(|l| l.starts_with("Udp:"));
    let names: Vec<&str> = lines.next()?.split_whitespace().collect();
    let values: Vec<&str> = lines.next()?.split_whitespace().collect();
    let get = |name: &str| -> Option<u64> {
        let i = names.iter().position(|n| *n == name)?;
        values.get(i)?.parse().ok()
    };
    Some((get("RcvbufErrors")?, get("SndbufErrors")?))
}

/// Bytes waiting in UDP receive queues (/proc/net/udp, IPv4): of the
/// sockets bound to `mine` and of those in `relay` (the relay's RTP range),
/// and the relay's kernel drop count. Where packets wait tells a starved
/// relay from a starved generator.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct UdpQueues {
    pub generator_rx_bytes: u64,
    pub relay_rx_bytes: u64,
    pub relay_sockets_queued: u64,
    pub relay_drops: u64,
}

pub fn udp_queues(mine: &[u16], relay: Option<(u16, u16)>) -> Option<UdpQueues> {
    let text = std::fs::read_to_string("/proc/net/udp").ok()?;
    let mut q = UdpQueues::default();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(queues), Some(drops)) = (f.get(1), f.get(4), f.get(12)) else {
            continue;
        };
        let Some(port) = local
            .rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
        else {
            continue;
        };
        let rx = queues
            .split(':')
            .nth(1)
            .and_then(|r| u64::from_str_radix(r, 16).ok())
            .unwrap_or(0);
        if mine.contains(&port) {
            q.generator_rx_bytes += rx;
        } else if relay.is_some_and(|(lo, hi)| (lo..=hi).contains(&port)) {
            q.relay_rx_bytes += rx;
            q.relay_sockets_queued += u64::from(rx > 0);
            q.relay_drops += drops.parse::<u64>().unwrap_or(0);
        }
    }
    Some(q)
}

/// VmRSS of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        assert!(cpu_us(std::process::id()).is_some());
        assert!(stat_us(std::process::id()).is_some());
        assert!(rss_kib(std::process::id()).unwrap_or(0) > 0);
        assert!(udp_buf_errors().is_some());
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = sock.local_addr().expect("addr").port();
        assert!(udp_queues(&[port], Some((port, port))).is_some());
    }
}
