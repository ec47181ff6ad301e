//! acd configuration: one TOML file describes SIP accounts, agents and
//! skills, queues, dialled numbers and IVR flows.
//!
//! Loading is two passes over the same text: serde for shape and types, then
//! cross-reference checks (a DID names a flow that exists, a flow node names a
//! queue that exists, …). Every problem is reported as `file:line: key: what`,
//! so an operator can fix a config before it is applied.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use acd_ivr::Flow;
use serde::Deserialize;

pub mod access;
mod flows;
mod locate;
mod prompt_dirs;
pub mod routing;
mod trunks;
pub use access::{AccessConfig, GrpcTlsConfig, SecretForm, UserDef, UserRole};
use flows::FlowDir;
pub use flows::{known, FlowFile};
pub use locate::Seg;
pub use trunks::{AuthConfig, Cidr, DigestAlgorithm, TrunkDef};

/// The built-in defaults `acd run` starts with when no `--config` is given.
pub mod defaults {
    /// Text of `config/acd.toml`.
    pub const TEXT: &str = include_str!("../../../config/acd.toml");
    /// Name reported in errors about the embedded file.
    pub const ORIGIN: &str = "<embedded config/acd.toml>";

    // `FILES`: every file under `config/` but acd.toml (see build.rs).
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

    /// Bytes of a file under `config/` that the defaults refer to.
    pub fn file(relative: &str) -> Option<&'static [u8]> {
        let relative = relative.trim_start_matches("./");
        FILES
            .binary_search_by(|(path, _)| (*path).cmp(relative))
            .ok()
            .map(|i| FILES[i].1)
    }

    /// Embedded files whose path starts with `prefix` (`flows/`), directly
    /// in that directory.
    pub fn files_under(prefix: &str) -> impl Iterator<Item = (&'static str, &'static [u8])> + '_ {
        FILES
            .iter()
            .filter(move |(path, _)| {
                path.strip_prefix(prefix)
                    .is_some_and(|rest| !rest.contains('/'))
            })
            .copied()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub sip: SipConfig,
    #[serde(default)]
    pub media: MediaConfig,
    #[serde(default)]
    pub grpc: GrpcConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub distributor: DistributorConfig,
    #[serde(default)]
    pub admission: AdmissionConfig,
    /// Prompt name → WAV file, relative to the config file.
    #[serde(default)]
    pub prompts: BTreeMap<String, String>,
    /// Language → prompt name → WAV file; known to flows and the edge as
    /// `<language>/<name>` (`en/welcome`).
    #[serde(default)]
    pub prompt_sets: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    pub ivr: IvrConfig,
    #[serde(default)]
    pub extensions: Vec<ExtensionDef>,
    #[serde(default)]
    pub agents: Vec<AgentDef>,
    #[serde(default)]
    pub queues: Vec<QueueDef>,
    #[serde(default)]
    pub dids: Vec<DidDef>,
    /// Inline flows and, after loading, those of `[ivr] flows_dir` too.
    #[serde(default)]
    pub flows: BTreeMap<String, Flow>,
    /// The flows that came from their own file, by flow id.
    #[serde(skip)]
    pub flow_files: BTreeMap<String, FlowFile>,
    #[serde(default)]
    pub auth: AuthConfig,
    /// Absent: INVITEs are admitted from any source (see `trunks` module).
    #[serde(default)]
    pub trunks: Vec<TrunkDef>,
    /// Absent: no demo services run.
    #[serde(default)]
    pub demo: DemoConfig,
    /// Who may use the gRPC API (see `access` module).
    #[serde(default)]
    pub access: AccessConfig,
    /// Call records (absent: none kept).
    #[serde(default)]
    pub records: Option<RecordsConfig>,
    /// Staffing forecasts and shift plans (`acdctl report staffing`, wallboard).
    #[serde(default)]
    pub staffing: StaffingConfig,
}

/// `[records]`: call detail records and the queue event trail, written by the
/// distributor (primary and standby alike) from its committed events.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsConfig {
    /// `sqlite:PATH` (relative to the config file) or `postgres://user@host:port/db`.
    pub database: String,
    /// Directory (relative to the config file) of the durable buffer of records
    /// not yet in the database.
    #[serde(default = "default_spool")]
    pub spool: String,
    /// A caller who hangs up within this many seconds of queuing is a short
    /// abandon (counted apart from the abandon rate).
    #[serde(default = "default_short_abandon")]
    pub short_abandon_secs: u32,
    /// First-contact resolution: an answered call counts as resolved when the
    /// same number does not call again within this many hours.
    #[serde(default = "default_fcr_window")]
    pub fcr_window_hours: u32,
}

fn default_spool() -> String {
    "data/records-spool".to_string()
}
fn default_short_abandon() -> u32 {
    5
}
fn default_fcr_window() -> u32 {
    24
}

/// `[staffing]`: how operator numbers are planned.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffingConfig {
    /// Share of paid time operators are not available for calls (breaks,
    /// training, absence), in percent.
    #[serde(default = "default_shrinkage")]
    pub shrinkage_percent: u32,
    /// Interval length of forecasts and the wallboard's chart: 15, 30 or 60.
    #[serde(default = "default_interval")]
    pub interval_mins: u32,
    /// Shift length for the suggested plan, in hours.
    #[serde(default = "default_shift_hours")]
    pub shift_hours: u32,
    /// Average patience of callers before abandoning (Erlang A), in seconds;
    /// 0: measured from the recorded abandons.
    #[serde(default)]
    pub patience_secs: u32,
    /// The centre's time zone (IANA name): where the wallboard's day and
    /// intervals begin. Absent: UTC.
    #[serde(default)]
    pub time_zone: Option<String>,
}

fn default_shrinkage() -> u32 {
    30
}
fn default_interval() -> u32 {
    30
}
fn default_shift_hours() -> u32 {
    8
}

impl Default for StaffingConfig {
    fn default() -> Self {
        StaffingConfig {
            shrinkage_percent: default_shrinkage(),
            interval_mins: default_interval(),
            shift_hours: default_shift_hours(),
            patience_secs: 0,
            time_zone: None,
        }
    }
}

/// `[ivr]`: where flows live besides inline `[flows.X]` tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrConfig {
    /// Directory (relative to the config file) whose every `*.toml` is one
    /// flow, its id the file stem.
    pub flows_dir: Option<String>,
    /// Language of a caller before any choice (first of `Known.languages`);
    /// default: the first prompt set by name.
    pub default_language: Option<String>,
    /// Prompt sets as directories: language → directory (relative to the
    /// config file) whose every `*.wav` is a prompt named by its stem.
    #[serde(default)]
    pub prompt_dirs: BTreeMap<String, String>,
    /// Directory of voicemail recordings (created if missing), relative to
    /// the config file; absent: `voicemail` next to it (`./voicemail` with
    /// the embedded defaults).
    pub voicemail_dir: Option<String>,
}

impl Config {
    /// Every prompt name the edge knows, mapped to its file: `[prompts]` as
    /// they are, `[prompt_sets.<lang>]` as `<lang>/<name>`.
    pub fn prompt_names(&self) -> BTreeMap<String, String> {
        let mut out = self.prompts.clone();
        for (lang, set) in &self.prompt_sets {
            for (name, file) in set {
                out.insert(format!("{lang}/{name}"), file.clone());
            }
        }
        out
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    pub realm: String,
    #[serde(default = "default_sip_addr")]
    pub udp: SocketAddr,
    #[serde(default = "default_sip_addr")]
    pub tcp: SocketAddr,
    /// Address written into Via, Contact and SDP.
    pub public_ip: IpAddr,
    /// RFC 3261 T1 (RTT estimate) in milliseconds: retransmission intervals
    /// and the 64*T1 transaction and no-ACK timeouts scale with it.
    #[serde(default = "default_t1_ms")]
    pub t1_ms: u64,
    #[serde(default)]
    pub limits: SipLimits,
    /// SIP over TLS; absent = no TLS listener.
    pub tls: Option<TlsConfig>,
    /// On SIGTERM (or `acdctl drain`) the edge lets its calls end for at
    /// most this long; then the calls left get a BYE and the process exits.
    #[serde(default = "default_drain_deadline_secs")]
    pub drain_deadline_secs: u64,
    /// Unix socket on which the running edge hands its sockets and calls to
    /// a new process (`acd edge --take-over PATH`); absent = no hand-over.
    #[serde(default)]
    pub handover_socket: Option<std::path::PathBuf>,
}

/// Bounds on what stream (TCP, TLS) peers may hold of the edge.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipLimits {
    /// Open TCP and TLS connections in total, accepted and dialled.
    pub max_tcp_connections: usize,
    /// Accepted connections from one source IP address (phones behind one
    /// NAT share an address, so this is per office rather than per phone).
    pub max_tcp_per_source: usize,
    /// A connection on which nothing arrives for this long is closed
    /// (CRLF keep-alives count as traffic).
    pub tcp_idle_timeout_secs: u64,
    /// Once the first byte of a message has arrived, the whole message must
    /// arrive within this time (slow-loris guard; also bounds TLS handshakes).
    pub tcp_header_timeout_secs: u64,
    /// Largest SIP message (headers and body) accepted on a stream.
    pub max_message_bytes: usize,
}

impl Default for SipLimits {
    fn default() -> Self {
        SipLimits {
            max_tcp_connections: 4096,
            max_tcp_per_source: 128,
            tcp_idle_timeout_secs: 600,
            tcp_header_timeout_secs: 10,
            max_message_bytes: 65536,
        }
    }
}

/// SIP over TLS (RFC 3261 §26.2; `sips:` and `;transport=tls` contacts).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub listen: SocketAddr,
    /// PEM certificate chain, relative to the config file.
    pub cert: String,
    /// PEM private key, relative to the config file.
    pub key: String,
    /// PEM CA certificates trusted when dialling agents over TLS, instead of
    /// the system's roots.
    pub ca: Option<String>,
}

fn default_t1_ms() -> u64 {
    500
}

fn default_drain_deadline_secs() -> u64 {
    3600
}

fn default_sip_addr() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 5060))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    /// Media threads relaying RTP and playing prompts; 0 (the default) starts one
    /// per core.
    #[serde(default)]
    pub threads: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            rtp_port_min: 20000,
            rtp_port_max: 29999,
            threads: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcConfig {
    pub listen: SocketAddr,
    /// Absent: plain HTTP/2.
    #[serde(default)]
    pub tls: Option<GrpcTlsConfig>,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            tls: None,
        }
    }
}

/// `[demo]`: stand-ins for back-office systems, so the shipped sample flow
/// works without one. Every key optional; an absent key starts nothing.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    /// Where `acd run` serves the demo order-status API (`GET /orders/<n>`).
    #[serde(default)]
    pub orders_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributorConfig {
    pub wrap_up_secs: u64,
    pub offer_timeout_secs: u64,
    /// etcd client URLs; when set, the pair elects its primary there.
    #[serde(default)]
    pub etcd: Vec<String>,
    /// Name of the election (one per distributor pair).
    #[serde(default = "default_election")]
    pub election: String,
    /// TTL of the leadership lease; etcd raises it to its minimum
    /// (`ceil(1.5 × election timeout)`, 2 s with etcd's defaults).
    #[serde(default = "default_lease_ttl")]
    pub lease_ttl_secs: u64,
    /// The gRPC URL the other distributor and clients reach this one at
    /// [default: the gRPC listen address].
    #[serde(default)]
    pub advertise: Option<String>,
    /// Reason codes agents may give for NotReady; empty: any text.
    #[serde(default)]
    pub not_ready_reasons: Vec<String>,
    /// Directory (relative to the config file) where every committed event is
    /// appended as a JSON line, one file per UTC day; absent: no journal.
    #[serde(default)]
    pub journal: Option<String>,
}

fn default_election() -> String {
    "acd/distributor".to_string()
}

fn default_lease_ttl() -> u64 {
    2
}

impl Default for DistributorConfig {
    fn default() -> Self {
        DistributorConfig {
            wrap_up_secs: 5,
            offer_timeout_secs: 20,
            etcd: Vec::new(),
            election: default_election(),
            lease_ttl_secs: default_lease_ttl(),
            advertise: None,
            not_ready_reasons: Vec::new(),
            journal: None,
        }
    }
}

/// Limits past which the edge answers new INVITEs with 503 + Retry-After,
/// so the calls it has already accepted keep their timing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// Calls in progress on one edge.
    pub max_calls: usize,
    /// New calls per second (a burst of one second's worth is allowed).
    pub max_calls_per_second: u32,
    /// How late the edge's signalling loop may run (smoothed delay between a
    /// message's arrival and its handling) before new calls are refused.
    pub max_lateness_ms: u64,
    /// Retry-After of the refusals.
    pub retry_after_secs: u32,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            max_calls: 2000,
            max_calls_per_second: 400,
            max_lateness_ms: 100,
            retry_after_secs: 5,
        }
    }
}

/// A SIP account an operator's softphone registers with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionDef {
    pub number: String,
    pub password: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentDef {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// Skill → proficiency 1–10.
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// The edge asks the agent's phone to answer by itself (Call-Info
    /// answer-after=0).
    #[serde(default)]
    pub auto_answer: bool,
    /// The agent's password for the gRPC API (HTTP Basic `id:password`), or
    /// its SHA-256 in hex; neither: only supervisors act for this agent.
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub password_sha256: String,
}

/// One queue; see `config/acd.toml` for every key and `routing` for the types.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueDef {
    pub id: String,
    /// Skill → minimum proficiency an agent needs, or a skill expression.
    #[serde(default)]
    pub skills: routing::SkillsSpec,
    /// Overrides `distributor.wrap_up_secs` for calls from this queue.
    pub wrap_up_secs: Option<u64>,
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub strategy: acd_routing::Strategy,
    pub service_level: Option<routing::ServiceLevelDef>,
    pub max_wait_secs: Option<u64>,
    pub max_size: Option<u32>,
    #[serde(default)]
    pub aging_per_sec: u32,
    pub hours: Option<routing::HoursDef>,
    #[serde(default)]
    pub relax: Vec<routing::RelaxDef>,
    #[serde(default)]
    pub overflow: routing::OverflowDef,
    pub announce: Option<routing::AnnounceDef>,
    pub callback: Option<routing::CallbackDef>,
    /// Post-call survey: `survey = { flow = "survey" }`.
    pub survey: Option<routing::SurveyDef>,
}

/// A dialled number and the flow its calls run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DidDef {
    pub number: String,
    pub flow: String,
}

/// Bounds of `sip.limits.max_message_bytes`: an INVITE with SDP needs a few
/// KiB; more than a megabyte per message is only a way to hold memory.
const MIN_MESSAGE_BYTES: usize = 4096;
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// One problem in a config file, located by key and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: ", self.file, line)?,
            None => write!(f, "{}: ", self.file)?,
        }
        if !self.key.is_empty() {
            write!(f, "key `{}`: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in one config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Where a config came from, to resolve the files it names.
#[derive(Debug, Clone)]
pub enum Origin {
    File(PathBuf),
    Embedded,
}

/// A parsed, validated config and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub origin: Origin,
}

impl Loaded {
    /// Reads and validates a config file.
    pub fn from_file(path: &Path) -> Result<Loaded, ConfigErrors> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: name.clone(),
                line: None,
                key: String::new(),
                message: e.to_string(),
            }])
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let config = parse_in(&text, &name, FlowDir::Path(dir))?;
        let loaded = Loaded {
            config,
            origin: Origin::File(path.to_path_buf()),
        };
        loaded.check_files(&text, &name)?;
        Ok(loaded)
    }

    /// The embedded defaults.
    pub fn embedded() -> Result<Loaded, ConfigErrors> {
        let config = parse_in(defaults::TEXT, defaults::ORIGIN, FlowDir::Embedded)?;
        let loaded = Loaded {
            config,
            origin: Origin::Embedded,
        };
        loaded.check_files(defaults::TEXT, defaults::ORIGIN)?;
        Ok(loaded)
    }

    /// Loads `path`, or the embedded defaults when none is given.
    pub fn from_option(path: Option<&Path>) -> Result<Loaded, ConfigErrors> {
        match path {
            Some(p) => Loaded::from_file(p),
            None => Loaded::embedded(),
        }
    }

    /// Bytes of a file the config names (a prompt), resolved against the
    /// config's directory.
    /// Where the edge writes voicemail recordings (`[ivr] voicemail_dir`).
    pub fn voicemail_dir(&self) -> PathBuf {
        let dir = self
            .config
            .ivr
            .voicemail_dir
            .as_deref()
            .unwrap_or("voicemail");
        match &self.origin {
            Origin::Embedded => PathBuf::from(dir),
            Origin::File(path) => path.parent().unwrap_or(Path::new(".")).join(dir),
        }
    }

    /// Where the distributor writes its event journal (`[distributor]
    /// journal`, relative to the config file); `None`: no journal.
    pub fn journal_dir(&self) -> Option<PathBuf> {
        let dir = self.config.distributor.journal.as_deref()?;
        Some(match &self.origin {
            Origin::Embedded => PathBuf::from(dir),
            Origin::File(path) => path.parent().unwrap_or(Path::new(".")).join(dir),
        })
    }

    /// A path from the config (relative to the config file's directory, or
    /// to the working directory with the embedded defaults).
    pub fn resolve(&self, relative: &str) -> PathBuf {
        match &self.origin {
            Origin::Embedded => PathBuf::from(relative),
            Origin::File(path) => path.parent().unwrap_or(Path::new(".")).join(relative),
        }
    }

    /// The directory relative paths of this config are taken from.
    pub fn base_dir(&self) -> PathBuf {
        self.resolve("")
    }

    pub fn read_file(&self, relative: &str) -> Result<Vec<u8>, String> {
        match &self.origin {
            Origin::Embedded => defaults::file(relative)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| format!("`{relative}` is not embedded in the binary")),
            Origin::File(path) => {
                let full = path.parent().unwrap_or(Path::new(".")).join(relative);
                std::fs::read(&full).map_err(|e| format!("cannot read {}: {e}", full.display()))
            }
        }
    }

    /// Whether a file the config names can be read, without reading it
    /// (hundreds of prompts are read once, by whoever decodes them).
    fn check_file(&self, relative: &str) -> Result<(), String> {
        match &self.origin {
            Origin::Embedded => defaults::file(relative)
                .map(|_| ())
                .ok_or_else(|| format!("`{relative}` is not embedded in the binary")),
            Origin::File(path) => {
                let full = path.parent().unwrap_or(Path::new(".")).join(relative);
                match std::fs::File::open(&full).and_then(|f| f.metadata()) {
                    Ok(m) if m.is_file() => Ok(()),
                    Ok(_) => Err(format!("{} is not a file", full.display())),
                    Err(e) => Err(format!("cannot read {}: {e}", full.display())),
                }
            }
        }
    }

    /// Every prompt name (prompt sets flattened to `<lang>/<name>`) mapped
    /// to its file's bytes.
    pub fn prompt_files(&self) -> Result<BTreeMap<String, Vec<u8>>, String> {
        self.config
            .prompt_names()
            .into_iter()
            .map(|(name, file)| Ok((name, self.read_file(&file)?)))
            .collect()
    }

    /// Files whose change should reload the flows: the config file, the
    /// flows directory (a file added or removed) and every flow file.
    /// Empty for the embedded config.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let Origin::File(path) = &self.origin else {
            return Vec::new();
        };
        let mut files = vec![path.clone()];
        if let Some(dir) = &self.config.ivr.flows_dir {
            files.push(path.parent().unwrap_or(Path::new(".")).join(dir));
        }
        files.extend(
            self.config
                .flow_files
                .values()
                .filter_map(|f| f.path.clone()),
        );
        files
    }

    fn check_files(&self, text: &str, name: &str) -> Result<(), ConfigErrors> {
        let mut errors: Vec<ConfigError> = prompt_keys(&self.config)
            .into_iter()
            .filter_map(|(table, prompt, file)| {
                let err = self.check_file(&file).err()?;
                let mut path: Vec<Seg> = table.iter().map(|t| Seg::Key(t)).collect();
                path.push(Seg::Key(&prompt));
                Some(locate::error(text, name, &path, err))
            })
            .collect();
        if let Some(tls) = &self.config.sip.tls {
            let files = [
                ("cert", Some(&tls.cert)),
                ("key", Some(&tls.key)),
                ("ca", tls.ca.as_ref()),
            ];
            for (key, file) in files {
                let Some(Err(err)) = file.map(|f| self.check_file(f)) else {
                    continue;
                };
                let path = [Seg::Key("sip"), Seg::Key("tls"), Seg::Key(key)];
                errors.push(locate::error(text, name, &path, err));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

/// Every prompt as (table path, name, file): `[prompts]` and each
/// `[prompt_sets.<lang>]`.
pub fn prompt_keys(c: &Config) -> Vec<(Vec<String>, String, String)> {
    let plain = c
        .prompts
        .iter()
        .map(|(n, f)| (vec!["prompts".to_string()], n.clone(), f.clone()));
    let sets = c.prompt_sets.iter().flat_map(|(lang, set)| {
        set.iter().map(move |(n, f)| {
            let table = vec!["prompt_sets".to_string(), lang.clone()];
            (table, n.clone(), f.clone())
        })
    });
    plain.chain(sets).collect()
}

/// Parses and validates config text; `name` is used in error messages.
/// `[ivr] flows_dir` needs a file: see [`Loaded::from_file`].
pub fn parse(text: &str, name: &str) -> Result<Config, ConfigErrors> {
    parse_in(text, name, FlowDir::None)
}

fn parse_in(text: &str, name: &str, dir: FlowDir) -> Result<Config, ConfigErrors> {
    let mut config: Config =
        toml_edit::de::from_str(text).map_err(|e| ConfigErrors(vec![de_error(text, name, &e)]))?;
    let mut errors = flows::load_dir(&mut config, text, name, dir);
    errors.extend(prompt_dirs::load(&mut config, text, name, dir));
    errors.extend(validate(&config, text, name));
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// A serde error located at its line and key.
fn de_error(text: &str, name: &str, e: &toml_edit::de::Error) -> ConfigError {
    let line = e.span().map(|s| locate::line_of(text, s.start));
    let key = e
        .span()
        .and_then(|s| locate::key_at(text, s.start))
        .unwrap_or_default();
    let first_line = e.message().lines().next().unwrap_or_default().to_string();
    ConfigError {
        file: name.to_string(),
        line,
        key,
        message: clean(&first_line, e),
    }
}

fn clean(first_line: &str, e: &toml_edit::de::Error) -> String {
    let msg = e.message().trim();
    if msg.is_empty() {
        first_line.to_string()
    } else {
        msg.replace('\n', " ")
    }
}

/// Cross-reference and range checks that serde cannot express.
fn validate(c: &Config, text: &str, name: &str) -> Vec<ConfigError> {
    let mut v = Validator {
        text,
        name,
        errors: Vec::new(),
    };
    v.media(c);
    v.admission(&c.admission);
    v.limits(&c.sip.limits);
    v.unique(
        c.extensions.iter().map(|e| e.number.as_str()),
        "extensions",
        "number",
    );
    v.unique(c.agents.iter().map(|a| a.id.as_str()), "agents", "id");
    v.unique(c.queues.iter().map(|q| q.id.as_str()), "queues", "id");
    v.unique(c.dids.iter().map(|d| d.number.as_str()), "dids", "number");
    for (i, e) in c.extensions.iter().enumerate() {
        if e.password.is_empty() {
            v.push(
                &[Seg::Key("extensions"), Seg::Index(i), Seg::Key("password")],
                "must not be empty",
            );
        }
    }
    for (i, a) in c.agents.iter().enumerate() {
        v.skill_levels(&a.skills, "agents", i);
    }
    v.errors.extend(routing::build(c, text, name).1);
    for (i, d) in c.dids.iter().enumerate() {
        if !c.flows.contains_key(&d.flow) {
            v.push(
                &[Seg::Key("dids"), Seg::Index(i), Seg::Key("flow")],
                &format!("no flow `{}` in [flows] or [ivr] flows_dir", d.flow),
            );
        }
    }
    v.errors.extend(flows::check(c, text, name));
    v.auth(&c.auth);
    v.trunks(&c.trunks);
    v.access(c);
    v.records(c.records.as_ref());
    v.staffing(&c.staffing);
    v.errors
}

impl Validator<'_> {
    /// `[records] database`: the forms `acd_records::Database::parse` takes
    /// (that crate is not a dependency of the config core).
    fn records(&mut self, r: Option<&RecordsConfig>) {
        let Some(r) = r else { return };
        let db = r.database.as_str();
        let ok = match db.strip_prefix("sqlite:") {
            Some(path) => !path.is_empty(),
            None => db.starts_with("postgres://") || db.starts_with("postgresql://"),
        };
        if !ok {
            self.push(
                &[Seg::Key("records"), Seg::Key("database")],
                &format!("`{db}` is neither sqlite:PATH nor postgres://user@host:port/db"),
            );
        }
        if r.spool.is_empty() {
            self.push(
                &[Seg::Key("records"), Seg::Key("spool")],
                "must name a directory",
            );
        }
    }

    /// `[staffing]`: an interval the reports know, a zone the tz database has.
    fn staffing(&mut self, s: &StaffingConfig) {
        if ![15, 30, 60].contains(&s.interval_mins) {
            self.push(
                &[Seg::Key("staffing"), Seg::Key("interval_mins")],
                &format!("{} minutes: must be 15, 30 or 60", s.interval_mins),
            );
        }
        if s.shrinkage_percent >= 100 {
            self.push(
                &[Seg::Key("staffing"), Seg::Key("shrinkage_percent")],
                &format!("{} %: must be below 100", s.shrinkage_percent),
            );
        }
        if let Some(zone) = &s.time_zone {
            if let Err(e) = acd_ivr::calendar::local(zone, 0) {
                self.push(&[Seg::Key("staffing"), Seg::Key("time_zone")], &e);
            }
        }
    }
}

struct Validator<'a> {
    text: &'a str,
    name: &'a str,
    errors: Vec<ConfigError>,
}

impl Validator<'_> {
    fn push(&mut self, path: &[Seg], message: &str) {
        self.errors.push(locate::error(
            self.text,
            self.name,
            path,
            message.to_string(),
        ));
    }

    fn admission(&mut self, a: &AdmissionConfig) {
        for (key, zero) in [
            ("max_calls", a.max_calls == 0),
            ("max_calls_per_second", a.max_calls_per_second == 0),
            ("max_lateness_ms", a.max_lateness_ms == 0),
        ] {
            if zero {
                self.push(
                    &[Seg::Key("admission"), Seg::Key(key)],
                    "must be at least 1 (0 would refuse every call)",
                );
            }
        }
    }

    fn limits(&mut self, l: &SipLimits) {
        let at = |key: &'static str| [Seg::Key("sip"), Seg::Key("limits"), Seg::Key(key)];
        let positive = [
            ("max_tcp_connections", l.max_tcp_connections as u64),
            ("max_tcp_per_source", l.max_tcp_per_source as u64),
            ("tcp_idle_timeout_secs", l.tcp_idle_timeout_secs),
            ("tcp_header_timeout_secs", l.tcp_header_timeout_secs),
        ];
        for (key, value) in positive {
            if value == 0 {
                self.push(&at(key), "must be at least 1");
            }
        }
        if l.max_tcp_per_source > l.max_tcp_connections {
            self.push(
                &at("max_tcp_per_source"),
                "must not exceed max_tcp_connections",
            );
        }
        if !(MIN_MESSAGE_BYTES..=MAX_MESSAGE_BYTES).contains(&l.max_message_bytes) {
            self.push(
                &at("max_message_bytes"),
                &format!("must be within {MIN_MESSAGE_BYTES}-{MAX_MESSAGE_BYTES}"),
            );
        }
    }

    fn media(&mut self, c: &Config) {
        let m = &c.media;
        if m.rtp_port_min >= m.rtp_port_max || m.rtp_port_max - m.rtp_port_min < 2 {
            self.push(
                &[Seg::Key("media"), Seg::Key("rtp_port_max")],
                "must be at least rtp_port_min + 2",
            );
        }
        if c.sip.t1_ms == 0 {
            self.push(&[Seg::Key("sip"), Seg::Key("t1_ms")], "must be at least 1");
        }
        if c.distributor.offer_timeout_secs == 0 {
            self.push(
                &[Seg::Key("distributor"), Seg::Key("offer_timeout_secs")],
                "must be at least 1",
            );
        }
        self.leadership(&c.distributor);
    }

    fn leadership(&mut self, d: &DistributorConfig) {
        let is_url = |u: &str| {
            (u.starts_with("http://") || u.starts_with("https://")) && u.len() > "https://".len()
        };
        for (i, url) in d.etcd.iter().enumerate() {
            if !is_url(url) {
                self.push(
                    &[Seg::Key("distributor"), Seg::Key("etcd"), Seg::Index(i)],
                    &format!("`{url}` is not an http:// or https:// URL"),
                );
            }
        }
        if let Some(url) = d.advertise.as_deref().filter(|u| !is_url(u)) {
            self.push(
                &[Seg::Key("distributor"), Seg::Key("advertise")],
                &format!("`{url}` is not an http:// or https:// URL"),
            );
        }
        if d.election.trim().is_empty() {
            self.push(
                &[Seg::Key("distributor"), Seg::Key("election")],
                "must not be empty",
            );
        }
        if !(1..=60).contains(&d.lease_ttl_secs) {
            self.push(
                &[Seg::Key("distributor"), Seg::Key("lease_ttl_secs")],
                "must be within 1-60",
            );
        }
    }

    fn unique<'s>(&mut self, ids: impl Iterator<Item = &'s str>, table: &str, field: &str) {
        let mut seen = BTreeSet::new();
        for (i, id) in ids.enumerate() {
            if id.is_empty() {
                self.push(
                    &[Seg::Key(table), Seg::Index(i), Seg::Key(field)],
                    "must not be empty",
                );
            } else if !seen.insert(id) {
                self.push(
                    &[Seg::Key(table), Seg::Index(i), Seg::Key(field)],
                    &format!("`{id}` is defined twice"),
                );
            }
        }
    }

    fn skill_levels(&mut self, skills: &BTreeMap<String, u8>, table: &str, i: usize) {
        for (skill, level) in skills {
            if !(1..=10).contains(level) {
                let path = [
                    Seg::Key(table),
                    Seg::Index(i),
                    Seg::Key("skills"),
                    Seg::Key(skill),
                ];
                self.push(&path, &format!("proficiency {level} is outside 1-10"));
            }
        }
    }
}

#[cfg(test)]
mod tests;
