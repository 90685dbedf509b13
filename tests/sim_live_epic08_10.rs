//! Live checks of EPIC-8, 9, 10 and the Definition of Done on the local simulation:
//! all pass on the healthy platform; each targeted breakage fails exactly the units it
//! should, naming object, expected and observed. Runs in the shared simulation fixture
//! (lock held; healthy scenario restored at the end, also when an assertion fails).
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

mod support;

use std::time::Instant;

use kube::ResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{json, Value};

use platform_acceptance::check::Verdict;
use platform_acceptance::cluster::lease::RUN_LABEL;
use platform_acceptance::sim;
use support::ReportExt;
use support::sim::{MANAGER, SimFixture, retries, wait_for, wait_phase};

const STORY_UNITS: &str = "8.1.3,8.1.4,8.2.4,9.1.5,9.1.6,9.2.5,9.3.1,9.3.4,10.1.4,10.1.6,10.2.1,10.2.2,10.3.4,10.3.6,10.4.1,10.4.2";
const DOD_UNITS: &str = "dod.4,dod.5,dod.6,dod.7,dod.13,dod.14";
const MINIO: (&str, u16) = ("10.25.11.3", 9000);

/// A broken object and the merge patch that restores it.
struct Broken {
    api: Api<DynamicObject>,
    name: String,
    status: bool,
    restore: Value,
}

/// Breaks one object (`kind`: apiVersion and kind): `edit` changes its JSON; with `status`
/// the change goes through the status subresource, else annotations/data/status of the
/// object itself (Velero's CRDs have no status subresource).
async fn breakage(fx: &SimFixture, cluster: &str, kind: (&str, &str), ns: &str, name: &str, status: bool, edit: impl FnOnce(&mut Value)) -> Broken {
    let api = fx.dynamic(cluster, kind.0, kind.1, Some(ns)).await;
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

const HR: (&str, &str) = ("helm.toolkit.fluxcd.io/v2", "HelmRelease");

fn hr_failed(o: &mut Value) {
    set_condition(o, "Ready", "False", "InstallFailed", "Helm install failed: context deadline exceeded");
}

/// The restic mover's job: back up a small file into the cluster's repository.
async fn restic_backup(fx: &SimFixture, cluster: &str) {
    let s = fx.secret(cluster, "volsync-system", "volsync-restic-config").await;
    let addr = fx.endpoints().resolve(MINIO.0, MINIO.1).unwrap();
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

async fn delete_prefix(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> usize {
    let keys: Vec<String> = s3.list_objects_v2().bucket(bucket).prefix(prefix).send().await.unwrap().contents().iter().filter_map(|o| o.key().map(String::from)).collect();
    for k in &keys {
        s3.delete_object().bucket(bucket).key(k).send().await.unwrap();
    }
    keys.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn epic08_10_and_dod_live_checks_on_the_simulation() {
    let t0 = Instant::now();
    let Some(fx) = SimFixture::start("epic08_10_and_dod_live_checks_on_the_simulation").await else { return };
    for c in ["infra", "apps"] {
        restic_backup(&fx, c).await;
    }
    eprintln!("setup {:.1}s", t0.elapsed().as_secs_f64());

    // ---- A: healthy - every unit passes.
    let all = format!("{STORY_UNITS},{DOD_UNITS}");
    let r = fx.run_with(&all, retries(1)).await;
    r.expect_all_pass();
    assert_eq!(r.verdicts().len(), 16 + 12, "{:?}", r.verdicts());
    // The applications' pages answered through the Gateways, over their listeners' certificates.
    for (unit, get) in [("8.2.4 [infra]", "GET https://keycloak."), ("9.1.6 [apps]", "GET https://gitlab.")] {
        let m = r.message(unit);
        assert!(m.contains(get) && m.contains("through Gateway networking/external at 10.25.11.") && m.contains(": 200, the page names"), "{unit}: {m}");
    }
    eprintln!("A healthy {:.1}s", t0.elapsed().as_secs_f64());

    // ---- B: infra Velero and the Keycloak route (scenario backup-missing + patches).
    fx.scenario("backup-missing").await;
    let route = breakage(&fx, "infra", ("gateway.networking.k8s.io/v1", "HTTPRoute"), "auth", "keycloak", true, |o| {
        for p in o["status"]["parents"].as_array_mut().unwrap() {
            let c = p["conditions"].as_array_mut().unwrap().iter_mut().find(|c| c["type"] == "Accepted").unwrap();
            c["status"] = json!("False");
            c["reason"] = json!("NotAllowedByListeners");
        }
    })
    .await;
    // A real fault for the real Velero server: its storage location names a bucket MinIO
    // does not have; Velero's own validation (every 30 s here) marks it Unavailable.
    let bsls = fx.dynamic("infra", "velero.io/v1", "BackupStorageLocation", Some("velero")).await;
    let pp = PatchParams { field_manager: Some(MANAGER.into()), ..Default::default() };
    let bucket = bsls.get("default").await.unwrap().data["spec"]["objectStorage"]["bucket"].clone();
    bsls.patch("default", &pp, &Patch::Merge(json!({"spec": {"objectStorage": {"bucket": "no-such-bucket"}}}))).await.unwrap();
    wait_phase(&bsls, "default", Some("Unavailable"), std::time::Duration::from_secs(90), "Velero did not mark the storage location Unavailable within 90s").await;
    let r = fx.run("8.2.4,10.3.4,10.3.6,dod.6").await;
    r.expect_failing(&["8.2.4 [infra]", "10.3.4 [infra]", "10.3.6 [infra]", "dod.6 [infra]"])
        .expect_message("8.2.4 [infra]", &[
            "HTTPRoute auth/keycloak (gateway.networking.k8s.io/v1) (cluster infra) parent networking/external (https): expected Accepted=True, observed Accepted=False (NotAllowedByListeners)",
            // The Gateway does not serve a route it did not accept: no route for the host.
            "/admin/master/console/ through Gateway networking/external at 10.25.11.120:443 (from cluster infra): expected 200 and a page naming Keycloak, observed 404",
        ])
        .expect_message("10.3.4 [infra]", &["BackupStorageLocation velero/default (velero.io/v1) (cluster infra) status.phase: expected Available, observed \"Unavailable\"", "NoSuchBucket: The specified bucket does not exist"])
        .expect_message("10.3.6 [infra]", &["(cluster infra): expected Completed, observed FailedValidation (backup can't be created because BackupStorageLocation default is in Unavailable status.); storage location default Unavailable", "NoSuchBucket"])
        .expect_message("dod.6 [infra]", &["10.3.6 [infra] Test backup created successfully: expected passed, observed fail"]);
    assert_eq!(r.verdict("dod.6 [apps]"), Verdict::Skip);
    route.restore().await;
    bsls.patch("default", &pp, &Patch::Merge(json!({"spec": {"objectStorage": {"bucket": bucket}}}))).await.unwrap();
    wait_phase(&bsls, "default", Some("Available"), std::time::Duration::from_secs(120), "Velero did not mark the storage location Available again").await;
    // A bucket that denies writes to Velero: MinIO decides by the policies of the user a
    // request logs in as (it applies bucket policies to anonymous requests only), and
    // Velero logs in as a user of its own (Secret velero/velero-minio). A policy denying
    // PutObject in the bucket, beside readwrite: the location still validates (reads are
    // allowed), and Velero's upload of the test backup is refused, in MinIO's and Velero's
    // own words.
    let bucket_name = bucket.as_str().unwrap().to_string();
    let deny = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": ["s3:PutObject"], "Resource": [format!("arn:aws:s3:::{bucket_name}/*")]}]});
    sim::data::set_minio_policy(fx.cfg(), "deny-writes-velero", &deny.to_string()).await.unwrap();
    sim::data::set_minio_user_policies(fx.cfg(), "velero-minio-infra", &["readwrite", "deny-writes-velero"]).await.unwrap();
    let r = fx.run("10.3.6").await;
    sim::data::set_minio_user_policies(fx.cfg(), "velero-minio-infra", &["readwrite"]).await.unwrap();
    r.expect_failing(&["10.3.6 [infra]"]).expect_message("10.3.6 [infra]", &["(cluster infra): expected Completed, observed Failed", "Access Denied"]);
    // On apps a location in read-only mode (a restore-only location): Velero refuses new
    // backups there, while the disaster-recovery restore of infra's backup still works.
    let apps_bsls = fx.dynamic("apps", "velero.io/v1", "BackupStorageLocation", Some("velero")).await;
    apps_bsls.patch("default", &pp, &Patch::Merge(json!({"spec": {"accessMode": "ReadOnly"}}))).await.unwrap();
    let r = fx.run("10.4.2").await;
    r.expect_failing(&["10.4.2 [apps]"])
        .expect_message("10.4.2 [apps]", &["(cluster apps): expected Completed, observed FailedValidation (backup can't be created because backup storage location default is currently in read-only mode)"]);
    // The one finding: the Schedules' Backups and the restore of infra's backup still hold.
    let unit = r.units().into_iter().find(|u| u.id == "10.4.2").unwrap();
    assert_eq!(unit.outcome.details().len(), 1, "{:?}", unit.outcome.details());
    apps_bsls.patch("default", &pp, &Patch::Merge(json!({"spec": {"accessMode": "ReadWrite"}}))).await.unwrap();
    // The round trips cleaned up after themselves, also after failing: no Backup, Restore or
    // disposable namespace of this run is left (Velero deletes Backups it was asked to).
    for c in ["infra", "apps"] {
        let restores = fx.dynamic(c, "velero.io/v1", "Restore", Some("velero")).await;
        assert!(restores.list(&Default::default()).await.unwrap().items.iter().all(|o| !o.labels().contains_key(RUN_LABEL)), "Restores of runs left on {c}");
    }
    // The Gateway's certificate from an issuer the check does not trust: the listener
    // Secret's `ca.crt` (what the check trusts besides the system roots) names another CA.
    let tls = fx.secret("infra", "networking", "wildcard-infra-tls").await;
    let other_key = rcgen::KeyPair::generate().unwrap();
    let mut other = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    other.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    other.distinguished_name.push(rcgen::DnType::CommonName, "some other CA");
    fx.set_secret_key("infra", "networking", "wildcard-infra-tls", "ca.crt", &other.self_signed(&other_key).unwrap().pem()).await;
    let r = fx.run("8.2.4").await;
    fx.set_secret_key("infra", "networking", "wildcard-infra-tls", "ca.crt", &tls["ca.crt"]).await;
    r.expect_failing(&["8.2.4 [infra]"]).expect_message("8.2.4 [infra]", &[
        "https://keycloak.monosense.io/admin/master/console/ through Gateway networking/external at 10.25.11.120:443 (from cluster infra): expected a certificate valid for keycloak.monosense.io, from a trusted issuer",
        "UnknownIssuer",
    ]);
    eprintln!("B {:.1}s", t0.elapsed().as_secs_f64());

    // ---- C: the Keycloak operator (alone: a failed 8.1 blocks 8.2 and EPIC-9). A real
    // fault for the real Flux: the registry serves, under the same tag, an app-template
    // chart that Helm cannot render; source-controller pulls the new digest when asked, and
    // helm-controller's upgrade of the operator's release fails in Helm's words.
    let chart = sim::charts::Chart { repo_url: "oci://ghcr.io/bjw-s-labs/helm/app-template".into(), name: "app-template".into(), version: "3.7.3".into() };
    sim::charts::serve_failing_chart(fx.cfg(), &chart, "platform-acceptance: a chart that does not render").unwrap();
    let sources = fx.dynamic("infra", "source.toolkit.fluxcd.io/v1", "OCIRepository", Some("flux-system")).await;
    sources.patch("app-template", &PatchParams::default(), &Patch::Merge(&sim::scenario::reconcile_request(false))).await.unwrap();
    let hrs = fx.dynamic("infra", HR.0, HR.1, Some("auth")).await;
    let failed = |o: Option<&DynamicObject>| o.and_then(|o| o.data["status"]["conditions"].as_array()).is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "False"));
    wait_for(&hrs, "keycloak-operator", failed, std::time::Duration::from_secs(120), "helm-controller did not fail the upgrade of auth/keycloak-operator within 120s").await;
    let kc = breakage(&fx, "infra", ("k8s.keycloak.org/v2alpha1", "Keycloak"), "auth", "keycloak", true, |o| set_condition(o, "HasErrors", "True", "", "database connection refused")).await;
    let r = fx.run("8.1.3,8.1.4").await;
    r.expect_failing(&["8.1.3 [infra]", "8.1.4 [infra]"])
        .expect_message("8.1.3 [infra]", &["HelmRelease auth/keycloak-operator (helm.toolkit.fluxcd.io/v2) (cluster infra): expected Ready=True, observed Ready=False", "a chart that does not render"])
        .expect_message("8.1.4 [infra]", &["Keycloak auth/keycloak (k8s.keycloak.org/v2alpha1) (cluster infra): expected HasErrors=False, observed HasErrors=True (database connection refused)"]);
    kc.restore().await;
    // The scenario serves the charts again; its wait pulls the served digest and upgrades.
    fx.scenario("healthy").await;
    eprintln!("C {:.1}s", t0.elapsed().as_secs_f64());

    // ---- D: VolSync on infra: release failed; restic repository without snapshots.
    let hr = breakage(&fx, "infra", HR, "volsync-system", "volsync", true, hr_failed).await;
    let s = fx.secret("infra", "volsync-system", "volsync-restic-config").await;
    let addr = fx.endpoints().resolve(MINIO.0, MINIO.1).unwrap();
    let s3 = sim::data::s3_client(addr, &s["AWS_ACCESS_KEY_ID"], &s["AWS_SECRET_ACCESS_KEY"]);
    assert!(delete_prefix(&s3, "volsync-infra", "volsync-test/snapshots/").await > 0);
    let r = fx.run("10.1.4,10.1.6").await;
    r.expect_failing(&["10.1.4 [infra]", "10.1.6 [infra]"])
        .expect_message("10.1.4 [infra]", &["HelmRelease volsync-system/volsync (helm.toolkit.fluxcd.io/v2) (cluster infra): expected Ready=True, observed Ready=False (InstallFailed"])
        .expect_message("10.1.6 [infra]", &["restic repository s3://volsync-infra/volsync-test/ at http://10.25.11.3:9000", "expected at least one snapshot (snapshots/<id>), observed no snapshots"]);
    hr.restore().await;
    restic_backup(&fx, "infra").await;
    eprintln!("D {:.1}s", t0.elapsed().as_secs_f64());

    // ---- E: the apps cluster's applications, VolSync and Velero.
    let mut broken = vec![];
    for (ns, name) in [("gitlab", "gitlab"), ("harbor", "harbor"), ("mattermost-operator", "mattermost-operator"), ("volsync-system", "volsync")] {
        broken.push(breakage(&fx, "apps", HR, ns, name, true, hr_failed).await);
    }
    broken.push(
        breakage(&fx, "apps", ("gateway.networking.k8s.io/v1", "HTTPRoute"), "gitlab", "gitlab-kas", true, |o| {
            for p in o["status"]["parents"].as_array_mut().unwrap() {
                let c = p["conditions"].as_array_mut().unwrap().iter_mut().find(|c| c["type"] == "ResolvedRefs").unwrap();
                c["status"] = json!("False");
                c["reason"] = json!("BackendNotFound");
            }
        })
        .await,
    );
    broken.push(breakage(&fx, "apps", ("installation.mattermost.com/v1beta1", "Mattermost"), "mattermost", "mattermost", true, |o| o["status"]["state"] = json!("reconciling")).await);
    // GitLab's web UI without a pod: the Gateway has no healthy upstream for the route.
    fx.scale("apps", "gitlab", "gitlab-webservice-default", 0).await;
    fx.wait_not_ready("apps", "Deployment", "gitlab", "gitlab-webservice-default").await;
    // Velero on apps is the real server: its storage-location fault is exercised on infra (part B).
    // (10.2.2 is not provable here; its failures are shown on constructed states below.)
    let r = fx.run("9.1.5,9.1.6,9.2.5,9.3.1,9.3.4,10.2.1,dod.6").await;
    r.expect_failing(&["9.1.5 [apps]", "9.1.6 [apps]", "9.2.5 [apps]", "9.3.1 [apps]", "9.3.4 [apps]", "10.2.1 [apps]", "dod.6 [apps]"])
        .expect_message("9.1.5 [apps]", &["HelmRelease gitlab/gitlab (helm.toolkit.fluxcd.io/v2) (cluster apps): expected Ready=True, observed Ready=False"])
        .expect_message("9.1.6 [apps]", &[
            "HTTPRoute gitlab/gitlab-kas (gateway.networking.k8s.io/v1) (cluster apps) parent networking/external (https): expected ResolvedRefs=True, observed ResolvedRefs=False (BackendNotFound)",
            "/users/sign_in through Gateway networking/external at 10.25.11.170:443 (from cluster apps): expected 200 and a page naming GitLab, observed 503 no healthy upstream",
        ])
        .expect_message("9.2.5 [apps]", &["HelmRelease harbor/harbor"])
        .expect_message("9.3.1 [apps]", &["HelmRelease mattermost-operator/mattermost-operator"])
        .expect_message("9.3.4 [apps]", &["Mattermost mattermost/mattermost (installation.mattermost.com/v1beta1) (cluster apps) status.state: expected stable, observed \"reconciling\""])
        .expect_message("10.2.1 [apps]", &["HelmRelease volsync-system/volsync"])
        .expect_message("dod.6 [apps]", &["9.3.4 [apps] Deployed on apps cluster: expected passed, observed fail"]);
    assert_eq!(r.verdict("dod.6 [infra]"), Verdict::Skip, "{}", r.message("dod.6 [infra]"));
    for b in broken {
        b.restore().await;
    }
    fx.scale("apps", "gitlab", "gitlab-webservice-default", 2).await;
    fx.wait_ready("apps", "Deployment", "gitlab", "gitlab-webservice-default").await;
    eprintln!("E {:.1}s", t0.elapsed().as_secs_f64());

    // ---- F: the Definition of Done's live items (no story selected, so nothing blocks them).
    fx.scenario("cni-down").await;
    let ks = breakage(&fx, "apps", ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"), "flux-system", "cluster-apps-workloads", true, |o| {
        set_condition(o, "Ready", "False", "ReconciliationFailed", "HelmRelease/gitlab/gitlab dry-run failed");
    })
    .await;
    let cm = breakage(&fx, "apps", ("v1", "ConfigMap"), "kube-system", "cilium-config", false, |o| o["data"]["cluster-id"] = json!("1")).await;
    let df = breakage(&fx, "infra", ("multicluster.x-k8s.io/v1alpha1", "ServiceExport"), "databases", "dragonfly", true, |o| {
        set_condition(o, "Conflict", "True", "PortConflict", "port 6379 conflicts with the export in cluster apps");
    })
    .await;
    let velero_hr = breakage(&fx, "infra", HR, "velero", "velero", true, hr_failed).await;
    let r = fx.run(DOD_UNITS).await;
    r.expect_failing(&["dod.4 [apps]", "dod.5 [infra]", "dod.7 [apps]", "dod.13 [infra]", "dod.14 [apps]"])
        .expect_message("dod.4 [apps]", &["Kustomization flux-system/cluster-apps-workloads (kustomize.toolkit.fluxcd.io/v1) (cluster apps): expected Ready=True, observed Ready=False (ReconciliationFailed"])
        .expect_message("dod.5 [infra]", &["DaemonSet kube-system/cilium (cluster infra): expected numberReady = desiredNumberScheduled", "Pod kube-system/cilium-"])
        .expect_message("dod.7 [apps]", &["ServiceExport databases/dragonfly (cluster infra) (for dragonfly.databases.svc.clusterset.local", "expected Valid=True and Conflict not True, observed invalid or in conflict (port 6379 conflicts with the export in cluster apps)"])
        .expect_message("dod.13 [infra]", &["HelmRelease velero/velero (helm.toolkit.fluxcd.io/v2) (cluster infra): expected Ready=True, observed Ready=False (InstallFailed"])
        .expect_message("dod.14 [apps]", &["ConfigMap kube-system/cilium-config (cluster apps) data.cluster-id: expected \"2\"", "observed \"1\""]);
    assert_eq!(r.verdict("dod.6 [apps]"), Verdict::Skip);
    for b in [ks, cm, df, velero_hr] {
        b.restore().await;
    }
    eprintln!("F {:.1}s", t0.elapsed().as_secs_f64());

    // ---- back to healthy: everything passes again.
    fx.restore().await;
    fx.run_with(&all, retries(1)).await.expect_none_failing();
    eprintln!("total {:.1}s", t0.elapsed().as_secs_f64());
}

/// The newest restic snapshot of `cluster`'s VolSync test repository: its full id.
async fn newest_snapshot(fx: &SimFixture, cluster: &str) -> String {
    let s = fx.secret(cluster, "volsync-system", "volsync-restic-config").await;
    let addr = fx.endpoints().resolve(MINIO.0, MINIO.1).unwrap();
    let path = s["RESTIC_REPOSITORY"].split_once(&format!("{}:{}/", MINIO.0, MINIO.1)).unwrap().1.to_string();
    let (bucket, prefix) = path.split_once('/').unwrap();
    let s3 = sim::data::s3_client(addr, &s["AWS_ACCESS_KEY_ID"], &s["AWS_SECRET_ACCESS_KEY"]);
    let listed = s3.list_objects_v2().bucket(bucket).prefix(format!("{prefix}/snapshots/")).send().await.unwrap();
    let newest = listed.contents().iter().max_by_key(|o| o.last_modified().map(|t| t.secs())).unwrap();
    newest.key().unwrap().rsplit('/').next().unwrap().to_string()
}

/// Answers every ReplicationDestination of a run on `cluster` the way VolSync does when its
/// restic mover ends: `lastManualSync` set to the trigger, the mover's result and log tail.
fn play_volsync(fx: &SimFixture, cluster: &str, result: &'static str, logs: String) -> tokio::task::JoinHandle<()> {
    let client = fx.client(cluster);
    tokio::spawn(async move {
        let all = support::sim::dynamic(&client, "volsync.backube/v1alpha1", "ReplicationDestination", None).await;
        loop {
            for rd in all.list(&kube::api::ListParams::default().labels(RUN_LABEL)).await.unwrap().items {
                if rd.data["status"]["lastManualSync"].is_string() {
                    continue;
                }
                let api = support::sim::dynamic(&client, "volsync.backube/v1alpha1", "ReplicationDestination", rd.namespace().as_deref()).await;
                let status = json!({"status": {
                    "lastManualSync": rd.data["spec"]["trigger"]["manual"],
                    "lastSyncTime": "2026-12-01T00:00:00Z",
                    "latestMoverStatus": {"result": result, "logs": logs},
                    "latestImage": {"apiGroup": "", "kind": "PersistentVolumeClaim", "name": "volsync-pa-restore-dest"},
                }});
                api.patch_status(&rd.name_any(), &PatchParams::default(), &Patch::Merge(status)).await.unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    })
}

/// 10.2.2 is not provable on the simulation (no VolSync controller runs here). On constructed
/// states, with this test answering the ReplicationDestination as VolSync would, it passes when
/// the newest snapshot is restored and fails on a failed mover or on an older snapshot.
#[tokio::test(flavor = "multi_thread")]
async fn volsync_restore_both_ways_on_constructed_states() {
    let Some(fx) = SimFixture::start("volsync_restore_both_ways_on_constructed_states").await else { return };
    restic_backup(&fx, "apps").await;
    let r = fx.run("10.2.2").await;
    assert!(r.message("10.2.2 [apps]").starts_with("not provable in "), "{}", r.message("10.2.2 [apps]"));

    let newest = newest_snapshot(&fx, "apps").await;
    let restored = |id: &str| format!("== Restoring ===\nrestoring <Snapshot {id} of [/data] at 2026-12-01 00:00:00 +0000 UTC by @volsync> to .\nSummary: Restored 2 files/dirs (34 B) in 0:00\n=== Done ===");
    let mover = play_volsync(&fx, "apps", "Successful", restored(&newest[..8]));
    let r = fx.run_constructed("10.2.2", None).await;
    mover.abort();
    r.expect_all_pass().expect_message("10.2.2 [apps]", &[&format!("restored snapshot {} (the repository's newest of", &newest[..8]), "into PVC volsync-pa-restore-dest"]);

    let mover = play_volsync(&fx, "apps", "Failed", "Fatal: unable to open repository: wrong password or no key found".to_string());
    let r = fx.run_constructed("10.2.2", None).await;
    mover.abort();
    r.expect_failing(&["10.2.2 [apps]"])
        .expect_message("10.2.2 [apps]", &["ReplicationDestination pa-volsync-", "expected latestMoverStatus.result Successful, observed \"Failed\": Fatal: unable to open repository"]);

    let mover = play_volsync(&fx, "apps", "Successful", restored("0badc0de"));
    let r = fx.run_constructed("10.2.2", None).await;
    mover.abort();
    r.expect_failing(&["10.2.2 [apps]"]).expect_message("10.2.2 [apps]", &[&format!("expected the newest snapshot {}, observed snapshot 0badc0de restored", &newest[..8])]);

    // The source's own backup comes first: a failed ReplicationSource is the verdict, no restore is tried.
    let rs = breakage(&fx, "apps", ("volsync.backube/v1alpha1", "ReplicationSource"), "volsync-system", "volsync-test", true, |o| {
        o["status"]["latestMoverStatus"]["result"] = json!("Failed");
        set_condition(o, "Synchronizing", "False", "Error", "restic: unable to open repository");
    })
    .await;
    let r = fx.run_constructed("10.2.2", None).await;
    r.expect_failing(&["10.2.2 [apps]"]).expect_message("10.2.2 [apps]", &[
        "ReplicationSource volsync-system/volsync-test (volsync.backube/v1alpha1) (cluster apps) status.latestMoverStatus.result: expected Successful, observed \"Failed\"",
        "condition Synchronizing: expected a reason other than Error, observed Error: restic: unable to open repository",
    ]);
    rs.restore().await;
    // The run removed what it created: no disposable namespace of a run is left.
    let namespaces = fx.dynamic("apps", "v1", "Namespace", None).await;
    let left: Vec<String> = namespaces.list(&kube::api::ListParams::default().labels(RUN_LABEL)).await.unwrap().items.into_iter().filter(|n| n.metadata.deletion_timestamp.is_none()).map(|n| n.name_any()).collect();
    assert!(left.is_empty(), "{left:?}");
}
