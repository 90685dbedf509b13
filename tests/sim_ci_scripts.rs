//! ci/kind-deploy.sh, the nightly workflow's steps after cluster creation, run against the
//! local simulation with the workflow's profile and `--no-deploy` (the simulation runs the
//! platform already; helm, flux and kubectl are validated statically in ci_static.rs):
//! every platform-acceptance command line of the script runs, the rendered deploy inputs
//! carry the profile, and the suite passes with the profile's criteria skipped by name.
//! Runs in the shared simulation fixture (lock held, healthy scenario).

mod support;

use std::process::Command;

use support::sim::SimFixture;

const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";

fn yaml_docs(text: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(text).map(|d| serde_json::Value::deserialize(d).unwrap()).filter(|v| !v.is_null()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kind_deploy_script_on_the_simulation() {
    let Some(_fx) = SimFixture::start("kind_deploy_script_on_the_simulation").await else { return };
    let out = tempfile::tempdir().unwrap();
    let run = Command::new("ci/kind-deploy.sh")
        .env("PA", env!("CARGO_BIN_EXE_platform-acceptance"))
        .args(["--no-deploy", "--repo", support::GITOPS, "--profile", "ci/kind-profile.yaml"])
        .args(["--url", "https://git.example.org/platform/gitops", "--revision", REVISION, "--out"])
        .arg(out.path())
        .args(["--", "--sim", "--context", "infra=infra", "--context", "apps=apps"])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert_eq!(run.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("would run helm upgrade --install cilium --repo https://helm.cilium.io cilium --version"), "{stdout}");

    // Cilium values: the repository's, variables substituted, with the profile's values on top.
    let values: serde_json::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(out.path().join("apps-cilium-values.yaml")).unwrap()).unwrap();
    assert_eq!(values["cluster"]["name"], "apps");
    assert_eq!(values["k8sServiceHost"], "apps-control-plane");
    assert_eq!(values["k8sServicePort"], 6443);

    // Flux entry objects: the commit under test, the profile's suspension and variables as patches.
    let flux = yaml_docs(&std::fs::read_to_string(out.path().join("infra-flux.yaml")).unwrap());
    assert_eq!(flux[0]["kind"], "GitRepository");
    assert_eq!(flux[0]["spec"]["ref"]["commit"], REVISION);
    assert_eq!(flux[1]["spec"]["path"], "./kubernetes/clusters/infra");
    let patches: Vec<(String, serde_json::Value)> = flux[1]["spec"]["patches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["target"]["name"].as_str().unwrap().to_string(), serde_yaml_ng::from_str(p["patch"].as_str().unwrap()).unwrap()))
        .collect();
    let patch = |name: &str| &patches.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no patch of {name}: {patches:?}")).1;
    assert_eq!(patch("cluster-infra-storage-ceph")["spec"]["suspend"], true);
    let infra = patch("cluster-infra-infrastructure");
    assert_eq!(infra["spec"]["postBuild"]["substitute"]["CILIUM_LB_POOL_START"], "172.18.255.100");
    assert!(infra["spec"]["patches"].to_string().contains("infra-control-plane"), "{infra}");
    assert_eq!(patch("cluster-infra-workloads")["spec"]["dependsOn"], serde_json::json!([{"name": "cluster-infra-infrastructure"}]));
    // The directory's own bootstrap objects (tracking the real branch) are left out of the build.
    assert_eq!(patch("flux-system")["$patch"], "delete");

    // The suite: the profile's criteria skipped with its reason, the rest judged as usual.
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap()).unwrap();
    let unit = |id: &str, cluster: &str| {
        report["results"].as_array().unwrap().iter().find(|r| r["id"] == id && r["cluster"] == cluster).unwrap_or_else(|| panic!("no {id} [{cluster}]")).clone()
    };
    let ceph = unit("4.2.3", "infra");
    assert_eq!(ceph["outcome"]["verdict"], "skip", "{ceph}");
    assert!(ceph["outcome"]["reason"].as_str().unwrap().contains("(profile kind): no raw disks"), "{ceph}");
    assert_eq!(unit("4.3.4", "infra")["outcome"]["verdict"], "pass");
    assert_eq!(unit("4.2.1", "infra")["outcome"]["verdict"], "pass", "the repository layer still judges the repository");
    // The harness counts the API requests its checks send: the summary is the sum of the units'.
    let total = report["summary"]["api_requests"]["total"].as_u64().unwrap();
    let per_unit: u64 = report["results"].as_array().unwrap().iter().flat_map(|r| r["api_requests"].as_object().into_iter().flatten()).map(|(_, n)| n.as_u64().unwrap()).sum();
    assert!(total > 0 && total == per_unit, "summary {total}, units {per_unit}");
    for file in ["junit.xml", "summary.md"] {
        assert!(out.path().join(file).is_file(), "{file} missing");
    }
}
