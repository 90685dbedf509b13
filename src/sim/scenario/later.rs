//! What a scenario leaves in flight ends later. Breaks with `after: <seconds>` are made
//! in the background by one registered process, `shared/scenario-later` (command
//! `platform-acceptance sim later <scenario>`, inside the simulation's network like
//! every other process), that many seconds after the scenario's other breaks are made.
//! Applying any scenario first stops it, so its pending breaks are cancelled; `sim down`
//! stops it with every other process. It exits once its last break is made.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

use super::client::ClusterSim;
use super::model::{Action, scenario, status_rules};
use crate::repo::GitopsRepo;
use crate::sim::{SHARED_SCOPE, SimConfig, process};

/// Registry name of the background process (scope `shared`).
pub const NAME: &str = "scenario-later";

/// The breaks of `actions` made later, soonest first.
pub(super) fn later(actions: &[Action]) -> Vec<&Action> {
    let mut out: Vec<&Action> = actions.iter().filter(|a| a.after.is_some()).collect();
    out.sort_by_key(|a| a.after);
    out
}

/// Stops the background process of an earlier scenario, cancelling what it had left to do.
pub(super) async fn cancel(cfg: &SimConfig) {
    if let Some(rec) = process::lookup(&cfg.state_dir, SHARED_SCOPE, NAME) {
        process::stop_process(&rec, Duration::from_secs(5)).await;
        let _ = process::unregister_process(&cfg.state_dir, SHARED_SCOPE, NAME);
    }
}

/// Starts the background process for scenario `name`; returns its log.
pub(super) fn start(cfg: &SimConfig, name: &str) -> Result<PathBuf> {
    let bin = process::harness_binary().ok_or_else(|| anyhow!("scenario {name}: no platform-acceptance binary for its later breaks (set PA_BIN)"))?;
    let abs = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    let mut cmd = std::process::Command::new(&bin);
    cmd.args(["sim", "later", name])
        .env("PA_CACHE", abs(&cfg.cache_dir))
        .env("PA_SIM_STATE", abs(&cfg.state_dir))
        .env("PA_SIM_REPO", abs(&cfg.repo));
    let rec = process::spawn_detached(&cfg.state_dir, SHARED_SCOPE, NAME, &mut cmd, &[])?;
    Ok(rec.log.unwrap_or_default())
}

/// The background process: makes scenario `name`'s later breaks at their time (each
/// followed by its `waitFor`), then returns.
pub async fn run(cfg: &SimConfig, name: &str) -> Result<()> {
    let start = tokio::time::Instant::now();
    let sc = scenario(name)?;
    let repo = GitopsRepo::load(&cfg.repo).with_context(|| format!("loading {}", cfg.repo.display()))?;
    let rules = status_rules()?;
    let mut sims: BTreeMap<String, ClusterSim> = BTreeMap::new();
    for action in later(&sc.breaks) {
        let after = action.after.unwrap_or_default();
        tokio::time::sleep_until(start + Duration::from_secs(after)).await;
        if !sims.contains_key(&action.cluster) {
            sims.insert(action.cluster.clone(), ClusterSim::connect(cfg, &repo, &action.cluster).await?);
        }
        let sim = &sims[&action.cluster];
        sim.run(action, &rules).await.with_context(|| format!("scenario {name} on {}, {after}s later", action.cluster))?;
        if let Some(w) = &action.wait_for {
            sim.wait_for(w).await.with_context(|| format!("scenario {name} on {}, {after}s later", action.cluster))?;
        }
        eprintln!("sim later: scenario {name} on {}: break made {after}s after the scenario", action.cluster);
    }
    // Done: the record goes, so `sim status` lists only what still runs.
    if process::lookup(&cfg.state_dir, SHARED_SCOPE, NAME).is_some_and(|r| r.pid == std::process::id()) {
        let _ = process::unregister_process(&cfg.state_dir, SHARED_SCOPE, NAME);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_breaks_come_soonest_first_and_only_from_after() {
        let sc: super::super::model::Scenario = serde_yaml_ng::from_str(
            "name: t\ndescription: t\nbreaks:\n\
             - {cluster: a, after: 30, delete: {apiVersion: v1, kind: Pod, name: p}}\n\
             - {cluster: a, delete: {apiVersion: v1, kind: Pod, name: q}}\n\
             - {cluster: b, after: 5, delete: {apiVersion: v1, kind: Pod, name: r}}\n",
        )
        .unwrap();
        let order: Vec<(&str, Option<u64>)> = later(&sc.breaks).iter().map(|a| (a.cluster.as_str(), a.after)).collect();
        assert_eq!(order, [("b", Some(5)), ("a", Some(30))]);
    }
}
