//! Readiness, reported the same way everywhere: gRPC health (every served
//! service and ""), HTTP `/ready` and systemd's `sd_notify`.
//!
//! "Readiness is honest": a process is ready only once every listener is
//! bound and its services run, and stops being ready before it drains.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use acd_edge::EdgeHandle;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

/// What keeps this process from serving, empty when nothing does.
pub fn waiting_for(d: Option<&acd_distributor::Distributor>, edge: Option<&EdgeHandle>) -> String {
    if let Some(d) = d {
        let s = d.serving().borrow().clone();
        if !s.ready {
            return s.waiting_for;
        }
    }
    match edge {
        Some(e) if !e.status().distributor_connected => "a distributor".to_string(),
        _ => String::new(),
    }
}

pub struct Readiness {
    reporter: HealthReporter,
    /// Names of the gRPC services this process serves (health reports each).
    services: Mutex<Vec<&'static str>>,
    ready: AtomicBool,
    /// Set once the edge runs (in `acd run` that is after gRPC serves).
    edge: Arc<OnceLock<EdgeHandle>>,
}

impl Readiness {
    pub fn new(reporter: HealthReporter, edge: Arc<OnceLock<EdgeHandle>>) -> Arc<Readiness> {
        Arc::new(Readiness {
            reporter,
            services: Mutex::new(Vec::new()),
            ready: AtomicBool::new(false),
            edge,
        })
    }

    /// Records a served gRPC service so its health follows readiness.
    pub fn register(&self, service: &'static str) {
        self.services
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(service);
    }

    /// Sets readiness and every registered service's gRPC health (and "").
    pub async fn set(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
        let status = if ready {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        let services = self
            .services
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for name in std::iter::once("").chain(services) {
            self.reporter.set_service_status(name, status).await;
        }
        crate::notify::send(if ready { "READY=1" } else { "STATUS=not ready" });
    }

    /// Ready and, if this process has an edge, not draining.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.edge.get().is_some_and(EdgeHandle::is_draining)
    }

    pub fn edge(&self) -> Option<&EdgeHandle> {
        self.edge.get()
    }
}
