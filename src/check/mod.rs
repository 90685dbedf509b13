//! The check model: a small declarative unit that proves one criterion.
//!
//! A check names the story and the exact criterion text it proves, the layer it
//! needs, and which clusters it applies to. The runner owns timeouts, retries,
//! cleanup, ordering and reporting; a check only looks and says what it saw.
//!
//! ```
//! use platform_acceptance::check::{Check, CheckResult, Ctx, Outcome};
//!
//! async fn cluster_id_is_two(ctx: Ctx) -> CheckResult<Outcome> {
//!     let vars = ctx.repo()?.variables(&ctx.cluster).map_err(Outcome::error)?;
//!     Ok(vars.expect_eq("CLUSTER_ID", "2"))
//! }
//! let check = Check::repo("2.2", r#"CLUSTER_ID set to "2""#, "cluster_id_is_two", cluster_id_is_two);
//! assert_eq!(check.story, "2.2");
//! ```

mod context;
mod prior;
mod reach;

pub use crate::cluster::Target;
pub use crate::outcome::{CheckResult, Finding, Outcome, Verdict};
pub use context::{CheckContext, Cleanup, Ctx, Phase};
pub use prior::{Aggregate, Prior};
pub use reach::{RETRY_AFTER, Reach};

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Serialize;

/// Cluster label for checks evaluated once (repository-wide, document-wide).
pub const ONCE: &str = "all";

/// What a check needs to be evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    /// The GitOps repository alone.
    Repo,
    /// The Kubernetes API of a cluster.
    Cluster,
    /// Traffic to a service behind the cluster (PostgreSQL, Redis, S3, HTTP).
    DataPlane,
    /// A person has to judge it.
    Manual,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Repo => "repo",
            Layer::Cluster => "cluster",
            Layer::DataPlane => "data-plane",
            Layer::Manual => "manual",
        }
    }

    /// Layers that need a live cluster target.
    pub fn is_live(self) -> bool {
        matches!(self, Layer::Cluster | Layer::DataPlane)
    }
}

/// Which clusters a check applies to, before cluster names are known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Applies {
    /// As the story says (see [`crate::plan::story_clusters`]).
    Story,
    /// Only the named cluster, whatever the story says.
    Only(&'static str),
    /// Once, not per cluster (the repository as a whole, the document itself).
    Once,
}

pub type CheckFn = Arc<dyn Fn(Ctx) -> BoxFuture<'static, Outcome> + Send + Sync>;

/// What a check function may return: an [`Outcome`], or a [`CheckResult`] whose `Err`
/// ends the check early with that outcome (so `?` works in check bodies).
pub trait IntoOutcome: Send + 'static {
    fn into_outcome(self) -> Outcome;
}

impl IntoOutcome for Outcome {
    fn into_outcome(self) -> Outcome {
        self
    }
}

impl IntoOutcome for CheckResult<Outcome> {
    fn into_outcome(self) -> Outcome {
        self.unwrap_or_else(|o| o)
    }
}

/// One criterion's proof.
#[derive(Clone)]
pub struct Check {
    pub story: &'static str,
    /// Criterion text exactly as the document writes it (inline code kept).
    pub criterion: &'static str,
    /// Stable name, shown in reports: `shared_postgres_healthy`.
    pub name: &'static str,
    pub layer: Layer,
    pub applies: Applies,
    /// Evaluated only in this phase (e.g. "nodes NotReady before the CNI").
    pub phase: Option<Phase>,
    /// Why a person must judge it (manual checks only).
    pub manual_reason: Option<&'static str>,
    /// Judged from the other results of the run instead of `run` (the Definition of Done).
    pub aggregate: Option<Aggregate>,
    /// Creates objects in the cluster (a round trip in a disposable namespace). Against
    /// targets that do not allow writes such a check is skipped, never run.
    pub writes: bool,
    /// Runs read-only commands in containers through `pods/exec` (a privileged read; the
    /// API server authorizes it as `create` on `pods/exec`): which pods, which command.
    /// Without it the check's clients refuse exec.
    pub execs: Option<&'static str>,
    /// A longer limit than the runner's per-check timeout, for round trips that wait on a
    /// controller's own period (see [`Check::within`]).
    pub timeout: Option<std::time::Duration>,
    pub run: CheckFn,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check").field("story", &self.story).field("name", &self.name).field("layer", &self.layer).finish()
    }
}

impl Check {
    fn new<F, Fut>(story: &'static str, criterion: &'static str, name: &'static str, layer: Layer, f: F) -> Self
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output: IntoOutcome> + Send + 'static,
    {
        Check {
            story,
            criterion,
            name,
            layer,
            applies: Applies::Story,
            phase: None,
            manual_reason: None,
            aggregate: None,
            writes: false,
            execs: None,
            timeout: None,
            run: Arc::new(move |ctx| {
                let fut = f(ctx);
                Box::pin(async move { fut.await.into_outcome() })
            }),
        }
    }

    /// A check the GitOps repository alone can prove.
    pub fn repo<F, Fut>(story: &'static str, criterion: &'static str, name: &'static str, f: F) -> Self
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output: IntoOutcome> + Send + 'static,
    {
        Self::new(story, criterion, name, Layer::Repo, f)
    }

    /// A check that reads a cluster's Kubernetes API.
    pub fn cluster<F, Fut>(story: &'static str, criterion: &'static str, name: &'static str, f: F) -> Self
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output: IntoOutcome> + Send + 'static,
    {
        Self::new(story, criterion, name, Layer::Cluster, f)
    }

    /// A check that sends traffic to a service (database, cache, object store, HTTP).
    pub fn data_plane<F, Fut>(story: &'static str, criterion: &'static str, name: &'static str, f: F) -> Self
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output: IntoOutcome> + Send + 'static,
    {
        Self::new(story, criterion, name, Layer::DataPlane, f)
    }

    /// A criterion only a person can judge; `reason` says why.
    pub fn manual(story: &'static str, criterion: &'static str, reason: &'static str) -> Self {
        let mut check = Self::new(story, criterion, "manual", Layer::Manual, move |_ctx| async move {
            Outcome::skip(format!("manual: {reason}"))
        });
        check.manual_reason = Some(reason);
        check.applies = Applies::Once;
        check
    }

    /// A criterion judged from the results of the rest of the run, which the runner passes
    /// in once every other selected story has finished. It needs the repository like a
    /// repository-layer check (without one the run has nothing to judge).
    pub fn aggregate(story: &'static str, criterion: &'static str, name: &'static str, f: Aggregate) -> Self {
        let mut check = Self::new(story, criterion, name, Layer::Repo, |_ctx| async { Outcome::error("an aggregate is judged by the runner") });
        check.aggregate = Some(f);
        check
    }

    /// Restricts the check to one cluster.
    pub fn only(mut self, cluster: &'static str) -> Self {
        self.applies = Applies::Only(cluster);
        self
    }

    /// Declares that the check creates objects (and removes them): it runs only against
    /// targets that allow writes (`--allow-writes`, the simulation).
    pub fn writes(mut self) -> Self {
        self.writes = true;
        self
    }

    /// Declares that the check runs a read-only command in containers through `pods/exec`
    /// (a privileged read: roles for the harness must grant `create` on `pods/exec`);
    /// `what` names the pods and the command, e.g. "kube-system/cilium-* (cilium-agent):
    /// cilium-dbg bgp peers -o json". Without it the check's clients refuse exec.
    pub fn execs(mut self, what: &'static str) -> Self {
        self.execs = Some(what);
        self
    }

    /// Lets the check run up to `limit` (all attempts together) when that is longer than the
    /// runner's timeout: a round trip that waits for a controller's periodic work.
    pub fn within(mut self, limit: std::time::Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Evaluates the check once rather than per cluster.
    pub fn once(mut self) -> Self {
        self.applies = Applies::Once;
        self
    }

    /// Evaluates the check only in the given phase; otherwise it is skipped saying so.
    pub fn in_phase(mut self, phase: Phase) -> Self {
        self.phase = Some(phase);
        self
    }
}
