//! Scenarios: the platform's state in the simulated clusters, healthy or with one
//! thing broken.
//!
//! `healthy` (the default) puts the platform into both clusters the way Flux,
//! the charts and the operators would:
//! 1. the hand-written stand-in CRDs (`sim/scenarios/crds/`: Dragonfly, Keycloak), installed
//!    again if a scenario removed them (`sim up` installs them with the others);
//! 2. `fixtures/gitops` served to the real Flux with the simulation overlay commit
//!    (`flux`: the real source-controller fetches it from the simulation's Git host, the
//!    real kustomize-controller applies it), and the overlay commit's tree rendered per
//!    cluster ([`GitopsRepo::render`], the shared-base
//!    pattern with each cluster's Flux variables), only what the cluster's own
//!    Flux Kustomizations apply (sourceRef `flux-system`), only kinds the
//!    cluster serves (a kind without a CRD here is skipped and reported), plus what
//!    the charts/operators create (`sim/scenarios/workloads.yaml`) and a bound
//!    PersistentVolume per fixture PVC;
//! 3. the bootstrap's part: every item and field the ExternalSecrets read is put into
//!    the 1Password stand-in's [`Vault`] (where the real data-service credentials are),
//!    each 1Password store's Connect token Secret is created, and CNPG's
//!    `<cluster>-app` Secret (CNPG does not run here) is written, right after the
//!    namespaces and before the objects of step 2; the real external-secrets
//!    controller then syncs every ExternalSecret from Connect (`externalsecrets`);
//! 4. the status every controller writes (`sim/scenarios/status.yaml`), through
//!    the status subresource (server-side apply, manager [`STATUS_MANAGER`]) —
//!    except cert-manager's, external-secrets' and that of the Flux objects the real Flux
//!    controllers reconcile; the real cert-manager controller runs per cluster and
//!    issues the Certificates; the repository's ACME ClusterIssuers are applied as CA
//!    issuers of the same names (stand-ins, annotated [`STAND_IN_ANNOTATION`]), see
//!    `certmanager`;
//! 5. undoes any earlier fault (nodes Ready again, pods Ready again) and waits
//!    until every pod is Running and Ready and every workload is available, and
//!    every Certificate Ready (issued by cert-manager), every ExternalSecret synced
//!    (by external-secrets) and the served revision applied (by Flux; bounded waits);
//! 6. meanwhile (once step 2 is applied), the backup data a running platform has
//!    ([`super::backups::seed`]: the real Velero runs each Schedule once).
//!
//! A fault scenario (`sim/scenarios/<name>.yaml`) first applies `healthy`, then
//! its `breaks` (pods not ready, a node NotReady, a status change merged over the
//! healthy status, a deletion), then waits until the change is visible. `lived-in`
//! is healthy with a past: its breaks create what controllers leave behind (finished
//! Job pods, an evicted pod, older Backups) and renew a Certificate (`history`), serve
//! the MCS API from a later release (`crdversions`), and end an upgrade 20 s later
//! (`later`); every scenario first removes such objects, puts the CRDs back and
//! cancels what was left to do later.
//! Switching scenarios never restarts the simulation (a scenario may restart an add-on).
//!
//! Layout: `model` (the scenario files), `client` (one cluster: discovery and
//! server-side apply), `flux` (the served repository and the wait for Flux), `healthy` (the recipe above), `workloads` (step 2),
//! `controllers` (steps 3 and 4: what the controllers write), `pods` (nodes, pods
//! and the wait of step 5), `faults` (the breaks and their waits).

mod certmanager;
mod client;
mod controllers;
mod crdversions;
mod externalsecrets;
mod faults;
mod flux;
mod healthy;
mod history;
mod later;
mod model;
mod pods;
mod workloads;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

pub use flux::{GIT_SSH_PORT, STAND_IN_LABEL, SYNC, WATCH_SELECTOR, git_dir, reconcile_request, repos_dir, ssh_url_parts, sync_source};
pub use certmanager::{ACME_STAND_IN_NOTE, CLUSTER_RESOURCE_NAMESPACE, STAND_IN_ANNOTATION, ca_secret_name};
pub use history::HISTORY_MANAGER;
pub use later::run as run_later;
pub use model::{Action, ConditionIs, Op, Owner, Scenario, WaitFor, list, scenario};

use super::SimConfig;
use super::data::{DataPlan, Vault};
use crate::repo::GitopsRepo;
use client::ClusterSim;

/// Field manager of the status the simulated controllers write.
pub const STATUS_MANAGER: &str = "platform-acceptance-sim-status";

/// The revision the served repository's branch had when a scenario last served it, in
/// Flux's `<branch>@sha1:<commit>` form: the simulation overlay commit ([`flux`] module).
pub fn served_revision(cfg: &SimConfig) -> Result<String> {
    let path = flux::git_dir(cfg).join("served-revision");
    std::fs::read_to_string(&path).with_context(|| format!("reading {} (has a scenario been applied?)", path.display()))
}

/// What one `apply` did, per cluster.
#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    pub scenario: String,
    pub clusters: BTreeMap<String, ClusterReport>,
    pub elapsed: Duration,
    /// What the scenario does later, in the background (see `later`).
    pub later: Option<String>,
    /// The revision served to Flux (the simulation overlay commit).
    pub revision: String,
}

#[derive(Debug, Clone, Default)]
pub struct ClusterReport {
    pub applied: usize,
    pub secrets: usize,
    pub statuses: usize,
    /// `apiVersion/Kind` of fixture objects not applied because the cluster does not serve the kind.
    pub skipped_kinds: BTreeSet<String>,
    pub pods_ready: usize,
    /// Certificates Ready (issued by cert-manager).
    pub certificates: usize,
    /// ExternalSecrets synced (by external-secrets).
    pub external_secrets: usize,
    /// GitRepositories and Kustomizations at the served revision, HelmRepositories and
    /// HelmReleases Ready (by Flux).
    pub flux: usize,
}

/// Switches the simulation to scenario `name` (no restart).
pub async fn apply(cfg: &SimConfig, name: &str) -> Result<()> {
    let report = apply_with_report(cfg, name).await?;
    for (c, r) in &report.clusters {
        eprintln!(
            "sim: scenario {} on {c}: {} objects, {} secrets, {} statuses, {} pods ready, {} certificates issued by cert-manager, {} ExternalSecrets synced by external-secrets, {} Flux objects Ready at {} (GitRepositories, OCIRepositories, HelmRepositories, Kustomizations, HelmReleases, by Flux){}",
            report.scenario,
            r.applied,
            r.secrets,
            r.statuses,
            r.pods_ready,
            r.certificates,
            r.external_secrets,
            r.flux,
            report.revision,
            if r.skipped_kinds.is_empty() {
                String::new()
            } else {
                format!(
                    "; kinds not served here (skipped): {}",
                    r.skipped_kinds
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
    eprintln!(
        "sim: scenario {} applied in {:.1}s",
        report.scenario,
        report.elapsed.as_secs_f64()
    );
    if let Some(later) = &report.later {
        eprintln!("sim: scenario {}: {later}", report.scenario);
    }
    Ok(())
}

/// Like [`apply`], returning what was done.
pub async fn apply_with_report(cfg: &SimConfig, name: &str) -> Result<ApplyReport> {
    let sc = scenario(name)?;
    let start = Instant::now();
    let given =
        GitopsRepo::load(&cfg.repo).with_context(|| format!("loading {}", cfg.repo.display()))?;
    let plan = DataPlan::from_repo(&cfg.repo)?;
    let vault = Mutex::new(Vault::load_or_create(cfg, &plan)?);
    let rules = model::status_rules()?;
    let clusters: Vec<String> = given.clusters().to_vec();
    every_cluster_follows_commits(&sc, &clusters)?;
    // What an earlier scenario left to do later is cancelled.
    later::cancel(cfg).await;
    let mut sims = vec![];
    for c in &clusters {
        sims.push(ClusterSim::connect(cfg, &given, c).await?);
    }
    // History an earlier scenario created goes first (its finished pods would never settle).
    for s in &sims {
        s.remove_history()
            .await
            .with_context(|| format!("removing history on {}", s.cluster))?;
        s.restore_crds()
            .await
            .with_context(|| format!("restoring the CRDs installed at start on {}", s.cluster))?;
    }
    // Served to the real Flux with the simulation overlay commit, which leaves out kinds
    // the clusters do not serve (once the CRDs are as installed, the stand-in CRDs too); its tree is what the
    // scenario applies.
    let mut kinds: Option<client::Kinds> = None;
    for s in &sims {
        s.install_standin_crds().await?;
        let k = s.discover().await?;
        kinds = Some(match kinds {
            None => k,
            Some(mut all) => {
                all.retain(|key, _| k.contains_key(key));
                all
            }
        });
    }
    let served = flux::serve(cfg, &given, &kinds.unwrap_or_default()).context("serving the GitOps repository to Flux")?;
    let repo = served.repo;
    for s in &mut sims {
        s.revision = served.revision.clone();
    }
    let results =
        futures::future::join_all(sims.iter().map(|s| s.healthy(&repo, &vault, &rules))).await;
    let mut report = ApplyReport {
        scenario: sc.name.clone(),
        revision: served.revision.clone(),
        ..Default::default()
    };
    for (s, r) in sims.iter().zip(results) {
        report.clusters.insert(
            s.cluster.clone(),
            r.with_context(|| format!("scenario healthy on {}", s.cluster))?,
        );
    }
    vault.lock().expect("vault").save(cfg)?;
    for action in sc.breaks.iter().filter(|a| a.after.is_none()) {
        let sim = sims
            .iter()
            .find(|s| s.cluster == action.cluster)
            .ok_or_else(|| anyhow!("scenario {}: unknown cluster {:?}", sc.name, action.cluster))?;
        sim.run(action, &rules)
            .await
            .with_context(|| format!("scenario {} on {}", sc.name, action.cluster))?;
        if let Some(w) = action.wait_for.as_ref().filter(|_| action.wait_before_next) {
            sim.wait_for(w)
                .await
                .with_context(|| format!("scenario {} on {}", sc.name, action.cluster))?;
        }
    }
    for action in sc.breaks.iter().filter(|a| !a.wait_before_next && a.after.is_none()) {
        if let Some(w) = &action.wait_for {
            let sim = sims
                .iter()
                .find(|s| s.cluster == action.cluster)
                .expect("checked above");
            sim.wait_for(w)
                .await
                .with_context(|| format!("scenario {} on {}", sc.name, action.cluster))?;
        }
    }
    let later = later::later(&sc.breaks);
    if let Some(last) = later.last().and_then(|a| a.after) {
        let log = later::start(cfg, &sc.name)?;
        report.later = Some(format!("{} break(s) follow in the background within {last}s (log {})", later.len(), log.display()));
    }
    report.elapsed = start.elapsed();
    Ok(report)
}

/// A commit changes the branch every cluster syncs, so each other cluster's Flux fetches
/// it on its own interval, possibly while the suite runs. A scenario says what each
/// cluster does with it: every cluster has a later `commit` or `fetchNow` break (which
/// waits until that cluster's Flux has applied the head).
fn every_cluster_follows_commits(sc: &Scenario, clusters: &[String]) -> Result<()> {
    let now: Vec<&model::Action> = sc.breaks.iter().filter(|a| a.after.is_none()).collect();
    for (i, a) in now.iter().enumerate() {
        if !matches!(a.op, Op::Commit { .. }) {
            continue;
        }
        for c in clusters.iter().filter(|c| **c != a.cluster) {
            let follows = now[i + 1..].iter().any(|b| b.cluster == *c && matches!(b.op, Op::Commit { .. } | Op::FetchNow {}));
            if !follows {
                bail!(
                    "scenario {}: the commit on {} changes the branch {c} syncs too, and nothing says when {c}'s Flux applies it; add a break after it: `- cluster: {c}` with `fetchNow: {{}}`",
                    sc.name, a.cluster
                );
            }
        }
    }
    Ok(())
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn now() -> String {
    now_plus(0)
}

/// RFC 3339 time `seconds` from now, to the second.
fn now_plus(seconds: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds))
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// Seconds of a Go `time.Duration` string as Kubernetes APIs write it (`720h0m0s`, `90m`, `1.5h`).
fn go_duration_seconds(text: &str) -> Option<i64> {
    let (mut total, mut number) = (0.0_f64, String::new());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = match (c, chars.peek()) {
            ('h', _) => 3600.0,
            ('m', Some('s')) => {
                chars.next();
                0.001
            }
            ('m', _) => 60.0,
            ('s', _) => 1.0,
            _ => return None,
        };
        total += number.parse::<f64>().ok()? * unit;
        number.clear();
    }
    number.is_empty().then_some(total as i64)
}

#[cfg(test)]
mod duration_tests {
    #[test]
    fn go_durations_read_as_kubernetes_writes_them() {
        assert_eq!(super::go_duration_seconds("720h0m0s"), Some(720 * 3600));
        assert_eq!(super::go_duration_seconds("1h30m"), Some(5400));
        assert_eq!(super::go_duration_seconds("1.5h"), Some(5400));
        assert_eq!(super::go_duration_seconds("720"), None, "a unit is required");
        assert_eq!(super::go_duration_seconds("5d"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_says_what_each_cluster_does_with_its_commits() {
        let clusters = ["infra".to_string(), "apps".to_string()];
        for name in list() {
            every_cluster_follows_commits(&scenario(name).unwrap(), &clusters).unwrap_or_else(|e| panic!("{e:#}"));
        }
        let sc: Scenario = serde_yaml_ng::from_str(
            "name: s\ndescription: d\nbreaks:\n  - {cluster: apps, commit: {message: m, edits: [{file: f, append: x}]}}\n  - {cluster: infra, fetchNow: {}}\n",
        )
        .unwrap();
        every_cluster_follows_commits(&sc, &clusters).unwrap();
        let err = every_cluster_follows_commits(&sc, &[clusters[0].clone(), clusters[1].clone(), "edge".into()]).unwrap_err().to_string();
        assert!(err.contains("the commit on apps changes the branch edge syncs too") && err.contains("fetchNow"), "{err}");
    }
}
