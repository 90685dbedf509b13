//! EPIC-9, repository layer: GitLab, Harbor and Mattermost as the GitOps repository declares
//! them: manifests, the shared PostgreSQL, Dragonfly, object storage and SSO.

use serde_json::Value;

use super::{GITLAB_FILES, GITLAB_PG, HARBOR_FILES};
use crate::check::{CheckResult, Ctx, Finding, IntoOutcome, Outcome};
use crate::checks::kit::prelude::*;
use crate::repo::{scalar_text, RenderedObject};

/// The HelmRelease of `chart` rendered on this cluster.
fn release(ctx: &Ctx, chart: &str) -> Result<RenderedObject, Outcome> {
    let r = rendered(ctx)?;
    objects(&r, HELM_GROUP, "HelmRelease")
        .into_iter()
        .find(|h| squash(&chart_name(h)) == squash(chart))
        .cloned()
        .ok_or_else(|| Outcome::fail(format!("HelmRelease of chart {chart}"), format!("rendered on cluster {}", ctx.cluster), "not found"))
}

fn values_of(ctx: &Ctx, hr: &RenderedObject) -> Result<Value, Outcome> {
    let r = rendered(ctx)?;
    Ok(helm_values(&r, hr))
}

fn manifests(ctx: &Ctx, files: &[&str], chart: &str) -> Result<Outcome, Outcome> {
    let repo = repo(ctx)?;
    let present = files_present(repo, files);
    if !matches!(present, Outcome::Pass { .. }) {
        return Ok(present);
    }
    Ok(Outcome::all([present, base_helmrelease(repo, &ctx.cluster, files[1], chart)]))
}

pub(super) async fn gitlab_manifests_created(ctx: Ctx) -> CheckResult<Outcome> {
    manifests(&ctx, &GITLAB_FILES, "gitlab")
}

pub(super) async fn harbor_manifests_created(ctx: Ctx) -> CheckResult<Outcome> {
    manifests(&ctx, &HARBOR_FILES, "harbor")
}

/// "... on infra ..." in a criterion: the cluster that must run the instance.
fn home_cluster(criterion: &str, clusters: &[String]) -> Option<String> {
    clusters.iter().find(|c| criterion.contains(&format!(" on {c} ")) || criterion.ends_with(&format!(" on {c}"))).cloned()
}

pub(super) async fn gitlab_uses_shared_postgres(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let hr = release(&ctx, "gitlab")?;
    let v = values_of(&ctx, &hr)?;
    let home = home_cluster(GITLAB_PG, repo.clusters());
    let user = format!("{} global.psql", hr.describe());
    let host = v.pointer("/global/psql/host").and_then(Value::as_str);
    let conn = postgres_connection(repo, &ctx.cluster, hr.namespace(), &user, host, v.pointer("/global/psql/database").and_then(Value::as_str), home.as_deref());
    // "via ClusterMesh": the name must be one that crosses clusters.
    let mesh = match host {
        Some(h) if parse_host(h).clusterset || matches!(&conn, Outcome::Pass { evidence } if evidence.iter().any(|e| e.contains("Cilium global service"))) => Outcome::pass(format!("{h} crosses clusters")),
        Some(h) => Outcome::fail(format!("{user}.host"), "a ClusterMesh name (<svc>.<ns>.svc.clusterset.local or a Cilium global service)", format!("{h:?}")),
        None => Outcome::pass(""),
    };
    let secret = v.pointer("/global/psql/password/secret").and_then(Value::as_str);
    let r = rendered(&ctx)?;
    let creds = match secret {
        Some(s) => secret_from_external_secret(&r, hr.namespace(), s, &format!("{user}.password.secret")).map(|es| Outcome::pass(format!("password from {}", es.describe()))).unwrap_or_else(|f| Outcome::Fail { findings: vec![f] }),
        None => Outcome::fail(format!("{user}.password.secret"), "a Secret from an ExternalSecret", "not set"),
    };
    Ok(Outcome::all([conn, mesh, creds]))
}

pub(super) async fn gitlab_uses_dragonfly(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let hr = release(&ctx, "gitlab")?;
    let v = values_of(&ctx, &hr)?;
    let host = v.pointer("/global/redis/host").and_then(Value::as_str);
    let port = v.pointer("/global/redis/port").map(scalar_text);
    let addr = host.map(|h| match &port {
        Some(p) => format!("{h}:{p}"),
        None => h.to_string(),
    });
    Ok(dragonfly_connection(repo, &ctx.cluster, hr.namespace(), &format!("{} global.redis", hr.describe()), addr.as_deref(), true))
}

/// Passes when `endpoint` (a URL, or host:port) is the cluster's MinIO endpoint.
fn is_minio(minio: &str, endpoint: &str) -> bool {
    let e = normalize_url(endpoint);
    e == minio || minio.split_once("://").is_some_and(|(_, hostport)| e == hostport)
}

pub(super) async fn gitlab_object_storage_minio(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let r = rendered(&ctx)?;
    let minio = minio_endpoint(repo, &ctx.cluster)?;
    let hr = release(&ctx, "gitlab")?;
    let v = values_of(&ctx, &hr)?;
    let object = format!("{} global.appConfig.object_store", hr.describe());
    if v.pointer("/global/appConfig/object_store/enabled").map(scalar_text).as_deref() != Some("true") {
        return Ok(Outcome::fail(format!("{object}.enabled"), "true (consolidated object storage)", v.pointer("/global/appConfig/object_store/enabled").map(|x| x.to_string()).unwrap_or("unset".into())));
    }
    let secret = v.pointer("/global/appConfig/object_store/connection/secret").and_then(Value::as_str).unwrap_or("");
    let key = v.pointer("/global/appConfig/object_store/connection/key").and_then(Value::as_str).unwrap_or("connection");
    let es = secret_from_external_secret(&r, hr.namespace(), secret, &format!("{object}.connection")).map_err(|f| Outcome::Fail { findings: vec![f] })?;
    let conn: Value = template_value(es, key).and_then(parse_templated).unwrap_or(Value::Null);
    let endpoint = conn.get("endpoint").and_then(Value::as_str).unwrap_or("");
    if !is_minio(&minio, endpoint) {
        return Ok(Outcome::fail(format!("{} template {key} endpoint", es.describe()), format!("the MinIO endpoint {minio:?} (MINIO_ENDPOINT)"), format!("{endpoint:?}")));
    }
    let bundled = v.pointer("/global/minio/enabled").map(scalar_text);
    if bundled.as_deref() != Some("false") {
        return Ok(Outcome::fail(format!("{} global.minio.enabled", hr.describe()), "false (external MinIO, not the bundled one)", bundled.unwrap_or("unset (chart default true)".into())));
    }
    Ok(Outcome::pass(format!("{object}: connection from {} → {endpoint} (MinIO), bundled MinIO disabled", es.describe())))
}

pub(super) async fn gitlab_sso_configured(ctx: Ctx) -> CheckResult<Outcome> {
    gitlab_sso(repo(&ctx)?, std::slice::from_ref(&ctx.cluster))
}

pub(super) async fn harbor_uses_shared_postgres(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let r = rendered(&ctx)?;
    let hr = release(&ctx, "harbor")?;
    let v = values_of(&ctx, &hr)?;
    let user = format!("{} database.external", hr.describe());
    if v.pointer("/database/type").and_then(Value::as_str) != Some("external") {
        return Ok(Outcome::fail(format!("{} database.type", hr.describe()), "\"external\"", format!("{:?}", v.pointer("/database/type").and_then(Value::as_str).unwrap_or("internal (chart default)"))));
    }
    let conn = postgres_connection(repo, &ctx.cluster, hr.namespace(), &user, v.pointer("/database/external/host").and_then(Value::as_str), v.pointer("/database/external/coreDatabase").and_then(Value::as_str), None);
    let creds = match v.pointer("/database/external/existingSecret").and_then(Value::as_str) {
        Some(s) => secret_from_external_secret(&r, hr.namespace(), s, &format!("{user}.existingSecret")).map(|es| Outcome::pass(format!("password from {}", es.describe()))).unwrap_or_else(|f| Outcome::Fail { findings: vec![f] }),
        None => Outcome::fail(format!("{user}.existingSecret"), "a Secret from an ExternalSecret", "not set"),
    };
    Ok(Outcome::all([conn, creds]))
}

pub(super) async fn harbor_uses_dragonfly(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let hr = release(&ctx, "harbor")?;
    let v = values_of(&ctx, &hr)?;
    if v.pointer("/redis/type").and_then(Value::as_str) != Some("external") {
        return Ok(Outcome::fail(format!("{} redis.type", hr.describe()), "\"external\"", format!("{:?}", v.pointer("/redis/type").and_then(Value::as_str).unwrap_or("internal (chart default)"))));
    }
    Ok(dragonfly_connection(repo, &ctx.cluster, hr.namespace(), &format!("{} redis.external.addr", hr.describe()), v.pointer("/redis/external/addr").and_then(Value::as_str), false))
}

pub(super) async fn harbor_object_storage(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let minio = minio_endpoint(repo, &ctx.cluster)?;
    let hr = release(&ctx, "harbor")?;
    let v = values_of(&ctx, &hr)?;
    let object = format!("{} persistence.imageChartStorage", hr.describe());
    let kind = v.pointer("/persistence/imageChartStorage/type").and_then(Value::as_str).unwrap_or("filesystem");
    if kind != "s3" {
        return Ok(Outcome::fail(format!("{object}.type"), "\"s3\" (MinIO or Ceph RGW)", format!("{kind:?}")));
    }
    let endpoint = v.pointer("/persistence/imageChartStorage/s3/regionendpoint").and_then(Value::as_str).unwrap_or("");
    let bucket = v.pointer("/persistence/imageChartStorage/s3/bucket").and_then(Value::as_str).unwrap_or("");
    // Ceph RGW: a rook-ceph-rgw-* service (Rook's naming for a CephObjectStore).
    let rgw = parse_host(endpoint.split_once("://").map(|(_, h)| h).unwrap_or(endpoint).split(['/', ':']).next().unwrap_or("")).service.starts_with("rook-ceph-rgw-");
    let mut findings = vec![];
    if !is_minio(&minio, endpoint) && !rgw {
        findings.push(Finding::new(format!("{object}.s3.regionendpoint"), format!("the MinIO endpoint {minio:?} (MINIO_ENDPOINT) or a Ceph RGW service"), format!("{endpoint:?}")));
    }
    if bucket.is_empty() {
        findings.push(Finding::new(format!("{object}.s3.bucket"), "a bucket", "not set"));
    }
    Ok(Outcome::from_findings(findings, format!("{object}: s3 {endpoint} ({}) bucket {bucket}", if rgw { "Ceph RGW" } else { "MinIO" })))
}

pub(super) async fn harbor_sso_configured(ctx: Ctx) -> CheckResult<Outcome> {
    harbor_sso(repo(&ctx)?, std::slice::from_ref(&ctx.cluster))
}

pub(super) fn mattermosts(ctx: &Ctx) -> Result<Vec<RenderedObject>, Outcome> {
    let r = rendered(ctx)?;
    let ms: Vec<_> = objects(&r, "installation.mattermost.com", "Mattermost").into_iter().cloned().collect();
    if ms.is_empty() {
        return Err(Outcome::fail(format!("cluster {}", ctx.cluster), "a Mattermost (installation.mattermost.com) instance rendered", "none"));
    }
    Ok(ms)
}

pub(super) async fn mattermost_instance_created(ctx: Ctx) -> CheckResult<Outcome> {
    let ms = mattermosts(&ctx)?;
    let operator = release(&ctx, "mattermost-operator").map(|hr| Outcome::pass(format!("reconciled by {}", hr.describe()))).into_outcome();
    Ok(Outcome::all(ms.iter().map(|m| Outcome::pass(format!("{} {} ({} replicas), applied by {}", m.api_version(), m.describe(), m.get("/spec/replicas").map(|v| v.to_string()).unwrap_or("?".into()), m.applied_by))).chain([operator])))
}

pub(super) async fn mattermost_uses_shared_postgres(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let r = rendered(&ctx)?;
    let ms = mattermosts(&ctx)?;
    Ok(Outcome::all(ms.iter().map(|m| {
        let object = format!("{} spec.database.external.secret", m.describe());
        let Some(secret) = m.str("/spec/database/external/secret") else {
            return Outcome::fail(object, "an external database (the shared PostgreSQL)", "not set (operator-managed database)");
        };
        let es = match secret_from_external_secret(&r, m.namespace(), secret, &object) {
            Ok(es) => es,
            Err(f) => return Outcome::Fail { findings: vec![f] },
        };
        let Some(dsn) = template_value(es, "DB_CONNECTION_STRING") else {
            return Outcome::fail(format!("{} template DB_CONNECTION_STRING", es.describe()), "a postgres:// connection string", "absent");
        };
        // postgres://user:pw@host:port/db?params
        let rest = dsn.split_once("://").map(|(_, r)| r).unwrap_or(dsn);
        let after_at = rest.rsplit_once('@').map(|(_, r)| r).unwrap_or(rest);
        let (hostport, path) = after_at.split_once('/').unwrap_or((after_at, ""));
        let host = hostport.split(':').next().unwrap_or("");
        let db = path.split('?').next().unwrap_or("");
        if !dsn.starts_with("postgres") {
            return Outcome::fail(format!("{} DB_CONNECTION_STRING", es.describe()), "a postgres:// connection string", dsn.split_once("://").map(|(s, _)| format!("scheme {s:?}")).unwrap_or("no scheme".into()));
        }
        postgres_connection(repo, &ctx.cluster, m.namespace(), &format!("{} DB_CONNECTION_STRING", es.describe()), Some(host), Some(db), None)
    })))
}

fn env_of(m: &RenderedObject, name: &str) -> Option<Value> {
    m.get("/spec/mattermostEnv").and_then(Value::as_array)?.iter().find(|e| e.get("name").and_then(Value::as_str) == Some(name)).cloned()
}

pub(super) async fn mattermost_sso_configured(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let r = rendered(&ctx)?;
    let ms = mattermosts(&ctx)?;
    let issuers = keycloak_issuers(repo)?;
    let mut outcomes = vec![];
    for m in &ms {
        let text = |n: &str| env_of(m, n).and_then(|e| e.get("value").map(scalar_text));
        let supplied = |n: &str| -> Outcome {
            match env_of(m, n) {
                Some(e) if e.get("value").is_some() => Outcome::pass(format!("{n} set")),
                Some(e) => {
                    let s = e.pointer("/valueFrom/secretKeyRef/name").and_then(Value::as_str).unwrap_or("");
                    secret_from_external_secret(&r, m.namespace(), s, &format!("{} {n}", m.describe())).map(|es| Outcome::pass(format!("{n} from {}", es.describe()))).unwrap_or_else(|f| Outcome::Fail { findings: vec![f] })
                }
                None => Outcome::fail(format!("{} mattermostEnv {n}", m.describe()), "set", "absent"),
            }
        };
        if text("MM_OPENIDSETTINGS_ENABLE").as_deref() == Some("true") {
            let discovery = text("MM_OPENIDSETTINGS_DISCOVERYENDPOINT").unwrap_or_default();
            let issuer = discovery.strip_suffix("/.well-known/openid-configuration");
            let client = text("MM_OPENIDSETTINGS_ID");
            outcomes.push(expect_keycloak_client(&issuers, &format!("{} OpenID settings", m.describe()), issuer, client.as_deref()));
            continue;
        }
        if text("MM_GITLABSETTINGS_ENABLE").as_deref() == Some("true") {
            // Team Edition: sign in through GitLab, which itself signs in through Keycloak.
            let auth = text("MM_GITLABSETTINGS_AUTHENDPOINT").unwrap_or_default();
            let auth_host = auth.split_once("://").map(|(_, r)| r).unwrap_or(&auth).split('/').next().unwrap_or("").to_string();
            let gitlab_host = release(&ctx, "gitlab").ok().map(|hr| helm_values(&r, &hr)).and_then(|v| v.pointer("/global/hosts/gitlab/name").and_then(Value::as_str).map(String::from));
            let host_ok = match &gitlab_host {
                Some(g) if *g == auth_host => Outcome::pass(format!("GitLab SSO at {auth}")),
                other => Outcome::fail(format!("{} MM_GITLABSETTINGS_AUTHENDPOINT", m.describe()), format!("the GitLab host {:?}", other.clone().unwrap_or("of a GitLab HelmRelease on this cluster".into())), format!("{auth:?}")),
            };
            let upstream = gitlab_sso(repo, std::slice::from_ref(&ctx.cluster))?;
            outcomes.push(Outcome::all([host_ok, supplied("MM_GITLABSETTINGS_ID"), supplied("MM_GITLABSETTINGS_SECRET"), upstream]));
            continue;
        }
        outcomes.push(Outcome::fail(format!("{} mattermostEnv", m.describe()), "MM_OPENIDSETTINGS_ENABLE=true (Keycloak) or MM_GITLABSETTINGS_ENABLE=true (GitLab → Keycloak)", "neither enabled"));
    }
    Ok(Outcome::all(outcomes))
}
