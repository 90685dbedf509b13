//! Definition of Done, repository layer: the configuration committed to git (dod.3), the
//! README (dod.8), the per-cluster variables (dod.11) and the Kustomizations' base paths
//! (dod.12); and the aggregates judged from this run's other results (dod.1, dod.6).

use std::path::{Path, PathBuf};

use crate::check::{CheckResult, Ctx, Finding, Layer, ONCE, Outcome, Prior, Verdict};
use crate::checks::kit::prelude::*;

async fn git(root: &Path, args: &[&str]) -> CheckResult<std::process::Output> {
    tokio::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["--no-optional-locks", "-c", "core.quotepath=off"])
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .await
        .map_err(|e| Outcome::error(format!("cannot run git: {e}")))
}

pub(super) async fn configuration_committed_to_git(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let root = repo.root.clone();
    let inside = git(&root, &["rev-parse", "--is-inside-work-tree"]).await?;
    if !inside.status.success() || String::from_utf8_lossy(&inside.stdout).trim() != "true" {
        let err = String::from_utf8_lossy(&inside.stderr);
        if err.contains("dubious ownership") {
            return Ok(Outcome::error(format!("git refuses {}: {}", root.display(), err.trim())));
        }
        // An export of the repository (no .git): whether it is committed cannot be told here.
        return Ok(Outcome::skip(format!("{} is not a git repository (an export?): whether every configuration file is committed cannot be told from it", root.display())));
    }
    let head = git(&root, &["rev-parse", "--verify", "-q", "--short", "HEAD"]).await?;
    if !head.status.success() {
        return Ok(Outcome::fail(root.display().to_string(), "a git work tree with every configuration file committed", "no commits (HEAD unborn)"));
    }
    let status = git(&root, &["status", "--porcelain=v1", "--untracked-files=all", "--", "."]).await?;
    if !status.status.success() {
        return Ok(Outcome::error(format!("git status in {} failed: {}", root.display(), String::from_utf8_lossy(&status.stderr).trim())));
    }
    let text = String::from_utf8_lossy(&status.stdout);
    let findings: Vec<Finding> = text
        .lines()
        .filter(|l| l.len() > 3)
        .map(|l| {
            let (code, path) = l.split_at(3);
            let what = match code.trim() {
                "??" => "untracked (never committed)".to_string(),
                c if c.contains('D') => format!("deleted, not committed ({c})"),
                c if c.contains('A') => format!("added, not committed ({c})"),
                c => format!("modified, not committed ({c})"),
            };
            Finding::new(path.trim(), "committed", what)
        })
        .collect();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    Ok(Outcome::from_findings(findings, format!("{}: work tree clean at HEAD {head}", root.display())))
}

pub(super) async fn readme_documents_repository(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let readme = repo.files.iter().find(|f| f.components().count() == 1 && f.to_string_lossy().to_ascii_lowercase().starts_with("readme"));
    let Some(readme) = readme else {
        return Ok(Outcome::fail(format!("{}/README.md", repo.root.display()), "a README at the repository root", "missing"));
    };
    let text = repo.read_text(readme).unwrap_or_default();
    if text.trim().is_empty() {
        return Ok(Outcome::fail(readme.display().to_string(), "a README describing the repository", "empty"));
    }
    // It documents this multi-cluster repository: every cluster, every layer of the tree.
    let layers: Vec<String> = ["bases", "infrastructure", "workloads", "clusters"]
        .iter()
        .filter(|l| repo.root.join(&repo.kubernetes_dir).join(l).is_dir())
        .map(|l| l.to_string())
        .collect();
    // Whole words, in any case ("the Infra cluster").
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_')).collect();
    let missing: Vec<String> = repo.clusters().iter().chain(layers.iter()).filter(|n| !words.contains(&n.to_lowercase().as_str())).cloned().collect();
    if !missing.is_empty() {
        return Ok(Outcome::fail(readme.display().to_string(), format!("mentions every cluster and layer ({})", repo.clusters().iter().chain(layers.iter()).cloned().collect::<Vec<_>>().join(", ")), format!("does not mention {}", missing.join(", "))));
    }
    Ok(Outcome::pass(format!("{} ({} lines) documents clusters {} and layers {}", readme.display(), text.lines().count(), repo.clusters().join(", "), layers.join(", "))))
}

pub(super) async fn cluster_variables_defined(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let expected = repo.cluster_dir(&ctx.cluster).join("infrastructure.yaml");
    let vars = match repo.variables(&ctx.cluster) {
        Ok(v) => v,
        Err(e) => return Ok(Outcome::fail(expected.display().to_string(), "a Flux Kustomization with postBuild variables", e.to_string())),
    };
    if vars.file != expected {
        return Ok(Outcome::Fail { findings: vec![variables_deviation(&expected, &vars)] });
    }
    let r = rendered(&ctx)?;
    let findings: Vec<Finding> = r.problems.iter().filter(|p| matches!(p.category, "unresolved-variable" | "substitute-from")).map(|p| p.finding.clone()).collect();
    Ok(Outcome::from_findings(findings, format!("{}: {} variables (Kustomization {}); every reference resolves on {}", vars.file.display(), vars.entries.len(), vars.kustomization, ctx.cluster)))
}

pub(super) async fn kustomization_base_paths(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let r = rendered(&ctx)?;
    let mut findings: Vec<Finding> = r.problems.iter().filter(|p| matches!(p.category, "dangling-path" | "missing-flux-path")).map(|p| p.finding.clone()).collect();
    let bases_dir = repo.kubernetes_dir.join("bases");
    let bases: Vec<String> = std::fs::read_dir(repo.root.join(&bases_dir))
        .map(|rd| rd.filter_map(Result::ok).filter(|e| e.path().is_dir()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    let layers: Vec<PathBuf> = ["infrastructure", "workloads"].iter().map(|l| repo.kubernetes_dir.join(l)).collect();
    let reach = cluster_reach(repo, &ctx.cluster)?;
    let mut linked = vec![];
    for dir in reach.dirs.iter().filter(|d| layers.iter().any(|l| d.starts_with(l))) {
        let Some(name) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else { continue };
        if !bases.contains(&name) {
            continue;
        }
        let base = bases_dir.join(&name);
        if reach_from(repo, [dir.clone()]).dirs.contains(&base) {
            linked.push(format!("{} → {}", dir.display(), base.display()));
        } else {
            let entries: Vec<String> = kustomize_entries(repo, dir).into_iter().map(|(e, _)| e).collect();
            findings.push(Finding::new(dir.display().to_string(), format!("references its shared base {}", base.display()), format!("resources {entries:?}")));
        }
    }
    Ok(Outcome::from_findings(findings, format!("no dangling paths on {}; {} components use their base ({})", ctx.cluster, linked.len(), linked.join(", "))))
}

// ---- aggregate items: judged from the other results of the same run ----

/// Every story criterion of this run passed; failures are listed, and criteria that were
/// not proven (unmapped, manual, skipped) keep the item from passing.
pub(super) fn all_acceptance_criteria_met(_cluster: &str, results: &[Prior]) -> Outcome {
    let criteria: Vec<_> = results.iter().filter(|r| r.story != crate::catalog::DOD_STORY).collect();
    if criteria.is_empty() {
        return Outcome::skip("no story criteria were selected in this run");
    }
    let unmet: Vec<&Prior> = criteria.iter().copied().filter(|r| matches!(r.outcome.verdict(), Verdict::Fail | Verdict::Error)).collect();
    if let Some(not_evaluated) = only_errors(&unmet) {
        return not_evaluated;
    }
    if !unmet.is_empty() {
        return Outcome::Fail { findings: unmet.iter().map(|r| Finding::new(r.title(), "met", format!("{}: {}", r.outcome.verdict().as_str(), r.outcome.summary()))).collect() };
    }
    let passed = criteria.iter().filter(|r| r.outcome.verdict() == Verdict::Pass).count();
    if passed < criteria.len() {
        let unmapped = criteria.iter().filter(|r| r.is_unmapped()).count();
        return Outcome::skip(format!(
            "{passed} of {} criterion evaluations passed, none failed; {} not proven ({unmapped} unmapped, the rest manual or skipped)",
            criteria.len(),
            criteria.len() - passed
        ));
    }
    Outcome::pass(format!("all {} criterion evaluations passed", criteria.len()))
}

/// When nothing unmet is a Fail (only Errors, and units blocked behind them), the item could
/// not be judged: an Error naming the first of them, not a finding.
fn only_errors(unmet: &[&Prior]) -> Option<Outcome> {
    let errors: Vec<&Prior> = unmet.iter().copied().filter(|r| r.outcome.verdict() == Verdict::Error).collect();
    if errors.is_empty() || unmet.iter().any(|r| r.outcome.verdict() == Verdict::Fail) {
        return None;
    }
    let first = errors[0];
    Some(Outcome::error(format!(
        "{} evaluation(s) could not be made and none failed, so this cannot be judged; first: {}: {}",
        errors.len(),
        first.title(),
        first.outcome.summary()
    )))
}

/// The automated tests are this run's cluster and data-plane checks of the stories: every
/// one for this cluster (or run once for all) passed; one blocked by a failed prerequisite
/// did not. Manual criteria are a person's part.
pub(super) fn live_checks_passed(cluster: &str, results: &[Prior]) -> Outcome {
    let mine: Vec<_> = results
        .iter()
        .filter(|r| r.story != crate::catalog::DOD_STORY && r.layer.is_some_and(Layer::is_live) && (r.cluster == cluster || r.cluster == ONCE))
        .collect();
    if mine.is_empty() {
        return Outcome::skip(format!("no cluster or data-plane check of a story ran for cluster {} in this run", cluster));
    }
    let unmet: Vec<&Prior> = mine.iter().copied().filter(|r| matches!(r.outcome.verdict(), Verdict::Fail | Verdict::Error) || r.blocked).collect();
    if let Some(not_evaluated) = only_errors(&unmet) {
        return not_evaluated;
    }
    let findings: Vec<Finding> = unmet.iter().map(|r| Finding::new(r.title(), "passed", format!("{}: {}", r.outcome.verdict().as_str(), r.outcome.summary()))).collect();
    let passed = mine.iter().filter(|r| r.outcome.verdict() == Verdict::Pass).count();
    if findings.is_empty() && passed == 0 {
        return Outcome::skip(format!("cluster {}: none of the {} live checks of this run could be evaluated (all skipped)", cluster, mine.len()));
    }
    Outcome::from_findings(findings, format!("cluster {}: {passed} of {} live checks passed, the rest skipped", cluster, mine.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prior(id: &str, cluster: &str, outcome: Outcome, blocked: bool) -> Prior {
        Prior { id: id.into(), story: id.rsplit_once('.').unwrap().0.into(), cluster: cluster.into(), criterion: "c".into(), layer: Some(Layer::Cluster), outcome, blocked }
    }

    #[test]
    fn an_error_is_not_judged_a_finding_but_a_fail_is() {
        let down = Outcome::error("cluster apps unreachable since 02:26:01 UTC (GET /version: no answer within 5s); not evaluated");
        let errors = [prior("2.2.8", "apps", down.clone(), false), prior("2.3.1", "apps", Outcome::skip("blocked by 2.2"), true), prior("2.1.7", "infra", Outcome::pass("ok"), false)];
        for o in [all_acceptance_criteria_met("all", &errors), live_checks_passed("apps", &errors)] {
            assert_eq!(o.verdict(), Verdict::Error, "{o:?}");
            assert!(o.summary().contains("2.2.8 [apps] c: cluster apps unreachable"), "{}", o.summary());
        }
        let mut failed = errors.to_vec();
        failed.push(prior("2.2.7", "apps", Outcome::fail("DaemonSet cilium", "3 ready", "0 ready"), false));
        for o in [all_acceptance_criteria_met("all", &failed), live_checks_passed("apps", &failed)] {
            assert_eq!(o.verdict(), Verdict::Fail, "{o:?}");
            assert!(o.details().join("\n").contains("2.2.7 [apps]"), "{o:?}");
        }
    }
}
