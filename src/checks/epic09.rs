//! EPIC-9 checks: GitLab, Harbor, Mattermost on the apps cluster.
//!
//! Writing a check here? Read docs/CHECKS-GUIDE.md first ({GUIDE} in your task): conventions, helpers, test support, rules for shared files and the shared CARGO_TARGET_DIR.
//!
//! Repository layer first (`repo_checks`), then the cluster layer (`cluster_checks`):
//! GitLab, Harbor, the Mattermost operator and instance deployed on apps (9.1.5, 9.2.5,
//! 9.3.1, 9.3.4), GitLab's HTTPRoutes accepted (9.1.6). Using the applications (9.1.8
//! repo + pipeline, 9.2.7 push/pull, 9.3.6 messages) is manual: see the reasons.

use serde_json::Value;

use crate::check::{Check, Ctx, Finding, Outcome};
use crate::checks::kit::prelude::*;
use crate::repo::RenderedObject;

const GITLAB_FILES: [&str; 3] = [
    "kubernetes/workloads/tenants/gitlab/kustomization.yaml",
    "kubernetes/workloads/tenants/gitlab/helmrelease.yaml",
    "kubernetes/workloads/tenants/gitlab/externalsecret.yaml",
];
const HARBOR_FILES: [&str; 4] = [
    "kubernetes/workloads/tenants/harbor/kustomization.yaml",
    "kubernetes/workloads/tenants/harbor/helmrelease.yaml",
    "kubernetes/workloads/tenants/harbor/externalsecret.yaml",
    "kubernetes/workloads/tenants/harbor/httproute.yaml",
];
const GITLAB_PG: &str = "Connected to shared PostgreSQL on infra (via ClusterMesh)";

pub fn checks() -> Vec<Check> {
    [repo_checks(), cluster_checks()].concat()
}

fn repo_checks() -> Vec<Check> {
    vec![
        Check::repo("9.1", "GitLab manifests created", "gitlab_manifests_created", gitlab_manifests_created),
        // The text names infra (where PostgreSQL runs); the criterion is about GitLab, which runs on apps.
        Check::repo("9.1", GITLAB_PG, "gitlab_uses_shared_postgres", gitlab_uses_shared_postgres).only("apps"),
        Check::repo("9.1", "Connected to Dragonfly (via ClusterMesh)", "gitlab_uses_dragonfly", gitlab_uses_dragonfly),
        Check::repo("9.1", "MinIO object storage configured", "gitlab_object_storage_minio", gitlab_object_storage_minio),
        Check::repo("9.1", "SSO configured (pending EPIC-8)", "gitlab_sso_configured", gitlab_sso_configured),
        Check::repo("9.2", "Harbor manifests created", "harbor_manifests_created", harbor_manifests_created),
        Check::repo("9.2", "Connected to shared PostgreSQL", "harbor_uses_shared_postgres", harbor_uses_shared_postgres),
        Check::repo("9.2", "Connected to Dragonfly (Redis)", "harbor_uses_dragonfly", harbor_uses_dragonfly),
        Check::repo("9.2", "Object storage configured (MinIO or Ceph RGW)", "harbor_object_storage", harbor_object_storage),
        Check::repo("9.2", "SSO configured", "harbor_sso_configured", harbor_sso_configured),
        Check::repo("9.3", "Mattermost instance created", "mattermost_instance_created", mattermost_instance_created),
        Check::repo("9.3", "Connected to shared PostgreSQL", "mattermost_uses_shared_postgres", mattermost_uses_shared_postgres),
        Check::repo("9.3", "SSO configured", "mattermost_sso_configured", mattermost_sso_configured),
    ]
}

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

async fn gitlab_manifests_created(ctx: Ctx) -> Outcome {
    outcome(|| manifests(&ctx, &GITLAB_FILES, "gitlab"))
}

async fn harbor_manifests_created(ctx: Ctx) -> Outcome {
    outcome(|| manifests(&ctx, &HARBOR_FILES, "harbor"))
}

/// "... on infra ..." in a criterion: the cluster that must run the instance.
fn home_cluster(criterion: &str, clusters: &[String]) -> Option<String> {
    clusters.iter().find(|c| criterion.contains(&format!(" on {c} ")) || criterion.ends_with(&format!(" on {c}"))).cloned()
}

async fn gitlab_uses_shared_postgres(ctx: Ctx) -> Outcome {
    outcome(|| {
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
    })
}

async fn gitlab_uses_dragonfly(ctx: Ctx) -> Outcome {
    outcome(|| {
        let repo = repo(&ctx)?;
        let hr = release(&ctx, "gitlab")?;
        let v = values_of(&ctx, &hr)?;
        let host = v.pointer("/global/redis/host").and_then(Value::as_str);
        let port = v.pointer("/global/redis/port").map(crate::repo::scalar_text);
        let addr = host.map(|h| match &port {
            Some(p) => format!("{h}:{p}"),
            None => h.to_string(),
        });
        Ok(dragonfly_connection(repo, &ctx.cluster, hr.namespace(), &format!("{} global.redis", hr.describe()), addr.as_deref(), true))
    })
}

/// Passes when `endpoint` (a URL, or host:port) is the cluster's MinIO endpoint.
fn is_minio(minio: &str, endpoint: &str) -> bool {
    let e = normalize_url(endpoint);
    e == minio || minio.split_once("://").is_some_and(|(_, hostport)| e == hostport)
}

async fn gitlab_object_storage_minio(ctx: Ctx) -> Outcome {
    outcome(|| {
        let repo = repo(&ctx)?;
        let r = rendered(&ctx)?;
        let minio = minio_endpoint(repo, &ctx.cluster)?;
        let hr = release(&ctx, "gitlab")?;
        let v = values_of(&ctx, &hr)?;
        let object = format!("{} global.appConfig.object_store", hr.describe());
        if v.pointer("/global/appConfig/object_store/enabled").map(crate::repo::scalar_text).as_deref() != Some("true") {
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
        let bundled = v.pointer("/global/minio/enabled").map(crate::repo::scalar_text);
        if bundled.as_deref() != Some("false") {
            return Ok(Outcome::fail(format!("{} global.minio.enabled", hr.describe()), "false (external MinIO, not the bundled one)", bundled.unwrap_or("unset (chart default true)".into())));
        }
        Ok(Outcome::pass(format!("{object}: connection from {} → {endpoint} (MinIO), bundled MinIO disabled", es.describe())))
    })
}

async fn gitlab_sso_configured(ctx: Ctx) -> Outcome {
    outcome(|| gitlab_sso(repo(&ctx)?, std::slice::from_ref(&ctx.cluster)))
}

async fn harbor_uses_shared_postgres(ctx: Ctx) -> Outcome {
    outcome(|| {
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
    })
}

async fn harbor_uses_dragonfly(ctx: Ctx) -> Outcome {
    outcome(|| {
        let repo = repo(&ctx)?;
        let hr = release(&ctx, "harbor")?;
        let v = values_of(&ctx, &hr)?;
        if v.pointer("/redis/type").and_then(Value::as_str) != Some("external") {
            return Ok(Outcome::fail(format!("{} redis.type", hr.describe()), "\"external\"", format!("{:?}", v.pointer("/redis/type").and_then(Value::as_str).unwrap_or("internal (chart default)"))));
        }
        Ok(dragonfly_connection(repo, &ctx.cluster, hr.namespace(), &format!("{} redis.external.addr", hr.describe()), v.pointer("/redis/external/addr").and_then(Value::as_str), false))
    })
}

async fn harbor_object_storage(ctx: Ctx) -> Outcome {
    outcome(|| {
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
    })
}

async fn harbor_sso_configured(ctx: Ctx) -> Outcome {
    outcome(|| harbor_sso(repo(&ctx)?, std::slice::from_ref(&ctx.cluster)))
}

fn mattermosts(ctx: &Ctx) -> Result<Vec<RenderedObject>, Outcome> {
    let r = rendered(ctx)?;
    let ms: Vec<_> = objects(&r, "installation.mattermost.com", "Mattermost").into_iter().cloned().collect();
    if ms.is_empty() {
        return Err(Outcome::fail(format!("cluster {}", ctx.cluster), "a Mattermost (installation.mattermost.com) instance rendered", "none"));
    }
    Ok(ms)
}

async fn mattermost_instance_created(ctx: Ctx) -> Outcome {
    outcome(|| {
        let ms = mattermosts(&ctx)?;
        let operator = release(&ctx, "mattermost-operator").map(|hr| Outcome::pass(format!("reconciled by {}", hr.describe()))).unwrap_or_else(|o| o);
        Ok(Outcome::all(ms.iter().map(|m| Outcome::pass(format!("{} {} ({} replicas), applied by {}", m.api_version(), m.describe(), m.get("/spec/replicas").map(|v| v.to_string()).unwrap_or("?".into()), m.applied_by))).chain([operator])))
    })
}

async fn mattermost_uses_shared_postgres(ctx: Ctx) -> Outcome {
    outcome(|| {
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
    })
}

fn env_of(m: &RenderedObject, name: &str) -> Option<Value> {
    m.get("/spec/mattermostEnv").and_then(Value::as_array)?.iter().find(|e| e.get("name").and_then(Value::as_str) == Some(name)).cloned()
}

async fn mattermost_sso_configured(ctx: Ctx) -> Outcome {
    outcome(|| {
        let repo = repo(&ctx)?;
        let r = rendered(&ctx)?;
        let ms = mattermosts(&ctx)?;
        let issuers = keycloak_issuers(repo)?;
        let mut outcomes = vec![];
        for m in &ms {
            let text = |n: &str| env_of(m, n).and_then(|e| e.get("value").map(crate::repo::scalar_text));
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
    })
}

// ---------------------------------------------------------------------------
// Cluster layer
// ---------------------------------------------------------------------------


/// §19 [MM1]
const MATTERMOST: crate::cluster::objects::Kind = crate::cluster::objects::Kind::namespaced("installation.mattermost.com", &["v1beta1"], "Mattermost");

fn cluster_checks() -> Vec<Check> {
    vec![
        Check::cluster("9.1", "GitLab deployed on apps cluster", "gitlab_deployed", gitlab_deployed),
        Check::cluster("9.1", "GitLab accessible via HTTPRoute", "gitlab_routes_accepted", gitlab_routes_accepted),
        Check::manual(
            "9.1",
            "Can create repo and run pipeline",
            "Needs a GitLab API token (the root password lives in 1Password; the harness holds none) and writes to GitLab's \
             database and Gitaly (a project, a commit, a pipeline) outside any disposable namespace; a pipeline also needs a \
             GitLab Runner, which the plan deploys only after GitLab is operational (gitlab-runner.install: false). A person \
             creates a test project at https://gitlab.<domain>, pushes a .gitlab-ci.yml and sees the pipeline succeed. \
             Deployment and routing are proven by 9.1.5 and 9.1.6.",
        ),
        Check::cluster("9.2", "Deployed on apps cluster", "harbor_deployed", harbor_deployed),
        Check::manual(
            "9.2",
            "Can push/pull images",
            "A push needs registry credentials (a Harbor user or robot account; the admin password lives in 1Password) and \
             writes an artifact into a Harbor project, i.e. into Harbor's database and object storage outside any disposable \
             namespace. A person runs docker login harbor.<domain>, pushes and pulls a test image in a scratch project and \
             deletes it. Deployment, database, Redis and storage wiring are proven by 9.2.1-9.2.5.",
        ),
        Check::cluster("9.3", "Mattermost operator deployed", "mattermost_operator_deployed", mattermost_operator_deployed),
        Check::cluster("9.3", "Deployed on apps cluster", "mattermost_deployed", mattermost_deployed),
        Check::manual(
            "9.3",
            "Can send messages",
            "Posting needs a Mattermost user or bot token (none exists before a person creates the first team and admin) and \
             writes a post into a team channel in the shared PostgreSQL database outside any disposable namespace. A person \
             signs in at https://mattermost.<domain>, posts in a channel and sees it delivered to a second session. \
             Deployment is proven by 9.3.4.",
        ),
    ]
}

/// §17: GitLab's chart labels its objects `release=<release>`; every one of them ready.
async fn gitlab_deployed(ctx: Ctx) -> Outcome {
    component_deployed(&ctx, "gitlab", |release| format!("release={release}")).await
}

/// Every HTTPRoute of GitLab's namespace Accepted/ResolvedRefs, backends present.
async fn gitlab_routes_accepted(ctx: Ctx) -> Outcome {
    let client = match ctx.kube() { Ok(c) => c, Err(o) => return o };
    let hr = match rendered_release(&ctx, "gitlab") { Ok(h) => h, Err(o) => return o };
    let ns = Release::of(&hr).namespace;
    let routes = match routes_in(&ctx, &ns) { Ok(r) => r, Err(o) => return o };
    httproutes_accepted(client, &ctx.cluster, &routes).await
}

/// §18 [HB1]: selector `release=<release>,app=harbor`.
async fn harbor_deployed(ctx: Ctx) -> Outcome {
    component_deployed(&ctx, "harbor", |release| format!("release={release},app=harbor")).await
}

/// §19 [MM5]: the operator chart's selector `app.kubernetes.io/name=mattermost-operator`.
async fn mattermost_operator_deployed(ctx: Ctx) -> Outcome {
    component_deployed(&ctx, "mattermost-operator", |_| "app.kubernetes.io/name=mattermost-operator".into()).await
}

/// §19 [MM1][MM2]: each Mattermost of the repository is `stable` for its current
/// generation and the Deployment named after it is ready.
async fn mattermost_deployed(ctx: Ctx) -> Outcome {
    let client = match ctx.kube() { Ok(c) => c, Err(o) => return o };
    let ms = match mattermosts(&ctx) { Ok(m) => m, Err(o) => return o };
    let mut outcomes = vec![];
    for m in &ms {
        let ns = m.namespace().unwrap_or("default");
        let found = match crate::cluster::objects::require(client, &MATTERMOST, Some(ns), m.name()).await {
            Ok(f) => f,
            Err(o) => {
                outcomes.push(o);
                continue;
            }
        };
        let object = format!("{} (cluster {})", found.describe(&MATTERMOST), ctx.cluster);
        let state = found.str("/status/state").unwrap_or("");
        let generation = found.object.metadata.generation.unwrap_or(0);
        let observed = found.get("/status/observedGeneration").and_then(Value::as_i64).unwrap_or(generation);
        outcomes.push(if state != "stable" {
            Outcome::fail(format!("{object} status.state"), "stable", format!("{state:?}{}", found.str("/status/error").map(|e| format!(" (error: {e})")).unwrap_or_default()))
        } else if observed < generation {
            Outcome::fail(format!("{object} status.observedGeneration"), format!("{generation}"), format!("{observed} (stale)"))
        } else {
            Outcome::pass(format!("{object}: stable, version {}, endpoint {}", found.str("/status/version").unwrap_or("?"), found.str("/status/endpoint").unwrap_or("?")))
        });
        outcomes.push(crate::cluster::objects::expect_workload_ready(client, &ctx.cluster, "Deployment", ns, m.name()).await);
    }
    Outcome::all(outcomes)
}
