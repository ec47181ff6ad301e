//! Network namespaces for partition tests: each distributor in its own
//! namespace, all of them and the host joined by a bridge that lives in a
//! third ("switch") namespace, so a partition is a change inside the test's
//! own namespaces and never a change of the host's routes.
//!
//! ```text
//!  host ── t<block>-<pid> (10.<block>.0.1/24) ══ sh ┐
//!  ns a ── eth0 (10.<block>.0.2/24)           ══ sa ├─ br0 (ns s)
//!  ns b ── eth0 (10.<block>.0.3/24)           ══ sb ┘
//! ```
//!
//! [`Partition::isolate`] takes a namespace's bridge port down (it reaches
//! nobody and nobody reaches it: packets vanish, connections time out, none
//! is refused); [`Partition::split_pair`] marks both distributor ports
//! `isolated` (they no longer reach each other but still reach the host).
//! Everything is removed on drop, also when a test panics; namespaces a
//! killed test run left behind (its pid is gone) are removed on start.

use std::process::Command;

use anyhow::{bail, Context, Result};

/// The test's namespaces and addresses.
pub struct Netns {
    block: u16,
    pid: u32,
    /// The host's end of the link, `10.<block>.0.1`.
    pub host_ip: String,
    /// `ip netns` names of the member namespaces (`a`, `b`).
    pub members: Vec<Member>,
    switch: String,
    host_link: String,
}

/// One namespace attached to the bridge.
#[derive(Debug, Clone)]
pub struct Member {
    pub ns: String,
    pub ip: String,
    /// Its port on the bridge (in the switch namespace).
    port: String,
}

impl Member {
    /// `ip netns exec <ns>`: the prefix that runs a command inside.
    pub fn exec_prefix(&self) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.ns.clone()]
    }
}

/// Fails loudly when this process cannot create namespaces: the partition
/// tests need root and iproute2 (tests/run.sh runs them as root).
pub fn require_netns() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "the partition tests create network namespaces: run them as root (tests/run.sh does)"
    );
    let ok = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`ip netns list` failed: the partition tests need iproute2 with network namespaces"
    );
}

/// Runs `ip <args>`; fails with its stderr.
fn ip(args: &[&str]) -> Result<()> {
    run("ip", args)
}

fn run(cmd: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("running {cmd}"))?;
    if !out.status.success() {
        bail!(
            "`{cmd} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Netns {
    /// Creates the switch and `members` namespaces (at most 8) for port
    /// block `block` (the address range is `10.<block>.0.0/24`).
    pub fn create(block: u16, members: usize) -> Result<Netns> {
        require_netns();
        assert!(block < 256 && members <= 8);
        remove_stale(block);
        let pid = std::process::id();
        let name = |x: &str| format!("acd-t{block}-{pid}-{x}");
        let mut n = Netns {
            block,
            pid,
            host_ip: format!("10.{block}.0.1"),
            members: Vec::new(),
            switch: name("s"),
            // At most 15 characters: "t" + 3 + "-" + 7 (pid_max) = 12.
            host_link: format!("t{block}-{pid}"),
        };
        // From here on, drop removes whatever was created.
        ip(&["netns", "add", &n.switch])?;
        ip(&["-n", &n.switch, "link", "set", "lo", "up"])?;
        ip(&["-n", &n.switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &n.switch, "link", "set", "br0", "up"])?;
        ip(&[
            "link",
            "add",
            &n.host_link,
            "type",
            "veth",
            "peer",
            "name",
            "sh",
            "netns",
            &n.switch,
        ])?;
        n.attach_port("sh")?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", n.host_ip),
            "dev",
            &n.host_link,
        ])?;
        ip(&["link", "set", &n.host_link, "up"])?;
        for i in 0..members {
            let letter = (b'a' + i as u8) as char;
            let m = Member {
                ns: name(&letter.to_string()),
                ip: format!("10.{block}.0.{}", i + 2),
                port: format!("s{letter}"),
            };
            ip(&["netns", "add", &m.ns])?;
            n.members.push(m.clone());
            ip(&["-n", &m.ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n", &m.ns, "link", "add", "eth0", "type", "veth", "peer", "name", &m.port,
                "netns", &n.switch,
            ])?;
            n.attach_port(&m.port)?;
            ip(&[
                "-n",
                &m.ns,
                "addr",
                "add",
                &format!("{}/24", m.ip),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &m.ns, "link", "set", "eth0", "up"])?;
        }
        eprintln!(
            "[e2e] netns: host {} on {}, members {:?}",
            n.host_ip,
            n.host_link,
            n.members
                .iter()
                .map(|m| format!("{}={}", m.ns, m.ip))
                .collect::<Vec<_>>()
        );
        Ok(n)
    }

    fn attach_port(&self, port: &str) -> Result<()> {
        ip(&["-n", &self.switch, "link", "set", port, "master", "br0"])?;
        ip(&["-n", &self.switch, "link", "set", port, "up"])
    }

    /// Member `i` (0 = `a`).
    pub fn member(&self, i: usize) -> &Member {
        &self.members[i]
    }

    /// Cuts member `i` off from everyone (its bridge port down).
    pub fn isolate(&self, i: usize) -> Result<()> {
        ip(&[
            "-n",
            &self.switch,
            "link",
            "set",
            &self.members[i].port,
            "down",
        ])
    }

    /// Joins member `i` again.
    pub fn rejoin(&self, i: usize) -> Result<()> {
        ip(&[
            "-n",
            &self.switch,
            "link",
            "set",
            &self.members[i].port,
            "up",
        ])
    }

    /// The members no longer reach each other; each still reaches the host.
    pub fn split_members(&self, on: bool) -> Result<()> {
        let flag = if on { "on" } else { "off" };
        for m in &self.members {
            run(
                "bridge",
                &[
                    "-n",
                    &self.switch,
                    "link",
                    "set",
                    "dev",
                    &m.port,
                    "isolated",
                    flag,
                ],
            )?;
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth ends and so their peers,
        // the host's end included.
        for m in &self.members {
            let _ = ip(&["netns", "del", &m.ns]);
        }
        let _ = ip(&["netns", "del", &self.switch]);
        let _ = ip(&["link", "del", &self.host_link]);
        eprintln!(
            "[e2e] netns: removed the namespaces of block {} (pid {})",
            self.block, self.pid
        );
    }
}

/// Removes namespaces of `block` left by a test process that no longer
/// exists (a killed run cannot clean up after itself).
fn remove_stale(block: u16) {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    let prefix = format!("acd-t{block}-");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(ns) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = ns
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("[e2e] netns: removing {ns}, left by a run that is gone");
            let _ = ip(&["netns", "del", ns]);
            let _ = ip(&["link", "del", &format!("t{block}-{pid}")]);
        }
    }
}
