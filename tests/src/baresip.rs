//! baresip 1.0 (Debian package `baresip`) as a real agent softphone.
//!
//! [`Baresip::spawn`] writes a config directory in the test's log dir
//! (`<log_dir>/<name>/{config,accounts}`), runs `baresip -f <dir> -t <secs> -s`
//! headless (no sound card: `aufile` plays a WAV as the microphone, the
//! `aubridge` player swallows what is received, `sndfile` records both
//! directions as `dump-*-{enc,dec}.wav` in the same dir) and kills it on drop.
//!
//! Media is made recognisable without SSRCs (the edge's relay rewrites them
//! onto the other leg's stream): each side sends a constant level ("DC"), which
//! survives G.711 coding and the relay's PCMU<->PCMA transcoding as a run of
//! equal samples. [`MediaProbe`] decodes what a caller receives, and
//! [`read_wav_s16`] reads what baresip recorded.
//!
//! Ports (offsets in the test's [`PortBlock`](crate::ports::PortBlock)):
//! SIP `+90`, RTP `+92..+99`. These overlap only the media ports of SIPp
//! instances 8 and 9, so a test using baresip must not use SIPp slots 8-9.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::net::UdpSocket;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::env::{tail, TestEnv};

/// Where Debian installs baresip's modules.
pub const MODULE_PATH: &str = "/usr/lib/baresip/modules";

/// Fails (never skips) when baresip is not installed.
pub fn require_baresip() {
    let ok = std::process::Command::new("baresip")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        panic!("`baresip` not found on PATH: install it (`apt-get install -y baresip`; tests/run.sh does)");
    }
    for m in [
        "g711.so",
        "aufile.so",
        "aubridge.so",
        "sndfile.so",
        "account.so",
    ] {
        let p = Path::new(MODULE_PATH).join(m);
        assert!(p.is_file(), "baresip module {} missing", p.display());
    }
}

/// One softphone: account and ports.
#[derive(Debug, Clone)]
pub struct BaresipSpec {
    /// Name of the config dir and log files (`baresip-<name>.*.log`).
    pub name: String,
    pub extension: String,
    pub password: String,
    /// `ip:port` of the edge's SIP (UDP).
    pub registrar: String,
    pub sip_port: u16,
    pub rtp_ports: (u16, u16),
    /// 16-bit PCM WAV played as the microphone (`aufile`).
    pub source_wav: PathBuf,
    /// `-t`: baresip quits by itself after this long.
    pub lifetime: Duration,
    /// More config lines (e.g. `module_app ctrl_tcp.so`), appended.
    pub extra_config: String,
}

impl BaresipSpec {
    /// Extension `ext` registering at this test's edge, on the block's baresip ports.
    pub fn new(env: &TestEnv, name: &str, ext: &str, password: &str, wav: &Path) -> Self {
        let base = env.ports.base;
        BaresipSpec {
            name: name.to_string(),
            extension: ext.to_string(),
            password: password.to_string(),
            registrar: env.sip_addr(),
            sip_port: base + 90,
            rtp_ports: (base + 92, base + 99),
            source_wav: wav.to_path_buf(),
            lifetime: Duration::from_secs(120),
            extra_config: String::new(),
        }
    }

    fn config(&self, dir: &Path) -> String {
        format!(
            "# written by the acd end-to-end tests (tests/src/baresip.rs)\n\
             poll_method\t\tepoll\n\
             sip_listen\t\t127.0.0.1:{sip}\n\
             net_interface\t\t127.0.0.1\n\
             rtp_ports\t\t{r0}-{r1}\n\
             rtcp_mux\t\tno\n\
             call_max_calls\t\t1\n\
             audio_source\t\taufile,{wav}\n\
             audio_player\t\taubridge,acd-e2e-sink\n\
             audio_alert\t\taubridge,acd-e2e-sink\n\
             ausrc_format\t\ts16\n\
             auplay_format\t\ts16\n\
             module_path\t\t{MODULE_PATH}\n\
             module\t\t\tg711.so\n\
             module\t\t\taufile.so\n\
             module\t\t\taubridge.so\n\
             module\t\t\tsndfile.so\n\
             module_tmp\t\taccount.so\n\
             snd_path\t\t{dir}\n\
             {extra}",
            sip = self.sip_port,
            r0 = self.rtp_ports.0,
            r1 = self.rtp_ports.1,
            wav = self.source_wav.display(),
            dir = dir.display(),
            extra = self.extra_config,
        )
    }

    fn accounts(&self) -> String {
        format!(
            "<sip:{ext}@{reg};transport=udp>;auth_user={ext};auth_pass={pw};answermode=auto;\
             regint=600;audio_codecs=pcmu,pcma;ptime=20\n",
            ext = self.extension,
            reg = self.registrar,
            pw = self.password,
        )
    }
}

/// A running baresip. Killed (process group) when dropped.
pub struct Baresip {
    pub spec: BaresipSpec,
    /// The config dir, also where `sndfile` writes its recordings.
    pub dir: PathBuf,
    pub stdout_log: PathBuf,
    child: Child,
}

impl Baresip {
    pub async fn spawn(env: &TestEnv, spec: BaresipSpec) -> Result<Self> {
        require_baresip();
        let dir = env.log_path(&spec.name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("config"), spec.config(&dir))?;
        std::fs::write(dir.join("accounts"), spec.accounts())?;
        // An empty contacts file keeps baresip from writing its template.
        std::fs::write(dir.join("contacts"), "")?;
        let stdout_log = env.log_path(&format!("baresip-{}.stdout.log", spec.name));
        let stderr_log = env.log_path(&format!("baresip-{}.stderr.log", spec.name));
        let args = vec![
            "-f".to_string(),
            dir.display().to_string(),
            "-t".to_string(),
            spec.lifetime.as_secs().max(1).to_string(),
            "-s".to_string(), // SIP trace on stdout
        ];
        std::fs::write(
            env.log_path(&format!("baresip-{}.cmdline", spec.name)),
            format!("baresip {}\n", args.join(" ")),
        )?;
        let child = Command::new("baresip")
            .args(&args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(&stdout_log)?))
            .stderr(Stdio::from(std::fs::File::create(&stderr_log)?))
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("spawning baresip")?;
        Ok(Baresip {
            spec,
            dir,
            stdout_log,
            child,
        })
    }

    /// Fails if baresip has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "baresip {} exited unexpectedly ({status}); stdout tail:\n{}",
                self.spec.name,
                tail(&self.stdout_log, 40)
            );
        }
    }

    /// The stdout log (SIP trace and baresip's own messages) so far.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.stdout_log).unwrap_or_default()).into_owned()
    }

    /// `sndfile` recordings of received audio (`dump-*-dec.wav`).
    pub fn received_recordings(&self) -> Vec<PathBuf> {
        self.recordings("-dec.wav")
    }

    /// `sndfile` recordings of sent audio (`dump-*-enc.wav`).
    pub fn sent_recordings(&self) -> Vec<PathBuf> {
        self.recordings("-enc.wav")
    }

    fn recordings(&self, suffix: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("dump-") && n.ends_with(suffix))
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// SIGTERM (baresip unregisters and quits), bounded; SIGKILL after.
    pub async fn stop(&mut self) -> Option<std::process::ExitStatus> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(s) => s.ok(),
            Err(_) => {
                let _ = self.child.start_kill();
                self.child.wait().await.ok()
            }
        }
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if let (Ok(None), Some(pid)) = (self.child.try_wait(), self.child.id()) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

// ---------------------------------------------------------------------------
// WAV files

/// Writes a mono 16-bit PCM WAV of `secs` seconds at 8 kHz, every sample `level`.
pub fn write_level_wav(path: &Path, level: i16, secs: u32) -> Result<()> {
    let rate: u32 = 8000;
    let n = rate * secs;
    let data_len = n * 2;
    let mut b = Vec::with_capacity(44 + data_len as usize);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for _ in 0..n {
        b.extend_from_slice(&level.to_le_bytes());
    }
    std::fs::write(path, b).with_context(|| format!("writing {}", path.display()))
}

/// Samples of a 16-bit PCM WAV (first channel). Tolerates a data chunk
/// whose length was never patched (a recorder killed mid-call).
pub fn read_wav_s16(path: &Path) -> Result<Vec<i16>> {
    let b = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        bail!("{}: not a RIFF/WAVE file", path.display());
    }
    let mut off = 12;
    let mut channels = 1usize;
    let mut bits = 16u16;
    let mut format = 1u16;
    while off + 8 <= b.len() {
        let id = &b[off..off + 4];
        let len = u32::from_le_bytes([b[off + 4], b[off + 5], b[off + 6], b[off + 7]]) as usize;
        let body = off + 8;
        if id == b"fmt " && body + 16 <= b.len() {
            format = u16::from_le_bytes([b[body], b[body + 1]]);
            channels = u16::from_le_bytes([b[body + 2], b[body + 3]]).max(1) as usize;
            bits = u16::from_le_bytes([b[body + 14], b[body + 15]]);
        } else if id == b"data" {
            if !(format == 1 || format == 0xFFFE) || bits != 16 {
                bail!(
                    "{}: not 16-bit PCM (format {format}, {bits} bits)",
                    path.display()
                );
            }
            let end = body.saturating_add(len).min(b.len());
            let end = if len == 0 { b.len() } else { end };
            return Ok(b[body..end]
                .chunks_exact(2 * channels)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect());
        }
        off = body + len + (len & 1);
    }
    bail!("{}: no data chunk", path.display())
}

// ---------------------------------------------------------------------------
// G.711 decoding (to recognise a constant level in RTP payloads): the
// project's own codec, so the test hears what the edge's relay would.

pub use acd_media::g711::{alaw_decode, ulaw_decode};

/// Whether `sample` is `level` within the G.711 quantisation at that level (±1/16).
pub fn near_level(sample: i16, level: i16) -> bool {
    let tol = (level as i32).abs() / 16 + 16;
    (sample as i32 - level as i32).abs() <= tol
}

// ---------------------------------------------------------------------------
// The caller's RTP endpoint, decoding payloads

/// One RTP packet as seen by a [`MediaProbe`].
#[derive(Debug, Clone)]
pub struct Packet {
    pub at: Instant,
    pub from: SocketAddr,
    pub pt: u8,
    pub ssrc: u32,
    /// The decoded level when every sample of the (G.711) payload is the same
    /// within quantisation; `None` for varying audio or other payload types.
    pub level: Option<i16>,
}

/// A test-owned RTP endpoint that keeps every packet it receives (with its
/// decoded level) and sends constant-level PCMU.
pub struct MediaProbe {
    pub name: String,
    socket: Arc<UdpSocket>,
    packets: Arc<Mutex<Vec<Packet>>>,
    changed: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl Drop for MediaProbe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn decode_level(pt: u8, payload: &[u8]) -> Option<i16> {
    let dec: fn(u8) -> i16 = match pt {
        0 => ulaw_decode,
        8 => alaw_decode,
        _ => return None,
    };
    let first = dec(*payload.first()?);
    payload
        .iter()
        .all(|&b| near_level(dec(b), first))
        .then_some(first)
}

fn parse(pkt: &[u8], from: SocketAddr) -> Option<Packet> {
    // RTCP and anything malformed is not counted.
    let info = acd_media::rtp::parse(pkt).ok()?;
    let pt = info.pt.get();
    Some(Packet {
        at: Instant::now(),
        from,
        pt,
        ssrc: info.ssrc.0,
        level: decode_level(pt, info.payload(pkt)),
    })
}

impl MediaProbe {
    pub async fn bind(name: &str, port: u16) -> Result<Self> {
        let socket = Arc::new(UdpSocket::bind(("127.0.0.1", port)).await?);
        let packets = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = watch::channel(0u64);
        let (s2, p2) = (socket.clone(), packets.clone());
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let mut n = 0u64;
            while let Ok((len, from)) = s2.recv_from(&mut buf).await {
                if let Some(p) = parse(&buf[..len], from) {
                    p2.lock().unwrap().push(p);
                }
                n += 1;
                let _ = tx.send(n);
            }
        });
        Ok(MediaProbe {
            name: name.to_string(),
            socket,
            packets,
            changed: rx,
            task,
        })
    }

    pub fn port(&self) -> u16 {
        self.socket.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn packets(&self) -> Vec<Packet> {
        self.packets.lock().unwrap().clone()
    }

    /// Packets received so far that satisfy `pred`.
    pub fn count(&self, pred: impl Fn(&Packet) -> bool) -> usize {
        self.packets
            .lock()
            .unwrap()
            .iter()
            .filter(|p| pred(p))
            .count()
    }

    pub fn last_source(&self) -> Option<SocketAddr> {
        self.packets.lock().unwrap().last().map(|p| p.from)
    }

    /// Waits until at least `n` packets satisfy `pred`, or fails after `within`.
    pub async fn await_count(
        &self,
        what: &str,
        n: usize,
        within: Duration,
        pred: impl Fn(&Packet) -> bool,
    ) -> Result<usize> {
        let mut rx = self.changed.clone();
        let deadline = Instant::now() + within;
        loop {
            let c = self.count(&pred);
            if c >= n {
                return Ok(c);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => bail!("probe {}: receiver stopped waiting for {what}", self.name),
                Err(_) => bail!(
                    "probe {}: {c} of {n} {what} within {within:?} ({} packets in all)",
                    self.name,
                    self.packets.lock().unwrap().len()
                ),
            }
        }
    }

    /// Sends `count` PCMU packets (20 ms apart) whose 160 payload bytes are all
    /// `byte`, with `ssrc`, to `to`.
    pub async fn send_level(&self, to: SocketAddr, ssrc: u32, byte: u8, count: u16) -> Result<()> {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for i in 0..count {
            tick.tick().await;
            let pkt = crate::rtp::pcmu_packet(i, 2000, ssrc, &[], byte);
            self.socket.send_to(&pkt, to).await?;
        }
        Ok(())
    }
}

/// baresip's TCP control interface (`ctrl_tcp` module): netstring-framed
/// JSON commands, the long names of the `menu` module's commands.
pub fn ctrl_tcp_config(port: u16) -> String {
    format!(
        "module_app\t\tmenu.so\nmodule_app\t\tctrl_tcp.so\nctrl_tcp_listen\t\t127.0.0.1:{port}\n"
    )
}

/// Sends `command` with `params` to baresip's `ctrl_tcp` on `port`,
/// retrying the connection until `within` passes; returns its response.
pub async fn ctrl_command(
    port: u16,
    command: &str,
    params: &str,
    within: Duration,
) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = Instant::now() + within;
    let mut stream = loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(s) => break s,
            Err(e) if Instant::now() >= deadline => bail!("baresip ctrl_tcp on {port}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let json = format!("{{\"command\":\"{command}\",\"params\":\"{params}\",\"token\":\"acd\"}}");
    stream
        .write_all(format!("{}:{json},", json.len()).as_bytes())
        .await?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout_at(
        deadline.max(Instant::now() + Duration::from_secs(2)),
        stream.read(&mut buf),
    )
    .await
    .context("baresip ctrl_tcp: no response")??;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_decoders_match_reference_points() {
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
    }

    #[test]
    fn level_wav_round_trips() {
        let p = std::env::temp_dir().join(format!("acd-e2e-level-{}.wav", std::process::id()));
        write_level_wav(&p, 3000, 1).unwrap();
        let s = read_wav_s16(&p).unwrap();
        let _ = std::fs::remove_file(&p);
        assert_eq!(s.len(), 8000);
        assert!(s.iter().all(|&x| x == 3000));
    }
}
