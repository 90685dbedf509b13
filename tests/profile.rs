//! Target profiles and `render` as a user meets them: the kind profile is valid against the
//! document and the fixture repository, a profile that drifted from either is a one-line
//! usage error naming every problem, and `render` says what it cannot find.

use assert_cmd::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("platform-acceptance").unwrap().args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn one_line_error(args: &[&str]) -> String {
    let (code, _, err) = run(args);
    assert_eq!(code, 2, "{args:?}: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    lines[0].to_string()
}

#[test]
fn the_kind_profile_is_valid_and_leaves_the_repository_layer_alone() {
    // Repository layer only: the profile is validated, and the repository is judged as written.
    let (code, out, err) = run(&["run", "--repo", "fixtures/gitops", "--profile", "ci/kind-profile.yaml", "--only", "2.1,4.2", "--skip", "layer=cluster,layer=data-plane"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 failed"), "{out}");
}

#[test]
fn a_profile_that_drifted_names_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.yaml");
    std::fs::write(
        &path,
        "name: kind\nskip:\n  - items: ['4.9', '2.1.9']\n    reason: gone\nvariables:\n  infra: {NOT_A_VARIABLE: x}\n  edge: {A: b}\nsuspend:\n  apps: [no-such-kustomization]\nvalues:\n  infra:\n    kube-system/nothing: {a: 1}\n",
    )
    .unwrap();
    let line = one_line_error(&["run", "--repo", "fixtures/gitops", "--profile", path.to_str().unwrap()]);
    for needle in [
        "skip item \"4.9\" matches no criterion",
        "cluster \"edge\" is not one of the repository's clusters",
        "variable NOT_A_VARIABLE is not substituted by any Flux Kustomization of cluster infra",
        "cluster apps has no Flux Kustomization \"no-such-kustomization\"",
        "cluster infra renders no HelmRelease kube-system/nothing",
    ] {
        assert!(line.contains(needle), "{line} lacks {needle:?}");
    }
    assert!(!line.contains("2.1.9"), "a valid item is not a problem: {line}");

    std::fs::write(&path, "name: kind\nskips: []\n").unwrap();
    assert!(one_line_error(&["run", "--repo", "fixtures/gitops", "--profile", path.to_str().unwrap()]).contains("unknown field `skips`"));
    std::fs::write(&path, "name: kind\nskip:\n  - items: ['1']\n    reason: ''\n").unwrap();
    assert!(one_line_error(&["run", "--profile", path.to_str().unwrap()]).contains("has no reason"));
}

#[test]
fn render_names_what_it_cannot_find() {
    let line = one_line_error(&["render", "values", "--repo", "fixtures/gitops", "--cluster", "infra", "--release", "kube-system/nothing"]);
    assert!(line.contains("cluster infra renders no HelmRelease kube-system/nothing (it renders: ") && line.contains("kube-system/cilium"), "{line}");
    assert!(one_line_error(&["render", "values", "--repo", "fixtures/gitops", "--cluster", "edge", "--release", "a/b"]).contains("edge"));
    assert!(one_line_error(&["render", "helm-args", "--repo", "fixtures/gitops", "--cluster", "infra", "--release", "cilium"]).contains("expected NAMESPACE/NAME"));
}

#[test]
fn render_gives_helm_what_helm_controller_would_install() {
    let (code, out, err) = run(&["render", "helm-args", "--repo", "fixtures/gitops", "--cluster", "apps", "--release", "kube-system/cilium"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "cilium --repo https://helm.cilium.io cilium --version 1.18.x --namespace kube-system");
    let (code, out, err) = run(&["render", "values", "--repo", "fixtures/gitops", "--cluster", "apps", "--release", "kube-system/cilium"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_yaml_ng::from_str(&out).unwrap();
    assert_eq!(v["cluster"]["name"], "apps");
    assert_eq!(v["cluster"]["id"], 2);
    assert_eq!(v["k8sServiceHost"], "127.0.0.1", "without a profile: the repository's values");
}
