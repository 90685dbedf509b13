//! What Flux would apply to a cluster: each Flux Kustomization's `spec.path` built
//! the way kustomize does (following `resources:`; a directory without a
//! `kustomization.yaml` contributes all its manifests, as Flux generates one),
//! then post-build substitution with that Kustomization's variables.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::{envsubst, flux, str_at, Document, FluxKustomization, GitopsRepo};
use crate::outcome::Finding;

const KUSTOMIZE_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
const SUBSTITUTE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/substitute";

/// A manifest after substitution.
#[derive(Debug, Clone, Serialize)]
pub struct RenderedObject {
    pub file: PathBuf,
    /// The Flux Kustomization that applies it.
    pub applied_by: String,
    pub value: Value,
}

impl RenderedObject {
    pub fn kind(&self) -> &str {
        str_at(&self.value, "/kind").unwrap_or("")
    }
    pub fn api_version(&self) -> &str {
        str_at(&self.value, "/apiVersion").unwrap_or("")
    }
    pub fn name(&self) -> &str {
        str_at(&self.value, "/metadata/name").unwrap_or("")
    }
    pub fn namespace(&self) -> Option<&str> {
        str_at(&self.value, "/metadata/namespace")
    }
    pub fn get(&self, pointer: &str) -> Option<&Value> {
        self.value.pointer(pointer)
    }
    pub fn str(&self, pointer: &str) -> Option<&str> {
        str_at(&self.value, pointer)
    }
    /// `Kind/name (file)` for messages.
    pub fn describe(&self) -> String {
        format!("{}/{} ({})", self.kind(), self.name(), self.file.display())
    }
}

/// Something that keeps Flux from applying the tree as written.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// `dangling-path`, `missing-flux-path`, `substitute-from`, `unresolved-variable`, `invalid-after-substitution`
    pub category: &'static str,
    pub finding: Finding,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rendered {
    pub cluster: String,
    pub objects: Vec<RenderedObject>,
    pub problems: Vec<Problem>,
    /// Flux Kustomizations rendered, by name.
    pub kustomizations: Vec<String>,
}

impl Rendered {
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a RenderedObject> + 'a {
        self.objects.iter().filter(move |o| o.kind() == kind)
    }
    pub fn problems_of<'a>(&'a self, category: &'a str) -> impl Iterator<Item = &'a Problem> + 'a {
        self.problems.iter().filter(move |p| p.category == category)
    }
}

pub(super) fn render(repo: &GitopsRepo, cluster: &str, entry: &[FluxKustomization]) -> Rendered {
    let mut out = Rendered { cluster: cluster.into(), objects: vec![], problems: vec![], kustomizations: vec![] };
    let mut queue: Vec<FluxKustomization> = entry.to_vec();
    // The sources that are this repository: those the cluster's entry Kustomizations use.
    let own_sources: BTreeSet<String> = entry.iter().map(|k| k.source_ref.clone()).collect();
    let mut seen = BTreeSet::new();
    while let Some(k) = queue.first().cloned() {
        queue.remove(0);
        if !seen.insert(k.name.clone()) {
            continue;
        }
        out.kustomizations.push(k.name.clone());
        let vars = flux::variables(repo, cluster, &k);
        out.problems.extend(vars.problems.iter().map(|f| Problem { category: "substitute-from", finding: f.clone() }));
        let dir = normalize(Path::new(k.path.trim_start_matches("./")));
        if !repo.root.join(&dir).is_dir() {
            out.problems.push(Problem {
                category: "missing-flux-path",
                finding: Finding::new(
                    format!("{}: Kustomization {} spec.path", k.file.display(), k.name),
                    "an existing directory",
                    format!("{:?} does not exist", k.path),
                ),
            });
            continue;
        }
        let mut docs = vec![];
        build(repo, &dir, &mut vec![], &mut docs, &mut out.problems);
        let values = vars.values();
        for doc in docs {
            if let Some(obj) = substitute(doc, &k, &values, &mut out.problems) {
                // Nested Flux Kustomizations are applied too, with their own variables.
                if obj.kind() == "Kustomization" && obj.api_version().starts_with("kustomize.toolkit.fluxcd.io/") {
                    let nested = super::flux::kustomizations_from(&obj.value, &obj.file);
                    // One built from another source (an upstream GitRepository of CRDs) has a
                    // spec.path inside that source, not inside this repository.
                    if !seen.contains(&nested.name) && own_sources.contains(&nested.source_ref) {
                        queue.push(nested);
                    }
                }
                out.objects.push(obj);
            }
        }
    }
    out
}

fn substitute(doc: &Document, k: &FluxKustomization, vars: &std::collections::BTreeMap<String, String>, problems: &mut Vec<Problem>) -> Option<RenderedObject> {
    let disabled = str_at(&doc.value, &format!("/metadata/annotations/{}", SUBSTITUTE_ANNOTATION.replace('/', "~1")))
        == Some("disabled");
    if disabled {
        return Some(RenderedObject { file: doc.file.clone(), applied_by: k.name.clone(), value: doc.value.clone() });
    }
    let result = envsubst::substitute(&doc.raw, vars);
    // `kustomize build` drops comments before Flux substitutes: a reference that only a
    // comment holds is never substituted, so it is no problem. Keep those in the document's values.
    let in_values = references_in_values(&doc.value);
    for name in result.unresolved.iter().filter(|n| in_values.contains(*n)) {
        problems.push(Problem {
            category: "unresolved-variable",
            finding: Finding::new(
                format!("{} (applied by {}): ${{{name}}}", doc.describe(), k.name),
                format!("{name} defined in {} or a substituteFrom source", k.file.display()),
                "not defined, renders empty",
            ),
        });
    }
    match serde_yaml_ng::from_str::<Value>(&result.text) {
        Ok(value) => Some(RenderedObject { file: doc.file.clone(), applied_by: k.name.clone(), value }),
        Err(e) => {
            problems.push(Problem {
                category: "invalid-after-substitution",
                finding: Finding::new(doc.describe(), "valid YAML after substitution", e.to_string()),
            });
            None
        }
    }
}

/// kustomize build, reduced to what decides which manifests are included.
fn build<'a>(repo: &'a GitopsRepo, dir: &Path, stack: &mut Vec<PathBuf>, out: &mut Vec<&'a Document>, problems: &mut Vec<Problem>) {
    if stack.contains(&dir.to_path_buf()) {
        problems.push(Problem {
            category: "dangling-path",
            finding: Finding::new(dir.display().to_string(), "no kustomization cycle", "directory includes itself"),
        });
        return;
    }
    stack.push(dir.to_path_buf());
    let config = KUSTOMIZE_FILES.iter().map(|f| dir.join(f)).find(|p| repo.root.join(p).is_file());
    match config {
        Some(config) => {
            let config_doc = repo.documents.iter().find(|d| d.file == config);
            let entries = config_doc
                .map(|d| list(&d.value, "resources").into_iter().chain(list(&d.value, "components")).collect::<Vec<_>>())
                .unwrap_or_default();
            for entry in entries {
                if entry.contains("://") || entry.starts_with("github.com/") {
                    continue; // remote bases are not part of this repository
                }
                let target = normalize(&dir.join(&entry));
                let abs = repo.root.join(&target);
                if target.starts_with("..") {
                    problems.push(dangling(&config, &entry, "path leaves the repository"));
                } else if abs.is_file() {
                    out.extend(repo.documents.iter().filter(|d| d.file == target));
                } else if abs.is_dir() {
                    build(repo, &target, stack, out, problems);
                } else {
                    problems.push(dangling(&config, &entry, "does not exist"));
                }
            }
        }
        None => {
            // Flux generates a kustomization.yaml listing every manifest below `dir`.
            out.extend(repo.documents.iter().filter(|d| d.file.starts_with(dir) && !is_kustomize_config(d)));
        }
    }
    stack.pop();
}

fn dangling(config: &Path, entry: &str, observed: &str) -> Problem {
    Problem {
        category: "dangling-path",
        finding: Finding::new(format!("{}: resources entry {entry:?}", config.display()), "an existing file or directory", observed),
    }
}

fn is_kustomize_config(d: &Document) -> bool {
    d.api_version().starts_with("kustomize.config.k8s.io/")
}

fn list(v: &Value, key: &str) -> Vec<String> {
    v.get(key).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect()).unwrap_or_default()
}

/// Lexical normalisation (`a/b/../c` → `a/c`); a path escaping the root keeps its `..`.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out: Vec<Component> = vec![];
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.iter().collect()
}

/// Names referenced (`${NAME}` without default) by the strings and keys of a parsed document.
fn references_in_values(v: &Value) -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        let mut add = |s: &str| out.extend(envsubst::references(s).into_iter().filter(|r| !r.has_default).map(|r| r.name));
        match v {
            Value::String(s) => add(s),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(m) => m.iter().for_each(|(k, x)| {
                out.extend(envsubst::references(k).into_iter().filter(|r| !r.has_default).map(|r| r.name));
                walk(x, out)
            }),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(v, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::super::GitopsRepo;

    #[test]
    fn a_reference_only_in_a_comment_is_not_unresolved() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "kubernetes/clusters/c1/ks.yaml", &format!("{FLUX_KS}metadata:\n  name: main\n  namespace: flux-system\nspec:\n  path: ./kubernetes/apps\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n  postBuild:\n    substitute:\n      CLUSTER: c1\n"));
        // kustomize build drops the comment, so Flux never sees ${COMMENTED}; ${MISSING} is real.
        write(root, "kubernetes/apps/cm.yaml", "# set per cluster: ${COMMENTED}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${CLUSTER}  # ${ALSO_COMMENTED}\ndata:\n  script: |\n    # in a block scalar: ${MISSING}\n");
        let repo = GitopsRepo::load(root).unwrap();
        let r = repo.render("c1").unwrap();
        let unresolved: Vec<&str> = r.problems_of("unresolved-variable").map(|p| p.finding.object.as_str()).collect();
        assert_eq!(unresolved.len(), 1, "{unresolved:?}");
        assert!(unresolved[0].ends_with("${MISSING}"), "{unresolved:?}");
        assert_eq!(r.objects[0].name(), "cm-c1");
    }

    const FLUX_KS: &str = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n";

    fn write(root: &std::path::Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn nested_kustomization_from_another_source_is_not_built_from_this_repository() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let own = "  sourceRef:\n    kind: GitRepository\n    name: flux-system\n";
        write(root, "kubernetes/clusters/c1/ks.yaml", &format!("{FLUX_KS}metadata:\n  name: main\n  namespace: flux-system\nspec:\n  path: ./kubernetes/apps\n{own}"));
        write(root, "kubernetes/apps/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - upstream.yaml\n  - local.yaml\n");
        // Upstream CRDs: spec.path is inside the upstream repository, here it would be the whole tree.
        write(root, "kubernetes/apps/upstream.yaml", &format!("{FLUX_KS}metadata:\n  name: upstream-crds\n  namespace: flux-system\nspec:\n  path: ./kubernetes\n  sourceRef:\n    kind: GitRepository\n    name: upstream\n"));
        write(root, "kubernetes/apps/local.yaml", &format!("{FLUX_KS}metadata:\n  name: local\n  namespace: flux-system\nspec:\n  path: ./kubernetes/extra\n{own}"));
        write(root, "kubernetes/extra/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n");
        let repo = GitopsRepo::load(root).unwrap();
        let r = repo.render("c1").unwrap();
        assert_eq!(r.kustomizations, ["main", "local"]);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.of_kind("ConfigMap").count(), 1, "the same-source nested Kustomization is still built");
    }
}
