//! Per-cluster reachability, so a dead cluster costs one timeout, not one per unit.
//!
//! When a live unit ends in Error (a timeout included) after talking to its API server,
//! the runner probes that server once (`GET /version`, bounded by the probe timeout). If
//! the probe fails the cluster is marked down: that unit keeps its own error without
//! retries, and the cluster's remaining units end at once as Error "cluster apps
//! unreachable since …". A unit that meets a down
//! cluster probes again when the last probe is older than [`REPROBE_AFTER`], so a cluster
//! that comes back is used again. Other clusters are not affected.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::outcome::Outcome;

/// How old a failed probe may be before a unit probes again.
pub const REPROBE_AFTER: Duration = Duration::from_secs(5);

#[derive(Default)]
struct State {
    /// The cluster's name in the repository (the key is its kubeconfig context).
    cluster: String,
    /// When the cluster was first seen down (wall clock, for messages) and why.
    down: Option<(time::OffsetDateTime, String)>,
    last_probe: Option<Instant>,
}

/// Reachability of every cluster of a run, keyed by kubeconfig context.
#[derive(Clone)]
pub struct Health {
    clusters: Arc<std::sync::Mutex<HashMap<String, Arc<Mutex<State>>>>>,
    probe_timeout: Duration,
    reprobe_after: Duration,
}

impl Health {
    /// Probes bounded by `probe_timeout`; a down cluster is probed again after [`REPROBE_AFTER`].
    pub fn new(probe_timeout: Duration) -> Health {
        Health::with_reprobe(probe_timeout, REPROBE_AFTER)
    }

    pub fn with_reprobe(probe_timeout: Duration, reprobe_after: Duration) -> Health {
        Health { clusters: Arc::default(), probe_timeout, reprobe_after }
    }

    fn state(&self, cluster: &str, key: &str) -> Arc<Mutex<State>> {
        let mut map = self.clusters.lock().expect("health lock");
        map.entry(key.to_string()).or_insert_with(|| Arc::new(Mutex::new(State { cluster: cluster.to_string(), ..State::default() }))).clone()
    }

    /// Marks `cluster` down without a probe: its API server already failed to answer in
    /// time (e.g. taking the run's Lease).
    pub async fn mark_down(&self, cluster: &str, key: &str, why: &str) {
        let state = self.state(cluster, key);
        let mut s = state.lock().await;
        if s.down.is_none() {
            s.down = Some((time::OffsetDateTime::now_utc(), one_line(why)));
        }
        s.last_probe = Some(Instant::now());
    }

    /// Clusters currently marked down (by name), sorted.
    pub fn down(&self) -> Vec<String> {
        let states: Vec<Arc<Mutex<State>>> = self.clusters.lock().expect("health lock").values().cloned().collect();
        let mut out: Vec<String> = states.iter().filter_map(|s| s.try_lock().ok().filter(|s| s.down.is_some()).map(|s| s.cluster.clone())).collect();
        out.sort();
        out
    }

    async fn probe(&self, client: &kube::Client) -> Result<(), String> {
        match tokio::time::timeout(self.probe_timeout, client.apiserver_version()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(crate::errline::kube(&e)),
            Err(_) => Err(format!("no answer within {:?}", self.probe_timeout)),
        }
    }

    /// Before a live unit runs on `cluster`: `Some(Error)` when the cluster is down (probing
    /// again first if the last probe is older than the re-probe interval).
    pub async fn gate(&self, cluster: &str, key: &str, client: &kube::Client) -> Option<Outcome> {
        let state = self.state(cluster, key);
        let mut s = state.lock().await;
        s.down.as_ref()?;
        if s.last_probe.is_none_or(|t| t.elapsed() >= self.reprobe_after) {
            let probed = self.probe(client).await;
            s.last_probe = Some(Instant::now());
            if probed.is_ok() {
                s.down = None;
                return None;
            }
        }
        s.down.as_ref().map(|(since, why)| unreachable(&s.cluster, *since, why))
    }

    /// After a live unit on `cluster` ended in Error: one probe decides whether the
    /// cluster is down; `Some` (the Error its next units get) when it is.
    pub async fn after_error(&self, cluster: &str, key: &str, client: &kube::Client) -> Option<Outcome> {
        let state = self.state(cluster, key);
        let mut s = state.lock().await;
        if s.down.is_none() || s.last_probe.is_none_or(|t| t.elapsed() >= self.reprobe_after) {
            let probed = self.probe(client).await;
            s.last_probe = Some(Instant::now());
            match probed {
                Ok(()) => s.down = None,
                Err(why) if s.down.is_none() => s.down = Some((time::OffsetDateTime::now_utc(), why)),
                Err(_) => {}
            }
        }
        s.down.as_ref().map(|(since, why)| unreachable(&s.cluster, *since, why))
    }
}

fn unreachable(cluster: &str, since: time::OffsetDateTime, why: &str) -> Outcome {
    let hms = since.format(time::macros::format_description!("[hour]:[minute]:[second]")).unwrap_or_default();
    Outcome::error(format!("cluster {cluster} unreachable since {hms} UTC (GET /version: {why}); not evaluated"))
}

/// The first line of an error, at most 200 characters.
fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > 200 { format!("{}…", line.chars().take(200).collect::<String>()) } else { line.to_string() }
}
