//! What a check is given: the cluster it is evaluated for, the repository, a
//! cluster client, the phase, and a place to register cleanups.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::Outcome;
use crate::repo::GitopsRepo;

/// Lifecycle phase of the platform; some criteria hold only in one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Clusters bootstrapped, no CNI yet: nodes are expected NotReady.
    Bootstrap,
    /// The platform is deployed and should be healthy.
    #[default]
    Operate,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Bootstrap => "bootstrap",
            Phase::Operate => "operate",
        }
    }
}

/// A live cluster the checks can reach.
#[derive(Clone)]
pub struct Target {
    pub client: kube::Client,
    /// The kubeconfig context used, for messages.
    pub context: String,
    /// Every cluster's client by cluster name, for cross-cluster criteria.
    pub peers: Arc<std::collections::BTreeMap<String, kube::Client>>,
    /// How in-cluster service names are reached from here.
    pub resolver: Resolver,
}

/// How data-plane checks reach `<svc>.<ns>.svc.cluster.local` (or `.clusterset.local`).
#[derive(Clone, Default)]
pub enum Resolver {
    /// Plain DNS: the harness runs where cluster names resolve (in-cluster, VPN, routed).
    #[default]
    Dns,
    /// The local simulation's endpoint map (names → loopback services).
    Map(Arc<crate::sim::data::Endpoints>),
}

/// Async cleanups registered by a check; the runner runs them when the check ends,
/// also when it timed out or the run was interrupted.
#[derive(Default, Clone)]
pub struct Cleanup {
    pending: Arc<Mutex<Vec<BoxFuture<'static, ()>>>>,
}

impl Cleanup {
    /// Registers `action` to run after the check, whatever its outcome.
    pub fn defer(&self, action: impl std::future::Future<Output = ()> + Send + 'static) {
        self.pending.lock().expect("cleanup lock").push(Box::pin(action));
    }

    /// Runs and forgets every registered cleanup, last registered first.
    pub async fn run_all(&self) {
        let actions: Vec<_> = std::mem::take(&mut *self.pending.lock().expect("cleanup lock"));
        for action in actions.into_iter().rev() {
            action.await;
        }
    }

    pub fn len(&self) -> usize {
        self.pending.lock().expect("cleanup lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Everything a check may look at.
pub struct CheckContext {
    /// Cluster this evaluation is for (`infra`, `apps`, ...) or `all` for once-only checks.
    pub cluster: String,
    pub repo: Option<Arc<GitopsRepo>>,
    pub target: Option<Target>,
    pub phase: Phase,
    pub cancel: CancellationToken,
    pub cleanup: Cleanup,
    /// Results of the units finished so far (the Definition of Done runs after all stories).
    pub finished: Arc<Mutex<Vec<crate::runner::UnitResult>>>,
}

/// Checks take their context by shared pointer so their futures are `'static`.
pub type Ctx = Arc<CheckContext>;

impl CheckContext {
    /// The repository, or a Skip outcome saying none was given.
    pub fn repo(&self) -> Result<&GitopsRepo, Outcome> {
        self.repo.as_deref().ok_or_else(|| Outcome::skip("no GitOps repository given (--repo PATH)"))
    }

    /// Where a service named as the cluster names it is reachable from here, or a Fail
    /// naming the host when nothing serves it.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<std::net::SocketAddr, Outcome> {
        let target = self.target.as_ref().ok_or_else(|| Outcome::skip("no cluster target"))?;
        match &target.resolver {
            Resolver::Map(map) => map
                .resolve(host, port)
                .ok_or_else(|| Outcome::fail(format!("{host}:{port}"), "a reachable endpoint", "no endpoint serves it")),
            Resolver::Dns => match tokio::net::lookup_host((host, port)).await {
                Ok(mut addrs) => addrs.next().ok_or_else(|| Outcome::fail(format!("{host}:{port}"), "resolvable", "no address")),
                Err(e) => Err(Outcome::fail(format!("{host}:{port}"), "resolvable", e.to_string())),
            },
        }
    }

    /// The cluster's API client, or a Skip outcome saying there is no cluster target.
    pub fn kube(&self) -> Result<&kube::Client, Outcome> {
        self.target
            .as_ref()
            .map(|t| &t.client)
            .ok_or_else(|| Outcome::skip("no cluster target (give --kubeconfig, or --sim for the local simulation)"))
    }
}
