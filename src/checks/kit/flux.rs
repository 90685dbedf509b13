//! How Flux and kustomize reach directories: kustomization files, their entries, and
//! the directories a cluster's Flux Kustomizations build.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::rendered::group;
use crate::check::Outcome;
use crate::repo::GitopsRepo;

pub use crate::repo::normalize_path as normalize;

const KUSTOMIZE_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The kustomize config of a directory, if any.
pub fn kustomization_file(repo: &GitopsRepo, dir: &Path) -> Option<PathBuf> {
    KUSTOMIZE_FILES.iter().map(|f| dir.join(f)).find(|p| repo.root.join(p).is_file())
}

/// `resources` and `components` entries of a directory's kustomization, normalised against the directory.
pub fn kustomize_entries(repo: &GitopsRepo, dir: &Path) -> Vec<(String, PathBuf)> {
    let Some(file) = kustomization_file(repo, dir) else { return vec![] };
    let Some(doc) = repo.documents.iter().find(|d| d.file == file) else { return vec![] };
    ["resources", "components"]
        .iter()
        .flat_map(|k| doc.value.get(*k).and_then(Value::as_array).cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(String::from))
        .filter(|e| !e.contains("://") && !e.starts_with("github.com/"))
        .map(|e| {
            let p = normalize(&dir.join(&e));
            (e, p)
        })
        .collect()
}

/// Directories and files kustomize includes when building from `starts`.
#[derive(Debug, Default)]
pub struct Reach {
    pub dirs: BTreeSet<PathBuf>,
    pub files: BTreeSet<PathBuf>,
}

pub fn reach_from(repo: &GitopsRepo, starts: impl IntoIterator<Item = PathBuf>) -> Reach {
    let mut reach = Reach::default();
    let mut stack: Vec<PathBuf> = starts.into_iter().collect();
    while let Some(dir) = stack.pop() {
        if !repo.root.join(&dir).is_dir() || !reach.dirs.insert(dir.clone()) {
            continue;
        }
        if kustomization_file(repo, &dir).is_some() {
            for (_, target) in kustomize_entries(repo, &dir) {
                if repo.root.join(&target).is_dir() {
                    stack.push(target);
                } else if repo.root.join(&target).is_file() {
                    reach.files.insert(target);
                }
            }
        } else {
            // Flux generates a kustomization of every .yaml/.yml below; a sub-directory with
            // its own kustomization file is listed as a directory (built, not descended into).
            let mut walk = vec![dir.clone()];
            while let Some(d) = walk.pop() {
                let Ok(read) = std::fs::read_dir(repo.root.join(&d)) else { continue };
                for e in read.filter_map(Result::ok).filter(|e| !e.file_name().to_string_lossy().starts_with('.')) {
                    let rel = d.join(e.file_name());
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        if kustomization_file(repo, &rel).is_some() {
                            stack.push(rel);
                        } else if reach.dirs.insert(rel.clone()) {
                            walk.push(rel);
                        }
                    } else {
                        reach.files.insert(rel);
                    }
                }
            }
        }
    }
    reach
}

/// What the cluster's Flux Kustomizations (entry and nested ones from this repository) build.
pub fn cluster_reach(repo: &GitopsRepo, cluster: &str) -> Result<Reach, Outcome> {
    let entry = repo.flux_kustomizations(cluster).map_err(Outcome::error)?;
    let own: BTreeSet<String> = entry.iter().map(|k| k.source_ref.clone()).collect();
    let rendered = repo.render(cluster).map_err(Outcome::error)?;
    let mut paths: Vec<PathBuf> = entry.iter().map(|k| normalize(Path::new(k.path.trim_start_matches("./")))).collect();
    for o in rendered.objects.iter().filter(|o| o.kind() == "Kustomization" && group(o) == "kustomize.toolkit.fluxcd.io") {
        let src = format!(
            "{}/{}/{}",
            o.str("/spec/sourceRef/kind").unwrap_or_default(),
            o.str("/spec/sourceRef/namespace").or(o.namespace()).unwrap_or_default(),
            o.str("/spec/sourceRef/name").unwrap_or_default()
        );
        if own.contains(&src) {
            paths.push(normalize(Path::new(o.str("/spec/path").unwrap_or("").trim_start_matches("./"))));
        }
    }
    Ok(reach_from(repo, paths))
}

/// Resources and components a directory's kustomization lists, as repository paths;
/// `None` when the directory has no kustomization (Flux then generates one of everything below).
pub fn kustomize_resources(repo: &GitopsRepo, dir: &Path) -> Option<Vec<PathBuf>> {
    kustomization_file(repo, dir)?;
    Some(kustomize_entries(repo, dir).into_iter().map(|(_, p)| p).collect())
}

/// Directories a cluster's Flux Kustomizations build (see [`cluster_reach`]).
pub fn reachable_dirs(repo: &GitopsRepo, cluster: &str) -> Result<BTreeSet<PathBuf>, Outcome> {
    Ok(cluster_reach(repo, cluster)?.dirs)
}


/// Why `path` (a directory or file) is not built for `cluster`: when a Flux Kustomization
/// of this repository builds it but is itself applied by none of the cluster's
/// Kustomizations, "orphaned: no Flux Kustomization of cluster C reaches <its file> ...";
/// else that none of the cluster's Flux Kustomizations reaches it.
pub fn unreached(repo: &GitopsRepo, cluster: &str, path: &Path) -> String {
    let applied: BTreeSet<String> = repo.render(cluster).map(|r| r.kustomizations.clone()).unwrap_or_default().into_iter().collect();
    let owner = repo
        .documents
        .iter()
        .filter(|d| d.kind() == "Kustomization" && d.api_version().starts_with("kustomize.toolkit.fluxcd.io/"))
        .filter(|d| !applied.contains(d.name()))
        .find(|d| {
            let p = crate::repo::str_at(&d.value, "/spec/path").unwrap_or_default();
            let p = normalize(Path::new(p.trim_start_matches("./")));
            !p.as_os_str().is_empty() && path.starts_with(&p)
        });
    match owner {
        Some(d) => format!(
            "orphaned: no Flux Kustomization of cluster {cluster} reaches {} (Kustomization {} that builds it)",
            d.file.display(),
            d.name()
        ),
        None => "not reachable from any of the cluster's Flux Kustomizations".to_string(),
    }
}
