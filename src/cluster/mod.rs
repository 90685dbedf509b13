//! Live cluster access: one [`Target`] per cluster from a kubeconfig, name resolution
//! for data-plane traffic ([`resolve`]), and small read-only lookups the checks share
//! ([`objects`], [`nodes`], [`pods`]: finished pods judged by their owner).
//!
//! ```
//! use std::collections::BTreeMap;
//! use platform_acceptance::cluster::parse_overrides;
//! let clusters = vec!["apps".to_string(), "infra".to_string()];
//! let o = parse_overrides(&["infra=admin@infra".into()], &clusters).unwrap();
//! assert_eq!(o, BTreeMap::from([("infra".to_string(), "admin@infra".to_string())]));
//! assert!(parse_overrides(&["edge=x".into()], &clusters).is_err());
//! ```

pub mod access;
pub mod discovery;
pub mod lease;
pub mod nodes;
pub mod objects;
pub mod pods;
pub mod resolve;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::outcome::Outcome;
use resolve::{Resolver, SystemDns};

/// A live cluster the checks can reach.
#[derive(Clone)]
pub struct Target {
    pub client: kube::Client,
    /// The kubeconfig context used, for messages.
    pub context: String,
    /// Every cluster's client by cluster name, for cross-cluster criteria.
    pub peers: Arc<BTreeMap<String, kube::Client>>,
    /// How in-cluster service names are reached from here.
    pub resolver: Resolver,
    /// What this target's answers rest on (real clusters, or a simulation's stand-ins).
    pub provenance: Arc<dyn access::Provenance>,
    /// Checks may create objects here (`--allow-writes`; the simulation always). When false,
    /// the runner skips checks that declare writes and refuses any other write request.
    pub writable: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("cannot read kubeconfig {path}: {message}")]
    Kubeconfig { path: String, message: String },
    #[error("kubeconfig {path} has no context {context:?} for cluster {cluster} (contexts: {known}); use --context {cluster}=CONTEXT")]
    NoContext { path: String, cluster: String, context: String, known: String },
    #[error("bad --context {0:?}: expected CLUSTER=CONTEXT")]
    BadOverride(String),
    #[error("--context names cluster {0:?}, which the repository does not define (clusters: {1})")]
    UnknownCluster(String, String),
    #[error("cannot build a client for context {context:?}: {message}")]
    Client { context: String, message: String },
}

/// Parses `--context CLUSTER=CONTEXT` flags.
pub fn parse_overrides(raw: &[String], clusters: &[String]) -> Result<BTreeMap<String, String>, TargetError> {
    let mut out = BTreeMap::new();
    for r in raw {
        let (cluster, context) = r.split_once('=').filter(|(a, b)| !a.is_empty() && !b.is_empty()).ok_or_else(|| TargetError::BadOverride(r.clone()))?;
        if !clusters.iter().any(|c| c == cluster) {
            return Err(TargetError::UnknownCluster(cluster.into(), clusters.join(", ")));
        }
        out.insert(cluster.to_string(), context.to_string());
    }
    Ok(out)
}

/// One client per cluster; the context defaults to the cluster's name. No API call is made
/// here: an unreachable cluster shows as Error outcomes of its checks, not as a setup failure.
pub async fn targets(kubeconfig: &Path, clusters: &[String], overrides: &BTreeMap<String, String>) -> Result<BTreeMap<String, Target>, TargetError> {
    let path = kubeconfig.display().to_string();
    let kc = Kubeconfig::read_from(kubeconfig).map_err(|e| TargetError::Kubeconfig { path: path.clone(), message: e.to_string() })?;
    let known: Vec<String> = kc.contexts.iter().map(|c| c.name.clone()).collect();
    let mut clients = BTreeMap::new();
    for cluster in clusters {
        let context = overrides.get(cluster).cloned().unwrap_or_else(|| cluster.clone());
        if !known.contains(&context) {
            return Err(TargetError::NoContext { path, cluster: cluster.clone(), context, known: known.join(", ") });
        }
        let opts = KubeConfigOptions { context: Some(context.clone()), ..Default::default() };
        let config = kube::Config::from_custom_kubeconfig(kc.clone(), &opts)
            .await
            .map_err(|e| TargetError::Client { context: context.clone(), message: e.to_string() })?;
        let client = kube::Client::try_from(config).map_err(|e| TargetError::Client { context: context.clone(), message: e.to_string() })?;
        clients.insert(cluster.clone(), (context, client));
    }
    let peers: Arc<BTreeMap<String, kube::Client>> = Arc::new(clients.iter().map(|(k, (_, c))| (k.clone(), c.clone())).collect());
    Ok(clients
        .into_iter()
        .map(|(cluster, (context, client))| (cluster, Target { client, context, peers: peers.clone(), resolver: Arc::new(SystemDns), provenance: Arc::new(access::RealClusters), writable: false }))
        .collect())
}

/// A kube error as a check outcome: unreachable or forbidden is Error (could not evaluate).
pub fn api_error(what: &str, e: kube::Error) -> Outcome {
    let reason = match &e {
        kube::Error::Api(s) if s.code == 403 => format!("forbidden: {}", s.message),
        kube::Error::Api(s) => format!("API error {}: {}", s.code, s.message),
        other => format!("unreachable: {other}"),
    };
    Outcome::error(format!("{what}: {reason}"))
}
