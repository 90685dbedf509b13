//! kind cannot run here (no Docker), so the kind configs and the nightly workflow are
//! checked statically: subnets agree with the repository's variables, names with its
//! clusters, and the workflow runs the suite against both contexts.

use platform_acceptance::repo::GitopsRepo;

fn yaml(path: &str) -> serde_json::Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn kind_clusters_match_the_repository_variables() {
    let repo = GitopsRepo::load("fixtures/gitops").unwrap();
    for cluster in repo.clusters() {
        let path = format!("kind/{cluster}.yaml");
        let kind = yaml(&path);
        let vars = repo.variables(cluster).unwrap();
        assert_eq!(kind["name"], cluster.as_str(), "{path}");
        assert_eq!(kind["networking"]["podSubnet"], vars.get("POD_CIDR").unwrap(), "{path} podSubnet");
        assert_eq!(kind["networking"]["serviceSubnet"], vars.get("SERVICE_CIDR").unwrap(), "{path} serviceSubnet");
        assert_eq!(kind["networking"]["disableDefaultCNI"], true, "{path}: Cilium is the CNI");
        assert_eq!(kind["nodes"].as_array().unwrap().len(), 3, "{path}: three nodes per cluster");
    }
}

#[test]
fn nightly_workflow_deploys_then_runs_the_suite_against_both_kind_contexts() {
    let wf = yaml("ci/nightly.yaml");
    let steps = wf["jobs"]["acceptance"]["steps"].as_array().unwrap();
    let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    let deploy = runs.iter().find(|r| r.contains("ci/kind-deploy.sh")).expect("no step runs ci/kind-deploy.sh");
    for cluster in ["infra", "apps"] {
        assert!(runs.iter().any(|r| r.contains(&format!("kind create cluster --config .platform-acceptance/kind/{cluster}.yaml"))), "no kind cluster {cluster}");
        assert!(deploy.contains(&format!("--context {cluster}=kind-{cluster}")), "suite not pointed at kind-{cluster}");
    }
    assert!(deploy.contains("--profile .platform-acceptance/ci/kind-profile.yaml"), "{deploy}");
    assert!(deploy.contains("--revision \"$GITHUB_SHA\""), "Flux must apply the commit under test: {deploy}");
    assert!(!deploy.contains("--no-deploy"), "{deploy}");
    assert!(wf["jobs"]["acceptance"]["timeout-minutes"].as_u64().unwrap() <= 90);

    // The script's own steps: bootstrap phase, Cilium and Flux from the repository, the suite
    // with writes allowed (kind clusters are throwaway) and all three reports.
    let script = std::fs::read_to_string("ci/kind-deploy.sh").unwrap();
    for needle in [
        "--phase bootstrap",
        "render values",
        "render helm-args",
        "render bootstrap",
        "helm upgrade --install",
        "flux install",
        "--allow-writes",
        "--junit \"$out/junit.xml\"",
        "--json \"$out/report.json\"",
        "--markdown \"$out/summary.md\"",
    ] {
        assert!(script.contains(needle), "ci/kind-deploy.sh lacks {needle:?}");
    }
}
