//! Chaos case 7: network partitions of the distributor pair under load.
//!
//! The two distributors run in their own network namespaces (`netns.rs`),
//! etcd, the IVR runners, the edge and SIPp on the host. Under steady SIPp
//! load:
//! (a) the primary is cut off from everyone (etcd, the standby, the edge):
//!     the standby must lead after the lease TTL, the old primary must stop
//!     acting (its last released effect precedes the new primary's
//!     promotion, it reports standby once reachable again) and the edge must
//!     never see a command of the old term after the new one;
//! (b) the pair is cut from each other only (both still reach etcd): the
//!     primary keeps leading, no second primary appears.
//! After each heal both converge (equal `state_digest`, one primary).
//! Throughout, both Status endpoints are polled every few ms from the host:
//! never two report `primary` at once. The promise at the end is the chaos
//! suite's: zero failed calls, every call answered, agents back to Ready.
//!
//! Needs root and `ip netns` (tests/run.sh runs as root); fails loudly
//! otherwise.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use acd_tests::cluster::{status_once, Cluster, ClusterOptions};
use acd_tests::metrics::{counter, scrape};
use acd_tests::netns::{require_netns, Netns};
use acd_tests::{AcdProcess, DistributorAt, TestEnv, LONG, SHORT};
use tokio::time::Instant;

const BLOCK: u16 = 86;
/// 20 calls at 1/s, each held 12 s: the load spans both partitions.
const RATE: u32 = 1;
const CALLS: u32 = 20;
const HOLD_MS: u64 = 12_000;
const BEFORE_FAULT: u64 = 3;
/// How long each partition lasts.
const PARTITION: Duration = Duration::from_secs(3);
/// Longest the edge may take to attach to the new primary after the cut:
/// the TTL, the edge's HTTP/2 ping timeout and a connect timeout to the
/// unreachable old primary, with room for a loaded machine.
const EDGE_RE_ATTACH: Duration = Duration::from_secs(6);
/// How often the host polls both distributors' Status.
const POLL_EVERY: Duration = Duration::from_millis(5);
/// A Status answer older than this is not "now": dropped.
const POLL_TIMEOUT: Duration = Duration::from_millis(200);

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What the poller saw.
#[derive(Default)]
struct Seen {
    /// Moments both answered `primary` within [`FRESH`] of each other:
    /// (distributor, term) pairs.
    double_primaries: Vec<[(usize, u64); 2]>,
    /// The latest answer of each: role, term and when it arrived (`None`:
    /// the last request got no answer).
    latest: [Option<(String, u64, Instant)>; 2],
    answers: u64,
}

/// Two answers this close count as "at the same time".
const FRESH: Duration = Duration::from_millis(50);

/// Polls each distributor's Status from the host every few ms (one loop
/// each, so an unreachable one does not slow the other) until dropped.
struct Poller {
    seen: Arc<Mutex<Seen>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Poller {
    fn start(urls: Vec<String>) -> Poller {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let tasks = urls
            .into_iter()
            .enumerate()
            .map(|(i, url)| tokio::spawn(poll_loop(i, url, seen.clone())))
            .collect();
        Poller { seen, tasks }
    }

    fn latest(&self, i: usize) -> Option<(String, u64)> {
        self.seen.lock().unwrap().latest[i]
            .as_ref()
            .map(|(r, t, _)| (r.clone(), *t))
    }

    /// Waits (bounded) until distributor `i` answers `primary`; its term.
    async fn await_primary(&self, i: usize, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            if let Some((role, term)) = self.latest(i) {
                if role == "primary" {
                    return term;
                }
            }
            assert!(
                Instant::now() < deadline,
                "distributor {i} did not become primary within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn assert_never_two_primaries(&self) {
        let s = self.seen.lock().unwrap();
        assert!(
            s.double_primaries.is_empty(),
            "both distributors answered `primary` at the same time ({} times, first {:?})",
            s.double_primaries.len(),
            s.double_primaries.first()
        );
    }
}

async fn poll_loop(i: usize, url: String, seen: Arc<Mutex<Seen>>) {
    loop {
        let answer = role_of(&url).await;
        {
            let now = Instant::now();
            let mut s = seen.lock().unwrap();
            s.answers += 1;
            if let (Some((role, term)), Some((other_role, other_term, at))) =
                (&answer, &s.latest[1 - i])
            {
                if role == "primary" && other_role == "primary" && now - *at < FRESH {
                    let pair = [(i, *term), (1 - i, *other_term)];
                    s.double_primaries.push(pair);
                }
            }
            s.latest[i] = answer.map(|(r, t)| (r, t, now));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Role and term from one Status, or `None` if no answer within the bound.
async fn role_of(url: &str) -> Option<(String, u64)> {
    let st = tokio::time::timeout(POLL_TIMEOUT, status_once(url))
        .await
        .ok()?
        .ok()?;
    st.distributor.map(|d| (d.role, d.term))
}

async fn metric(p: &AcdProcess, name: &str) -> f64 {
    let text = scrape(&p.metrics_addr()).await.unwrap();
    counter(&text, name).unwrap_or(0.0)
}

/// Waits (bounded: `within` of `since`) until an edge stream is attached
/// to `d`; the time since `since`.
async fn await_edge_attached(d: &AcdProcess, since: Instant, within: Duration) -> Duration {
    loop {
        if metric(d, "acd_edge_streams_attached").await >= 1.0 {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < within,
            "the edge did not attach to the new primary within {within:?} of the partition \
             (still stuck on the cut-off one?)"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (bounded) until both distributors answer with the same state
/// digest and last seq, exactly one of them primary.
async fn await_converged(c: &Cluster, what: &str) -> Duration {
    let started = Instant::now();
    let urls = c.distributor_urls();
    loop {
        let (a, b) = tokio::join!(status_once(&urls[0]), status_once(&urls[1]));
        if let (Ok(a), Ok(b)) = (a, b) {
            let (a, b) = (a.distributor.unwrap(), b.distributor.unwrap());
            let primaries = [&a, &b].iter().filter(|d| d.role == "primary").count();
            if primaries == 1 && a.state_digest == b.state_digest && a.last_seq == b.last_seq {
                return started.elapsed();
            }
        }
        assert!(
            started.elapsed() < LONG,
            "the pair did not converge after {what} within {LONG:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_of_the_distributor_pair_under_load() {
    require_netns();
    let env = TestEnv::new("partition", BLOCK);
    let net = Netns::create(BLOCK, 2).unwrap();
    let at = |i: usize| DistributorAt {
        host: net.member(i).ip.clone(),
        prefix: net.member(i).exec_prefix(),
    };
    let opts = ClusterOptions {
        distributors: [at(0), at(1)],
        etcd_host: Some(net.host_ip.clone()),
    };
    let mut c = Cluster::start_with(&env, &opts).await.unwrap();
    let poller = Poller::start(c.distributor_urls());
    let load = c.load(&env, RATE, CALLS, HOLD_MS).await.unwrap();
    c.await_offered(BEFORE_FAULT, LONG).await.unwrap();

    // (a) The primary cut off from everyone.
    let old = c.leader(SHORT).await.unwrap();
    let new = 1 - old;
    let old_term = poller.await_primary(old, SHORT).await;
    let cut_ms = unix_ms();
    let cut = Instant::now();
    net.isolate(old).unwrap();
    let new_term = poller.await_primary(new, SHORT).await;
    let take_over = cut.elapsed();
    eprintln!(
        "[e2e] partition: primary {old} (term {old_term}) cut off; {new} leads (term {new_term}) after {take_over:?}"
    );
    assert!(new_term > old_term, "the new term {new_term} <= {old_term}");
    let promoted_ms = 1000.0
        * metric(
            &c.distributors[new],
            "acd_distributor_promoted_timestamp_seconds",
        )
        .await;
    // The old primary cannot close the edge's stream (its packets vanish):
    // the edge must notice by itself and attach to the new one while the
    // partition lasts, not when it heals.
    let re_attach = await_edge_attached(&c.distributors[new], cut, EDGE_RE_ATTACH).await;
    eprintln!("[e2e] partition: the edge attached to the new primary {re_attach:?} after the cut");
    tokio::time::sleep(PARTITION.saturating_sub(cut.elapsed())).await;
    net.rejoin(old).unwrap();
    let converged = await_converged(&c, "healing the cut-off primary").await;
    eprintln!("[e2e] partition: healed; the pair converged after {converged:?}");
    let (role, term) = poller.latest(old).expect("the old primary answers again");
    assert_eq!(role, "standby", "the old primary is fenced (term {term})");
    let last_release_ms = 1000.0
        * metric(
            &c.distributors[old],
            "acd_distributor_last_release_timestamp_seconds",
        )
        .await;
    // Acting = releasing effects; a last release before the cut means none after it.
    let acted_after_cut = (last_release_ms - cut_ms as f64).max(0.0);
    eprintln!(
        "[e2e] partition: the old primary acted {acted_after_cut:.0} ms after the cut (last effect at \
         cut {:+.0} ms), {:.0} ms before the new primary's promotion",
        last_release_ms - cut_ms as f64,
        promoted_ms - last_release_ms
    );
    assert!(
        last_release_ms < promoted_ms,
        "the old primary released effects at {last_release_ms} ms, after the new one was promoted at {promoted_ms} ms"
    );

    // (b) The pair cut from each other; both still reach etcd.
    let reconnects_before = metric(&c.distributors[old], "acd_replication_reconnects_total").await;
    net.split_members(true).unwrap();
    let split = Instant::now();
    while split.elapsed() < PARTITION {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (role, term) = poller
            .latest(new)
            .expect("the primary stays reachable from the host");
        assert_eq!(
            (role.as_str(), term),
            ("primary", new_term),
            "the primary keeps leading while the pair is split"
        );
    }
    net.split_members(false).unwrap();
    let reconnects = metric(&c.distributors[old], "acd_replication_reconnects_total").await;
    assert!(
        reconnects > reconnects_before,
        "the standby's replication stream never broke: was the pair split at all?"
    );
    let converged = await_converged(&c, "healing the split").await;
    eprintln!("[e2e] partition: split healed; the pair converged after {converged:?}");
    assert_eq!(
        poller.latest(new),
        Some(("primary".to_string(), new_term)),
        "the same primary leads after the split"
    );

    let q = c
        .assert_every_call_served(load.wait().await, CALLS)
        .await
        .unwrap();
    poller.assert_never_two_primaries();
    let stale = metric(&c.edge, "acd_edge_stale_term_total").await;
    assert_eq!(stale, 0.0, "the edge received commands of an old term");
    let rounds = poller.seen.lock().unwrap().answers;
    eprintln!(
        "[e2e] partition: take-over {take_over:?}, edge re-attached {re_attach:?} after the cut, old primary acted {acted_after_cut:.0} ms after the cut, \
         {rounds} Status answers, never two primaries at once; {q:?}"
    );
    drop(poller);
    drop(c);
    drop(net);
}
