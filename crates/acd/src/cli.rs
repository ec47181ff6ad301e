//! Command line: one binary, one subcommand per role.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// acd — a contact-centre call distributor (SIP edge, IVR runner, distributor).
#[derive(Debug, Parser)]
#[command(name = "acd", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Every role in one process: edge, IVR runner and distributor.
    Run {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        sip: SipArgs,
        #[command(flatten)]
        ivr: IvrArgs,
    },
    /// The SIP edge alone, talking to a distributor and IVR runners over gRPC.
    Edge {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        sip: SipArgs,
        /// gRPC URLs of the distributors (primary and standbys), comma
        /// separated, e.g. http://10.0.0.5:50051,http://10.0.0.6:50051: the
        /// edge attaches to whichever leads.
        #[arg(long, value_name = "URL[,URL...]")]
        distributor: String,
        /// gRPC URLs of the IVR runners, comma separated.
        #[arg(
            long,
            value_name = "URL[,URL...]",
            value_delimiter = ',',
            required = true
        )]
        ivr: Vec<String>,
        /// Name this edge gives itself towards the distributor
        /// [default: edge-<public ip>-<SIP UDP port>].
        #[arg(long, value_name = "ID")]
        edge_id: Option<String>,
    },
    /// A stateless IVR runner.
    Ivr {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        ivr: IvrArgs,
    },
    /// The distributor (queues, agents, routing), primary or hot standby.
    Distributor {
        #[command(flatten)]
        common: CommonArgs,
        /// Run as hot standby following the primary at this gRPC URL (a
        /// static pair: no automatic fail-over).
        #[arg(long, value_name = "URL", conflicts_with = "etcd")]
        standby_of: Option<String>,
        #[command(flatten)]
        leadership: LeadershipArgs,
    },
    /// A made-up order-status HTTP API (`GET /orders/<digits>`) for trying
    /// the sample flow without a back office (`acd run` serves it too when
    /// the config has `[demo] orders_listen`).
    DemoOrders {
        /// Listen address of the API, e.g. 127.0.0.1:8089.
        #[arg(long, value_name = "ADDR")]
        listen: SocketAddr,
        /// Prometheus /metrics listen address [default: none].
        #[arg(long, value_name = "ADDR")]
        metrics: Option<SocketAddr>,
    },
    /// Validate a config file (and the prompts it names) without starting anything.
    CheckConfig {
        /// The config file to check.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// Options every serving role has.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Config file [default: the embedded config/acd.toml].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// gRPC listen address [default: [grpc] listen].
    #[arg(long, value_name = "ADDR")]
    pub grpc: Option<SocketAddr>,
    /// Prometheus /metrics and /ready listen address [default: [metrics] listen].
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
}

/// Options of the roles that run the IVR.
#[derive(Debug, Args, Default)]
pub struct IvrArgs {
    /// Tests: the IVR's clock starts at this RFC 3339 time
    /// (2026-12-01T03:00:00+03:00) and advances in real time.
    #[arg(long, hide = true, value_name = "TIME", value_parser = acd_ivr_runner::parse_rfc3339)]
    pub ivr_clock: Option<i64>,
}

/// Leadership of a distributor pair from etcd (each overrides its
/// `[distributor]` key).
#[derive(Debug, Args)]
pub struct LeadershipArgs {
    /// etcd client URLs, comma separated: the pair elects its primary there
    /// [default: [distributor] etcd].
    #[arg(long, value_name = "URL[,URL...]", value_delimiter = ',')]
    pub etcd: Vec<String>,
    /// Election name, one per pair [default: [distributor] election].
    #[arg(long, value_name = "NAME")]
    pub election: Option<String>,
    /// gRPC URL the other distributor and clients reach this one at
    /// [default: [distributor] advertise, else the gRPC listen address].
    #[arg(long, value_name = "URL")]
    pub advertise: Option<String>,
    /// Leadership lease TTL in seconds [default: [distributor] lease_ttl_secs].
    #[arg(long, value_name = "SECS")]
    pub lease_ttl_secs: Option<u64>,
}

/// Options of the roles that run a SIP edge.
#[derive(Debug, Args)]
pub struct SipArgs {
    /// SIP UDP listen address [default: [sip] udp].
    #[arg(long, value_name = "ADDR")]
    pub sip_udp: Option<SocketAddr>,
    /// SIP TCP listen address [default: [sip] tcp].
    #[arg(long, value_name = "ADDR")]
    pub sip_tcp: Option<SocketAddr>,
    /// SIP TLS listen address [default: [sip.tls] listen; needs [sip.tls]
    /// cert and key in the config].
    #[arg(long, value_name = "ADDR")]
    pub sip_tls: Option<SocketAddr>,
    /// RTP port range [default: [media] rtp_port_min-rtp_port_max].
    #[arg(long, value_name = "MIN-MAX", value_parser = parse_port_range)]
    pub rtp_ports: Option<(u16, u16)>,
    /// Address written into Via, Contact and SDP [default: [sip] public_ip].
    #[arg(long, value_name = "IP")]
    pub public_ip: Option<IpAddr>,
    /// Unix socket on which this process hands its sockets and calls to a
    /// new process started with --take-over [default: [sip] handover_socket].
    #[arg(long, value_name = "PATH")]
    pub handover_socket: Option<PathBuf>,
    /// Take the sockets and live calls of the process serving the hand-over
    /// socket PATH instead of binding; it exits once this one serves.
    #[arg(long, value_name = "PATH")]
    pub take_over: Option<PathBuf>,
}

/// `MIN-MAX`, both non-zero, MIN ≤ MAX.
fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (lo, hi) = s
        .split_once('-')
        .ok_or_else(|| format!("`{s}` is not MIN-MAX (e.g. 20000-29999)"))?;
    let port = |p: &str| -> Result<u16, String> {
        match p.trim().parse::<u16>() {
            Ok(0) | Err(_) => Err(format!("`{p}` is not a port number 1-65535")),
            Ok(n) => Ok(n),
        }
    };
    let (lo, hi) = (port(lo)?, port(hi)?);
    if lo > hi {
        return Err(format!("range {lo}-{hi} is empty: MIN is above MAX"));
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("20000-29999"), Ok((20000, 29999)));
        assert_eq!(parse_port_range("4000-4000"), Ok((4000, 4000)));
        assert!(parse_port_range("30000-20000").is_err());
        assert!(parse_port_range("0-10").is_err());
        assert!(parse_port_range("20000").is_err());
        assert!(parse_port_range("a-b").is_err());
    }

    #[test]
    fn ivr_urls_split_on_commas() {
        let cli = Cli::try_parse_from([
            "acd",
            "edge",
            "--distributor",
            "http://d:1",
            "--ivr",
            "http://a:1,http://b:2",
            "--rtp-ports",
            "100-200",
        ])
        .unwrap();
        match cli.command {
            Cmd::Edge { ivr, sip, .. } => {
                assert_eq!(ivr, ["http://a:1", "http://b:2"]);
                assert_eq!(sip.rtp_ports, Some((100, 200)));
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn distributor_leadership_flags() {
        let cli = Cli::try_parse_from([
            "acd",
            "distributor",
            "--etcd",
            "http://a:2379,http://b:2379",
            "--election",
            "pair",
            "--advertise",
            "http://d:1",
        ])
        .unwrap();
        match cli.command {
            Cmd::Distributor { leadership, .. } => {
                assert_eq!(leadership.etcd, ["http://a:2379", "http://b:2379"]);
                assert_eq!(leadership.election.as_deref(), Some("pair"));
                assert_eq!(leadership.advertise.as_deref(), Some("http://d:1"));
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from([
            "acd",
            "distributor",
            "--etcd",
            "http://a:2379",
            "--standby-of",
            "http://p:1"
        ])
        .is_err());
    }

    #[test]
    fn ivr_clock_is_parsed_for_the_ivr_roles() {
        let cli = Cli::try_parse_from(["acd", "ivr", "--ivr-clock", "1970-01-01T03:00:01+03:00"])
            .unwrap();
        match cli.command {
            Cmd::Ivr { ivr, .. } => assert_eq!(ivr.ivr_clock, Some(1000)),
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["acd", "run", "--ivr-clock", "tomorrow"]).is_err());
        assert!(
            Cli::try_parse_from(["acd", "distributor", "--ivr-clock", "1970-01-01T00:00:00Z"])
                .is_err()
        );
    }

    #[test]
    fn edge_needs_distributor_and_ivr() {
        assert!(Cli::try_parse_from(["acd", "edge", "--ivr", "http://a:1"]).is_err());
        assert!(Cli::try_parse_from(["acd", "edge", "--distributor", "http://d:1"]).is_err());
    }
}
