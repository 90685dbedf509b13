//! What a check is given: the cluster it is evaluated for, the repository, a
//! cluster target, the phase, and a place to register cleanups.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::cluster::Target;
use crate::outcome::Outcome;
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
    /// This run's id: every object a check creates carries it as label
    /// `platform-acceptance.io/run` (see [`crate::cluster::lease`]).
    pub run: String,
    /// Services this run found unreachable (shared by every unit of the run).
    pub reach: super::Reach,
}

/// Checks take their context by shared pointer so their futures are `'static`.
pub type Ctx = Arc<CheckContext>;

impl CheckContext {
    /// The repository, or a Skip outcome saying none was given.
    pub fn repo(&self) -> Result<&GitopsRepo, Outcome> {
        self.repo.as_deref().ok_or_else(|| Outcome::skip("no GitOps repository given (--repo PATH)"))
    }

    /// Where a service named as the cluster names it is reachable from here, or a Fail
    /// naming the host when nothing serves it (an Error when the name service could not
    /// be asked: the relay pod did not start, the cluster's DNS did not answer).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<std::net::SocketAddr, Outcome> {
        self.resolve_in(&self.cluster, host, port).await
    }

    /// As [`resolve`](Self::resolve), with the name as cluster `cluster` resolves it: for a
    /// service of another cluster, named the way that cluster names it.
    pub async fn resolve_in(&self, cluster: &str, host: &str, port: u16) -> Result<std::net::SocketAddr, Outcome> {
        let object = format!("{host}:{port}");
        self.data_path(cluster, &object)?;
        let target = self.target.as_ref().ok_or_else(|| Outcome::skip("no cluster target"))?;
        let via = target.resolver.describe();
        let lookup = if cluster == self.cluster { target.resolver.lookup(host, port) } else { target.resolver.lookup_in(cluster, host, port) };
        let addr = match lookup.await {
            Ok(addrs) => addrs.into_iter().next().ok_or_else(|| Outcome::fail(&object, "a reachable endpoint", format!("no endpoint serves it ({via})")))?,
            Err(e) if e.not_asked => return Err(Outcome::error(format!("{object}: {e} ({via}); not evaluated"))),
            Err(e) => return Err(Outcome::fail(object, "resolvable", format!("{e} ({via})"))),
        };
        self.reach.gate(&object, addr)?;
        Ok(addr)
    }

    /// Whether this run may send data-plane traffic from cluster `cluster` (to `what`): a
    /// Skip when there is no target, or when the traffic would need a relay pod on a target
    /// that may not be written to. A check calls it before reading what only the exchange
    /// needs, so a run without `--allow-writes` does not read it.
    pub fn data_path(&self, cluster: &str, what: &str) -> Result<(), Outcome> {
        let target = self.target.as_ref().ok_or_else(|| Outcome::skip("no cluster target"))?;
        if target.resolver.writes() && !target.writable {
            return Err(Outcome::skip(format!(
                "needs --allow-writes: {what} is reached through a relay pod on cluster {cluster} (or give --network direct where cluster names resolve)"
            )));
        }
        Ok(())
    }

    /// The verdict of a failed exchange with the service at `addr`: an Error when it was
    /// not reached (and, when it did not answer in time, the run's next units that need it
    /// end at once, see [`super::Reach`]), else a Fail naming `object`, `expected` and the
    /// answer.
    pub fn exchange_failed(&self, addr: std::net::SocketAddr, object: impl std::fmt::Display, expected: impl std::fmt::Display, failure: crate::errline::Failure) -> Outcome {
        self.reach.verdict(addr, object, expected, failure)
    }

    /// The service at `addr` answered.
    pub fn reached(&self, addr: std::net::SocketAddr) {
        self.reach.reached(addr);
    }

    /// The cluster's API client, or a Skip outcome saying there is no cluster target.
    pub fn kube(&self) -> Result<&kube::Client, Outcome> {
        self.target
            .as_ref()
            .map(|t| &t.client)
            .ok_or_else(|| Outcome::skip("no cluster target (give --kubeconfig, or --sim for the local simulation)"))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use futures::future::BoxFuture;

    use super::*;
    use crate::check::Verdict;
    use crate::cluster::fake::FakeApi;
    use crate::cluster::resolve::{LookupError, Resolve};

    /// A resolver that gives every lookup the same error.
    struct Failing(LookupError);

    impl Resolve for Failing {
        fn lookup<'a>(&'a self, _: &'a str, _: u16) -> BoxFuture<'a, Result<Vec<SocketAddr>, LookupError>> {
            Box::pin(async move { Err(self.0.clone()) })
        }

        fn describe(&self) -> &str {
            "test resolver"
        }
    }

    fn ctx(e: LookupError) -> CheckContext {
        let mut target = FakeApi::new(|_| None).target();
        target.resolver = Arc::new(Failing(e));
        CheckContext { cluster: "infra".into(), repo: None, target: Some(target), phase: Phase::default(), cancel: Default::default(), cleanup: Cleanup::default(), run: "t".into(), reach: Default::default() }
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_fails_and_a_name_service_not_asked_is_not_evaluated() {
        let nx = ctx(LookupError::answered("pg.db.svc.clusterset.local does not resolve on cluster infra (NXDOMAIN)"));
        let o = nx.resolve("pg.db.svc.clusterset.local", 5432).await.unwrap_err();
        assert_eq!(o.verdict(), Verdict::Fail);
        assert_eq!(o.summary(), "pg.db.svc.clusterset.local:5432: expected resolvable, observed pg.db.svc.clusterset.local does not resolve on cluster infra (NXDOMAIN) (test resolver)");

        let relay = ctx(LookupError::not_asked("starting the relay pod on cluster infra: 403 Forbidden: pods \"relay\" is forbidden"));
        let o = relay.resolve("pg.db.svc.clusterset.local", 5432).await.unwrap_err();
        assert_eq!(o.verdict(), Verdict::Error);
        assert_eq!(o.summary(), "pg.db.svc.clusterset.local:5432: starting the relay pod on cluster infra: 403 Forbidden: pods \"relay\" is forbidden (test resolver); not evaluated");
    }
}
