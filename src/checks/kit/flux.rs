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
            // Flux generates a kustomization of everything below.
            for f in repo.files.iter().filter(|f| f.starts_with(&dir)) {
                reach.files.insert(f.clone());
                let mut p = f.parent();
                while let Some(d) = p {
                    if !d.starts_with(&dir) {
                        break;
                    }
                    reach.dirs.insert(d.to_path_buf());
                    p = d.parent();
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

