//! The runner core: bounded concurrency, per-check timeout, retry with backoff for
//! eventually consistent state, ordering by the story dependency graph (dependents
//! of a failed story are skipped as "blocked by N.M"), cancellation that still runs
//! cleanups. Reporters consume [`Event`]s and the final [`RunReport`].

mod events;
pub mod health;

pub use events::{BasisSplit, Event, RunReport, Summary, UnitResult};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::check::{CheckContext, Cleanup, Layer, Outcome, Phase, Prior, Target, Verdict};
use crate::cluster::cache::{Freshness, RunCache};
use crate::catalog::DOD_STORY;
use crate::cluster::access::{AccessLog, Basis};
use crate::plan::{Unit, ONCE};
use crate::repo::GitopsRepo;

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub concurrency: usize,
    /// Per check, across all its attempts.
    pub timeout: Duration,
    /// Extra attempts for cluster and data-plane checks that fail or error.
    pub retries: u32,
    /// First retry delay; doubles each attempt, capped at 10 s.
    pub backoff: Duration,
    /// How long a live check whose only findings are reconciliations in progress
    /// ([`Outcome::is_in_progress`]) is re-evaluated, beyond `retries`, before its Fail
    /// stands (within `timeout`).
    pub in_progress_wait: Duration,
    pub phase: Phase,
    /// How long this run's Lease holds without renewal (see [`crate::cluster::lease`]).
    pub lease: Duration,
    /// How long the reachability probe of a cluster may take (see [`health`]).
    pub probe_timeout: Duration,
    /// Reads of checks that only look go through the run's cache ([`crate::cluster::cache`]):
    /// one LIST per resource type and cluster. Off: every read is sent (`--no-read-cache`).
    pub read_cache: bool,
    /// A live unit whose ancestor story failed is skipped as "blocked by N.M" (the
    /// default); off, every unit is evaluated whatever its ancestors did (`--no-block`).
    pub block: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig { concurrency: 8, timeout: Duration::from_secs(60), retries: 2, backoff: Duration::from_millis(500), in_progress_wait: Duration::from_secs(30), phase: Phase::Operate, lease: Duration::from_secs(60), probe_timeout: Duration::from_secs(5), read_cache: true, block: true }
    }
}

/// What the checks run against.
#[derive(Clone, Default)]
pub struct Environment {
    pub repo: Option<Arc<GitopsRepo>>,
    /// Live targets by cluster name; empty when no cluster was given.
    pub targets: BTreeMap<String, Target>,
}

pub struct Runner {
    pub config: RunConfig,
    pub env: Environment,
    /// This run's id (lowercase, 10 characters): the label on what it creates, the name of its Lease.
    pub run: String,
    /// `(prerequisite, dependent)` story pairs.
    pub dependencies: Vec<(String, String)>,
    pub cancel: CancellationToken,
    /// Which clusters answer (a dead one costs one timeout, see [`health`]).
    health: health::Health,
    /// This run's read cache (every cluster's).
    reads: Arc<RunCache>,
    /// Which data services answer (a dead one costs one timeout, see [`crate::check::Reach`]).
    reach: crate::check::Reach,
}

#[derive(Default)]
struct StoryState {
    /// Clusters on which a live unit failed, errored or was blocked (`all` = every cluster).
    failed_live: BTreeSet<String>,
    clusters: BTreeSet<String>,
    pending: usize,
}

impl Runner {
    pub fn new(config: RunConfig, env: Environment, dependencies: Vec<(String, String)>) -> Self {
        let health = health::Health::new(config.probe_timeout);
        Runner { config, env, dependencies, cancel: CancellationToken::new(), run: crate::random::token(10).to_ascii_lowercase(), health, reads: RunCache::new(), reach: crate::check::Reach::default() }
    }

    /// Runs every unit; events go to `events` as they happen (a closed receiver is fine).
    pub async fn run(&self, units: Vec<Unit>, events: mpsc::UnboundedSender<Event>) -> RunReport {
        let lease = self.hold_lease().await;
        let resolvers = self.resolvers();
        for r in &resolvers {
            r.begin_run(&self.run);
        }
        let report = self.run_units(units, events).await;
        for r in &resolvers {
            // Bounded as a cleanup is; what is left is `sweep`'s.
            let _ = tokio::time::timeout(Duration::from_secs(30), r.end_run()).await;
        }
        if let Some((renewer, clients)) = lease {
            renewer.abort();
            for c in &clients {
                let _ = tokio::time::timeout(self.config.probe_timeout, crate::cluster::lease::release(c, &self.run)).await;
            }
        }
        report
    }

    /// Every target's resolver, each once (targets may share one).
    fn resolvers(&self) -> Vec<crate::cluster::resolve::Resolver> {
        let mut out: Vec<crate::cluster::resolve::Resolver> = vec![];
        for t in self.env.targets.values() {
            if !out.iter().any(|r| Arc::ptr_eq(r, &t.resolver)) {
                out.push(t.resolver.clone());
            }
        }
        out
    }

    /// Takes this run's Lease on every writable target before any check runs, and keeps
    /// renewing it (every third of `config.lease`) while it runs, so `sweep` leaves its
    /// objects alone. `None` when nothing is writable.
    async fn hold_lease(&self) -> Option<(tokio::task::JoinHandle<()>, Vec<kube::Client>)> {
        let writable: Vec<(&String, kube::Client)> = self.env.targets.iter().filter(|(_, t)| t.writable).map(|(n, t)| (n, t.client.clone())).collect();
        if writable.is_empty() {
            return None;
        }
        let seconds = self.config.lease.as_secs().clamp(3, i32::MAX as u64) as i32;
        let holder = format!("platform-acceptance pid {}", std::process::id());
        for (cluster, c) in &writable {
            let why = match tokio::time::timeout(self.config.probe_timeout, crate::cluster::lease::renew(c, &self.run, &holder, seconds)).await {
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => crate::cluster::api_error("cannot hold this run's Lease", e).summary(),
                Err(_) => {
                    let why = format!("no answer within {:?}", self.config.probe_timeout);
                    let context = self.env.targets.get(*cluster).map(|t| t.context.clone()).unwrap_or_default();
                    self.health.mark_down(cluster, &context, &why).await;
                    format!("cannot hold this run's Lease: {why}")
                }
            };
            eprintln!("warning: cluster {cluster}: {why}; `sweep` may remove its objects while it runs");
        }
        let clients: Vec<kube::Client> = writable.into_iter().map(|(_, c)| c).collect();
        let (run, held, bound) = (self.run.clone(), clients.clone(), self.config.probe_timeout);
        let renewer = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs((seconds / 3).max(1) as u64)).await;
                for c in &held {
                    let _ = tokio::time::timeout(bound, crate::cluster::lease::renew(c, &run, &holder, seconds)).await;
                }
            }
        });
        Some((renewer, clients))
    }

    async fn run_units(&self, units: Vec<Unit>, events: mpsc::UnboundedSender<Event>) -> RunReport {
        let started = Instant::now();
        let started_at = time::OffsetDateTime::now_utc();
        let total = units.len();
        let _ = events.send(Event::RunStarted { total });

        let mut stories: BTreeMap<String, StoryState> = BTreeMap::new();
        let mut by_story: BTreeMap<String, Vec<(usize, Unit)>> = BTreeMap::new();
        for (i, u) in units.into_iter().enumerate() {
            let s = stories.entry(u.story.clone()).or_default();
            s.pending += 1;
            s.clusters.insert(u.cluster.clone());
            by_story.entry(u.story.clone()).or_default().push((i, u));
        }
        let ancestors = self.ancestors(&stories.keys().cloned().collect::<Vec<_>>());

        let semaphore = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut results: Vec<Option<UnitResult>> = (0..total).map(|_| None).collect();
        let finished: Arc<std::sync::Mutex<Vec<UnitResult>>> = Arc::default();
        let mut tasks: JoinSet<(usize, UnitResult)> = JoinSet::new();
        let mut started_stories: BTreeSet<String> = BTreeSet::new();
        let mut done = 0usize;

        loop {
            // Start every story whose selected prerequisites have all finished.
            let ready: Vec<String> = by_story
                .keys()
                .filter(|s| !started_stories.contains(*s))
                .filter(|s| ancestors[*s].iter().all(|a| stories.get(a).is_none_or(|st| st.pending == 0)))
                .cloned()
                .collect();
            for story in ready {
                started_stories.insert(story.clone());
                for (index, unit) in by_story.get(&story).cloned().unwrap_or_default() {
                    let blocked = self.blocked_by(&unit, &ancestors[&story], &stories).filter(|_| self.config.block);
                    let job = self.job(unit, blocked, semaphore.clone(), events.clone(), index, finished.clone());
                    tasks.spawn(job);
                }
            }
            let Some(joined) = tasks.join_next().await else { break };
            let (index, result) = match joined {
                Ok(r) => r,
                Err(e) => panic!("check task panicked: {e}"),
            };
            done += 1;
            let state = stories.get_mut(&result.story).expect("story state");
            state.pending -= 1;
            let live = result.layer.is_some_and(Layer::is_live);
            let bad = matches!(result.outcome.verdict(), Verdict::Fail | Verdict::Error) || result.blocked_by.is_some();
            if live && bad {
                // A once-only unit that failed while clusters were unreachable counts against
                // those clusters, so the clusters that answer are not blocked by it.
                let down = self.health.down();
                if result.cluster == ONCE && result.outcome.verdict() == Verdict::Error && !down.is_empty() {
                    state.failed_live.extend(down);
                } else {
                    state.failed_live.insert(result.cluster.clone());
                }
            }
            finished.lock().expect("results lock").push(result.clone());
            let _ = events.send(Event::UnitFinished { result: result.clone(), done, total });
            results[index] = Some(result);
        }

        let mut report = RunReport::new(
            results.into_iter().flatten().collect(),
            started_at,
            started.elapsed(),
            self.cancel.is_cancelled(),
            self.config.phase,
        );
        report.warnings = self.env.repo.as_ref().map(|r| r.warnings()).unwrap_or_default();
        let _ = events.send(Event::RunFinished { summary: report.summary.clone() });
        report
    }

    /// Selected ancestors of each selected story in the dependency graph.
    fn ancestors(&self, selected: &[String]) -> HashMap<String, Vec<String>> {
        let mut out = HashMap::new();
        for s in selected {
            let mut seen = BTreeSet::new();
            let mut stack = vec![s.clone()];
            while let Some(x) = stack.pop() {
                for (p, d) in &self.dependencies {
                    if *d == x && seen.insert(p.clone()) {
                        stack.push(p.clone());
                    }
                }
            }
            // The Definition of Done is judged last, after every story.
            if s == DOD_STORY {
                seen.extend(selected.iter().filter(|x| *x != s).cloned());
            }
            out.insert(s.clone(), seen.into_iter().filter(|a| selected.contains(a)).collect());
        }
        out
    }

    /// A live unit is blocked when an ancestor story failed live on the same cluster,
    /// or failed anywhere when that ancestor does not run on this cluster at all.
    fn blocked_by(&self, unit: &Unit, ancestors: &[String], stories: &BTreeMap<String, StoryState>) -> Option<String> {
        if !unit.layer.is_some_and(Layer::is_live) {
            return None;
        }
        let failed: Vec<&String> = ancestors
            .iter()
            .filter(|a| {
                let st = &stories[*a];
                let same = st.failed_live.contains(&unit.cluster) || st.failed_live.contains(ONCE) || unit.cluster == ONCE;
                let elsewhere = !st.clusters.contains(&unit.cluster) && !st.failed_live.is_empty();
                (same && !st.failed_live.is_empty()) || elsewhere
            })
            .collect();
        match failed.len() {
            0 => None,
            n if n > 5 => Some(format!("{} and {} more", failed[..5].iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "), n - 5)),
            _ => Some(failed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")),
        }
    }

    fn job(
        &self,
        unit: Unit,
        blocked: Option<String>,
        semaphore: Arc<Semaphore>,
        events: mpsc::UnboundedSender<Event>,
        index: usize,
        finished: Arc<std::sync::Mutex<Vec<UnitResult>>>,
    ) -> impl std::future::Future<Output = (usize, UnitResult)> + Send + 'static {
        let config = self.config.clone();
        let env = self.env.clone();
        let cancel = self.cancel.clone();
        let run = self.run.clone();
        let health = self.health.clone();
        let reads = self.config.read_cache.then(|| self.reads.clone());
        let reach = self.reach.clone();
        async move {
            let _permit = semaphore.acquire_owned().await.expect("semaphore open");
            let start = Instant::now();
            let _ = events.send(Event::UnitStarted { title: unit.title() });
            let (outcome, attempts, seen) = match precondition(&unit, &config, &env, &cancel, blocked.as_deref()) {
                Some(skip) => (skip, 0, None),
                None => evaluate(&unit, &config, &env, &cancel, finished, &RunScope { id: &run, health: &health, reads: reads.as_ref(), reach }).await,
            };
            let mut result = UnitResult::new(&unit, outcome, start.elapsed(), attempts, blocked);
            if let Some((basis, accesses, requests)) = seen {
                result.basis = Some(basis);
                // One line per resource and verb (the objects a check named are the provenance's).
                let mut lines: Vec<String> = vec![];
                for a in accesses.iter().map(ToString::to_string) {
                    if !lines.contains(&a) {
                        lines.push(a);
                    }
                }
                result.access = lines;
                result.api_requests = requests;
            }
            (index, result)
        }
    }
}

/// Why a unit is not evaluated at all, if it is not.
fn precondition(unit: &Unit, config: &RunConfig, env: &Environment, cancel: &CancellationToken, blocked: Option<&str>) -> Option<Outcome> {
    let Some(check) = &unit.check else {
        return Some(Outcome::skip("unmapped: no check proves this criterion yet"));
    };
    if cancel.is_cancelled() {
        return Some(Outcome::skip("interrupted before it started"));
    }
    if let Some(reason) = check.manual_reason {
        return Some(Outcome::skip(format!("manual: {reason}")));
    }
    if check.layer == Layer::Repo && env.repo.is_none() {
        return Some(Outcome::skip("no GitOps repository given (--repo PATH)"));
    }
    if check.layer.is_live() {
        if env.targets.is_empty() {
            return Some(Outcome::skip(
                "no cluster target: repository layer only (give --kubeconfig FILE, or --sim for the local simulation)",
            ));
        }
        if unit.cluster != ONCE && !env.targets.contains_key(&unit.cluster) {
            return Some(Outcome::error(format!("no kubeconfig context for cluster {} (use --context {}=CONTEXT)", unit.cluster, unit.cluster)));
        }
    }
    if let Some(target) = unit_target(unit, env).filter(|_| check.layer.is_live()) {
        if check.writes && !target.writable {
            return Some(Outcome::skip("creates objects in the cluster: give --allow-writes to run it"));
        }
        if let Some(reason) = target.provenance.not_provable().remove(&unit.id) {
            return Some(Outcome::skip(format!("not provable in {}: {reason}", target.provenance.describe())));
        }
    }
    if let Some(phase) = check.phase
        && phase != config.phase
    {
        return Some(Outcome::skip(format!("evaluated only in the {} phase (run with --phase {})", phase.as_str(), phase.as_str())));
    }
    blocked.map(|b| Outcome::skip(format!("blocked by {b}")))
}

/// The target a unit runs against: its cluster's, or any for once-only units.
fn unit_target<'a>(unit: &Unit, env: &'a Environment) -> Option<&'a Target> {
    env.targets.get(&unit.cluster).or_else(|| env.targets.values().next())
}

/// What a live unit touched, and the basis that gives its verdict.
type Seen = Option<(Basis, Vec<crate::cluster::access::Access>, std::collections::BTreeMap<String, u64>)>;

/// Evaluates a check with timeout and, for live layers, retries with backoff. Live
/// units run against a recording target, so their verdict carries its basis.
/// The message of a panic payload (`&str` or `String`), one line.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned()).unwrap_or_else(|| "no message".into());
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What every unit of one run shares.
struct RunScope<'a> {
    /// The run's id.
    id: &'a str,
    health: &'a health::Health,
    /// The run's read cache, unless `--no-read-cache`.
    reads: Option<&'a Arc<RunCache>>,
    /// Services found unreachable.
    reach: crate::check::Reach,
}

async fn evaluate(
    unit: &Unit,
    config: &RunConfig,
    env: &Environment,
    cancel: &CancellationToken,
    finished: Arc<std::sync::Mutex<Vec<UnitResult>>>,
    scope: &RunScope<'_>,
) -> (Outcome, u32, Seen) {
    let (run, health) = (scope.id, scope.health);
    let check = unit.check.as_ref().expect("precondition ensured a check");
    if let Some(aggregate) = check.aggregate {
        let prior: Vec<Prior> = finished.lock().expect("results lock").iter().map(UnitResult::prior).collect();
        return (aggregate(&unit.cluster, &prior), 1, None);
    }
    let log = AccessLog::default();
    let target = unit_target(unit, env).filter(|_| check.layer.is_live());
    // The cluster the target serves; a once-only unit spans every cluster, so it meets
    // whichever one is down.
    let down = health.down();
    let gate_on = match unit.cluster.as_str() {
        ONCE if !down.is_empty() => down.first().and_then(|d| env.targets.get_key_value(d)),
        _ => target.and_then(|t| env.targets.iter().find(|(_, x)| std::ptr::eq(*x, t))),
    };
    let cluster = gate_on.map(|(n, _)| n.clone()).unwrap_or_else(|| unit.cluster.clone());
    if let Some((name, t)) = gate_on.filter(|_| check.layer.is_live())
        && let Some(down) = health.gate(name, &t.context, &t.client).await
    {
        return (down, 0, None);
    }
    let provenance = target.map(|t| t.provenance.clone());
    let cleanup = Cleanup::default();
    // Checks that only look read through the run's cache; round trips poll what they create,
    // so only their discovery comes from it.
    let reads = scope.reads.map(|c| (c.clone(), if check.writes { Freshness::discovery_only() } else { Freshness::default() }));
    let ctx = Arc::new(CheckContext {
        cluster: unit.cluster.clone(),
        repo: env.repo.clone(),
        target: target.map(|t| t.recorded(&unit.cluster, &log, check.execs.is_some(), reads.as_ref())),
        phase: config.phase,
        cancel: cancel.child_token(),
        cleanup: cleanup.clone(),
        run: run.to_string(),
        reach: scope.reach.clone(),
    });
    let max_attempts = if check.layer.is_live() { 1 + config.retries } else { 1 };
    let limit = check.timeout.map_or(config.timeout, |t| t.max(config.timeout));
    let deadline = tokio::time::Instant::now() + limit;
    let mut delay = config.backoff;
    let mut attempts = 0;
    let started = tokio::time::Instant::now();
    let mut outcome = Outcome::error("not evaluated");
    loop {
        attempts += 1;
        if attempts > 1
            && let Some((_, freshness)) = &reads
        {
            freshness.require_since(std::time::Instant::now());
        }
        // A check that panics ends as an Error of its unit; the run and its reports go on.
        let fut = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe((check.run)(ctx.clone())));
        let finished = tokio::select! {
            o = fut => Some(o.unwrap_or_else(|panic| Outcome::error(format!("the check panicked: {}", panic_text(&*panic))))),
            _ = tokio::time::sleep_until(deadline) => None,
            _ = cancel.cancelled() => Some(Outcome::skip("interrupted while running")),
        };
        outcome = match finished {
            Some(o) => o,
            // A retry cut short by the deadline keeps the verdict of the attempt before it.
            None if attempts > 1 => {
                attempts -= 1;
                break;
            }
            None => Outcome::error(format!("timed out after {limit:?}")),
        };
        // An Error after talking to the API server: is the cluster still there? If not, this
        // unit keeps its own error, no retry follows, and the cluster's next units end at once.
        if outcome.verdict() == Verdict::Error
            && let Some(t) = target
            && log.entries().iter().any(|a| matches!(a, crate::cluster::access::Access::Api { .. }))
            && health.after_error(&cluster, &t.context, &t.client).await.is_some()
        {
            break;
        }
        let retryable = matches!(outcome.verdict(), Verdict::Fail | Verdict::Error) && !cancel.is_cancelled();
        // A reconciliation in progress is waited for until `in_progress_wait`, whatever the
        // retry count; the last look comes when that wait ends.
        let remaining = config.in_progress_wait.saturating_sub(started.elapsed());
        let waiting = check.layer.is_live() && outcome.is_in_progress() && !remaining.is_zero();
        let pause = if waiting && attempts >= max_attempts { delay.min(remaining) } else { delay };
        if !retryable || (attempts >= max_attempts && !waiting) || tokio::time::Instant::now() + pause >= deadline {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = cancel.cancelled() => break,
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    if outcome.is_in_progress() {
        outcome = outcome.still_in_progress(started.elapsed());
    }
    // Cleanups run whatever happened, bounded so an unreachable cluster cannot hang the run.
    let _ = tokio::time::timeout(Duration::from_secs(30), cleanup.run_all()).await;
    let accesses = log.entries();
    let seen = provenance.map(|p| (p.basis(&accesses), accesses, log.requests()));
    (outcome, attempts, seen)
}
