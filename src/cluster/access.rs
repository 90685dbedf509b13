//! What a check touched, and what that says about its verdict.
//!
//! The runner gives every unit a [`Target`] whose API clients and resolver record each
//! request into an [`AccessLog`]: the API resources read or written, and the service
//! names dialled. A [`Provenance`] supplied with the targets turns that log into the
//! verdict's [`Basis`]: against real clusters everything a check saw is the platform's
//! own work ([`RealClusters`]); a simulation says which of its answers it wrote itself.
//!
//! ```
//! use platform_acceptance::cluster::access::{Access, api_access};
//! let a = api_access("infra", "GET", "/apis/helm.toolkit.fluxcd.io/v2/namespaces/flux-system/helmreleases/cilium").unwrap();
//! assert_eq!(a, Access::Api { cluster: "infra".into(), verb: "get".into(), group: "helm.toolkit.fluxcd.io".into(), resource: "helmreleases".into(),
//!                            namespace: Some("flux-system".into()), object: Some("flux-system/cilium".into()) });
//! assert_eq!(a.to_string(), "get helm.toolkit.fluxcd.io/helmreleases on infra");
//! let list = api_access("apps", "GET", "/api/v1/nodes?labelSelector=a%3Db").unwrap();
//! assert_eq!(list.to_string(), "list nodes on apps");
//! let watch = api_access("apps", "GET", "/apis/velero.io/v1/namespaces/velero/backups?watch=true&fieldSelector=metadata.name%3Dx").unwrap();
//! assert_eq!(watch.to_string(), "watch velero.io/backups on apps");
//! assert_eq!(api_access("apps", "GET", "/version").unwrap().to_string(), "get /version on apps");
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use serde::Serialize;

use super::Target;
use super::cache::{Freshness, RunCache, classify};
use super::resolve::Resolve;

/// One thing a check touched.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    /// A Kubernetes API request. `group` is empty for the core group; `resource` is the
    /// plural resource (`deployments`, `deployments/status`) or a non-resource path (`/version`);
    /// `namespace` the namespace a request is confined to (None for cluster-scoped resources
    /// and reads across all namespaces) and `object` the one object it names
    /// (`namespace/name`, or `name` when cluster-scoped); neither is part of its display.
    Api { cluster: String, verb: String, group: String, resource: String, namespace: Option<String>, object: Option<String> },
    /// A service name looked up for data-plane traffic (`postgres-rw.db.svc.cluster.local:5432`).
    Service { host: String, port: u16 },
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Access::Api { cluster, verb, group, resource, .. } if group.is_empty() => write!(f, "{verb} {resource} on {cluster}"),
            Access::Api { cluster, verb, group, resource, .. } => write!(f, "{verb} {group}/{resource} on {cluster}"),
            Access::Service { host, port } => write!(f, "connect {host}:{port}"),
        }
    }
}

/// Parses an API request into an [`Access`]: verb from the method (a GET without a name
/// is a list), group and resource from the path. `None` for paths that are not the API's.
pub fn api_access(cluster: &str, method: &str, path: &str) -> Option<Access> {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let watch = query.split('&').any(|p| p == "watch=true" || p == "watch=1");
    let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|p| !p.is_empty()).collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return Some(Access::Api { cluster: cluster.into(), verb: verb(method, true), group: String::new(), resource: format!("/{}", parts.join("/")), namespace: None, object: None }),
    };
    let (ns, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(*ns), rest),
        other => (None, other),
    };
    let object = match rest {
        [_resource, name, ..] => Some(ns.map_or(name.to_string(), |ns| format!("{ns}/{name}"))),
        _ => None,
    };
    let (resource, named) = match rest {
        [] => return Some(Access::Api { cluster: cluster.into(), verb: verb(method, true), group: group.into(), resource: "(discovery)".into(), namespace: None, object: None }),
        [resource] => (resource.to_string(), false),
        [resource, _name] => (resource.to_string(), true),
        [resource, _name, sub, ..] => (format!("{resource}/{sub}"), true),
    };
    let verb = match () {
        _ if watch => "watch".to_string(),
        // The WebSocket upgrade is a GET, but the API server authorizes a command in a
        // container as `create` (AuthorizePodWebsocketUpgradeCreatePermission).
        _ if matches!(resource.as_str(), "pods/exec" | "pods/attach" | "pods/portforward") => "create".to_string(),
        _ => verb(method, named),
    };
    Some(Access::Api { cluster: cluster.into(), verb, group: group.into(), resource, namespace: ns.map(str::to_string), object })
}

fn verb(method: &str, named: bool) -> String {
    match (method, named) {
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", _) => "delete",
        (other, _) => return other.to_ascii_lowercase(),
    }
    .to_string()
}

/// Every access of one unit, in order of first use, and how many API requests each took.
///
/// ```
/// use platform_acceptance::cluster::access::{api_access, AccessLog};
/// let log = AccessLog::default();
/// for _ in 0..3 {
///     log.record(api_access("infra", "GET", "/api/v1/nodes").unwrap());
/// }
/// assert_eq!(log.entries().len(), 1);
/// assert_eq!(log.requests().get("list nodes on infra"), Some(&3));
/// ```
#[derive(Debug, Clone, Default)]
pub struct AccessLog {
    entries: Arc<Mutex<Vec<Access>>>,
    requests: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl AccessLog {
    /// A request sent, or a name looked up: noted and, for API requests, counted.
    pub fn record(&self, access: Access) {
        self.count(&access);
        self.note(access);
    }

    /// Something the check read, whether or not a request went out for it (the run's read
    /// cache may have answered it, see [`super::cache`]).
    pub fn note(&self, access: Access) {
        let mut entries = self.entries.lock().expect("access log lock");
        if !entries.contains(&access) {
            entries.push(access);
        }
    }

    /// An API request that went out to the cluster.
    pub fn count(&self, access: &Access) {
        if matches!(access, Access::Api { .. }) {
            *self.requests.lock().expect("access log lock").entry(access.to_string()).or_default() += 1;
        }
    }

    pub fn entries(&self) -> Vec<Access> {
        self.entries.lock().expect("access log lock").clone()
    }

    /// API requests sent, by access (`list nodes on infra` → 3), retries included.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.requests.lock().expect("access log lock").clone()
    }
}

/// How much of a verdict rests on the platform's own work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BasisKind {
    /// Status, data or answers a stand-in wrote in place of the component.
    StandIn,
    /// A real controller's work over simulated inputs (pods, nodes, applied manifests).
    RealOverSimulated,
    /// The real component's own work, or real traffic.
    Real,
}

impl BasisKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BasisKind::Real => "real",
            BasisKind::RealOverSimulated => "real-over-simulated",
            BasisKind::StandIn => "stand-in",
        }
    }
}

/// What a verdict rests on: the weakest of its inputs, and the stand-ins it read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Basis {
    pub kind: BasisKind,
    /// Which stand-ins the check read (empty unless `kind` is `stand-in`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stand_in: Vec<String>,
}

impl Basis {
    /// The weakest of the inputs' bases; `Real` when there were none.
    ///
    /// ```
    /// use platform_acceptance::cluster::access::{Basis, BasisKind};
    /// let b = Basis::weakest([(BasisKind::Real, None), (BasisKind::StandIn, Some("flux")), (BasisKind::RealOverSimulated, None)]);
    /// assert_eq!(b.kind, BasisKind::StandIn);
    /// assert_eq!(b.stand_in, vec!["flux".to_string()]);
    /// assert_eq!(b.to_string(), "stand-in (flux)");
    /// ```
    pub fn weakest<'a>(inputs: impl IntoIterator<Item = (BasisKind, Option<&'a str>)>) -> Basis {
        let mut kind = BasisKind::Real;
        let mut names = BTreeSet::new();
        for (k, name) in inputs {
            kind = kind.min(k);
            if let (BasisKind::StandIn, Some(n)) = (k, name) {
                names.insert(n.to_string());
            }
        }
        Basis { kind, stand_in: if kind == BasisKind::StandIn { names.into_iter().collect() } else { vec![] } }
    }
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.stand_in.is_empty() { f.write_str(self.kind.as_str()) } else { write!(f, "{} ({})", self.kind.as_str(), self.stand_in.join(", ")) }
    }
}

/// Judges what a unit's accesses rest on, and which criteria the target cannot prove at all.
pub trait Provenance: Send + Sync {
    fn basis(&self, accesses: &[Access]) -> Basis;

    /// Criteria (by id) this target cannot prove, with the reason; such units are skipped.
    fn not_provable(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    /// Short name for reports: "real clusters", "the local simulation".
    fn describe(&self) -> &str;
}

/// Real clusters: every answer is the platform's own.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealClusters;

impl Provenance for RealClusters {
    fn basis(&self, _: &[Access]) -> Basis {
        Basis { kind: BasisKind::Real, stand_in: vec![] }
    }

    fn describe(&self) -> &str {
        "real clusters"
    }
}

/// An API client that records each request into a log, then sends it through `inner`.
#[derive(Clone)]
struct Recording {
    inner: kube::Client,
    cluster: String,
    log: AccessLog,
    /// When false, every request but a read is refused here, before it leaves the process.
    writable: bool,
    /// When false, `pods/exec`, `attach` and `portforward` are refused here (the check did
    /// not declare that it runs commands in containers: [`crate::check::Check::execs`]).
    exec: bool,
    /// The run's read cache and how new this unit's answers must be; `None`: every read is sent.
    reads: Option<(Arc<RunCache>, Freshness)>,
}

impl tower::Service<http::Request<kube::client::Body>> for Recording {
    type Response = http::Response<kube::client::Body>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<kube::client::Body>) -> Self::Future {
        let access = api_access(&self.cluster, req.method().as_str(), req.uri().path_and_query().map_or(req.uri().path(), |p| p.as_str()));
        if let Some(a) = &access {
            self.log.note(a.clone());
        }
        let read = matches!(*req.method(), http::Method::GET | http::Method::HEAD | http::Method::OPTIONS);
        if !self.exec && is_exec(req.uri().path()) {
            let what = access.map(|a| a.to_string()).unwrap_or_else(|| req.uri().path().to_string());
            let mut status = kube::core::Status::failure(&format!("{what} refused: the check does not declare that it runs commands in containers (Check::execs)"), "Forbidden");
            status.code = 403;
            return Box::pin(async move { Err(kube::Error::Api(status.boxed())) });
        }
        if !self.writable && !read {
            let what = access.map(|a| a.to_string()).unwrap_or_else(|| format!("{} {}", req.method(), req.uri().path()));
            let mut status = kube::core::Status::failure(&format!("{what} refused: this run does not allow writes (give --allow-writes)"), "Forbidden");
            status.code = 403;
            return Box::pin(async move { Err(kube::Error::Api(status.boxed())) });
        }
        let (inner, log, cluster) = (self.inner.clone(), self.log.clone(), self.cluster.clone());
        // Metadata-only and table reads (`Accept: ...;as=PartialObjectMetadata`) are sent as they are.
        let whole = !req.headers().get(http::header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("as="));
        let cached = self.reads.clone().filter(|_| whole).zip(classify(req.method().as_str(), req.uri().path(), req.uri().query()));
        Box::pin(async move {
            if let Some(((cache, freshness), read)) = cached
                && let Some(answer) = cache.answer(&cluster, &inner, &read, &freshness, &log).await
            {
                return Ok(answer);
            }
            if let Some(a) = &access {
                log.count(a);
            }
            inner.send(req).await
        })
    }
}

fn recording(client: &kube::Client, cluster: &str, log: &AccessLog, writable: bool, exec: bool, reads: Option<&(Arc<RunCache>, Freshness)>) -> kube::Client {
    let ns = client.default_namespace().to_string();
    kube::Client::new(Recording { inner: client.clone(), cluster: cluster.to_string(), log: log.clone(), writable, exec, reads: reads.cloned() }, ns)
}

/// A request into a running container: `pods/<name>/exec`, `attach` or `portforward`.
fn is_exec(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    matches!(parts.as_slice(), [.., "pods", _, "exec" | "attach" | "portforward"])
}

/// A resolver that records each lookup, then asks `inner`.
struct RecordingResolver {
    inner: super::resolve::Resolver,
    log: AccessLog,
}

impl Resolve for RecordingResolver {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, Result<Vec<SocketAddr>, super::resolve::LookupError>> {
        self.log.record(Access::Service { host: host.trim_end_matches('.').to_ascii_lowercase(), port });
        self.inner.lookup(host, port)
    }

    fn lookup_in<'a>(&'a self, cluster: &'a str, host: &'a str, port: u16) -> BoxFuture<'a, Result<Vec<SocketAddr>, super::resolve::LookupError>> {
        self.log.record(Access::Service { host: host.trim_end_matches('.').to_ascii_lowercase(), port });
        self.inner.lookup_in(cluster, host, port)
    }

    fn describe(&self) -> &str {
        self.inner.describe()
    }

    fn addresses<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<std::net::IpAddr>, super::resolve::LookupError>> {
        self.log.record(Access::Service { host: host.trim_end_matches('.').to_ascii_lowercase(), port: 53 });
        self.inner.addresses(host)
    }

    fn writes(&self) -> bool {
        self.inner.writes()
    }

    fn relay_image(&self) -> Option<&str> {
        self.inner.relay_image()
    }
}

impl Target {
    /// This target with every API request and name lookup recorded into `log`; `cluster`
    /// names this target's own cluster (peers are recorded under their names). Unless the
    /// target is writable, its clients refuse every write. With `reads`, reads are answered
    /// from the run's cache ([`super::cache`]) as new as the [`Freshness`] asks. Unless
    /// `exec`, its clients refuse `pods/exec` (and `attach`, `portforward`).
    pub fn recorded(&self, cluster: &str, log: &AccessLog, exec: bool, reads: Option<&(Arc<RunCache>, Freshness)>) -> Target {
        let client = |c: &kube::Client, name: &str| recording(c, name, log, self.writable, exec, reads);
        Target {
            client: client(&self.client, cluster),
            context: self.context.clone(),
            peers: Arc::new(self.peers.iter().map(|(name, c)| (name.clone(), client(c, name))).collect()),
            resolver: Arc::new(RecordingResolver { inner: self.resolver.clone(), log: log.clone() }),
            provenance: self.provenance.clone(),
            writable: self.writable,
        }
    }
}
