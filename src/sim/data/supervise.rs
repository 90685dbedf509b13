//! The data services as processes: their registry scope and logs, their state
//! (running with memory, stopped, crashed with a redacted log tail), the start-up wait
//! shared by the launchers, and stopping them.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use serde::Serialize;

use super::{MINIO_PORT, POSTGRES_PORT, REDIS_PORT, VICTORIA_LOGS_PORT, VICTORIA_METRICS_PORT, VMAUTH_PORT, Vault};
use crate::sim::{SimConfig, process};

/// The data services.
pub const SERVICES: [&str; 6] = ["postgres", "redis", "minio", "victoria-metrics", "vmauth", "victoria-logs"];

/// Registry scope of the data services (`$STATE/pids/shared--<service>.json`).
pub(super) const SCOPE: &str = crate::sim::SHARED_SCOPE;

/// Log of a data service: `$STATE/shared/<service>.log`.
pub fn log_file(cfg: &SimConfig, service: &str) -> PathBuf {
    process::log_path(&cfg.state_dir, SCOPE, service)
}

/// State of one data service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ServiceState {
    /// `rss_kib` covers the process and its children (postgres forks backends).
    Running { pid: u32, rss_kib: u64 },
    Stopped,
    /// Registered but gone: the log tail (secrets redacted).
    Crashed { pid: u32, log_tail: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub name: &'static str,
    pub port: u16,
    #[serde(flatten)]
    pub state: ServiceState,
}

fn port_of(service: &str) -> u16 {
    match service {
        "postgres" => POSTGRES_PORT,
        "redis" => REDIS_PORT,
        "victoria-metrics" => VICTORIA_METRICS_PORT,
        "vmauth" => VMAUTH_PORT,
        "victoria-logs" => VICTORIA_LOGS_PORT,
        _ => MINIO_PORT,
    }
}

pub(super) fn running(cfg: &SimConfig, service: &str) -> Option<process::ProcessRecord> {
    process::lookup(&cfg.state_dir, SCOPE, service).filter(process::ProcessRecord::is_alive)
}

/// Total RSS of a process and its descendants, KiB.
pub fn tree_rss_kib(pid: u32) -> u64 {
    let mut total = process::rss_kib(pid).unwrap_or(0);
    if let Ok(children) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            total += tree_rss_kib(c);
        }
    }
    total
}

/// Last `lines` lines of a service log, with every known secret value redacted.
pub fn log_tail(cfg: &SimConfig, service: &str, lines: usize) -> String {
    let tail = process::log_tail(&log_file(cfg, service), lines);
    match Vault::load(cfg) {
        Ok(v) => v.redact(&tail),
        Err(_) => tail,
    }
}

/// State of each data service.
pub fn status(cfg: &SimConfig) -> Vec<ServiceStatus> {
    SERVICES
        .iter()
        .map(|&name| {
            let state = match process::lookup(&cfg.state_dir, SCOPE, name) {
                None => ServiceState::Stopped,
                Some(rec) if rec.is_alive() => ServiceState::Running { pid: rec.pid, rss_kib: tree_rss_kib(rec.pid) },
                Some(rec) => ServiceState::Crashed { pid: rec.pid, log_tail: log_tail(cfg, name, 20) },
            };
            ServiceStatus { name, port: port_of(name), state }
        })
        .collect()
}

fn crashed_error(cfg: &SimConfig, service: &str, what: &str) -> anyhow::Error {
    anyhow!("{service} {what}; last lines of {}:\n{}", log_file(cfg, service).display(), log_tail(cfg, service, 25))
}

/// Waits until `ready()` succeeds, failing early (with the log tail) if the process dies.
pub(super) async fn wait_ready<F, Fut>(cfg: &SimConfig, rec: &process::ProcessRecord, timeout: Duration, mut ready: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let service = rec.name.as_str();
    let start = Instant::now();
    let mut last_err = None;
    while start.elapsed() < timeout {
        if !rec.is_alive() {
            return Err(crashed_error(cfg, service, "exited during start-up"));
        }
        match ready().await {
            Ok(()) => return Ok(()),
            Err(e) => last_err = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(crashed_error(
        cfg,
        service,
        &format!("not ready after {}s ({})", timeout.as_secs(), last_err.map(|e| e.to_string()).unwrap_or_default()),
    ))
}

/// Stops every data service (idempotent; `sim down` does the same through the
/// process registry). Data and credentials stay.
pub async fn stop(cfg: &SimConfig) -> Result<()> {
    for s in SERVICES {
        if let Some(rec) = process::lookup(&cfg.state_dir, SCOPE, s) {
            process::stop_process(&rec, Duration::from_secs(15)).await;
            process::unregister_process(&cfg.state_dir, SCOPE, s)?;
        }
    }
    Ok(())
}
