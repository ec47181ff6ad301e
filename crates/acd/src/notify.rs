//! systemd's `sd_notify` protocol: one datagram to `$NOTIFY_SOCKET`
//! (`READY=1`, `STOPPING=1`, `STATUS=...`, `WATCHDOG=1`, `MAINPID=...`).
//! Without that variable (not run by systemd with `Type=notify`) it does
//! nothing.
//!
//! The watchdog half is sans-IO: [`watchdog_timeout`] reads the two
//! variables systemd sets with `WatchdogSec=`, [`ping_interval`] says how
//! often to ping, and [`Progress`] tells a loop that moves from one that is
//! stuck. `crate::watchdog` is the task that uses them.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

pub fn send(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send_to(&path, state) {
        tracing::warn!(socket = ?path, state, "sd_notify failed: {e}");
    }
}

fn send_to(path: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path);
    // A leading '@' names a socket in the abstract namespace (Linux only).
    if let Some(name) = bytes.strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
            return Ok(());
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = name;
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "abstract socket",
            ));
        }
    }
    sock.send_to(state.as_bytes(), path)?;
    Ok(())
}

/// Why the watchdog variables were not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchdogEnvError {
    #[error("WATCHDOG_USEC={0:?} is not a positive number of microseconds")]
    BadUsec(String),
    #[error("WATCHDOG_PID={0:?} is not a process id")]
    BadPid(String),
}

/// The watchdog timeout systemd expects pings within, from `WATCHDOG_USEC`
/// and `WATCHDOG_PID` (as `sd_watchdog_enabled(3)` reads them): `None`
/// when there is no watchdog, or when it is meant for another process
/// (`WATCHDOG_PID` names someone else, e.g. our parent's).
pub fn watchdog_timeout(
    usec: Option<&str>,
    pid: Option<&str>,
    own_pid: u32,
) -> Result<Option<Duration>, WatchdogEnvError> {
    let Some(usec) = usec else {
        return Ok(None);
    };
    let micros: u64 = match usec.trim().parse() {
        Ok(n) if n > 0 => n,
        _ => return Err(WatchdogEnvError::BadUsec(usec.to_string())),
    };
    if let Some(pid) = pid {
        let pid: u32 = pid
            .trim()
            .parse()
            .map_err(|_| WatchdogEnvError::BadPid(pid.to_string()))?;
        if pid != own_pid {
            return Ok(None);
        }
    }
    Ok(Some(Duration::from_micros(micros)))
}

/// How often to ping: half the timeout, as systemd recommends, so one late
/// ping does not get the service killed.
pub fn ping_interval(timeout: Duration) -> Duration {
    (timeout / 2).max(Duration::from_millis(1))
}

/// Tells a loop that moves from one that is stuck, from a counter the loop
/// bumps every turn (and at least every `stale_after / 3` when idle).
#[derive(Debug, Clone)]
pub struct Progress {
    last_value: Option<u64>,
    last_change: Instant,
    stale_after: Duration,
}

impl Progress {
    pub fn new(stale_after: Duration, now: Instant) -> Self {
        Progress {
            last_value: None,
            last_change: now,
            stale_after,
        }
    }

    /// Records the counter's current value; `Err(age)` when it has not
    /// moved for longer than `stale_after`.
    pub fn observe(&mut self, value: u64, now: Instant) -> Result<(), Duration> {
        if self.last_value != Some(value) {
            self.last_value = Some(value);
            self.last_change = now;
        }
        let age = now.saturating_duration_since(self.last_change);
        if age > self.stale_after {
            Err(age)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_env() {
        let t = |usec, pid| watchdog_timeout(usec, pid, 42);
        assert_eq!(t(None, None), Ok(None));
        assert_eq!(t(Some("10000000"), None), Ok(Some(Duration::from_secs(10))));
        assert_eq!(
            t(Some("2000000"), Some("42")),
            Ok(Some(Duration::from_secs(2)))
        );
        // Meant for another process (systemd sets it for the main pid only).
        assert_eq!(t(Some("2000000"), Some("7")), Ok(None));
        assert_eq!(t(None, Some("42")), Ok(None));
        assert!(matches!(
            t(Some("0"), None),
            Err(WatchdogEnvError::BadUsec(_))
        ));
        assert!(matches!(
            t(Some("-5"), None),
            Err(WatchdogEnvError::BadUsec(_))
        ));
        assert!(matches!(
            t(Some("10s"), None),
            Err(WatchdogEnvError::BadUsec(_))
        ));
        assert!(matches!(
            t(Some("1000"), Some("x")),
            Err(WatchdogEnvError::BadPid(_))
        ));
    }

    #[test]
    fn interval_is_half_the_timeout() {
        assert_eq!(
            ping_interval(Duration::from_secs(10)),
            Duration::from_secs(5)
        );
        assert_eq!(
            ping_interval(Duration::from_micros(3)),
            Duration::from_millis(1)
        );
    }

    #[test]
    fn progress_detects_a_stuck_counter() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut p = Progress::new(s(3), t0);
        assert_eq!(p.observe(5, t0), Ok(()));
        assert_eq!(p.observe(5, t0 + s(3)), Ok(()));
        assert_eq!(p.observe(5, t0 + s(4)), Err(s(4)));
        // Moving again: healthy at once.
        assert_eq!(p.observe(6, t0 + s(5)), Ok(()));
        assert_eq!(p.observe(6, t0 + s(7)), Ok(()));
        assert_eq!(p.observe(6, t0 + s(9)), Err(s(4)));
    }
}
