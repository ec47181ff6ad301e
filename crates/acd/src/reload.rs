//! The flows follow the config: re-read (with the same loader as at
//! start-up) when the config file or a flow file changes, and on
//! `AdminService.Reload`. The IVR runner takes the new flows; the edge takes
//! the numbers, flows and prompts for its new calls. An invalid config (or a
//! prompt that does not decode) is refused and what is in service stays;
//! callers already in a flow keep their version either way.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use acd_config::{ConfigErrors, Loaded};
use acd_ivr_runner::{IvrRunner, ReloadReport};

use crate::health::Readiness;

/// How often the watched files' modification times are compared.
const POLL: Duration = Duration::from_secs(1);

pub struct FlowReloader {
    /// `None`: the embedded config (nothing to watch; Reload re-reads it).
    config: Option<PathBuf>,
    runner: Option<IvrRunner>,
    /// Where this process's edge is found once it runs.
    readiness: Arc<Readiness>,
    watched: Mutex<Vec<PathBuf>>,
    /// One reload at a time (the watcher and an operator may race).
    busy: tokio::sync::Mutex<()>,
}

/// Modification time and length of each watched file (`None`: missing).
type Signature = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

impl FlowReloader {
    pub fn new(
        config: Option<PathBuf>,
        runner: Option<IvrRunner>,
        readiness: Arc<Readiness>,
        loaded: &Loaded,
    ) -> Arc<FlowReloader> {
        Arc::new(FlowReloader {
            config,
            runner,
            readiness,
            watched: Mutex::new(loaded.watched_files()),
            busy: tokio::sync::Mutex::new(()),
        })
    }

    /// Re-reads the config and makes its flows current, or refuses it.
    pub async fn reload(&self, why: &'static str) -> Result<ReloadReport, ConfigErrors> {
        let _one = self.busy.lock().await;
        let path = self.config.clone();
        let with_edge = self.readiness.edge().is_some();
        // Reading the files and decoding the edge's prompts block: off the runtime.
        let prepared = tokio::task::spawn_blocking(move || prepare(path, with_edge))
            .await
            .unwrap_or_else(|e| Err(internal_error(&e.to_string())));
        let (loaded, edge_part) = match prepared {
            Ok(p) => p,
            Err(errors) => {
                metrics::counter!("acd_ivr_reload_refused_total", "reason" => "invalid_config")
                    .increment(1);
                tracing::warn!(why, %errors, "reload refused: what is in service stays");
                return Err(errors);
            }
        };
        if let (Some(edge), Some(part)) = (self.readiness.edge(), edge_part) {
            edge.reload(part)
                .map_err(|e| internal_error(&e.to_string()))?;
        }
        *lock(&self.watched) = loaded.watched_files();
        let report = match &self.runner {
            Some(runner) => runner.reload(loaded.config.flows),
            None => versions_only(&loaded),
        };
        tracing::info!(why, changed = ?report.changed, "config reloaded");
        Ok(report)
    }

    /// Polls the watched files and reloads when any changed.
    pub fn spawn_watch(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut seen = this.signature().await;
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now = this.signature().await;
                if now == seen {
                    continue;
                }
                // A refused config is not retried until the files change again.
                let _ = this.reload("file changed").await;
                seen = this.signature().await;
            }
        });
    }

    async fn signature(&self) -> Signature {
        let files = lock(&self.watched).clone();
        tokio::task::spawn_blocking(move || {
            files
                .into_iter()
                .map(|f| {
                    let meta = std::fs::metadata(&f).ok();
                    let stamp = meta.and_then(|m| Some((m.modified().ok()?, m.len())));
                    (f, stamp)
                })
                .collect()
        })
        .await
        .unwrap_or_default()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The config, and the edge's part of it with its prompts decoded (a
/// prompt that does not decode refuses the whole reload).
fn prepare(
    path: Option<PathBuf>,
    with_edge: bool,
) -> Result<(Loaded, Option<acd_edge::Reloaded>), ConfigErrors> {
    let loaded = Loaded::from_option(path.as_deref())?;
    let edge = with_edge
        .then(|| acd_edge::prepare_reload(&loaded))
        .transpose()
        .map_err(|e| internal_error(&e.to_string()))?;
    Ok((loaded, edge))
}

/// An edge without a runner reports the flows it now knows, unversioned
/// changes aside (the runners tell which changed).
fn versions_only(loaded: &Loaded) -> ReloadReport {
    ReloadReport {
        flows: loaded
            .config
            .flows
            .iter()
            .map(|(id, f)| format!("{id}@{}", acd_ivr::version(f)))
            .collect(),
        changed: Vec::new(),
    }
}

fn internal_error(message: &str) -> ConfigErrors {
    ConfigErrors(vec![acd_config::ConfigError {
        file: String::new(),
        line: None,
        key: String::new(),
        message: format!("reload refused: {message}"),
    }])
}
