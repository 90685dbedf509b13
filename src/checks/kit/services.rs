//! Services behind host names: which CNPG cluster or Dragonfly instance a host name
//! lands on, connection settings consumers use, Keycloak issuers, and the object store.

use serde_json::Value;

use super::helm::{chart_name, helm_values, HELM_GROUP};
use super::rendered::{find, key_at, objects, parse_templated, renders, squash};
use super::secrets::{external_secret_for, template_value};
use crate::check::Outcome;
use crate::repo::{scalar_text, GitopsRepo, Rendered, RenderedObject};

pub const GLOBAL_ANNOTATION: &str = "service.cilium.io/global";

/// The MinIO S3 endpoint the cluster declares (`MINIO_ENDPOINT`), normalised.
pub fn minio_endpoint(repo: &GitopsRepo, cluster: &str) -> Result<String, Outcome> {
    let vars = repo.variables(cluster).map_err(Outcome::error)?;
    vars.require("MINIO_ENDPOINT").map(normalize_url)
}

pub fn normalize_url(u: &str) -> String {
    u.trim().trim_end_matches('/').to_ascii_lowercase()
}

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

/// Cilium global-service annotations (docs/reference/components.md §2.4), current and legacy.
pub const GLOBAL_ANNOTATIONS: [&str; 2] = ["service.cilium.io/global", "io.cilium/global-service"];

/// GitLab OmniAuth OpenID Connect provider pointing at a Keycloak realm with a known client.
pub fn gitlab_sso(repo: &GitopsRepo, clusters: &[String]) -> Result<Outcome, Outcome> {
    let issuers = keycloak_issuers(repo)?;
    let hrs = helm_releases(repo, clusters, "gitlab")?;
    if hrs.is_empty() {
        return Ok(none_found("a GitLab HelmRelease (chart gitlab)", clusters));
    }
    let mut outcomes = vec![];
    for (_, r, hr) in &hrs {
        let values = helm_values(r, hr);
        let omni = values.pointer("/global/appConfig/omniauth").cloned().unwrap_or(Value::Null);
        let object = format!("{} global.appConfig.omniauth", hr.describe());
        if omni.get("enabled").map(crate::repo::scalar_text).as_deref() != Some("true") {
            outcomes.push(Outcome::fail(format!("{object}.enabled"), "true", omni.get("enabled").map(|v| v.to_string()).unwrap_or("unset".into())));
            continue;
        }
        let mut providers: Vec<(String, Value)> = vec![];
        for p in omni.get("providers").and_then(Value::as_array).into_iter().flatten() {
            if let Some(secret) = p.get("secret").and_then(Value::as_str) {
                let key = p.get("key").and_then(Value::as_str).unwrap_or("provider");
                match external_secret_for(r, hr.namespace(), secret).and_then(|es| template_value(es, key).map(|t| (es, t))) {
                    Some((es, t)) => providers.push((format!("{} key {key}", es.describe()), parse_templated(t).unwrap_or(Value::Null))),
                    None => providers.push((format!("Secret {secret} key {key}"), Value::Null)),
                }
            } else {
                providers.push((object.clone(), p.clone()));
            }
        }
        let oidc = providers.iter().find(|(_, p)| p.get("name").and_then(Value::as_str) == Some("openid_connect"));
        match oidc {
            None => outcomes.push(Outcome::fail(
                format!("{object}.providers"),
                "an openid_connect provider (inline or from an ExternalSecret template)",
                format!("[{}]", providers.iter().map(|(w, p)| format!("{w}: {}", p.get("name").and_then(Value::as_str).unwrap_or("unreadable"))).collect::<Vec<_>>().join(", ")),
            )),
            Some((where_, p)) => outcomes.push(expect_keycloak_client(
                &issuers,
                &format!("{} openid_connect provider ({where_})", hr.describe()),
                p.pointer("/args/issuer").and_then(Value::as_str),
                p.pointer("/args/client_options/identifier").and_then(Value::as_str),
            )),
        }
    }
    Ok(Outcome::all(outcomes))
}

/// Harbor OIDC auth (CONFIG_OVERWRITE_JSON) pointing at a Keycloak realm with a known client.
pub fn harbor_sso(repo: &GitopsRepo, clusters: &[String]) -> Result<Outcome, Outcome> {
    let issuers = keycloak_issuers(repo)?;
    let hrs = helm_releases(repo, clusters, "harbor")?;
    if hrs.is_empty() {
        return Ok(none_found("a Harbor HelmRelease (chart harbor)", clusters));
    }
    let mut outcomes = vec![];
    for (_, r, hr) in &hrs {
        let values = helm_values(r, hr);
        let env = values.pointer("/core/extraEnvVars").and_then(Value::as_array).cloned().unwrap_or_default();
        let entry = env.iter().find(|e| e.get("name").and_then(Value::as_str) == Some("CONFIG_OVERWRITE_JSON"));
        let object = format!("{} core.extraEnvVars CONFIG_OVERWRITE_JSON", hr.describe());
        let json: Option<(String, String)> = match entry {
            Some(e) if e.get("value").is_some() => e.get("value").and_then(Value::as_str).map(|v| (object.clone(), v.to_string())),
            Some(e) => {
                let name = e.pointer("/valueFrom/secretKeyRef/name").and_then(Value::as_str).unwrap_or("");
                let key = e.pointer("/valueFrom/secretKeyRef/key").and_then(Value::as_str).unwrap_or("");
                external_secret_for(r, hr.namespace(), name).and_then(|es| template_value(es, key).map(|t| (format!("{} key {key}", es.describe()), t.to_string())))
            }
            None => None,
        };
        let Some((where_, text)) = json else {
            outcomes.push(Outcome::fail(object, "Harbor OIDC settings (auth_mode oidc_auth) inline or from an ExternalSecret template", "not configured"));
            continue;
        };
        let cfg: Value = match parse_templated(&text) {
            Some(v) => v,
            None => {
                outcomes.push(Outcome::fail(where_, "valid JSON", "unparsable"));
                continue;
            }
        };
        let mode = cfg.get("auth_mode").and_then(Value::as_str).unwrap_or("");
        if mode != "oidc_auth" {
            outcomes.push(Outcome::fail(format!("{where_} auth_mode"), "\"oidc_auth\"", format!("{mode:?}")));
            continue;
        }
        outcomes.push(expect_keycloak_client(&issuers, &format!("{} ({where_})", hr.describe()), cfg.get("oidc_endpoint").and_then(Value::as_str), cfg.get("oidc_client_id").and_then(Value::as_str)));
    }
    Ok(Outcome::all(outcomes))
}

/// HelmReleases of `chart` on the given clusters.
pub fn helm_releases(repo: &GitopsRepo, clusters: &[String], chart: &str) -> Result<Vec<(String, std::sync::Arc<crate::repo::Rendered>, RenderedObject)>, Outcome> {
    let mut out = vec![];
    for c in clusters {
        let r = repo.render(c).map_err(Outcome::error)?;
        for hr in objects(&r, HELM_GROUP, "HelmRelease") {
            if squash(&chart_name(hr)) == squash(chart) {
                out.push((c.clone(), r.clone(), hr.clone()));
            }
        }
    }
    Ok(out)
}

pub fn none_found(what: &str, clusters: &[String]) -> Outcome {
    Outcome::fail(what, format!("rendered on cluster(s) {}", clusters.join(", ")), "not found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let h = parse_host("postgres-shared-rw.databases.svc.clusterset.local");
        assert_eq!((h.service.as_str(), h.namespace.as_deref(), h.clusterset), ("postgres-shared-rw", Some("databases"), true));
        let h = parse_host("dragonfly.databases.svc");
        assert_eq!((h.service.as_str(), h.namespace.as_deref(), h.clusterset), ("dragonfly", Some("databases"), false));
        assert_eq!(parse_host("pg-rw").namespace, None);
    }
}
