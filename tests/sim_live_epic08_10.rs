//! Live checks of EPIC-8, 9, 10 and the Definition of Done on the local simulation:
//! all pass on the healthy platform; each targeted breakage fails exactly the units it
//! should, naming object, expected and observed. Holds `sim::test_lock` throughout and
//! restores the healthy scenario at the end (also when an assertion fails).
//!
//! The sim has no Velero server and no VolSync mover, so the test plays their part in
//! the object store before the checks read it: `restic init` + `restic backup` (the real
//! restic binary, as the VolSync restic mover runs it) into each cluster's
//! RESTIC_REPOSITORY, and Velero's upload of each Backup (`backups/<name>/velero-backup.json`
//! and `<name>.tar.gz`, Velero's object-store layout, pkg/persistence/object_store_layout.go)
//! into each cluster's BackupStorageLocation bucket. Credentials come from the same Secrets
//! the checks read; none is printed.
//!
//! Units are grouped so that no breakage blocks another's unit: a story failing live
//! blocks its descendants (8.1 -> 8.2 -> EPIC-9, 10.1 -> 10.2, 10.3 -> 10.4) and every
//! live Definition-of-Done item, so those are broken in separate runs.

use std::collections::BTreeMap;
use std::time::Instant;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::{json, Value};

use platform_acceptance::check::Verdict;
use platform_acceptance::runner::{RunConfig, RunReport};
use platform_acceptance::session::Session;
use platform_acceptance::sim::{self, SimConfig};

const STORY_UNITS: &str = "8.1.3,8.1.4,8.2.4,9.1.5,9.1.6,9.2.5,9.3.1,9.3.4,10.1.4,10.1.6,10.2.1,10.2.2,10.3.4,10.3.6,10.4.1,10.4.2";
const DOD_UNITS: &str = "dod.4,dod.5,dod.6,dod.7,dod.13,dod.14";
const MINIO: (&str, u16) = ("10.25.11.3", 9000);
const MANAGER: &str = "platform-acceptance-test";

async fn run(selection: &str, retries: u32) -> RunReport {
    let session = Session::new("fixtures/multi-cluster-epics.md", Some("fixtures/gitops".as_ref())).unwrap();
    let clusters = session.coverage.clusters.clone();
    let targets = platform_acceptance::cluster::sim_targets(&clusters, &BTreeMap::new()).await.unwrap();
    let session = session.with_targets(targets);
    let only = session.selectors(&[selection.to_string()]).unwrap();
    session.run(&only, &[], RunConfig { retries, ..RunConfig::default() }).await
}

fn verdicts(r: &RunReport) -> BTreeMap<String, Verdict> {
    r.results.iter().map(|x| (format!("{} [{}]", x.id, x.cluster), x.outcome.verdict())).collect()
}

fn failing(r: &RunReport) -> Vec<String> {
    let mut v: Vec<String> = r.results.iter().filter(|x| matches!(x.outcome.verdict(), Verdict::Fail | Verdict::Error)).map(|x| format!("{} [{}]", x.id, x.cluster)).collect();
    v.sort();
    v
}

fn message(r: &RunReport, unit: &str) -> String {
    r.results.iter().find(|x| format!("{} [{}]", x.id, x.cluster) == unit).map(|x| x.outcome.details().join("\n")).unwrap_or_default()
}

fn all_messages(r: &RunReport) -> String {
    r.results.iter().filter(|x| x.outcome.verdict() != Verdict::Pass).map(|x| format!("{} [{}] {:?}: {}", x.id, x.cluster, x.outcome.verdict(), x.outcome.details().join(" | "))).collect::<Vec<_>>().join("\n")
}

fn expect_failing(r: &RunReport, want: &[&str], texts: &[(&str, &[&str])]) {
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(failing(r), want, "{}", all_messages(r));
    for (unit, needles) in texts {
        let m = message(r, unit);
        for n in *needles {
            assert!(m.contains(n), "{unit}: {n:?} not in\n{m}");
        }
    }
}

/// Restores the healthy scenario when dropped (also on a failed assertion).
struct Healthy(SimConfig);
impl Drop for Healthy {
    fn drop(&mut self) {
        let cfg = self.0.clone();
        let _ = std::thread::spawn(move || tokio::runtime::Runtime::new().unwrap().block_on(async { sim::scenario::apply(&cfg, "healthy").await })).join();
    }
}

async fn dynamic(client: &kube::Client, group: &str, version: &str, kind: &str, ns: &str) -> Api<DynamicObject> {
    let (ar, _) = kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, kind)).await.unwrap();
    Api::namespaced_with(client.clone(), ns, &ar)
}

/// A broken object and the merge patch that restores it.
struct Broken {
    api: Api<DynamicObject>,
    name: String,
    status: bool,
    restore: Value,
}

/// Breaks one object: `edit` changes its JSON; with `status` the change goes through the
/// status subresource, else annotations/data/status of the object itself (Velero's CRDs
/// have no status subresource).
async fn breakage(client: &kube::Client, gvk: (&str, &str, &str), ns: &str, name: &str, status: bool, edit: impl FnOnce(&mut Value)) -> Broken {
    let api = dynamic(client, gvk.0, gvk.1, gvk.2, ns).await;
    let obj = serde_json::to_value(api.get(name).await.unwrap()).unwrap();
    let mut changed = obj.clone();
    edit(&mut changed);
    let part = |o: &Value| -> Value {
        if status {
            json!({"status": o["status"]})
        } else {
            strip_nulls(json!({"metadata": {"annotations": o["metadata"]["annotations"]}, "data": o.get("data"), "status": o.get("status")}))
        }
    };
    let broken = Broken { api, name: name.into(), status, restore: part(&obj) };
    broken.patch(&part(&changed)).await;
    broken
}

fn strip_nulls(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.retain(|_, x| !x.is_null());
    }
    v
}

impl Broken {
    async fn patch(&self, p: &Value) {
        let pp = PatchParams { field_manager: Some(MANAGER.into()), ..Default::default() };
        if self.status {
            self.api.patch_status(&self.name, &pp, &Patch::Merge(p)).await.unwrap();
        } else {
            self.api.patch(&self.name, &pp, &Patch::Merge(p)).await.unwrap();
        }
    }
    async fn restore(self) {
        self.patch(&self.restore).await;
    }
}

fn set_condition(obj: &mut Value, type_: &str, status: &str, reason: &str, message: &str) {
    let conds = obj["status"]["conditions"].as_array_mut().expect("conditions");
    let c = conds.iter_mut().find(|c| c["type"] == type_).expect("condition present");
    c["status"] = json!(status);
    c["reason"] = json!(reason);
    c["message"] = json!(message);
}

const HR: (&str, &str, &str) = ("helm.toolkit.fluxcd.io", "v2", "HelmRelease");

fn hr_failed(o: &mut Value) {
    set_condition(o, "Ready", "False", "InstallFailed", "Helm install failed: context deadline exceeded");
}

async fn secret(client: &kube::Client, ns: &str, name: &str) -> BTreeMap<String, String> {
    let s = Api::<Secret>::namespaced(client.clone(), ns).get(name).await.unwrap();
    s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned())).collect()
}

fn ini(text: &str) -> (String, String) {
    let get = |k: &str| text.lines().find_map(|l| l.trim().strip_prefix(k).and_then(|r| r.trim().strip_prefix('=')).map(|v| v.trim().to_string())).expect("key in credentials file");
    (get("aws_access_key_id"), get("aws_secret_access_key"))
}

/// The restic mover's job: back up a small file into the cluster's repository.
async fn restic_backup(cfg: &SimConfig, client: &kube::Client, cluster: &str) {
    let s = secret(client, "volsync-system", "volsync-restic-config").await;
    let addr = sim::data::endpoints(cfg).unwrap().resolve(MINIO.0, MINIO.1).unwrap();
    let repo = s["RESTIC_REPOSITORY"].replace(&format!("{}:{}", MINIO.0, MINIO.1), &addr.to_string());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.txt"), format!("volsync test data of {cluster}\n")).unwrap();
    let restic = |args: &[&str]| {
        std::process::Command::new("restic")
            .args(args)
            .env("RESTIC_REPOSITORY", &repo)
            .env("RESTIC_PASSWORD", &s["RESTIC_PASSWORD"])
            .env("AWS_ACCESS_KEY_ID", &s["AWS_ACCESS_KEY_ID"])
            .env("AWS_SECRET_ACCESS_KEY", &s["AWS_SECRET_ACCESS_KEY"])
            .env("RESTIC_CACHE_DIR", dir.path().join(".cache"))
            .output()
            .expect("restic is installed (apt-get install restic)")
    };
    let init = restic(&["init"]);
    let err = String::from_utf8_lossy(&init.stderr);
    assert!(init.status.success() || err.contains("already"), "restic init on {cluster} failed (exit {:?})", init.status.code());
    let backup = restic(&["backup", "--host", &format!("sim-{cluster}"), dir.path().join("data.txt").to_str().unwrap()]);
    assert!(backup.status.success(), "restic backup on {cluster} failed (exit {:?})", backup.status.code());
}

async fn s3_for_velero(cfg: &SimConfig, client: &kube::Client) -> (aws_sdk_s3::Client, String) {
    let (id, key) = ini(&secret(client, "velero", "velero-minio").await["cloud"]);
    let addr = sim::data::endpoints(cfg).unwrap().resolve(MINIO.0, MINIO.1).unwrap();
    let bsl = dynamic(client, "velero.io", "v1", "BackupStorageLocation", "velero").await.get("default").await.unwrap();
    let bucket = bsl.data.pointer("/spec/objectStorage/bucket").and_then(Value::as_str).unwrap().to_string();
    (sim::data::s3_client(addr, &id, &key), bucket)
}

/// Velero's upload of every Backup of the cluster (what the server writes after a backup).
async fn velero_upload(cfg: &SimConfig, client: &kube::Client) {
    let (s3, bucket) = s3_for_velero(cfg, client).await;
    let backups = dynamic(client, "velero.io", "v1", "Backup", "velero").await.list(&ListParams::default()).await.unwrap();
    assert!(!backups.items.is_empty(), "the healthy scenario has Velero Backups");
    for b in backups {
        let name = b.metadata.name.clone().unwrap();
        let body = serde_json::to_vec(&b).unwrap();
        // an empty gzip stream stands in for the resource tarball
        let tarball = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        for (key, data) in [(format!("backups/{name}/velero-backup.json"), body), (format!("backups/{name}/{name}.tar.gz"), tarball)] {
            s3.put_object().bucket(&bucket).key(key).body(data.into()).send().await.unwrap();
        }
    }
}

async fn delete_prefix(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> usize {
    let keys: Vec<String> = s3.list_objects_v2().bucket(bucket).prefix(prefix).send().await.unwrap().contents().iter().filter_map(|o| o.key().map(String::from)).collect();
    for k in &keys {
        s3.delete_object().bucket(bucket).key(k).send().await.unwrap();
    }
    keys.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn epic08_10_and_dod_live_checks_on_the_simulation() {
    if std::env::var("PA_SIM_TESTS").as_deref() == Ok("0") {
        println!("skipped because PA_SIM_TESTS=0");
        return;
    }
    let t0 = Instant::now();
    let cfg = SimConfig::from_env();
    let _lock = sim::test_lock(&cfg).await.unwrap();
    sim::up(&cfg).await.unwrap();
    sim::data::start(&cfg).await.unwrap();
    let _healthy = Healthy(cfg.clone());
    sim::scenario::apply(&cfg, "healthy").await.unwrap();
    let infra = sim::client(&cfg, "infra").await.unwrap();
    let apps = sim::client(&cfg, "apps").await.unwrap();
    for (c, client) in [("infra", &infra), ("apps", &apps)] {
        restic_backup(&cfg, client, c).await;
        velero_upload(&cfg, client).await;
    }
    eprintln!("setup {:.1}s", t0.elapsed().as_secs_f64());

    // ---- A: healthy - every unit passes.
    let all = format!("{STORY_UNITS},{DOD_UNITS}");
    let r = run(&all, 1).await;
    assert!(failing(&r).is_empty(), "healthy platform failed:\n{}", all_messages(&r));
    let v = verdicts(&r);
    for (unit, verdict) in &v {
        assert_eq!(*verdict, Verdict::Pass, "{unit}: {}", message(&r, unit));
    }
    assert_eq!(v.len(), 16 + 12, "{v:?}");
    eprintln!("A healthy {:.1}s", t0.elapsed().as_secs_f64());

    // ---- B: infra Velero and the Keycloak route (scenario backup-missing + patches).
    sim::scenario::apply(&cfg, "backup-missing").await.unwrap();
    let route = breakage(&infra, ("gateway.networking.k8s.io", "v1", "HTTPRoute"), "auth", "keycloak", true, |o| {
        for p in o["status"]["parents"].as_array_mut().unwrap() {
            let c = p["conditions"].as_array_mut().unwrap().iter_mut().find(|c| c["type"] == "Accepted").unwrap();
            c["status"] = json!("False");
            c["reason"] = json!("NotAllowedByListeners");
        }
    })
    .await;
    let bsl = breakage(&infra, ("velero.io", "v1", "BackupStorageLocation"), "velero", "default", false, |o| o["status"]["phase"] = json!("Unavailable")).await;
    let r = run("8.2.4,10.3.4,10.3.6,dod.6", 0).await;
    expect_failing(
        &r,
        &["8.2.4 [infra]", "10.3.4 [infra]", "10.3.6 [infra]", "dod.6 [infra]"],
        &[
            ("8.2.4 [infra]", &["HTTPRoute auth/keycloak (gateway.networking.k8s.io/v1) (cluster infra) parent networking/external (https): expected Accepted=True, observed Accepted=False (NotAllowedByListeners)"]),
            ("10.3.4 [infra]", &["BackupStorageLocation velero/default (velero.io/v1) (cluster infra) status.phase: expected Available, observed \"Unavailable\""]),
            ("10.3.6 [infra]", &["Velero Backups in velero (cluster infra): expected a Backup with status.phase Completed, observed no Backups"]),
            ("dod.6 [infra]", &["10.3.6 [infra] Test backup created successfully: expected passed, observed fail"]),
        ],
    );
    assert_eq!(verdicts(&r)["dod.6 [apps]"], Verdict::Skip);
    route.restore().await;
    bsl.restore().await;
    eprintln!("B {:.1}s", t0.elapsed().as_secs_f64());

    // ---- C: the Keycloak operator (alone: a failed 8.1 blocks 8.2 and EPIC-9).
    let hr = breakage(&infra, HR, "auth", "keycloak-operator", true, hr_failed).await;
    let kc = breakage(&infra, ("k8s.keycloak.org", "v2alpha1", "Keycloak"), "auth", "keycloak", true, |o| set_condition(o, "HasErrors", "True", "", "database connection refused")).await;
    let r = run("8.1.3,8.1.4", 0).await;
    expect_failing(
        &r,
        &["8.1.3 [infra]", "8.1.4 [infra]"],
        &[
            ("8.1.3 [infra]", &["HelmRelease auth/keycloak-operator (helm.toolkit.fluxcd.io/v2) (cluster infra): expected Ready=True, observed Ready=False (InstallFailed"]),
            ("8.1.4 [infra]", &["Keycloak auth/keycloak (k8s.keycloak.org/v2alpha1) (cluster infra): expected HasErrors=False, observed HasErrors=True (database connection refused)"]),
        ],
    );
    hr.restore().await;
    kc.restore().await;
    eprintln!("C {:.1}s", t0.elapsed().as_secs_f64());

    // ---- D: VolSync on infra: release failed; restic repository without snapshots.
    let hr = breakage(&infra, HR, "volsync-system", "volsync", true, hr_failed).await;
    let s = secret(&infra, "volsync-system", "volsync-restic-config").await;
    let addr = sim::data::endpoints(&cfg).unwrap().resolve(MINIO.0, MINIO.1).unwrap();
    let s3 = sim::data::s3_client(addr, &s["AWS_ACCESS_KEY_ID"], &s["AWS_SECRET_ACCESS_KEY"]);
    assert!(delete_prefix(&s3, "volsync-infra", "volsync-test/snapshots/").await > 0);
    let r = run("10.1.4,10.1.6", 0).await;
    expect_failing(
        &r,
        &["10.1.4 [infra]", "10.1.6 [infra]"],
        &[
            ("10.1.4 [infra]", &["HelmRelease volsync-system/volsync (helm.toolkit.fluxcd.io/v2) (cluster infra): expected Ready=True, observed Ready=False (InstallFailed"]),
            ("10.1.6 [infra]", &["restic repository s3://volsync-infra/volsync-test/ at http://10.25.11.3:9000", "expected at least one snapshot (snapshots/<id>), observed no snapshots"]),
        ],
    );
    hr.restore().await;
    restic_backup(&cfg, &infra, "infra").await;
    eprintln!("D {:.1}s", t0.elapsed().as_secs_f64());

    // ---- E: the apps cluster's applications, VolSync and Velero.
    let mut broken = vec![];
    for (ns, name) in [("gitlab", "gitlab"), ("harbor", "harbor"), ("mattermost-operator", "mattermost-operator"), ("volsync-system", "volsync")] {
        broken.push(breakage(&apps, HR, ns, name, true, hr_failed).await);
    }
    broken.push(
        breakage(&apps, ("gateway.networking.k8s.io", "v1", "HTTPRoute"), "gitlab", "gitlab-kas", true, |o| {
            for p in o["status"]["parents"].as_array_mut().unwrap() {
                let c = p["conditions"].as_array_mut().unwrap().iter_mut().find(|c| c["type"] == "ResolvedRefs").unwrap();
                c["status"] = json!("False");
                c["reason"] = json!("BackendNotFound");
            }
        })
        .await,
    );
    broken.push(breakage(&apps, ("installation.mattermost.com", "v1beta1", "Mattermost"), "mattermost", "mattermost", true, |o| o["status"]["state"] = json!("reconciling")).await);
    broken.push(
        breakage(&apps, ("volsync.backube", "v1alpha1", "ReplicationSource"), "volsync-system", "volsync-test", true, |o| {
            o["status"]["latestMoverStatus"]["result"] = json!("Failed");
            set_condition(o, "Synchronizing", "False", "Error", "restic: unable to open repository");
        })
        .await,
    );
    broken.push(breakage(&apps, ("velero.io", "v1", "BackupStorageLocation"), "velero", "default", false, |o| o["status"]["phase"] = json!("Unavailable")).await);
    let (vs3, vbucket) = s3_for_velero(&cfg, &apps).await;
    assert_eq!(delete_prefix(&vs3, &vbucket, "backups/weekly-backup-20260104020000/velero-backup.json").await, 1);
    let r = run("9.1.5,9.1.6,9.2.5,9.3.1,9.3.4,10.2.1,10.2.2,10.4.1,10.4.2,dod.6", 0).await;
    expect_failing(
        &r,
        &["9.1.5 [apps]", "9.1.6 [apps]", "9.2.5 [apps]", "9.3.1 [apps]", "9.3.4 [apps]", "10.2.1 [apps]", "10.2.2 [apps]", "10.4.1 [apps]", "10.4.2 [apps]", "dod.6 [apps]"],
        &[
            ("9.1.5 [apps]", &["HelmRelease gitlab/gitlab (helm.toolkit.fluxcd.io/v2) (cluster apps): expected Ready=True, observed Ready=False"]),
            ("9.1.6 [apps]", &["HTTPRoute gitlab/gitlab-kas (gateway.networking.k8s.io/v1) (cluster apps) parent networking/external (https): expected ResolvedRefs=True, observed ResolvedRefs=False (BackendNotFound)"]),
            ("9.2.5 [apps]", &["HelmRelease harbor/harbor"]),
            ("9.3.1 [apps]", &["HelmRelease mattermost-operator/mattermost-operator"]),
            ("9.3.4 [apps]", &["Mattermost mattermost/mattermost (installation.mattermost.com/v1beta1) (cluster apps) status.state: expected stable, observed \"reconciling\""]),
            ("10.2.1 [apps]", &["HelmRelease volsync-system/volsync"]),
            (
                "10.2.2 [apps]",
                &[
                    "ReplicationSource volsync-system/volsync-test (volsync.backube/v1alpha1) (cluster apps) status.latestMoverStatus.result: expected Successful, observed \"Failed\"",
                    "condition Synchronizing: expected a reason other than Error, observed Error: restic: unable to open repository",
                ],
            ),
            ("10.4.1 [apps]", &["BackupStorageLocation velero/default (velero.io/v1) (cluster apps) status.phase: expected Available, observed \"Unavailable\""]),
            ("10.4.2 [apps]", &["Backup velero/weekly-backup-20260104020000 (velero.io/v1) in s3://velero-apps/backups/weekly-backup-20260104020000/", "expected velero-backup.json (the backup's metadata, uploaded by Velero), observed 1 other object(s)"]),
            ("dod.6 [apps]", &["9.3.4 [apps] Deployed on apps cluster: expected passed, observed fail"]),
        ],
    );
    assert_eq!(verdicts(&r)["dod.6 [infra]"], Verdict::Skip, "{}", message(&r, "dod.6 [infra]"));
    for b in broken {
        b.restore().await;
    }
    velero_upload(&cfg, &apps).await;
    eprintln!("E {:.1}s", t0.elapsed().as_secs_f64());

    // ---- F: the Definition of Done's live items (no story selected, so nothing blocks them).
    sim::scenario::apply(&cfg, "cni-down").await.unwrap();
    let ks = breakage(&apps, ("kustomize.toolkit.fluxcd.io", "v1", "Kustomization"), "flux-system", "cluster-apps-workloads", true, |o| {
        set_condition(o, "Ready", "False", "ReconciliationFailed", "HelmRelease/gitlab/gitlab dry-run failed");
    })
    .await;
    let cm = breakage(&apps, ("", "v1", "ConfigMap"), "kube-system", "cilium-config", false, |o| o["data"]["cluster-id"] = json!("1")).await;
    let df = breakage(&infra, ("multicluster.x-k8s.io", "v1alpha1", "ServiceExport"), "databases", "dragonfly", true, |o| {
        set_condition(o, "Conflict", "True", "PortConflict", "port 6379 conflicts with the export in cluster apps");
    })
    .await;
    let velero_hr = breakage(&infra, HR, "velero", "velero", true, hr_failed).await;
    let r = run(DOD_UNITS, 0).await;
    expect_failing(
        &r,
        &["dod.4 [apps]", "dod.5 [infra]", "dod.7 [apps]", "dod.13 [infra]", "dod.14 [apps]"],
        &[
            ("dod.4 [apps]", &["Kustomization flux-system/cluster-apps-workloads (kustomize.toolkit.fluxcd.io/v1) (cluster apps): expected Ready=True, observed Ready=False (ReconciliationFailed"]),
            ("dod.5 [infra]", &["DaemonSet kube-system/cilium (cluster infra): expected numberReady = desiredNumberScheduled", "Pod kube-system/cilium-"]),
            ("dod.7 [apps]", &["ServiceExport databases/dragonfly (cluster infra) (for dragonfly.databases.svc.clusterset.local", "expected Valid=True and Conflict not True, observed invalid or in conflict (port 6379 conflicts with the export in cluster apps)"]),
            ("dod.13 [infra]", &["HelmRelease velero/velero (helm.toolkit.fluxcd.io/v2) (cluster infra): expected Ready=True, observed Ready=False (InstallFailed"]),
            ("dod.14 [apps]", &["ConfigMap kube-system/cilium-config (cluster apps) data.cluster-id: expected \"2\"", "observed \"1\""]),
        ],
    );
    assert_eq!(verdicts(&r)["dod.6 [apps]"], Verdict::Skip);
    for b in [ks, cm, df, velero_hr] {
        b.restore().await;
    }
    eprintln!("F {:.1}s", t0.elapsed().as_secs_f64());

    // ---- back to healthy: everything passes again.
    sim::scenario::apply(&cfg, "healthy").await.unwrap();
    let r = run(&all, 1).await;
    assert!(failing(&r).is_empty(), "healthy not restored:\n{}", all_messages(&r));
    eprintln!("total {:.1}s", t0.elapsed().as_secs_f64());
}
