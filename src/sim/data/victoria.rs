//! The observability engines: the real VictoriaMetrics single-node server, vmauth in front
//! of it, and the real VictoriaLogs single-node server (`$PA_CACHE/bin`, built by
//! `sim/build.sh` from the pinned modules).
//!
//! - **VictoriaMetrics** stores the samples the vmagent stand-in writes
//!   (`sim::observability`) and evaluates the checks' MetricsQL.
//! - **vmauth** serves the platform's vmselect address with the cluster version's URL
//!   layout: `/select/0/prometheus/…` goes to the single-node server's `/prometheus/…`
//!   (`drop_src_path_prefix_parts: 2`); any other tenant or path has no route. The single
//!   node holds one tenant, so tenant 0 is the only one served.
//! - **VictoriaLogs** stores the log lines the fluent-bit stand-in ships, per tenant
//!   (`AccountID` header), and evaluates the checks' LogsQL.
//!
//! Two flags differ from the defaults:
//! - VictoriaMetrics `-search.latencyOffset=5s` (default 30 s). A just-started simulation
//!   has seconds of data, and with the default an instant query at "now" sees nothing
//!   younger than 30 s; the stand-in writes each sample whole, so the guard against
//!   half-ingested scrapes is not needed.
//! - VictoriaLogs `-delete.enable`, so a test can take a tenant's recent lines away
//!   (`/delete/run_task`) and construct "nothing shipped lately" without waiting out the
//!   checks' window. VictoriaMetrics' `/api/v1/admin/tsdb/delete_series` is on by default.
//!
//! Both engines answer instant queries the way they do on a platform: an `up` series stays
//! visible for five minutes after its last sample (the default lookback), a log line for as
//! long as the query's `_time` window reaches back.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};

use super::supervise::{SCOPE, running, wait_ready};
use super::{LOOPBACK, shared_dir};
use crate::sim::{SimConfig, process};

/// Loopback port of VictoriaMetrics single-node (its own API: `/prometheus/…`, `/api/v1/import/…`).
pub const VICTORIA_METRICS_PORT: u16 = 18428;
/// Loopback port of vmauth, the address of the platform's vmselect Service.
pub const VMAUTH_PORT: u16 = 18481;
/// Loopback port of VictoriaLogs single-node.
pub const VICTORIA_LOGS_PORT: u16 = 19428;

/// Where the engines listen inside the simulation's network (and on the host, forwarded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Engines {
    /// VictoriaMetrics single-node.
    pub metrics: SocketAddr,
    /// vmauth: `/select/0/prometheus/…` of the cluster version.
    pub vmselect: SocketAddr,
    /// VictoriaLogs single-node.
    pub logs: SocketAddr,
}

impl Engines {
    /// The simulation's engines.
    pub const fn sim() -> Engines {
        Engines {
            metrics: SocketAddr::new(LOOPBACK, VICTORIA_METRICS_PORT),
            vmselect: SocketAddr::new(LOOPBACK, VMAUTH_PORT),
            logs: SocketAddr::new(LOOPBACK, VICTORIA_LOGS_PORT),
        }
    }
}

/// vmauth's configuration: the cluster version's tenant-0 select path onto the single node.
pub fn vmauth_config(metrics: SocketAddr) -> String {
    format!(
        "unauthorized_user:\n  url_map:\n  - src_paths: [\"/select/0/prometheus/.*\"]\n    url_prefix: \"http://{metrics}/\"\n    drop_src_path_prefix_parts: 2\n"
    )
}

fn binary(bin: &Path, name: &str) -> Result<PathBuf> {
    let exe = bin.join(name);
    if !exe.is_file() {
        bail!("{name} binary not found at {} (build it: sim/build.sh {name})", exe.display());
    }
    Ok(exe)
}

/// The command line of each engine (binaries in `bin`, storage and vmauth's configuration
/// under `data`), with its name and port.
pub fn commands(bin: &Path, engines: &Engines, data: &Path) -> Result<Vec<(&'static str, Command, u16)>> {
    let mut vm = Command::new(binary(bin, "victoria-metrics")?);
    vm.arg(format!("-httpListenAddr={}", engines.metrics))
        .arg(format!("-storageDataPath={}", data.join("victoria-metrics").display()))
        .args(["-retentionPeriod=1d", "-search.latencyOffset=5s", "-memory.allowedBytes=256MiB", "-loggerLevel=WARN"]);
    let mut auth = Command::new(binary(bin, "vmauth")?);
    auth.arg(format!("-httpListenAddr={}", engines.vmselect))
        .arg(format!("-auth.config={}", data.join("vmauth.yml").display()))
        .arg("-loggerLevel=WARN");
    let mut logs = Command::new(binary(bin, "victoria-logs")?);
    logs.arg(format!("-httpListenAddr={}", engines.logs))
        .arg(format!("-storageDataPath={}", data.join("victoria-logs").display()))
        .args(["-retentionPeriod=1d", "-memory.allowedBytes=256MiB", "-delete.enable", "-loggerLevel=WARN"]);
    Ok(vec![("victoria-metrics", vm, engines.metrics.port()), ("vmauth", auth, engines.vmselect.port()), ("victoria-logs", logs, engines.logs.port())])
}

/// Starts the three engines (running ones are kept) and waits until each answers `/health`.
pub(super) async fn start_victoria(cfg: &SimConfig) -> Result<()> {
    let engines = Engines::sim();
    let data = shared_dir(cfg);
    std::fs::create_dir_all(&data)?;
    std::fs::write(data.join("vmauth.yml"), vmauth_config(engines.metrics))?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(3)).build()?;
    for (name, mut cmd, port) in commands(&cfg.cache_dir.join("bin"), &engines, &data)? {
        let rec = match running(cfg, name) {
            Some(rec) => rec,
            None => {
                cmd.current_dir(&data);
                process::spawn_detached(&cfg.state_dir, SCOPE, name, &mut cmd, &[port])?
            }
        };
        let url = format!("http://{LOOPBACK}:{port}/health");
        wait_ready(cfg, &rec, Duration::from_secs(60), || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let r = http.get(&url).send().await?;
                if r.status().is_success() { Ok(()) } else { bail!("/health answered {}", r.status()) }
            }
        })
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmauth_maps_the_cluster_layout_onto_the_single_node() {
        let c = vmauth_config("127.0.0.1:18428".parse().unwrap());
        let v: serde_json::Value = serde_yaml_ng::from_str(&c).unwrap();
        let route = &v["unauthorized_user"]["url_map"][0];
        assert_eq!(route["src_paths"][0], "/select/0/prometheus/.*");
        assert_eq!(route["url_prefix"], "http://127.0.0.1:18428/");
        assert_eq!(route["drop_src_path_prefix_parts"], 2);
    }
}
