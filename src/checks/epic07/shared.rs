//! Helpers for the EPIC-7..10 and Definition-of-Done repository checks: finding
//! rendered objects across clusters, following Secret references to the
//! ExternalSecrets that produce them, resolving service host names to the CNPG /
//! Dragonfly instance behind them, Keycloak issuers, kustomize reachability, cron.
//!
//! Kept next to the checks that use them (not in `checks::support`) so parallel
//! work on other epics never edits the same file; the general ones (reachability,
//! cron, ExternalSecret lookups) could move to `support.rs` later.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::check::{CheckContext, Finding, Outcome};
use crate::repo::{scalar_text, GitopsRepo, Rendered, RenderedObject};

// ---------------------------------------------------------------------------
// Rendered objects
// ---------------------------------------------------------------------------

/// The API group of an object (`postgresql.cnpg.io` of `postgresql.cnpg.io/v1`, `` for `v1`).
pub fn group(o: &RenderedObject) -> &str {
    o.api_version().rsplit_once('/').map(|(g, _)| g).unwrap_or("")
}

/// Objects of `kind` in API group `group` (any version).
pub fn objects<'a>(r: &'a Rendered, grp: &str, kind: &str) -> Vec<&'a RenderedObject> {
    r.objects.iter().filter(|o| o.kind() == kind && group(o) == grp).collect()
}

/// `Kind/name` in `namespace`.
pub fn find<'a>(r: &'a Rendered, grp: &str, kind: &str, name: &str, ns: Option<&str>) -> Option<&'a RenderedObject> {
    objects(r, grp, kind).into_iter().find(|o| o.name() == name && (ns.is_none() || o.namespace() == ns))
}

/// Every cluster's rendering, in cluster order.
pub fn renders(repo: &GitopsRepo) -> Result<Vec<(String, Arc<Rendered>)>, Outcome> {
    repo.clusters().iter().map(|c| repo.render(c).map(|r| (c.clone(), r)).map_err(Outcome::error)).collect()
}

/// The clusters a check looks at: the evaluated one, or every cluster for a once-only check.
pub fn scope(ctx: &CheckContext, repo: &GitopsRepo) -> Vec<String> {
    if repo.clusters().contains(&ctx.cluster) { vec![ctx.cluster.clone()] } else { repo.clusters().to_vec() }
}

/// Rendered objects that come from one file (as the planning document writes the path).
pub fn from_file<'a>(repo: &GitopsRepo, r: &'a Rendered, doc_path: &str) -> Vec<&'a RenderedObject> {
    let Some(path) = repo.resolve(doc_path) else { return vec![] };
    r.objects.iter().filter(|o| o.file == path).collect()
}

/// A key that may contain `/` or `.` (annotation names), under an object pointer.
pub fn key_at<'a>(v: &'a Value, pointer: &str, key: &str) -> Option<&'a Value> {
    v.pointer(pointer).and_then(|m| m.get(key))
}

pub const GLOBAL_ANNOTATION: &str = "service.cilium.io/global";

/// Letters and digits only, lower-cased: `CloudNativePG` ~ `cloudnative-pg`.
pub fn squash(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

// ---------------------------------------------------------------------------
// HelmReleases
// ---------------------------------------------------------------------------

pub const HELM_GROUP: &str = "helm.toolkit.fluxcd.io";

/// Chart name: `spec.chart.spec.chart`, or the OCIRepository named by `spec.chartRef`.
pub fn chart_name(hr: &RenderedObject) -> String {
    hr.str("/spec/chart/spec/chart").or_else(|| hr.str("/spec/chartRef/name")).unwrap_or("").to_string()
}

/// Resolves the HelmRelease's chart source among the rendered objects.
pub fn chart_source(r: &Rendered, hr: &RenderedObject) -> Result<String, Finding> {
    let (kind, name, ns) = if let Some(name) = hr.str("/spec/chart/spec/sourceRef/name") {
        (hr.str("/spec/chart/spec/sourceRef/kind").unwrap_or("HelmRepository"), name, hr.str("/spec/chart/spec/sourceRef/namespace"))
    } else if let Some(name) = hr.str("/spec/chartRef/name") {
        (hr.str("/spec/chartRef/kind").unwrap_or("OCIRepository"), name, hr.str("/spec/chartRef/namespace"))
    } else {
        return Err(Finding::new(hr.describe(), "spec.chart.spec.sourceRef or spec.chartRef", "neither set"));
    };
    let ns = ns.or(hr.namespace());
    match r.objects.iter().find(|o| o.kind() == kind && o.name() == name && o.namespace() == ns && group(o) == "source.toolkit.fluxcd.io") {
        Some(src) => Ok(format!("{} {} (chart {:?} from {} {}/{})", hr.api_version(), hr.describe(), chart_name(hr), kind, ns.unwrap_or(""), src.name())),
        None => Err(Finding::new(
            format!("{} chart source", hr.describe()),
            format!("{kind} {}/{name} rendered on cluster {}", ns.unwrap_or(""), r.cluster),
            "not found",
        )),
    }
}

/// `values` merged with `valuesFrom` ConfigMaps (rendered), the way helm-controller merges them.
pub fn helm_values(r: &Rendered, hr: &RenderedObject) -> Value {
    let mut merged = Value::Object(Default::default());
    for vf in hr.get("/spec/valuesFrom").and_then(Value::as_array).into_iter().flatten() {
        if vf.get("kind").and_then(Value::as_str) != Some("ConfigMap") {
            continue;
        }
        let name = vf.get("name").and_then(Value::as_str).unwrap_or("");
        let key = vf.get("valuesKey").and_then(Value::as_str).unwrap_or("values.yaml");
        let text = find(r, "", "ConfigMap", name, hr.namespace()).and_then(|cm| key_at(&cm.value, "/data", key)).and_then(Value::as_str);
        if let Some(v) = text.and_then(|t| serde_yaml_ng::from_str::<Value>(t).ok()) {
            merge(&mut merged, &v);
        }
    }
    if let Some(v) = hr.get("/spec/values") {
        merge(&mut merged, v);
    }
    merged
}

fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

// ---------------------------------------------------------------------------
// ExternalSecrets
// ---------------------------------------------------------------------------

pub const ES_GROUP: &str = "external-secrets.io";

/// The ExternalSecret that produces Secret `secret` in `ns`.
pub fn external_secret_for<'a>(r: &'a Rendered, ns: Option<&str>, secret: &str) -> Option<&'a RenderedObject> {
    objects(r, ES_GROUP, "ExternalSecret")
        .into_iter()
        .find(|es| es.namespace() == ns && es.str("/spec/target/name").unwrap_or(es.name()) == secret)
}

/// A key of the Secret an ExternalSecret renders from its template (`spec.target.template.data`).
pub fn template_value<'a>(es: &'a RenderedObject, key: &str) -> Option<&'a str> {
    key_at(&es.value, "/spec/target/template/data", key).and_then(Value::as_str)
}

/// 1Password (or other) item keys an ExternalSecret reads.
pub fn remote_keys(es: &RenderedObject) -> BTreeSet<String> {
    let data = es.get("/spec/data").and_then(Value::as_array).into_iter().flatten().filter_map(|d| d.pointer("/remoteRef/key"));
    let from = es.get("/spec/dataFrom").and_then(Value::as_array).into_iter().flatten().filter_map(|d| d.pointer("/extract/key"));
    data.chain(from).filter_map(Value::as_str).map(String::from).collect()
}

/// The provider (`onepassword`, `vault`, ...) of the store an ExternalSecret reads, resolved in the rendering.
pub fn store_provider(r: &Rendered, es: &RenderedObject) -> Result<(String, String), Finding> {
    let kind = es.str("/spec/secretStoreRef/kind").unwrap_or("SecretStore");
    let name = es.str("/spec/secretStoreRef/name").unwrap_or("");
    let ns = if kind == "ClusterSecretStore" { None } else { es.namespace() };
    let store = find(r, ES_GROUP, kind, name, ns)
        .ok_or_else(|| Finding::new(format!("{} secretStoreRef", es.describe()), format!("{kind} {name} rendered on cluster {}", r.cluster), "not found"))?;
    let provider = store.get("/spec/provider").and_then(Value::as_object).and_then(|m| m.keys().next().cloned()).unwrap_or_default();
    Ok((format!("{kind}/{name}"), provider))
}

/// Fails unless Secret `secret` in `ns` is produced by an ExternalSecret.
pub fn secret_from_external_secret<'a>(r: &'a Rendered, ns: Option<&str>, secret: &str, user: &str) -> Result<&'a RenderedObject, Finding> {
    external_secret_for(r, ns, secret).ok_or_else(|| {
        Finding::new(
            format!("{user}: Secret {}/{secret}", ns.unwrap_or("")),
            "produced by an ExternalSecret (target.name) in the same namespace",
            "no ExternalSecret produces it",
        )
    })
}

// ---------------------------------------------------------------------------
// Variables
// ---------------------------------------------------------------------------

/// The MinIO S3 endpoint the cluster declares (`MINIO_ENDPOINT`), normalised.
pub fn minio_endpoint(repo: &GitopsRepo, cluster: &str) -> Result<String, Outcome> {
    let vars = repo.variables(cluster).map_err(Outcome::error)?;
    vars.require("MINIO_ENDPOINT").map(normalize_url)
}

pub fn normalize_url(u: &str) -> String {
    u.trim().trim_end_matches('/').to_ascii_lowercase()
}

// ---------------------------------------------------------------------------
// Services behind host names
// ---------------------------------------------------------------------------

/// `svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`, `svc.ns.svc.clusterset.local`.
#[derive(Debug, Clone)]
pub struct Host {
    pub service: String,
    pub namespace: Option<String>,
    pub clusterset: bool,
}

pub fn parse_host(host: &str) -> Host {
    let host = host.trim().trim_end_matches('.');
    let (base, clusterset) = if let Some(b) = host.strip_suffix(".svc.clusterset.local") {
        (b, true)
    } else if let Some(b) = host.strip_suffix(".svc.cluster.local") {
        (b, false)
    } else {
        (host.strip_suffix(".svc").unwrap_or(host), false)
    };
    let mut parts = base.splitn(2, '.');
    let service = parts.next().unwrap_or("").to_string();
    Host { service, namespace: parts.next().map(String::from), clusterset }
}

/// Where a consumer's host name lands.
#[derive(Debug, Clone)]
pub struct Landing {
    /// Cluster that runs the instance.
    pub cluster: String,
    /// The instance (`Cluster/postgres-shared`, `Dragonfly/dragonfly`).
    pub instance: String,
    pub instance_name: String,
    pub namespace: String,
    /// `same cluster`, `MCS ServiceExport (clusterset.local)`, `Cilium global service`.
    pub via: String,
}

/// Resolves `host` used from `consumer` (namespace `consumer_ns`) to an instance.
/// `owner_of(rendering, namespace, service)` names the instance a service belongs to.
pub fn resolve_host(
    repo: &GitopsRepo,
    consumer: &str,
    consumer_ns: Option<&str>,
    host: &str,
    what: &str,
    owner_of: impl Fn(&Rendered, &str, &str) -> Option<(String, String)>,
) -> Result<Landing, String> {
    let h = parse_host(host);
    let ns = h.namespace.clone().or(consumer_ns.map(String::from)).unwrap_or_default();
    let rs = renders(repo).map_err(|o| o.summary())?;
    let owner = rs.iter().find_map(|(c, r)| owner_of(r, &ns, &h.service).map(|(inst, name)| (c.clone(), r.clone(), inst, name)));
    let Some((cluster, r, instance, instance_name)) = owner else {
        return Err(format!("{host:?}: service {}/{} is not a service of any {what} in the repository", ns, h.service));
    };
    let landing = |via: &str| Landing {
        cluster: cluster.clone(),
        instance: instance.clone(),
        instance_name: instance_name.clone(),
        namespace: ns.clone(),
        via: via.into(),
    };
    if h.clusterset {
        return if find(&r, "multicluster.x-k8s.io", "ServiceExport", &h.service, Some(&ns)).is_some() {
            Ok(landing("MCS ServiceExport (clusterset.local)"))
        } else {
            Err(format!("{host:?}: no ServiceExport {ns}/{} on cluster {cluster}, so the clusterset.local name does not resolve", h.service))
        };
    }
    if cluster == consumer {
        return Ok(landing("same cluster"));
    }
    let global = find(&r, "", "Service", &h.service, Some(&ns))
        .and_then(|s| key_at(&s.value, "/metadata/annotations", GLOBAL_ANNOTATION))
        .map(scalar_text)
        .as_deref()
        == Some("true");
    let local_twin = repo.render(consumer).ok().and_then(|cr| find(&cr, "", "Service", &h.service, Some(&ns)).map(|_| ()));
    if global && local_twin.is_some() {
        Ok(landing("Cilium global service"))
    } else {
        Err(format!(
            "{host:?}: a cluster-local name of {instance} on cluster {cluster}, not reachable from cluster {consumer} (needs <svc>.<ns>.svc.clusterset.local with a ServiceExport, or a Cilium global service present on both clusters)"
        ))
    }
}

pub const CNPG_GROUP: &str = "postgresql.cnpg.io";

/// The CNPG Cluster a service belongs to: `<c>-rw|-ro|-r`, or a Service selecting `cnpg.io/cluster: <c>`.
pub fn cnpg_owner(r: &Rendered, ns: &str, service: &str) -> Option<(String, String)> {
    objects(r, CNPG_GROUP, "Cluster").into_iter().filter(|c| c.namespace() == Some(ns)).find_map(|c| {
        let name = c.name();
        let default = ["rw", "ro", "r"].iter().any(|s| service == format!("{name}-{s}"));
        let selecting = find(r, "", "Service", service, Some(ns))
            .and_then(|s| key_at(&s.value, "/spec/selector", "cnpg.io/cluster"))
            .and_then(Value::as_str)
            == Some(name);
        (default || selecting).then(|| (format!("Cluster/{name} ({})", c.file.display()), name.to_string()))
    })
}

/// The Dragonfly instance a service belongs to (the operator names the Service after the CR).
pub fn dragonfly_owner(r: &Rendered, ns: &str, service: &str) -> Option<(String, String)> {
    objects(r, "dragonflydb.io", "Dragonfly")
        .into_iter()
        .find(|d| d.namespace() == Some(ns) && d.name() == service)
        .map(|d| (format!("Dragonfly/{} ({})", d.name(), d.file.display()), d.name().to_string()))
}

/// A CNPG `Database` named `db` on CNPG cluster `cluster` in `ns`, on rendering `r`.
pub fn cnpg_database<'a>(r: &'a Rendered, ns: &str, cluster: &str, db: &str) -> Option<&'a RenderedObject> {
    objects(r, CNPG_GROUP, "Database").into_iter().find(|d| {
        d.namespace() == Some(ns)
            && d.str("/spec/cluster/name") == Some(cluster)
            && d.str("/spec/name").unwrap_or(d.name()) == db
            && d.str("/spec/ensure").unwrap_or("present") == "present"
    })
}

/// Checks a PostgreSQL connection (`host`, `database`) used by `user` on cluster `consumer`:
/// the host lands on a CNPG Cluster that declares the database.
/// `home` restricts the cluster running the instance.
pub fn postgres_connection(
    repo: &GitopsRepo,
    consumer: &str,
    consumer_ns: Option<&str>,
    user: &str,
    host: Option<&str>,
    database: Option<&str>,
    home: Option<&str>,
) -> Outcome {
    let Some(host) = host.filter(|h| !h.is_empty()) else {
        return Outcome::fail(user, "a PostgreSQL host of the shared CNPG cluster", "no host configured");
    };
    let landing = match resolve_host(repo, consumer, consumer_ns, host, "CloudNativePG Cluster", cnpg_owner) {
        Ok(l) => l,
        Err(e) => return Outcome::fail(format!("{user} host"), "a service of the shared CloudNativePG cluster reachable from this cluster", e),
    };
    if let Some(home) = home.filter(|h| *h != landing.cluster) {
        return Outcome::fail(format!("{user} host"), format!("the shared PostgreSQL on cluster {home}"), format!("{host:?} is {} on cluster {}", landing.instance, landing.cluster));
    }
    let Some(db) = database.filter(|d| !d.is_empty()) else {
        return Outcome::fail(user, "a database name", "none configured");
    };
    let r = match repo.render(&landing.cluster) {
        Ok(r) => r,
        Err(e) => return Outcome::error(e),
    };
    match cnpg_database(&r, &landing.namespace, &landing.instance_name, db) {
        Some(d) => Outcome::pass(format!("{user} → {host} = {} on cluster {} via {}; database {db:?} declared by {}", landing.instance, landing.cluster, landing.via, d.describe())),
        None => Outcome::fail(
            format!("{user} database {db:?}"),
            format!("a CNPG Database {db:?} (ensure present) on {} in namespace {}", landing.instance, landing.namespace),
            "not declared",
        ),
    }
}

/// Checks a Redis connection to Dragonfly.
pub fn dragonfly_connection(repo: &GitopsRepo, consumer: &str, consumer_ns: Option<&str>, user: &str, addr: Option<&str>, mesh: bool) -> Outcome {
    let Some(addr) = addr.filter(|h| !h.is_empty()) else {
        return Outcome::fail(user, "a Redis host of the Dragonfly instance", "no host configured");
    };
    let (host, port) = match addr.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, Some(p)),
        _ => (addr, None),
    };
    match resolve_host(repo, consumer, consumer_ns, host, "Dragonfly instance", dragonfly_owner) {
        Ok(l) if mesh && l.via == "same cluster" => Outcome::fail(
            format!("{user} host"),
            "Dragonfly reached over ClusterMesh from another cluster",
            format!("{addr:?} is {} on the same cluster {}", l.instance, l.cluster),
        ),
        Ok(l) => Outcome::pass(format!("{user} → {addr} = {} on cluster {} via {}{}", l.instance, l.cluster, l.via, port.map(|p| format!(", port {p}")).unwrap_or_default())),
        Err(e) => Outcome::fail(format!("{user} host"), "the Dragonfly service reachable from this cluster (ClusterMesh)", e),
    }
}

// ---------------------------------------------------------------------------
// Keycloak / OIDC
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Issuer {
    pub url: String,
    pub clients: Vec<String>,
    pub source: String,
}

/// Issuer URLs `https://<Keycloak hostname>/realms/<realm>` of every realm import in the repository.
pub fn keycloak_issuers(repo: &GitopsRepo) -> Result<Vec<Issuer>, Outcome> {
    let mut out = vec![];
    for (cluster, r) in renders(repo)? {
        for kc in objects(&r, "k8s.keycloak.org", "Keycloak") {
            let Some(host) = kc.str("/spec/hostname/hostname") else { continue };
            let base = if host.contains("://") { host.to_string() } else { format!("https://{host}") };
            for ri in objects(&r, "k8s.keycloak.org", "KeycloakRealmImport") {
                if ri.namespace() != kc.namespace() || ri.str("/spec/keycloakCRName") != Some(kc.name()) {
                    continue;
                }
                let Some(realm) = ri.str("/spec/realm/realm") else { continue };
                let clients = ri
                    .get("/spec/realm/clients")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.get("clientId").and_then(Value::as_str))
                    .map(String::from)
                    .collect();
                out.push(Issuer {
                    url: normalize_url(&format!("{}/realms/{realm}", base.trim_end_matches('/'))),
                    clients,
                    source: format!("{} + {} on cluster {cluster}", kc.describe(), ri.describe()),
                });
            }
        }
    }
    Ok(out)
}

/// Passes when `issuer` is a Keycloak realm of the repository that has client `client`.
pub fn expect_keycloak_client(issuers: &[Issuer], object: &str, issuer: Option<&str>, client: Option<&str>) -> Outcome {
    let known = issuers.iter().map(|i| i.url.as_str()).collect::<Vec<_>>().join(", ");
    let Some(issuer) = issuer else {
        return Outcome::fail(object, format!("an OIDC issuer of the Keycloak realm ({known})"), "no issuer configured");
    };
    let Some(found) = issuers.iter().find(|i| i.url == normalize_url(issuer)) else {
        return Outcome::fail(format!("{object} issuer"), format!("a Keycloak realm issuer ({})", if known.is_empty() { "none in the repository" } else { &known }), format!("{issuer:?}"));
    };
    match client {
        Some(c) if found.clients.iter().any(|k| k == c) => Outcome::pass(format!("{object}: issuer {issuer} ({}), client {c:?}", found.source)),
        other => Outcome::fail(
            format!("{object} client id"),
            format!("one of the realm's clients [{}]", found.clients.join(", ")),
            other.map(|c| format!("{c:?}")).unwrap_or_else(|| "not set".into()),
        ),
    }
}

// ---------------------------------------------------------------------------
// Kustomize reachability
// ---------------------------------------------------------------------------

pub use crate::repo::normalize_path as normalize;

const KUSTOMIZE_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The kustomize config of a directory, if any.
pub fn kustomization_file(repo: &GitopsRepo, dir: &Path) -> Option<PathBuf> {
    KUSTOMIZE_FILES.iter().map(|f| dir.join(f)).find(|p| repo.root.join(p).is_file())
}

/// `resources` and `components` entries of a directory's kustomization, normalised against the directory.
pub fn kustomize_entries(repo: &GitopsRepo, dir: &Path) -> Vec<(String, PathBuf)> {
    let Some(file) = kustomization_file(repo, dir) else { return vec![] };
    let Some(doc) = repo.documents.iter().find(|d| d.file == file) else { return vec![] };
    ["resources", "components"]
        .iter()
        .flat_map(|k| doc.value.get(*k).and_then(Value::as_array).cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(String::from))
        .filter(|e| !e.contains("://") && !e.starts_with("github.com/"))
        .map(|e| {
            let p = normalize(&dir.join(&e));
            (e, p)
        })
        .collect()
}

/// Directories and files kustomize includes when building from `starts`.
#[derive(Debug, Default)]
pub struct Reach {
    pub dirs: BTreeSet<PathBuf>,
    pub files: BTreeSet<PathBuf>,
}

pub fn reach_from(repo: &GitopsRepo, starts: impl IntoIterator<Item = PathBuf>) -> Reach {
    let mut reach = Reach::default();
    let mut stack: Vec<PathBuf> = starts.into_iter().collect();
    while let Some(dir) = stack.pop() {
        if !repo.root.join(&dir).is_dir() || !reach.dirs.insert(dir.clone()) {
            continue;
        }
        if kustomization_file(repo, &dir).is_some() {
            for (_, target) in kustomize_entries(repo, &dir) {
                if repo.root.join(&target).is_dir() {
                    stack.push(target);
                } else if repo.root.join(&target).is_file() {
                    reach.files.insert(target);
                }
            }
        } else {
            // Flux generates a kustomization of everything below.
            for f in repo.files.iter().filter(|f| f.starts_with(&dir)) {
                reach.files.insert(f.clone());
                let mut p = f.parent();
                while let Some(d) = p {
                    if !d.starts_with(&dir) {
                        break;
                    }
                    reach.dirs.insert(d.to_path_buf());
                    p = d.parent();
                }
            }
        }
    }
    reach
}

/// What the cluster's Flux Kustomizations (entry and nested ones from this repository) build.
pub fn cluster_reach(repo: &GitopsRepo, cluster: &str) -> Result<Reach, Outcome> {
    let entry = repo.flux_kustomizations(cluster).map_err(Outcome::error)?;
    let own: BTreeSet<String> = entry.iter().map(|k| k.source_ref.clone()).collect();
    let rendered = repo.render(cluster).map_err(Outcome::error)?;
    let mut paths: Vec<PathBuf> = entry.iter().map(|k| normalize(Path::new(k.path.trim_start_matches("./")))).collect();
    for o in rendered.objects.iter().filter(|o| o.kind() == "Kustomization" && group(o) == "kustomize.toolkit.fluxcd.io") {
        let src = format!(
            "{}/{}/{}",
            o.str("/spec/sourceRef/kind").unwrap_or_default(),
            o.str("/spec/sourceRef/namespace").or(o.namespace()).unwrap_or_default(),
            o.str("/spec/sourceRef/name").unwrap_or_default()
        );
        if own.contains(&src) {
            paths.push(normalize(Path::new(o.str("/spec/path").unwrap_or("").trim_start_matches("./"))));
        }
    }
    Ok(reach_from(repo, paths))
}

// ---------------------------------------------------------------------------
// Cron
// ---------------------------------------------------------------------------

/// How often a cron schedule fires, per week, when that is well defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frequency {
    PerWeek(u64),
    /// Not a whole number of runs per week (day-of-month or month restricted).
    Calendar(String),
}

impl std::fmt::Display for Frequency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Frequency::PerWeek(1) => write!(f, "runs once a week"),
            Frequency::PerWeek(n) => write!(f, "runs {n} times a week"),
            Frequency::Calendar(s) => write!(f, "runs {s}"),
        }
    }
}

/// Expected runs per week for a frequency word of the planning document.
pub fn runs_per_week(word: &str) -> Option<u64> {
    match word.to_ascii_lowercase().as_str() {
        "hourly" => Some(168),
        "daily" | "nightly" => Some(7),
        "weekly" => Some(1),
        _ => None,
    }
}

/// Parses a 5-field cron expression (6 fields: seconds first), `@weekly`-style macros and `@every <dur>`.
pub fn cron_frequency(expr: &str) -> Result<Frequency, String> {
    let e = expr.trim();
    let macro_expr = match e {
        "@yearly" | "@annually" => Some("0 0 1 1 *"),
        "@monthly" => Some("0 0 1 * *"),
        "@weekly" => Some("0 0 * * 0"),
        "@daily" | "@midnight" => Some("0 0 * * *"),
        "@hourly" => Some("0 * * * *"),
        _ => None,
    };
    if let Some(m) = macro_expr {
        return cron_frequency(m);
    }
    if let Some(d) = e.strip_prefix("@every ") {
        let hours = every_hours(d.trim()).ok_or_else(|| format!("unparsable duration {d:?}"))?;
        return if hours > 0.0 && (168.0 / hours).fract() == 0.0 {
            Ok(Frequency::PerWeek((168.0 / hours) as u64))
        } else {
            Ok(Frequency::Calendar(format!("every {d}")))
        };
    }
    let fields: Vec<&str> = e.split_whitespace().collect();
    let (sec, rest) = match fields.len() {
        5 => (1, &fields[..]),
        6 => (field(fields[0], 0, 59, &[])?.len() as u64, &fields[1..]),
        n => return Err(format!("{n} fields (expected 5)")),
    };
    let min = field(rest[0], 0, 59, &[])?.len() as u64;
    let hour = field(rest[1], 0, 23, &[])?.len() as u64;
    let dom = rest[2];
    let month = rest[3];
    const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    let dow: BTreeSet<u32> = field(rest[4], 0, 7, &DAYS)?.into_iter().map(|d| d % 7).collect();
    field(dom, 1, 31, &[])?;
    const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
    field(month, 1, 12, &MONTHS)?;
    if month != "*" || (dom != "*" && dom != "?") {
        return Ok(Frequency::Calendar(format!("on day-of-month {dom:?}, month {month:?}")));
    }
    Ok(Frequency::PerWeek(sec * min * hour * dow.len() as u64))
}

fn every_hours(d: &str) -> Option<f64> {
    let (num, unit) = d.split_at(d.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = num.parse().ok()?;
    match unit {
        "h" => Some(n),
        "m" => Some(n / 60.0),
        "s" => Some(n / 3600.0),
        _ => None,
    }
}

fn field(f: &str, lo: u32, hi: u32, names: &[&str]) -> Result<BTreeSet<u32>, String> {
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u32 + if names.len() == 12 { 1 } else { 0 });
        }
        let v: u32 = s.parse().map_err(|_| format!("bad value {s:?} in {f:?}"))?;
        if v < lo || v > hi { Err(format!("{v} out of range {lo}-{hi} in {f:?}")) } else { Ok(v) }
    };
    let mut out = BTreeSet::new();
    for part in f.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().map_err(|_| format!("bad step in {f:?}"))?),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("zero step in {f:?}"));
        }
        let (a, b) = match range {
            "*" | "?" => (lo, hi),
            r => match r.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if part.contains('/') => (value(r)?, hi),
                None => (value(r)?, value(r)?),
            },
        };
        let mut v = a;
        while v <= b {
            out.insert(v);
            v += step;
        }
    }
    Ok(out)
}

/// `StorageClass` objects by name, on one rendering.
pub fn storage_classes(r: &Rendered) -> BTreeMap<String, String> {
    objects(r, "storage.k8s.io", "StorageClass").into_iter().map(|s| (s.name().to_string(), s.str("/provisioner").unwrap_or("").to_string())).collect()
}

// ---------------------------------------------------------------------------
// "manifests created" / "base HelmRelease created" / "config created"
// ---------------------------------------------------------------------------

/// Passes when every file exists (paths as the plan writes them).
pub fn files_present(repo: &GitopsRepo, paths: &[&str]) -> Outcome {
    crate::checks::support::files_exist(repo, paths)
}

/// A HelmRelease of `token` (name or chart) defined in `file` and rendered on `cluster`
/// with a chart source that exists there.
pub fn base_helmrelease(repo: &GitopsRepo, cluster: &str, file: &str, token: &str) -> Outcome {
    if repo.resolve(file).is_none() {
        return Outcome::fail(file, format!("a HelmRelease file for {token}"), "missing");
    }
    let docs = repo.documents_in(file);
    if !docs.iter().any(|d| d.kind() == "HelmRelease" && d.api_version().starts_with("helm.toolkit.fluxcd.io/")) {
        let kinds: Vec<String> = docs.iter().map(|d| format!("{} {}", d.api_version(), d.kind())).collect();
        return Outcome::fail(file, "a HelmRelease (helm.toolkit.fluxcd.io)", format!("[{}]", kinds.join(", ")));
    }
    let r = match repo.render(cluster) {
        Ok(r) => r,
        Err(e) => return Outcome::error(e),
    };
    let hrs: Vec<_> = from_file(repo, &r, file).into_iter().filter(|o| o.kind() == "HelmRelease").collect();
    if hrs.is_empty() {
        return Outcome::fail(file, format!("its HelmRelease rendered on cluster {cluster}"), "not included by any Flux Kustomization of the cluster");
    }
    let t = squash(token);
    let Some(hr) = hrs.iter().find(|h| squash(h.name()).contains(&t) || squash(&chart_name(h)).contains(&t)) else {
        let seen: Vec<String> = hrs.iter().map(|h| format!("{} (chart {})", h.describe(), chart_name(h))).collect();
        return Outcome::fail(file, format!("a HelmRelease of {token}"), seen.join(", "));
    };
    match chart_source(&r, hr) {
        Ok(ev) => Outcome::pass(format!("{ev}, rendered on {cluster} by {}", hr.applied_by)),
        Err(f) => Outcome::Fail { findings: vec![f] },
    }
}

/// What a component configuration must bring in.
pub enum Provides<'a> {
    /// The shared base directory (`bases/velero`) and its HelmRelease(s).
    Base(&'a str),
    /// A HelmRelease of this chart (`CloudNativePG` ~ `cloudnative-pg`).
    Chart(&'a str),
}

/// A component's kustomization exists, is built by one of the cluster's Flux
/// Kustomizations, and brings in `provides`, rendered on the cluster.
pub fn component_config(repo: &GitopsRepo, cluster: &str, config: &str, provides: Provides<'_>) -> Outcome {
    let Some(file) = repo.resolve(config) else {
        return Outcome::fail(config, "a kustomization.yaml", "missing");
    };
    if !repo.documents_in(config).iter().any(|d| d.kind() == "Kustomization" && d.api_version().starts_with("kustomize.config.k8s.io/")) {
        return Outcome::fail(config, "a kustomize Kustomization (kustomize.config.k8s.io)", "no such document");
    }
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let reach = match cluster_reach(repo, cluster) {
        Ok(r) => r,
        Err(o) => return o,
    };
    if !reach.dirs.contains(&dir) {
        return Outcome::fail(dir.display().to_string(), format!("built by a Flux Kustomization of cluster {cluster}"), "not reachable from the cluster's Flux Kustomizations");
    }
    let own = reach_from(repo, [dir.clone()]);
    let r = match repo.render(cluster) {
        Ok(r) => r,
        Err(e) => return Outcome::error(e),
    };
    let entries: Vec<String> = kustomize_entries(repo, &dir).into_iter().map(|(e, _)| e).collect();
    match provides {
        Provides::Base(base) => {
            let Some(base_dir) = repo.resolve(base) else {
                return Outcome::fail(base, "the shared base directory", "missing");
            };
            if !own.dirs.contains(&base_dir) {
                return Outcome::fail(config, format!("resources referencing {}", base_dir.display()), format!("resources {entries:?}"));
            }
            let hrs: Vec<_> = r.objects.iter().filter(|o| o.kind() == "HelmRelease" && o.file.starts_with(&base_dir)).collect();
            let Some(hr) = hrs.first() else {
                return Outcome::fail(base_dir.display().to_string(), format!("a HelmRelease rendered on cluster {cluster}"), "none");
            };
            Outcome::pass(format!("{config} (built by {}) references {} → {} rendered on {cluster}", hr.applied_by, base_dir.display(), hr.describe()))
        }
        Provides::Chart(chart) => {
            let t = squash(chart);
            let hr = r.objects.iter().find(|o| o.kind() == "HelmRelease" && own.files.contains(&o.file) && squash(&chart_name(o)) == t);
            match hr {
                None => Outcome::fail(config, format!("builds a HelmRelease of the {chart} chart, rendered on cluster {cluster}"), format!("resources {entries:?} build none")),
                Some(hr) => match chart_source(&r, hr) {
                    Ok(ev) => Outcome::pass(format!("{config} → {ev}, rendered on {cluster} by {}", hr.applied_by)),
                    Err(f) => Outcome::Fail { findings: vec![f] },
                },
            }
        }
    }
}

/// Parses YAML (or JSON) written inside an ExternalSecret template: the `{{ ... }}`
/// expressions are replaced by a placeholder first, as they are not YAML.
pub fn parse_templated(text: &str) -> Option<Value> {
    static EXPR: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| regex::Regex::new(r"\{\{.*?\}\}").expect("static regex"));
    serde_yaml_ng::from_str(&EXPR.replace_all(text, "TEMPLATED")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_frequencies() {
        assert_eq!(cron_frequency("0 2 * * 0").unwrap(), Frequency::PerWeek(1));
        assert_eq!(cron_frequency("0 2 * * SUN").unwrap(), Frequency::PerWeek(1));
        assert_eq!(cron_frequency("0 2 * * 0,7").unwrap(), Frequency::PerWeek(1));
        assert_eq!(cron_frequency("@weekly").unwrap(), Frequency::PerWeek(1));
        assert_eq!(cron_frequency("@every 168h").unwrap(), Frequency::PerWeek(1));
        assert_eq!(cron_frequency("0 2 * * *").unwrap(), Frequency::PerWeek(7));
        assert_eq!(cron_frequency("0 */6 * * *").unwrap(), Frequency::PerWeek(28));
        assert_eq!(cron_frequency("0 2 * * 1-5").unwrap(), Frequency::PerWeek(5));
        assert!(matches!(cron_frequency("0 2 1 * *").unwrap(), Frequency::Calendar(_)));
        assert!(cron_frequency("0 2 * *").is_err());
        assert!(cron_frequency("0 25 * * 0").is_err());
    }

    #[test]
    fn hosts() {
        let h = parse_host("postgres-shared-rw.databases.svc.clusterset.local");
        assert_eq!((h.service.as_str(), h.namespace.as_deref(), h.clusterset), ("postgres-shared-rw", Some("databases"), true));
        let h = parse_host("dragonfly.databases.svc");
        assert_eq!((h.service.as_str(), h.namespace.as_deref(), h.clusterset), ("dragonfly", Some("databases"), false));
        assert_eq!(parse_host("pg-rw").namespace, None);
    }
}
