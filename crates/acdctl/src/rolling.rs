//! `acdctl rolling-restart`: upgrades every process of a running installation,
//! one at a time, waiting for each to be healthy again before the next.
//!
//! Order (the one that never leaves a role without a serving process):
//! 1. IVR runners, one by one (stateless; edges retry a step on another runner);
//! 2. distributor standbys, each followed until it is ready (following again);
//! 3. a switchover, so the primary becomes a standby, then that process;
//! 4. edges, one by one (their restart command is a live take-over or a drain);
//! 5. all-in-one `acd run` processes (take-over).
//!
//! The plan is a pure function of what the processes report ([`plan`]); the
//! executor only runs commands and polls `AdminService.Status`.

use std::path::Path;
use std::time::{Duration, Instant};

use acd_proto::v1::admin_service_client::AdminServiceClient;
use acd_proto::v1::{StatusRequest, StatusResponse, SwitchoverRequest};
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use crate::{connect, request};

/// How often a process is asked for its status while waiting.
const POLL: Duration = Duration::from_millis(200);

/// The installation file: every process and how to restart it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Installation {
    #[serde(rename = "process", default)]
    pub processes: Vec<Process>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Process {
    /// A name for the log, e.g. "edge-1".
    pub name: String,
    pub role: Kind,
    /// Its gRPC address (AdminService).
    pub admin: String,
    /// Shell command that restarts it (`systemctl reload acd-edge@1`, ...).
    pub restart: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Ivr,
    Distributor,
    Edge,
    Run,
}

/// One action of a rolling restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Run the process's restart command, then wait until a new process
    /// (another pid) serves its address and reports ready.
    Restart(String),
    /// Ask the named primary to hand leadership to its standby, then wait
    /// until it reports being a standby and ready.
    Switchover(String),
}

/// What the plan needs to know about a distributor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistributorRole {
    Primary,
    Standby,
}

/// The steps for `processes`; `role_of` says which distributor is primary.
/// Refuses a pair whose primary is unknown or that has several primaries.
pub fn plan(
    processes: &[Process],
    role_of: impl Fn(&Process) -> Option<DistributorRole>,
) -> Result<Vec<Step>> {
    let of = |k: Kind| processes.iter().filter(move |p| p.role == k);
    let mut steps: Vec<Step> = of(Kind::Ivr)
        .map(|p| Step::Restart(p.name.clone()))
        .collect();
    let distributors: Vec<&Process> = of(Kind::Distributor).collect();
    if !distributors.is_empty() {
        let primaries: Vec<&&Process> = distributors
            .iter()
            .filter(|p| role_of(p) == Some(DistributorRole::Primary))
            .collect();
        let primary = match primaries.as_slice() {
            [one] => one.name.clone(),
            [] => bail!("no distributor reports being primary"),
            many => bail!(
                "several distributors report being primary: {}",
                many.iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        for p in distributors.iter().filter(|p| p.name != primary) {
            steps.push(Step::Restart(p.name.clone()));
        }
        if distributors.len() > 1 {
            steps.push(Step::Switchover(primary.clone()));
        }
        steps.push(Step::Restart(primary));
    }
    steps.extend(of(Kind::Edge).map(|p| Step::Restart(p.name.clone())));
    steps.extend(of(Kind::Run).map(|p| Step::Restart(p.name.clone())));
    Ok(steps)
}

pub fn load(path: &Path) -> Result<Installation> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let inst: Installation =
        toml_edit::de::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    if inst.processes.is_empty() {
        bail!("{}: no [[process]] entries", path.display());
    }
    Ok(inst)
}

/// Runs the whole rolling restart; stops at the first process that does not
/// come back healthy within `timeout` (never touching the next one).
pub async fn run(path: &Path, timeout: Duration) -> Result<()> {
    let inst = load(path)?;
    let mut roles = Vec::new();
    for p in &inst.processes {
        let status = status_of(&p.admin)
            .await
            .with_context(|| format!("{} ({}) before the restart", p.name, p.admin))?;
        roles.push((p.name.clone(), distributor_role(&status)));
    }
    let steps = plan(&inst.processes, |p| {
        roles
            .iter()
            .find(|(n, _)| *n == p.name)
            .and_then(|(_, r)| *r)
    })?;
    let started = Instant::now();
    for step in steps {
        let t = Instant::now();
        match &step {
            Step::Restart(name) => restart(find(&inst, name)?, timeout).await?,
            Step::Switchover(name) => switchover(find(&inst, name)?, timeout).await?,
        }
        println!("rolling-restart: {step:?} done in {:?}", t.elapsed());
    }
    println!(
        "rolling-restart: every process restarted in {:?}",
        started.elapsed()
    );
    Ok(())
}

fn find<'a>(inst: &'a Installation, name: &str) -> Result<&'a Process> {
    inst.processes
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| anyhow!("no process named {name}"))
}

fn distributor_role(s: &StatusResponse) -> Option<DistributorRole> {
    match s.distributor.as_ref()?.role.as_str() {
        "primary" => Some(DistributorRole::Primary),
        "standby" => Some(DistributorRole::Standby),
        _ => None,
    }
}

async fn status_of(url: &str) -> Result<StatusResponse> {
    let channel = connect(url).await?;
    Ok(AdminServiceClient::new(channel)
        .status(request(StatusRequest {}))
        .await?
        .into_inner())
}

async fn restart(p: &Process, timeout: Duration) -> Result<()> {
    let before = status_of(&p.admin).await.map(|s| s.pid).unwrap_or(0);
    println!("rolling-restart: {} ({}): {}", p.name, p.admin, p.restart);
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&p.restart)
        .status()
        .await
        .with_context(|| format!("{}: cannot run `{}`", p.name, p.restart))?;
    if !out.success() {
        bail!("{}: `{}` failed ({out})", p.name, p.restart);
    }
    wait_for(p, timeout, "a new process to report ready", |s| {
        s.pid != before && s.ready
    })
    .await
}

async fn switchover(p: &Process, timeout: Duration) -> Result<()> {
    println!("rolling-restart: switchover away from {}", p.name);
    let channel = connect(&p.admin).await?;
    let resp = AdminServiceClient::new(channel)
        .switchover(request(SwitchoverRequest {}))
        .await
        .with_context(|| format!("{}: switchover", p.name))?
        .into_inner();
    println!(
        "rolling-restart: {} is primary at term {} (commands held {} µs)",
        resp.new_primary, resp.term, resp.pause_us
    );
    wait_for(p, timeout, "it to follow the new primary", |s| {
        s.ready && distributor_role(s) == Some(DistributorRole::Standby)
    })
    .await
}

/// Polls `p` until `done` holds; errors name what was awaited and the last
/// status seen.
async fn wait_for(
    p: &Process,
    timeout: Duration,
    what: &str,
    done: impl Fn(&StatusResponse) -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last;
    loop {
        match status_of(&p.admin).await {
            Ok(s) if done(&s) => return Ok(()),
            Ok(s) => {
                last = format!(
                    "pid {}, ready {}, waiting for {:?}",
                    s.pid, s.ready, s.waiting_for
                )
            }
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() >= deadline {
            bail!(
                "{}: gave up after {timeout:?} waiting for {what} (last: {last}); \
                 the remaining processes were not touched",
                p.name
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, role: Kind) -> Process {
        Process {
            name: name.into(),
            role,
            admin: format!("http://{name}:1"),
            restart: "true".into(),
        }
    }

    fn names(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::Restart(n) => n.clone(),
                Step::Switchover(n) => format!("switchover:{n}"),
            })
            .collect()
    }

    #[test]
    fn standby_first_then_switchover_then_old_primary() {
        let procs = vec![
            p("edge-1", Kind::Edge),
            p("dist-a", Kind::Distributor),
            p("ivr-1", Kind::Ivr),
            p("dist-b", Kind::Distributor),
            p("ivr-2", Kind::Ivr),
            p("edge-2", Kind::Edge),
        ];
        let steps = plan(&procs, |p| {
            Some(if p.name == "dist-a" {
                DistributorRole::Primary
            } else {
                DistributorRole::Standby
            })
        })
        .unwrap();
        assert_eq!(
            names(&steps),
            [
                "ivr-1",
                "ivr-2",
                "dist-b",
                "switchover:dist-a",
                "dist-a",
                "edge-1",
                "edge-2"
            ]
        );
    }

    #[test]
    fn a_lone_distributor_is_restarted_without_switchover() {
        let procs = vec![p("d", Kind::Distributor), p("all", Kind::Run)];
        let steps = plan(&procs, |_| Some(DistributorRole::Primary)).unwrap();
        assert_eq!(names(&steps), ["d", "all"]);
    }

    #[test]
    fn refuses_an_unclear_pair() {
        let procs = vec![p("a", Kind::Distributor), p("b", Kind::Distributor)];
        assert!(plan(&procs, |_| Some(DistributorRole::Standby)).is_err());
        assert!(plan(&procs, |_| Some(DistributorRole::Primary)).is_err());
    }

    #[test]
    fn the_shipped_example_loads() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/installation.example.toml");
        let inst = load(&path).unwrap();
        assert_eq!(inst.processes.len(), 6);
    }

    #[test]
    fn installation_file_is_strict() {
        let ok = r#"
            [[process]]
            name = "ivr-1"
            role = "ivr"
            admin = "http://127.0.0.1:50061"
            restart = "systemctl restart acd-ivr@1"
        "#;
        let inst: Installation = toml_edit::de::from_str(ok).unwrap();
        assert_eq!(inst.processes[0].role, Kind::Ivr);
        let typo = ok.replace("restart =", "restrat =");
        assert!(toml_edit::de::from_str::<Installation>(&typo).is_err());
        let bad_role = ok.replace("\"ivr\"", "\"proxy\"");
        assert!(toml_edit::de::from_str::<Installation>(&bad_role).is_err());
    }
}
