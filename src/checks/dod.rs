//! Definition of Done checks.
//!
//! Writing a check here? Read docs/CHECKS-GUIDE.md first ({GUIDE} in your task): conventions, helpers, test support, rules for shared files and the shared CARGO_TARGET_DIR.
//!
//! Not mapped here: dod.1 "All acceptance criteria met" and dod.2 "All tasks
//! completed" (aggregates of the other results: best computed by the runner /
//! report, see the report of this change), dod.4-dod.7, dod.13-dod.14 (live:
//! deployed, healthy, tests, cross-cluster connectivity, both clusters,
//! cluster-specific behaviour).

use std::path::{Path, PathBuf};

use crate::check::{Check, Ctx, Finding, Outcome, Verdict};
use crate::checks::epic07::shared::{cluster_reach, kustomize_entries, reach_from};
use crate::checks::support::{outcome, rendered, repo};

pub fn checks() -> Vec<Check> {
    vec![
        Check::repo("dod", "All acceptance criteria met", "all_acceptance_criteria_met", all_acceptance_criteria_met).once(),
        Check::manual(
            "dod",
            "All tasks completed",
            "Tasks are prose steps in each story, without checkboxes or an observable end state of their own; their outcomes are proven by the story criteria, and a person confirms the steps themselves were done.",
        ),
        Check::repo("dod", "Configuration files created and committed to git", "configuration_committed_to_git", configuration_committed_to_git).once(),
        Check::repo("dod", "Documentation updated (inline comments, README)", "readme_documents_repository", readme_documents_repository).once(),
        Check::manual(
            "dod",
            "Peer reviewed (if applicable)",
            "A review is recorded on the code host (pull-request approvals), not in the git tree, the clusters or any service the platform runs; a person must confirm each change was reviewed, or that review did not apply.",
        ),
        Check::manual(
            "dod",
            "No known bugs or issues",
            "'Known' bugs live in people's knowledge and the issue tracker, outside the repository and the clusters; no check can prove the absence of unknown-to-the-harness issues. A person must confirm the tracker has no open bug for the story.",
        ),
        Check::repo("dod", "Variables defined in `clusters/*/infrastructure.yaml`", "cluster_variables_defined", cluster_variables_defined),
        Check::repo("dod", "Kustomization references correct base paths", "kustomization_base_paths", kustomization_base_paths),
    ]
}

async fn git(root: &Path, args: &[&str]) -> Result<std::process::Output, Outcome> {
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

async fn configuration_committed_to_git(ctx: Ctx) -> Outcome {
    let repo = match repo(&ctx) {
        Ok(r) => r,
        Err(o) => return o,
    };
    let root = repo.root.clone();
    let inside = match git(&root, &["rev-parse", "--is-inside-work-tree"]).await {
        Ok(o) => o,
        Err(o) => return o,
    };
    if !inside.status.success() || String::from_utf8_lossy(&inside.stdout).trim() != "true" {
        let err = String::from_utf8_lossy(&inside.stderr);
        if err.contains("dubious ownership") {
            return Outcome::error(format!("git refuses {}: {}", root.display(), err.trim()));
        }
        return Outcome::fail(root.display().to_string(), "a git work tree with every configuration file committed", "not a git repository");
    }
    let head = match git(&root, &["rev-parse", "--verify", "-q", "--short", "HEAD"]).await {
        Ok(o) => o,
        Err(o) => return o,
    };
    if !head.status.success() {
        return Outcome::fail(root.display().to_string(), "a git work tree with every configuration file committed", "no commits (HEAD unborn)");
    }
    let status = match git(&root, &["status", "--porcelain=v1", "--untracked-files=all", "--", "."]).await {
        Ok(o) => o,
        Err(o) => return o,
    };
    if !status.status.success() {
        return Outcome::error(format!("git status in {} failed: {}", root.display(), String::from_utf8_lossy(&status.stderr).trim()));
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
    Outcome::from_findings(findings, format!("{}: work tree clean at HEAD {head}", root.display()))
}

async fn readme_documents_repository(ctx: Ctx) -> Outcome {
    outcome(|| {
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
        let words: Vec<&str> = text.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_')).collect();
        let missing: Vec<String> = repo.clusters().iter().chain(layers.iter()).filter(|n| !words.contains(&n.as_str())).cloned().collect();
        if !missing.is_empty() {
            return Ok(Outcome::fail(readme.display().to_string(), format!("mentions every cluster and layer ({})", repo.clusters().iter().chain(layers.iter()).cloned().collect::<Vec<_>>().join(", ")), format!("does not mention {}", missing.join(", "))));
        }
        Ok(Outcome::pass(format!("{} ({} lines) documents clusters {} and layers {}", readme.display(), text.lines().count(), repo.clusters().join(", "), layers.join(", "))))
    })
}

async fn cluster_variables_defined(ctx: Ctx) -> Outcome {
    outcome(|| {
        let repo = repo(&ctx)?;
        let expected = repo.cluster_dir(&ctx.cluster).join("infrastructure.yaml");
        let vars = match repo.variables(&ctx.cluster) {
            Ok(v) => v,
            Err(e) => return Ok(Outcome::fail(expected.display().to_string(), "a Flux Kustomization with postBuild variables", e.to_string())),
        };
        if vars.file != expected {
            return Ok(Outcome::fail(expected.display().to_string(), "the cluster's postBuild variables", format!("variables only in {}", vars.file.display())));
        }
        let r = rendered(&ctx)?;
        let findings: Vec<Finding> = r.problems.iter().filter(|p| matches!(p.category, "unresolved-variable" | "substitute-from")).map(|p| p.finding.clone()).collect();
        Ok(Outcome::from_findings(findings, format!("{}: {} variables (Kustomization {}); every reference resolves on {}", vars.file.display(), vars.entries.len(), vars.kustomization, ctx.cluster)))
    })
}

async fn kustomization_base_paths(ctx: Ctx) -> Outcome {
    outcome(|| {
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
    })
}

// ---- aggregate items: judged from the other results of the same run ------------

/// Every story criterion of this run passed; failures are listed, and criteria that were
/// not proven (unmapped, manual, skipped) keep the item from passing.
async fn all_acceptance_criteria_met(ctx: Ctx) -> Outcome {
    let results = ctx.finished.lock().expect("results lock").clone();
    let criteria: Vec<_> = results.iter().filter(|r| r.story != crate::catalog::DOD_STORY).collect();
    if criteria.is_empty() {
        return Outcome::skip("no story criteria were selected in this run");
    }
    let findings: Vec<Finding> = criteria
        .iter()
        .filter(|r| matches!(r.outcome.verdict(), Verdict::Fail | Verdict::Error))
        .map(|r| Finding::new(r.title(), "met", format!("{}: {}", r.outcome.verdict().as_str(), r.outcome.summary())))
        .collect();
    if !findings.is_empty() {
        return Outcome::Fail { findings };
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
