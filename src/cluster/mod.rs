//! Live cluster access: one [`Target`] per cluster from a kubeconfig, how data-plane
//! traffic reaches services ([`resolve`]; by default through a relay pod per cluster,
//! [`relay`]; cluster names and DNS questions, [`dns`]), and small read-only lookups the checks share
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
pub mod cache;
pub mod discovery;
pub mod dns;
pub mod exec;
mod impersonate;
pub mod rbac;
pub mod relay;
#[cfg(test)]
pub(crate) mod fake;
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
    #[error("kubeconfig {path}, context {context:?}: {message}")]
    Credentials { path: String, context: String, message: String },
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
        let dir = kubeconfig.parent().unwrap_or(Path::new("."));
        credentials_usable(&kc, &context, dir).map_err(|message| TargetError::Credentials { path: path.clone(), context: context.clone(), message })?;
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

/// Credentials of a context that would fail every request, found before the run: an exec
/// plugin that is not installed, a client certificate file that is missing, a client
/// certificate that has expired or is not valid yet. Anything else is left to the client.
fn credentials_usable(kc: &Kubeconfig, context: &str, kubeconfig_dir: &Path) -> Result<(), String> {
    use base64::Engine as _;
    let user = kc.contexts.iter().find(|c| c.name == context).and_then(|c| c.context.as_ref()).and_then(|c| c.user.as_deref());
    let Some(user) = user else { return Ok(()) };
    let Some(auth) = kc.auth_infos.iter().find(|a| a.name == user).and_then(|a| a.auth_info.as_ref()) else { return Ok(()) };
    if let Some(command) = auth.exec.as_ref().and_then(|e| e.command.as_deref())
        && !executable_exists(command, kubeconfig_dir)
    {
        let hint = auth.exec.as_ref().and_then(|e| e.install_hint.as_deref()).map(|h| format!(" ({})", h.split_whitespace().collect::<Vec<_>>().join(" "))).unwrap_or_default();
        return Err(format!("exec plugin {command:?} of user {user} is not installed (not found on PATH){hint}"));
    }
    let pem = match (&auth.client_certificate_data, &auth.client_certificate) {
        (Some(data), _) => match base64::engine::general_purpose::STANDARD.decode(data.trim()) {
            Ok(bytes) => bytes,
            Err(_) => return Err(format!("client-certificate-data of user {user} is not base64")),
        },
        (None, Some(file)) => {
            let file = kubeconfig_dir.join(file);
            std::fs::read(&file).map_err(|e| format!("cannot read client certificate {} of user {user}: {e}", file.display()))?
        }
        (None, None) => return Ok(()),
    };
    // A certificate that does not parse is the client's to report.
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(&pem) else { return Ok(()) };
    let Ok(cert) = pem.parse_x509() else { return Ok(()) };
    let validity = cert.validity();
    let now = x509_parser::time::ASN1Time::now();
    if validity.not_after < now {
        return Err(format!("client certificate of user {user} expired on {} (renew it, or use a token)", validity.not_after));
    }
    if validity.not_before > now {
        return Err(format!("client certificate of user {user} is not valid before {}", validity.not_before));
    }
    Ok(())
}

/// An exec plugin command as the client would run it: a path (relative to the kubeconfig) or a name on PATH.
fn executable_exists(command: &str, kubeconfig_dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let runnable = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if command.contains('/') {
        return runnable(&kubeconfig_dir.join(command));
    }
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| runnable(&dir.join(command))))
}

/// The access an RBAC denial names, as [`rbac::RbacAccess`] writes it: from the API
/// server's `... cannot list resource "daemonsets" in API group "apps" at the cluster scope`,
/// `list apps/daemonsets`.
///
/// ```
/// use platform_acceptance::cluster::needs;
/// let m = r#"daemonsets.apps is forbidden: User "system:serviceaccount:pa:harness" cannot list resource "daemonsets" in API group "apps" at the cluster scope"#;
/// assert_eq!(needs(m).as_deref(), Some("list apps/daemonsets"));
/// let m = r#"pods "cilium-x" is forbidden: User "u" cannot create resource "pods/exec" in API group "" in the namespace "kube-system""#;
/// assert_eq!(needs(m).as_deref(), Some("create pods/exec"));
/// assert_eq!(needs("something else"), None);
/// ```
pub fn needs(message: &str) -> Option<String> {
    let rest = &message[message.find(" cannot ")? + " cannot ".len()..];
    let (verb, rest) = rest.split_once(' ')?;
    let quoted = |text: &str, after: &str| -> Option<String> {
        let start = text.find(after)? + after.len();
        let body = &text[start..];
        Some(body[..body.find('"')?].to_string())
    };
    let resource = quoted(rest, "resource \"")?;
    let group = quoted(rest, "in API group \"").unwrap_or_default();
    Some(rbac::RbacAccess { verb: verb.into(), group, resource, round_trip: false }.to_string())
}

/// A kube error as a check outcome: unreachable or forbidden is Error (could not evaluate).
pub fn api_error(what: &str, e: kube::Error) -> Outcome {
    let reason = match &e {
        kube::Error::Api(s) if s.code == 403 => match needs(&s.message) {
            Some(needs) => format!("forbidden: needs {needs}: {}", s.message),
            None => format!("forbidden: {}", s.message),
        },
        kube::Error::Api(s) => format!("API error {}: {}", s.code, s.message),
        other => format!("unreachable: {}", crate::errline::kube(other)),
    };
    Outcome::error(format!("{what}: {reason}"))
}
