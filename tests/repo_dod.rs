//! Repository-layer Definition-of-Done checks (dod.3, dod.8, dod.11, dod.12), and the
//! whole repo layer of EPIC-7..10 + DoD on a committed copy of the fixture.
//!
//! dod.3 reads git state, so every test here runs on a private copy that
//! `RepoCopy::commit_all` turns into a git repository with one commit; its verdict on
//! fixtures/gitops itself depends on the state of the enclosing work tree and is
//! not asserted anywhere.

mod support;

use std::path::Path;

use platform_acceptance::check::{Layer, Verdict};
use platform_acceptance::plan::Selector;
use platform_acceptance::runner::{RunConfig, RunReport};
use platform_acceptance::session::Session;
use rstest::rstest;
use support::*;

/// Repo-layer units of EPIC-7..10 and the Definition of Done (other epics are written in parallel).
fn run_mine(repo: &Path) -> RunReport {
    let session = Session::new(DOC, Some(repo)).expect("session");
    // dod.1 rolls up every result (tested in tests/dod_aggregate.rs) and dod.6 the live results
    // (tested in tests/sim_live_epic08_10.rs), so they are left out here.
    let skip: Vec<Selector> = (1..=6).map(Selector::Epic).chain(["dod.1", "dod.6"].map(|c| Selector::Criterion(c.into()))).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(session.run(&[Selector::Layer(Layer::Repo)], &skip, RunConfig::default()))
}

const DOD_UNITS: &[&str] = &["dod.3 [all]", "dod.8 [all]", "dod.11 [apps]", "dod.11 [infra]", "dod.12 [apps]", "dod.12 [infra]"];

#[test]
fn every_repo_unit_of_epics_7_to_10_and_dod_passes_on_the_committed_fixture() {
    let copy = RepoCopy::new();
    copy.commit_all();
    let report = run_mine(copy.path());
    assert!(report.failing().is_empty(), "failures:\n{}", report.summary());
    assert!(report.with_verdict(Verdict::Skip).is_empty(), "skipped: {:?}", report.with_verdict(Verdict::Skip));
    let passed = report.with_verdict(Verdict::Pass);
    for unit in DOD_UNITS {
        assert!(passed.iter().any(|p| p == unit), "{unit} did not pass: {passed:?}");
    }
    // 42 story units (tests/repo_epic07_10.rs lists them) + 6 DoD units.
    assert_eq!(passed.len(), 42 + DOD_UNITS.len(), "{passed:?}");
}

#[rstest]
#[case::modified_after_commit("modify", "README.md", &["README.md", "committed", "modified, not committed"])]
#[case::untracked_file("add", "kubernetes/workloads/tenants/notes.yaml", &["kubernetes/workloads/tenants/notes.yaml", "untracked"])]
#[case::deleted_file("delete", "Taskfile.yaml", &["Taskfile.yaml", "deleted, not committed"])]
fn uncommitted_change_fails_dod3(#[case] op: &str, #[case] rel: &str, #[case] needles: &[&str]) {
    let copy = RepoCopy::new();
    copy.commit_all();
    match op {
        "modify" => {
            let text = copy.read(rel);
            copy.write(rel, &format!("{text}\nlocal edit\n"));
        }
        "add" => copy.write(rel, "# scratch\n"),
        "delete" => copy.remove(rel),
        _ => unreachable!(),
    }
    let report = run_mine(copy.path());
    report.expect_failing(&["dod.3 [all]"]).expect_failing_mention(needles);
}

#[test]
fn an_export_without_git_skips_dod3_with_the_reason() {
    let copy = RepoCopy::new(); // a temp dir outside any work tree
    let report = run_mine(copy.path());
    report.expect_failing(&[]);
    let u = report.results.iter().find(|u| u.id == "dod.3").expect("dod.3 unit");
    assert_eq!(u.outcome.verdict(), platform_acceptance::check::Verdict::Skip, "{}", u.outcome.summary());
    assert!(u.outcome.summary().contains("is not a git repository (an export?)"), "{}", u.outcome.summary());
}

#[test]
fn the_readme_names_clusters_and_layers_in_any_case() {
    let copy = RepoCopy::new();
    copy.write("README.md", "# k8s-gitops\n\nThe Infra and Apps clusters.\nBases, Infrastructure, Workloads, Clusters.\n");
    copy.commit_all();
    run_mine(copy.path()).expect_failing(&[]);
}

#[test]
fn repository_without_commits_fails_dod3() {
    let copy = RepoCopy::new();
    git(copy.path(), &["init", "-q"]);
    let report = run_mine(copy.path());
    report.expect_failing(&["dod.3 [all]"]).expect_failing_mention(&["no commits"]);
}

#[rstest]
#[case::readme_missing(&[("rm", "README.md", "")], &["dod.8 [all]"], &["README.md", "missing"])]
#[case::readme_not_about_apps(&[("write", "README.md", "# k8s-gitops\n\nThe infra cluster.\nbases infrastructure workloads clusters\n")], &["dod.8 [all]"], &["README.md", "does not mention apps"])]
#[case::unresolved_variable(
    &[("replace", "kubernetes/infrastructure/backup/velero/namespace.yaml", "  labels:\n|  labels:\n    owner: ${BACKUP_OWNER_TEAM}\n")],
    &["dod.11 [apps]", "dod.11 [infra]"], &["Namespace/velero", "${BACKUP_OWNER_TEAM}", "not defined, renders empty"])]
#[case::variables_outside_infrastructure_yaml(
    &[("replace", "kubernetes/clusters/apps/infrastructure.yaml", "  postBuild:|  postBuildDisabled:")],
    // the workloads Kustomization still carries them: variables are not in infrastructure.yaml,
    // and the infrastructure layer no longer substitutes anything
    &["dod.11 [apps]"], &["kubernetes/clusters/apps/infrastructure.yaml"])]
#[case::dangling_base_path(
    &[("replace", "kubernetes/infrastructure/backup/velero/kustomization.yaml", "../../../bases/velero|../../bases/velero")],
    &["dod.12 [apps]", "dod.12 [infra]", "10.3.1 [infra]", "10.3.2 [infra]", "10.3.3 [infra]", "10.3.5 [infra]"], &["velero"])]
#[case::component_uses_wrong_base(
    &[("replace", "kubernetes/workloads/platform/databases/cloudnative-pg/operator/kustomization.yaml", "bases/cloudnative-pg|bases/volsync")],
    &["dod.12 [infra]", "7.1.1 [infra]"], &["cloudnative-pg"])]
fn broken_copy_fails_exactly(#[case] edits: &[(&str, &str, &str)], #[case] failing: &[&str], #[case] needles: &[&str]) {
    let copy = RepoCopy::new();
    for (op, file, arg) in edits {
        match *op {
            "rm" => copy.remove(file),
            "write" => copy.write(file, arg),
            "replace" => {
                let (from, to) = arg.split_once('|').unwrap();
                copy.replace(file, from, to);
            }
            _ => unreachable!(),
        }
    }
    copy.commit_all(); // the broken variant is committed: only the intended criteria fail
    let report = run_mine(copy.path());
    report.expect_failing(failing).expect_failing_mention(needles);
}
