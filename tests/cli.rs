//! The command line as a user meets it: outputs, exit codes, one-line errors for bad input.

mod support;

use assert_cmd::Command;
use support::RepoCopy;

fn cli() -> Command {
    Command::cargo_bin("platform-acceptance").unwrap()
}

/// Runs and returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = cli().args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn assert_usage_error(args: &[&str], needle: &str) {
    let (code, _, err) = run(args);
    assert_eq!(code, 2, "{args:?} should exit 2; stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {err}");
    assert!(lines[0].contains(needle), "{:?} lacks {needle:?}", lines[0]);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn catalog_json_lists_221_items_in_34_stories() {
    let (code, out, _) = run(&["catalog", "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["counts"]["items"], 221);
    assert_eq!(v["counts"]["stories"], 34);
    assert_eq!(v["counts"]["criteria"], 207);
    assert_eq!(v["counts"]["dod"], 14);
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 221);
    for i in items {
        for key in ["id", "story", "text", "ticked", "layer", "check", "clusters"] {
            assert!(i.get(key).is_some(), "item lacks {key}: {i}");
        }
        if i["layer"] == "manual" {
            assert!(i["manual_reason"].as_str().is_some_and(|r| !r.is_empty()), "manual item without reason: {i}");
        }
    }
    let item = items.iter().find(|i| i["id"] == "7.2.7").unwrap();
    assert_eq!(item["text"], "Cluster healthy and ready");
    assert_eq!(v["orphans"].as_array().unwrap().len(), 0, "orphan checks: {}", v["orphans"]);
}

#[test]
fn missing_document_is_a_usage_error() {
    assert_usage_error(&["catalog", "--doc", "/nonexistent/plan.md"], "cannot read planning document /nonexistent/plan.md");
}

#[test]
fn missing_repository_is_a_usage_error() {
    assert_usage_error(&["run", "--repo", "/nonexistent/repo"], "repository /nonexistent/repo does not exist");
}

const BROKEN: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n data: [\n";

#[test]
fn malformed_yaml_nothing_reaches_gives_the_full_report_and_a_warning() {
    let repo = RepoCopy::new();
    // Not listed in bases/cilium/kustomization.yaml: Flux never parses it.
    repo.write("kubernetes/bases/cilium/broken.yaml", BROKEN);
    let json = repo.path().join("out/report.json");
    // dod.3 needs a git work tree, which the copy is not.
    let (code, out, err) = run(&["run", "--repo", repo.path().to_str().unwrap(), "--progress", "quiet", "--skip", "dod.3", "--json", json.to_str().unwrap()]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.contains(" passed, 0 failed, 0 errors"), "{out}");
    let warning = err.lines().find(|l| l.starts_with("warning: malformed YAML in kubernetes/bases/cilium/broken.yaml:5: ")).unwrap_or_else(|| panic!("{err}"));
    assert!(warning.contains("no Flux Kustomization of any cluster reaches it"), "{warning}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["warnings"].as_array().unwrap().len(), 1, "{}", v["warnings"]);
}

#[test]
fn malformed_yaml_a_cluster_renders_is_an_error_for_its_units_naming_file_and_line() {
    let repo = RepoCopy::new();
    repo.write("kubernetes/bases/cilium/broken.yaml", BROKEN);
    repo.replace("kubernetes/bases/cilium/kustomization.yaml", "  - helmrelease.yaml", "  - helmrelease.yaml\n  - broken.yaml");
    let json = repo.path().join("out/report.json");
    let (code, out, err) = run(&["run", "--repo", repo.path().to_str().unwrap(), "--progress", "quiet", "--json", json.to_str().unwrap()]);
    assert_eq!(code, 1, "a finding, not a usage error; stdout: {out}\nstderr: {err}");
    assert!(!err.contains("warning: malformed"), "a reached file is no warning: {err}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let errors: Vec<&serde_json::Value> = v["results"].as_array().unwrap().iter().filter(|r| r["outcome"]["verdict"] == "error").collect();
    assert!(!errors.is_empty(), "{out}");
    for e in &errors {
        let message = e["outcome"]["message"].as_str().unwrap();
        assert!(message.contains("kubernetes/bases/cilium/broken.yaml:5: "), "{message}");
    }
    // The shared base is rendered on both clusters.
    for cluster in ["infra", "apps"] {
        assert!(errors.iter().any(|e| e["cluster"] == cluster), "no error on {cluster}");
    }
}

#[test]
fn generator_data_with_custom_yaml_tags_is_not_parsed_as_a_manifest() {
    let repo = RepoCopy::new();
    repo.write("kubernetes/bases/cilium/config/app.yml", "sonarr:\n  series:\n    api_key: !env_var SONARR_API_KEY\n");
    repo.replace(
        "kubernetes/bases/cilium/kustomization.yaml",
        "  - helmrelease.yaml",
        "  - helmrelease.yaml\nconfigMapGenerator:\n  - name: app-config\n    namespace: kube-system\n    files:\n      - config/app.yml",
    );
    let (code, out, err) = run(&["run", "--repo", repo.path().to_str().unwrap(), "--progress", "quiet", "--only", "layer=repo", "--skip", "dod.3"]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(!err.contains("malformed"), "{err}");
}

#[test]
fn catalog_reads_a_repository_with_malformed_yaml() {
    let repo = RepoCopy::new();
    repo.write("kubernetes/bases/cilium/broken.yaml", BROKEN);
    let (code, _, err) = run(&["catalog", "--repo", repo.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn unknown_selector_is_a_usage_error() {
    assert_usage_error(&["run", "--repo", "fixtures/gitops", "--only", "epic-seven"], "unknown selector \"epic-seven\"");
    assert_usage_error(&["run", "--repo", "fixtures/gitops", "--only", "11.1"], "selector 11.1 matches nothing");
    assert_usage_error(&["run", "--repo", "fixtures/gitops", "--skip", "cluster=staging"], "selector cluster=staging matches nothing");
}

#[test]
fn bad_context_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:9'}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: infra\n  context: {cluster: c, user: u}\ncurrent-context: infra\n",
    )
    .unwrap();
    let k = kubeconfig.to_str().unwrap();
    assert_usage_error(&["run", "--repo", "fixtures/gitops", "--kubeconfig", k], "has no context \"apps\" for cluster apps (contexts: infra)");
    assert_usage_error(&["run", "--repo", "fixtures/gitops", "--kubeconfig", k, "--context", "apps"], "bad --context \"apps\"");
    assert_usage_error(&["run", "--repo", "fixtures/gitops", "--context", "apps=x"], "--context needs --kubeconfig");
    assert_usage_error(&["run", "--repo", "fixtures/gitops", "--kubeconfig", "/nonexistent/kubeconfig"], "cannot read kubeconfig /nonexistent/kubeconfig");
}

#[test]
fn unwritable_report_path_is_a_usage_error() {
    assert_usage_error(&["run", "--repo", "fixtures/gitops", "--junit", "/proc/no/such/out.xml"], "cannot create /proc/no/such");
}

#[test]
fn help_teaches_with_examples() {
    let (code, out, _) = run(&["run", "--help"]);
    assert_eq!(code, 0);
    for needle in ["--repo", "--kubeconfig", "--context", "--only", "layer=repo", "Examples:", "--junit"] {
        assert!(out.contains(needle), "run --help lacks {needle}");
    }
    let (_, top, _) = run(&["--help"]);
    assert!(top.contains("Exit codes"));
}

#[test]
fn repository_run_passes_and_writes_valid_reports() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("out/junit.xml");
    let json = dir.path().join("out/report.json");
    let md = dir.path().join("out/summary.md");
    let (code, out, err) = run(&[
        "run", "--repo", "fixtures/gitops", "--progress", "plain",
        "--junit", junit.to_str().unwrap(), "--json", json.to_str().unwrap(), "--markdown", md.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("passed, 0 failed, 0 errors"), "{out}");
    support::assert_junit_valid(&junit);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    // Cluster and data-plane criteria are skipped with the reason, never passed.
    for r in results.iter().filter(|r| r["layer"] == "cluster" || r["layer"] == "data-plane") {
        assert_eq!(r["outcome"]["verdict"], "skip", "{r}");
        assert!(r["outcome"]["reason"].as_str().unwrap().starts_with("no cluster target"), "{r}");
    }
    assert!(results.iter().any(|r| r["layer"] == "repo" && r["outcome"]["verdict"] == "pass"));
    let summary = std::fs::read_to_string(&md).unwrap();
    assert!(summary.starts_with("## Platform acceptance: PASSED"), "{summary}");
}

#[test]
fn a_failing_criterion_exits_1_and_reports_evidence() {
    let repo = RepoCopy::new();
    repo.replace("kubernetes/clusters/apps/infrastructure.yaml", "CLUSTER_ID: \"2\"", "CLUSTER_ID: \"3\"");
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let md = dir.path().join("summary.md");
    let (code, _, err) = run(&[
        "run", "--repo", repo.path().to_str().unwrap(), "--progress", "plain", "--only", "2.2",
        "--junit", junit.to_str().unwrap(), "--markdown", md.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("FAIL  2.2.2 [apps] CLUSTER_ID set to \"2\""), "{err}");
    support::assert_junit_valid(&junit);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testsuite") && xml.contains("name=\"2.2 Configure Apps Cluster Cilium Variables\""), "{xml}");
    assert!(xml.contains("name=\"2.2.2 [apps] CLUSTER_ID set to &quot;2&quot;\""), "{xml}");
    assert!(xml.contains("expected &quot;2&quot;, observed &quot;3&quot;"), "{xml}");
    assert!(std::fs::read_to_string(&md).unwrap().contains("FAILED"));
}

// ---- gate ----------------------------------------------------------------------------

/// A git repository holding the planning document (`plan.md`) with two commits: the
/// fixture, then the fixture with `edits` applied (each `from` must be present).
struct DocRepo {
    dir: tempfile::TempDir,
}

impl DocRepo {
    fn new(edits: &[(&str, &str)]) -> Self {
        DocRepo { dir: support::doc_repo(edits) }
    }
    fn doc(&self) -> String {
        self.dir.path().join("plan.md").display().to_string()
    }
    fn out(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

const TICK_241: (&str, &str) = ("- [ ] External DNS base HelmRelease created", "- [x] External DNS base HelmRelease created");
const UNTICK_223: (&str, &str) = ("- [x] POD_CIDR set to", "- [ ] POD_CIDR set to");
const REWORD_222: (&str, &str) = ("- [x] CLUSTER_ID set to \"2\"", "- [x] CLUSTER_ID set to \"2\" (unique)");

fn gate(repo: &DocRepo, gitops: &str, extra: &[&str]) -> (i32, String, serde_json::Value, String) {
    let (json, md) = (repo.out("gate.json"), repo.out("gate.md"));
    let doc = repo.doc();
    let mut args = vec!["gate", "--doc", &doc, "--base", "HEAD~1", "--head", "HEAD", "--repo", gitops, "--json", &json, "--markdown", &md, "--progress", "quiet"];
    args.extend_from_slice(extra);
    let (code, out, err) = run(&args);
    assert!(!err.contains("panicked"), "{err}");
    let v = serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_default()).unwrap_or_else(|e| panic!("gate JSON: {e}; stderr: {err}"));
    (code, out, v, std::fs::read_to_string(&md).unwrap_or_default())
}

fn verdicts(v: &serde_json::Value) -> Vec<(String, String)> {
    v["items"].as_array().unwrap().iter().map(|i| (i["id"].as_str().unwrap().to_string(), i["verdict"].as_str().unwrap().to_string())).collect()
}

#[test]
fn gate_passes_when_the_ticked_box_passes_and_lists_an_unticked_one() {
    let repo = DocRepo::new(&[TICK_241, UNTICK_223]);
    let (code, out, v, md) = gate(&repo, support::GITOPS, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(verdicts(&v), [("2.4.1".to_string(), "pass".to_string())]);
    assert_eq!(v["selection"]["unticked"][0]["id"], "2.2.3");
    assert!(out.contains("unticked   2.2.3"), "{out}");
    assert!(md.contains("## Definition-of-Done gate: PASSED"), "{md}");
    assert!(md.contains("2.2.3 POD_CIDR set to non-overlapping range (10.246.0.0/16) — unticked"), "{md}");
    // The reproduce command names the resolved commits and the same target.
    let base = String::from_utf8(std::process::Command::new("git").arg("-C").arg(repo.dir.path()).args(["rev-parse", "HEAD~1"]).output().unwrap().stdout).unwrap();
    assert!(v["reproduce"].as_str().unwrap().contains(&format!("--base {} --head ", &base.trim()[..12])), "{}", v["reproduce"]);
    assert!(v["reproduce"].as_str().unwrap().ends_with("--repo fixtures/gitops"), "{}", v["reproduce"]);
}

#[test]
fn gate_fails_naming_exactly_the_failing_and_the_reworded_box() {
    let broken = RepoCopy::new();
    broken.remove("kubernetes/bases/external-dns");
    let repo = DocRepo::new(&[TICK_241, REWORD_222, ("- [ ] Global services configured for Ceph", "- [x] Global services configured for Ceph")]);
    let junit = repo.out("gate.xml");
    let (code, out, v, md) = gate(&repo, &broken.path().display().to_string(), &["--junit", &junit]);
    assert_eq!(code, 1, "{out}");
    let got = verdicts(&v);
    assert_eq!(got.iter().filter(|(_, v)| v != "pass").map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["2.2.2", "2.4.1"], "{got:?}");
    assert!(got.contains(&("2.2.2".into(), "unmapped".into())));
    assert!(got.contains(&("2.4.1".into(), "fail".into())));
    assert!(md.contains("reworded while ticked (was: CLUSTER_ID set to \"2\")"), "{md}");
    assert!(md.contains("## Definition-of-Done gate: FAILED"));
    support::assert_junit_valid(std::path::Path::new(&junit));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"name="gate" package="testsuite/gate" tests="3" errors="0" failures="2""#), "{xml}");

    // The same change against the healthy repository fails only on the rewording.
    let (code, _, v, _) = gate(&repo, support::GITOPS, &[]);
    assert_eq!(code, 1);
    assert_eq!(verdicts(&v).iter().filter(|(_, v)| v != "pass").map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["2.2.2"]);
}

#[test]
fn gate_selects_every_box_of_a_story_marked_done_and_reports_free_text() {
    let repo = DocRepo::new(&[
        ("**Days:** 1 | **Status:** âŒ NOT IMPLEMENTED\n\n**Acceptance Criteria:**\n- [ ] External DNS", "**Days:** 1 | **Status:** âœ… COMPLETE\n\n**Acceptance Criteria:**\n- [ ] External DNS"),
        ("**Status:** âš\u{a0}ï¸ PARTIALLY COMPLETE", "**Status:** 90% Complete"),
    ]);
    let (code, out, v, md) = gate(&repo, support::GITOPS, &[]);
    // Without a cluster target the live boxes of 2.4 are not proven.
    assert_eq!(code, 1, "{out}");
    let items = v["items"].as_array().unwrap();
    assert!(items.len() >= 5 && items.iter().all(|i| i["story"] == "2.4" && i["why"][0]["kind"] == "story-done"), "{items:?}");
    assert_eq!(items.iter().filter(|i| i["verdict"] == "pass").count(), 4, "the four repository criteria pass");
    assert!(md.contains("❌ NOT IMPLEMENTED → ✅ COMPLETE — marked done"), "{md}");
    assert!(md.contains("→ 90% Complete — free text: reported, not interpreted"), "{md}");
}

#[test]
fn gate_with_nothing_ticked_passes_and_bad_revisions_are_usage_errors() {
    let repo = DocRepo::new(&[UNTICK_223]);
    let (code, out, v, md) = gate(&repo, support::GITOPS, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(v["items"].as_array().unwrap().is_empty());
    assert!(md.contains("nothing to prove"), "{md}");
    let doc = repo.doc();
    assert_usage_error(&["gate", "--doc", &doc, "--base", "no-such-rev"], "\"no-such-rev\" is not a commit of the repository holding");
    let (code, _, err) = run(&["gate", "--doc", &doc]);
    assert_eq!(code, 2);
    assert!(err.contains("required arguments were not provided") && err.contains("--base"), "{err}");
}

#[test]
fn gate_compares_two_files_with_base_doc() {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head.md");
    let text = std::fs::read_to_string(support::DOC).unwrap().replacen(TICK_241.0, TICK_241.1, 1);
    std::fs::write(&head, text).unwrap();
    let (code, out, err) = run(&["gate", "--doc", &head.display().to_string(), "--base-doc", support::DOC, "--repo", support::GITOPS, "--progress", "quiet"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("pass       2.4.1 External DNS base HelmRelease created"), "{out}");
    assert!(out.contains("gate PASSED: 1 of 1"), "{out}");
}

#[test]
fn rbac_prints_the_roles_to_apply_and_grants_round_trips_only_when_asked() {
    let docs = |args: &[&str]| -> Vec<serde_json::Value> {
        let (code, out, err) = run(args);
        assert_eq!(code, 0, "{err}");
        serde_yaml_ng::Deserializer::from_str(&out).map(|d| serde::Deserialize::deserialize(d).unwrap()).filter(|v: &serde_json::Value| !v.is_null()).collect()
    };
    let kinds = |d: &[serde_json::Value]| d.iter().map(|v| format!("{} {}", v["kind"].as_str().unwrap(), v["metadata"]["name"].as_str().unwrap())).collect::<Vec<_>>();
    let read = docs(&["rbac"]);
    assert_eq!(kinds(&read), ["Namespace platform-acceptance", "ServiceAccount harness", "ClusterRole platform-acceptance-read", "ClusterRoleBinding platform-acceptance-read-platform-acceptance-harness"]);
    assert!(!serde_json::to_string(&read).unwrap().contains("\"create\""), "the read-only role creates nothing");
    let all = docs(&["rbac", "--allow-writes", "--service-account", "ops/acceptance"]);
    assert_eq!(all.len(), 6);
    assert_eq!(all[5]["subjects"][0], serde_json::json!({"kind": "ServiceAccount", "namespace": "ops", "name": "acceptance"}));
    assert!(all[4]["rules"].as_array().unwrap().iter().any(|r| r["resources"].as_array().unwrap().iter().any(|x| x == "pods/exec")), "exec into agents is a round-trip grant");
    assert_usage_error(&["rbac", "--service-account", "bad"], "expected NAMESPACE/NAME");
    assert_usage_error(&["rbac", "--from", "/nonexistent/report.json"], "cannot read /nonexistent/report.json");
}
