//! How data-plane checks reach a service named the way the cluster names it
//! (`<svc>.<ns>.svc.cluster.local`, `<svc>.<ns>.svc.clusterset.local`).
//!
//! A target carries one [`Resolver`]. Against real clusters it is [`SystemDns`]; other
//! implementations (the local simulation's) live with whoever provides them, so the
//! check library never knows how names are resolved.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use platform_acceptance::cluster::resolve::{Resolve, SystemDns};
//! let addrs = SystemDns.lookup("localhost", 5432).await.unwrap();
//! assert!(addrs.iter().all(|a| a.port() == 5432));
//! assert_eq!(SystemDns.describe(), "system resolver");
//! # })
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;

/// Why a lookup gave no address: one readable line, and whether the name service was
/// asked at all.
///
/// ```
/// use platform_acceptance::cluster::resolve::LookupError;
/// let nx = LookupError::answered("pg.db.svc.clusterset.local does not resolve on cluster apps (NXDOMAIN …)");
/// assert!(!nx.not_asked);
/// let relay = LookupError::not_asked("starting the relay pod on cluster apps: 403 Forbidden: …");
/// assert!(relay.not_asked);
/// assert_eq!(relay.to_string(), relay.line);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupError {
    pub line: String,
    /// The way to the name service failed (no answer in time, a relay pod that could not
    /// start, an API server that would not say where the cluster's DNS is): nothing was
    /// learnt about the name, so a check says "not evaluated" rather than that the name
    /// does not resolve.
    pub not_asked: bool,
}

impl LookupError {
    /// The name service answered: no such name, no address, a refusal.
    pub fn answered(line: impl Into<String>) -> LookupError {
        LookupError { line: line.into(), not_asked: false }
    }

    /// The name service could not be asked.
    pub fn not_asked(line: impl Into<String>) -> LookupError {
        LookupError { line: line.into(), not_asked: true }
    }
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line)
    }
}

/// Name resolution for data-plane traffic.
pub trait Resolve: Send + Sync {
    /// Every address `host:port` is reachable at from here; empty when nothing serves it,
    /// `Err` when the lookup itself failed.
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, Result<Vec<SocketAddr>, LookupError>>;

    /// Every address `host:port` is reachable at, as cluster `cluster` resolves the name:
    /// for a service that lives in another cluster than the target's (VictoriaLogs on the
    /// cluster that runs it). A resolver that cannot tell clusters apart (the system
    /// resolver) answers as [`lookup`](Self::lookup).
    fn lookup_in<'a>(&'a self, cluster: &'a str, host: &'a str, port: u16) -> BoxFuture<'a, Result<Vec<SocketAddr>, LookupError>> {
        let _ = cluster;
        self.lookup(host, port)
    }

    /// What DNS answers for `host`, without connecting anywhere (a DNS record check).
    /// By default the addresses [`lookup`](Self::lookup) finds.
    fn addresses<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<std::net::IpAddr>, LookupError>> {
        Box::pin(async move { self.lookup(host, 0).await.map(|a| a.iter().map(SocketAddr::ip).collect()) })
    }

    /// How names are resolved, for evidence: "system resolver".
    fn describe(&self) -> &str;

    /// Whether resolving writes to the cluster (the relay starts a pod): such a resolver is
    /// used only on targets that may be written to (`--allow-writes`).
    fn writes(&self) -> bool {
        false
    }

    /// The image of the relay's SOCKS5 server, when data-plane traffic goes through relay
    /// pods (a round trip may run it as a backend of its own: it answers a SOCKS5 greeting).
    fn relay_image(&self) -> Option<&str> {
        None
    }

    /// The run that starts now (its id labels what the resolver creates); called by the
    /// runner before any check.
    fn begin_run(&self, run: &str) {
        let _ = run;
    }

    /// Removes what the resolver created for the run; called by the runner when the run
    /// ends (also when interrupted).
    fn end_run(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// A shared resolver, as held by a target.
pub type Resolver = Arc<dyn Resolve>;

/// The system resolver: the harness runs where cluster names resolve (in-cluster, VPN, routed).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemDns;

impl Resolve for SystemDns {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, Result<Vec<SocketAddr>, LookupError>> {
        Box::pin(async move { tokio::net::lookup_host((host, port)).await.map(|a| a.collect()).map_err(|e| LookupError::answered(e.to_string())) })
    }

    fn describe(&self) -> &str {
        "system resolver"
    }
}
