//! EPIC-7, repository layer: what the GitOps repository declares for CloudNativePG, the
//! shared PostgreSQL Cluster, the application databases and Dragonfly.

use serde_json::Value;

use super::{CNPG_CLUSTER_FILE, CNPG_OPERATOR, CNPG_OPERATOR_CONFIG, DATABASES, DRAGONFLY_FILES, REPLICAS, STORAGE};
use crate::check::{CheckResult, Ctx, Finding, Outcome};
use crate::checks::kit::prelude::*;
use crate::repo::RenderedObject;

pub(super) async fn cnpg_operator_manifests_created(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let chart = CNPG_OPERATOR.split_whitespace().next().unwrap_or_default(); // "CloudNativePG"
    Ok(component_config(repo, &ctx.cluster, CNPG_OPERATOR_CONFIG, Provides::Chart(chart)))
}

/// The shared PostgreSQL Cluster(s): CNPG `Cluster` objects from the plan's cluster.yaml, rendered here.
fn shared_clusters(ctx: &Ctx) -> Result<Vec<RenderedObject>, Outcome> {
    let repo = repo(ctx)?;
    let r = rendered(ctx)?;
    if repo.resolve(CNPG_CLUSTER_FILE).is_none() {
        return Err(missing_outcome(repo, CNPG_CLUSTER_FILE, CNPG_CLUSTER_FILE, "the PostgreSQL cluster manifest (a postgresql.cnpg.io Cluster)", "missing"));
    }
    let found: Vec<_> = from_file(repo, &r, CNPG_CLUSTER_FILE).into_iter().filter(|o| o.kind() == "Cluster" && group(o) == CNPG_GROUP).cloned().collect();
    if found.is_empty() {
        let kinds: Vec<String> = repo.documents_in(CNPG_CLUSTER_FILE).iter().map(|d| format!("{} {}", d.api_version(), d.kind())).collect();
        return Err(Outcome::fail(
            CNPG_CLUSTER_FILE,
            format!("a Cluster (postgresql.cnpg.io) rendered on cluster {}", ctx.cluster),
            if kinds.is_empty() { "not rendered".to_string() } else { format!("[{}], not rendered as a CNPG Cluster", kinds.join(", ")) },
        ));
    }
    Ok(found)
}

pub(super) async fn postgres_cluster_manifest_created(ctx: Ctx) -> CheckResult<Outcome> {
    let cs = shared_clusters(&ctx)?;
    Ok(Outcome::pass(cs.iter().map(|c| format!("{} {} in namespace {}, applied by {}", c.api_version(), c.describe(), c.namespace().unwrap_or("-"), c.applied_by)).collect::<Vec<_>>().join("; ")))
}

pub(super) async fn postgres_replicas_configured(ctx: Ctx) -> CheckResult<Outcome> {
    let want: u64 = REPLICAS.split('-').next().and_then(|n| n.trim().parse().ok()).ok_or_else(|| Outcome::error(format!("no replica count in {REPLICAS:?}")))?;
    let cs = shared_clusters(&ctx)?;
    Ok(Outcome::all(cs.iter().map(|c| match c.get("/spec/instances") {
        Some(v) if v.as_u64() == Some(want) => Outcome::pass(format!("{} spec.instances = {want}", c.describe())),
        Some(v) => Outcome::fail(format!("{} spec.instances", c.describe()), want.to_string(), v.to_string()),
        None => Outcome::fail(format!("{} spec.instances", c.describe()), want.to_string(), "not set (CNPG default 1)"),
    })))
}

pub(super) async fn postgres_storage_on_openebs_local_nvme(ctx: Ctx) -> CheckResult<Outcome> {
    // "(OpenEBS local-nvme)": vendor, then the class name fragment.
    let inner = STORAGE.split_once('(').and_then(|(_, r)| r.strip_suffix(')')).unwrap_or_default();
    let (vendor, fragment) = inner.split_once(' ').ok_or_else(|| Outcome::error(format!("cannot parse {STORAGE:?}")))?;
    let cs = shared_clusters(&ctx)?;
    let r = rendered(&ctx)?;
    let classes = storage_classes(&r);
    let mut outcomes = vec![];
    for c in &cs {
        for (ptr, label) in [("/spec/storage", "spec.storage"), ("/spec/walStorage", "spec.walStorage")] {
            if label == "spec.walStorage" && c.get(ptr).is_none() {
                continue;
            }
            let object = format!("{} {label}.storageClass", c.describe());
            let expected = format!("an {vendor} StorageClass whose name contains {fragment:?}, rendered on cluster {}", ctx.cluster);
            let Some(sc) = c.str(&format!("{ptr}/storageClass")).filter(|s| !s.is_empty()) else {
                outcomes.push(Outcome::fail(object, expected, "not set (cluster default class)"));
                continue;
            };
            let provisioner = classes.get(sc);
            let ok = sc.contains(fragment) && provisioner.is_some_and(|p| p.to_ascii_lowercase().contains(&vendor.to_ascii_lowercase()));
            let size = c.str(&format!("{ptr}/size")).unwrap_or("no size");
            outcomes.push(if ok {
                Outcome::pass(format!("{object} = {sc:?} (provisioner {}), size {size}", provisioner.map(String::as_str).unwrap_or("")))
            } else {
                Outcome::fail(object, expected, match provisioner {
                    Some(p) => format!("{sc:?} (provisioner {p})"),
                    None => format!("{sc:?} (no such StorageClass rendered)"),
                })
            });
        }
    }
    Ok(Outcome::all(outcomes))
}

pub(super) async fn postgres_backups_to_minio(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let minio = minio_endpoint(repo, &ctx.cluster)?;
    let cs = shared_clusters(&ctx)?;
    let r = rendered(&ctx)?;
    let mut outcomes = vec![];
    for c in &cs {
        let (object, store) = match backup_store(&r, c) {
            Ok(s) => s,
            Err(f) => {
                outcomes.push(Outcome::Fail { findings: vec![f] });
                continue;
            }
        };
        let mut findings = vec![];
        let endpoint = store.get("endpointURL").and_then(Value::as_str).unwrap_or("");
        if normalize_url(endpoint) != minio {
            findings.push(Finding::new(format!("{object}.endpointURL"), format!("the MinIO endpoint {minio:?} (MINIO_ENDPOINT)"), format!("{endpoint:?}")));
        }
        let dest = store.get("destinationPath").and_then(Value::as_str).unwrap_or("");
        let bucket = dest.strip_prefix("s3://").and_then(|p| p.split('/').next()).unwrap_or("");
        if bucket.is_empty() {
            findings.push(Finding::new(format!("{object}.destinationPath"), "s3://<bucket>/<path>", format!("{dest:?}")));
        }
        for key in ["accessKeyId", "secretAccessKey"] {
            match store.pointer(&format!("/s3Credentials/{key}/name")).and_then(Value::as_str) {
                Some(secret) => {
                    if let Err(f) = secret_from_external_secret(&r, c.namespace(), secret, &format!("{object}.s3Credentials.{key}")) {
                        findings.push(f);
                    }
                }
                None => findings.push(Finding::new(format!("{object}.s3Credentials.{key}"), "a Secret reference", "not set")),
            }
        }
        outcomes.push(Outcome::from_findings(findings, format!("{object}: endpoint {endpoint} (MinIO), destination {dest}")));
    }
    Ok(Outcome::all(outcomes))
}

pub(super) async fn postgres_global_service(ctx: Ctx) -> CheckResult<Outcome> {
    let cs = shared_clusters(&ctx)?;
    let r = rendered(&ctx)?;
    Ok(Outcome::all(cs.iter().map(|c| {
        let name = c.name();
        let ns = c.namespace();
        // A Service of this cluster (selector or CNPG naming) carrying the annotation...
        let services: Vec<_> = objects(&r, "", "Service")
            .into_iter()
            .filter(|s| s.namespace() == ns)
            .filter(|s| key_at(&s.value, "/spec/selector", "cnpg.io/cluster").and_then(Value::as_str) == Some(name) || s.name().starts_with(&format!("{name}-")))
            .collect();
        let global = |v: Option<&Value>| v.map(crate::repo::scalar_text).as_deref() == Some("true");
        if let Some(s) = services.iter().find(|s| global(key_at(&s.value, "/metadata/annotations", GLOBAL_ANNOTATION))) {
            return Outcome::pass(format!("{} selects {} and has {GLOBAL_ANNOTATION}: \"true\"", s.describe(), c.describe()));
        }
        // ...or a managed additional service of the Cluster itself.
        let managed = c.get("/spec/managed/services/additional").and_then(Value::as_array).into_iter().flatten().find(|a| {
            global(a.pointer("/serviceTemplate/metadata/annotations").and_then(|m| m.get(GLOBAL_ANNOTATION)))
        });
        if let Some(m) = managed {
            return Outcome::pass(format!("{} managed service {} has {GLOBAL_ANNOTATION}: \"true\"", c.describe(), m.pointer("/serviceTemplate/metadata/name").and_then(Value::as_str).unwrap_or("?")));
        }
        let seen: Vec<String> = services
            .iter()
            .map(|s| format!("{} {GLOBAL_ANNOTATION}={}", s.describe(), key_at(&s.value, "/metadata/annotations", GLOBAL_ANNOTATION).map(crate::repo::scalar_text).unwrap_or_else(|| "unset".into())))
            .collect();
        Outcome::fail(
            format!("Services of {}", c.describe()),
            format!("a Service selecting cnpg.io/cluster={name} with {GLOBAL_ANNOTATION}: \"true\""),
            if seen.is_empty() { "no such Service".to_string() } else { seen.join("; ") },
        )
    })))
}

/// The database names listed in criterion 7.3.1.
pub(super) fn listed_databases() -> Vec<&'static str> {
    DATABASES.split_once(':').map(|(_, l)| l.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()).unwrap_or_default()
}

/// Roles declared by `Cluster.spec.managed.roles` (ensure present): name → password Secret.
pub(super) fn managed_roles(c: &RenderedObject) -> Vec<(String, Option<String>)> {
    c.get("/spec/managed/roles")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| r.get("ensure").and_then(Value::as_str).unwrap_or("present") == "present")
        .filter_map(|r| {
            let name = r.get("name").and_then(Value::as_str)?.to_string();
            Some((name, r.pointer("/passwordSecret/name").and_then(Value::as_str).map(String::from)))
        })
        .collect()
}

/// The CNPG Clusters on this cluster (the shared one is the only one in the fixture; any counts).
fn cnpg_clusters(ctx: &Ctx) -> Result<Vec<RenderedObject>, Outcome> {
    let r = rendered(ctx)?;
    let cs: Vec<_> = objects(&r, CNPG_GROUP, "Cluster").into_iter().cloned().collect();
    if cs.is_empty() {
        return Err(Outcome::fail(format!("cluster {}", ctx.cluster), "a CloudNativePG Cluster rendered", "none"));
    }
    Ok(cs)
}

pub(super) async fn application_databases_declared(ctx: Ctx) -> CheckResult<Outcome> {
    let r = rendered(&ctx)?;
    let cs = cnpg_clusters(&ctx)?;
    let mut findings = vec![];
    let mut evidence = vec![];
    for db in listed_databases() {
        let found = cs.iter().find_map(|c| cnpg_database(&r, c.namespace().unwrap_or(""), c.name(), db).map(|d| (c, d)));
        let Some((c, d)) = found else {
            let declared: Vec<String> = objects(&r, CNPG_GROUP, "Database").iter().map(|d| d.str("/spec/name").unwrap_or(d.name()).to_string()).collect();
            findings.push(Finding::new(
                format!("Database {db:?}"),
                format!("a CNPG Database (postgresql.cnpg.io) named {db:?}, ensure present, on {}", cs.iter().map(|c| c.describe()).collect::<Vec<_>>().join(" or ")),
                format!("declared databases [{}]", declared.join(", ")),
            ));
            continue;
        };
        let owner = d.str("/spec/owner").unwrap_or("");
        let roles = managed_roles(c);
        let initdb_owner = c.str("/spec/bootstrap/initdb/owner");
        if owner.is_empty() || !(roles.iter().any(|(n, _)| n == owner) || initdb_owner == Some(owner)) {
            findings.push(Finding::new(
                format!("{} spec.owner", d.describe()),
                format!("a role declared by {} (managed.roles [{}])", c.describe(), roles.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")),
                format!("{owner:?}"),
            ));
            continue;
        }
        evidence.push(format!("{db} ({}, owner {owner})", d.describe()));
    }
    Ok(Outcome::from_findings(findings, format!("declared on the shared cluster: {}", evidence.join(", "))))
}

pub(super) async fn database_external_secrets(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let r = rendered(&ctx)?;
    let cs = cnpg_clusters(&ctx)?;
    let all = renders(repo)?;
    let mut findings = vec![];
    let mut evidence = vec![];
    for db in listed_databases() {
        // The role of the same name (the plan: CREATE USER <db>) and its password Secret.
        let role = cs.iter().find_map(|c| managed_roles(c).into_iter().find(|(n, _)| n == db).map(|(_, s)| (c, s)));
        let Some((c, secret)) = role else {
            findings.push(Finding::new(format!("role {db:?}"), format!("declared in managed.roles of {}", cs.iter().map(|c| c.describe()).collect::<Vec<_>>().join(" or ")), "not declared"));
            continue;
        };
        let Some(secret) = secret else {
            findings.push(Finding::new(format!("{} role {db:?}", c.describe()), "passwordSecret from an ExternalSecret", "no passwordSecret"));
            continue;
        };
        let es = match secret_from_external_secret(&r, c.namespace(), &secret, &format!("{} role {db}", c.describe())) {
            Ok(es) => es,
            Err(f) => {
                findings.push(f);
                continue;
            }
        };
        // The application's copy of the same credentials, in its own namespace.
        let keys = remote_keys(es);
        let app = all.iter().find_map(|(cl, rr)| {
            objects(rr, ES_GROUP, "ExternalSecret")
                .into_iter()
                .find(|o| o.namespace() != c.namespace() && !remote_keys(o).is_disjoint(&keys))
                .map(|o| format!("{} on {cl}", o.describe()))
        });
        match app {
            Some(a) => evidence.push(format!("{db}: {} (role secret) + {a}", es.describe())),
            None => findings.push(Finding::new(
                format!("database {db:?} credentials"),
                format!("an ExternalSecret in the application's namespace reading the same item {:?}", keys.iter().cloned().collect::<Vec<_>>().join(", ")),
                format!("only {}", es.describe()),
            )),
        }
    }
    Ok(Outcome::from_findings(findings, evidence.join("; ")))
}

fn dragonflies(ctx: &Ctx) -> Result<Vec<RenderedObject>, Outcome> {
    let r = rendered(ctx)?;
    let ds: Vec<_> = objects(&r, "dragonflydb.io", "Dragonfly").into_iter().cloned().collect();
    if ds.is_empty() {
        return Err(Outcome::fail(format!("cluster {}", ctx.cluster), "a Dragonfly (dragonflydb.io) instance rendered", "none"));
    }
    Ok(ds)
}

pub(super) async fn dragonfly_manifests_created(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let files = files_present(repo, &DRAGONFLY_FILES);
    if !matches!(files, Outcome::Pass { .. }) {
        return Ok(files);
    }
    let operator = base_helmrelease(repo, &ctx.cluster, DRAGONFLY_FILES[1], "dragonfly");
    let instance = match dragonflies(&ctx) {
        Ok(ds) => Outcome::pass(ds.iter().map(|d| format!("{} {}", d.api_version(), d.describe())).collect::<Vec<_>>().join(", ")),
        Err(o) => o,
    };
    Ok(Outcome::all([files, operator, instance]))
}

pub(super) async fn dragonfly_storage_configured(ctx: Ctx) -> CheckResult<Outcome> {
    let ds = dragonflies(&ctx)?;
    let r = rendered(&ctx)?;
    let classes = storage_classes(&r);
    Ok(Outcome::all(ds.iter().map(|d| {
        let object = format!("{} spec.snapshot.persistentVolumeClaimSpec", d.describe());
        let Some(pvc) = d.get("/spec/snapshot/persistentVolumeClaimSpec") else {
            return Outcome::fail(object, "a persistent volume for snapshots", "not set (in-memory only)");
        };
        let sc = pvc.get("storageClassName").and_then(Value::as_str).unwrap_or("");
        let size = pvc.pointer("/resources/requests/storage").map(crate::repo::scalar_text).unwrap_or_default();
        let mut findings = vec![];
        if !classes.contains_key(sc) {
            findings.push(Finding::new(format!("{object}.storageClassName"), format!("a StorageClass rendered on cluster {} ({})", ctx.cluster, classes.keys().cloned().collect::<Vec<_>>().join(", ")), format!("{sc:?}")));
        }
        if size.is_empty() {
            findings.push(Finding::new(format!("{object}.resources.requests.storage"), "a size", "not set"));
        }
        Outcome::from_findings(findings, format!("{object}: class {sc:?} ({}), {size}", classes.get(sc).map(String::as_str).unwrap_or("")))
    })))
}

pub(super) async fn dragonfly_global_service(ctx: Ctx) -> CheckResult<Outcome> {
    let ds = dragonflies(&ctx)?;
    let r = rendered(&ctx)?;
    Ok(Outcome::all(ds.iter().map(|d| {
        let on_cr = key_at(&d.value, "/spec/serviceSpec/annotations", GLOBAL_ANNOTATION).map(crate::repo::scalar_text);
        if on_cr.as_deref() == Some("true") {
            return Outcome::pass(format!("{} spec.serviceSpec.annotations {GLOBAL_ANNOTATION}: \"true\"", d.describe()));
        }
        let svc = objects(&r, "", "Service").into_iter().find(|s| {
            s.namespace() == d.namespace()
                && key_at(&s.value, "/spec/selector", "app").and_then(Value::as_str) == Some(d.name())
                && key_at(&s.value, "/metadata/annotations", GLOBAL_ANNOTATION).map(crate::repo::scalar_text).as_deref() == Some("true")
        });
        match svc {
            Some(s) => Outcome::pass(format!("{} selects {} with {GLOBAL_ANNOTATION}: \"true\"", s.describe(), d.describe())),
            None => Outcome::fail(
                format!("{} spec.serviceSpec.annotations", d.describe()),
                format!("{GLOBAL_ANNOTATION}: \"true\""),
                on_cr.map(|v| format!("{v:?}")).unwrap_or_else(|| "unset".into()),
            ),
        }
    })))
}
