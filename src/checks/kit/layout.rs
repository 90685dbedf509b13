//! Where the plan's paths are not the repository's: a criterion that names a path
//! (`bases/cilium/`, `.../cloudnative-pg/cluster/cluster.yaml`) for a component the
//! repository keeps elsewhere (the per-component `ks.yaml` + `app/` layout) fails as a
//! *deviation* naming both places, not as "missing".
//!
//! The component is read off the plan's path: its last segment that is not a layer or
//! role folder (`bases`, `infrastructure`, `operator`, `cluster`, …) names it, and a file
//! name names the kind (`helmrelease.yaml` → HelmRelease, `cluster.yaml` → Cluster) or is
//! looked for as such. It is found among the objects the clusters render, so a deviation
//! is only reported for something Flux really applies.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::helm::chart_name;
use super::rendered::squash;
use crate::check::{Finding, Outcome};
use crate::repo::{GitopsRepo, RenderedObject, Variables};

/// Folder names that say which layer or role a directory has, not which component.
const ROLE_FOLDERS: [&str; 22] = [
    "kubernetes", "clusters", "bases", "infrastructure", "workloads", "platform", "tenants", "networking", "security",
    "storage", "backup", "observability", "databases", "auth", "gitops", "operator", "cluster", "instance", "config",
    "app", "apps", "base",
];

/// The deviation of the plan's `doc_path`, when it does not exist and the component it
/// names is rendered elsewhere; `None` when the path exists or nothing fits.
pub fn deviation(repo: &GitopsRepo, doc_path: &str) -> Option<Finding> {
    if repo.resolve(doc_path).is_some() {
        return None;
    }
    let path = Path::new(doc_path.trim_start_matches("./").trim_end_matches('/'));
    let segments: Vec<&str> = path.iter().filter_map(|s| s.to_str()).collect();
    let (file, dirs) = match segments.split_last() {
        Some((last, dirs)) if last.ends_with(".yaml") || last.ends_with(".yml") => (Some(*last), dirs),
        _ => (None, segments.as_slice()),
    };
    // The plan's folder is there and only the file is not: the component is where the plan
    // puts it, so that is a missing file, not another layout.
    if file.is_some() && !dirs.is_empty() && repo.resolve(&dirs.join("/")).is_some() {
        return None;
    }
    let token = dirs.iter().rev().find(|s| !ROLE_FOLDERS.contains(s)).map(|s| squash(s));
    let stem = file.map(|f| f.rsplit_once('.').map_or(f, |(s, _)| s)).filter(|s| !s.starts_with("kustomization"));
    // A shared base (`bases/<component>/`) is a HelmRelease: nothing else stands in for it.
    let release_only = segments.contains(&"bases") && file.is_none();
    let renders: Vec<_> = repo.clusters().iter().filter_map(|c| repo.render(c).ok().map(|r| (c.clone(), r))).collect();
    let named = |o: &RenderedObject, t: &str| {
        squash(o.name()).contains(t) || squash(&chart_name(o)).contains(t) || o.file.iter().any(|s| s.to_str().is_some_and(|s| squash(s) == t))
    };
    let objs: Vec<&RenderedObject> = renders.iter().flat_map(|(_, r)| r.objects.iter()).collect();
    let by_token = |o: &&RenderedObject| token.as_deref().is_some_and(|t| named(o, t));
    // The folder the plan's path ends in when it is a role (`operator`, `cluster`): a
    // component folder of the same role is the better match.
    let role = dirs.last().filter(|s| ROLE_FOLDERS.contains(s)).copied();
    let in_role = |o: &&RenderedObject| role.is_none_or(|r| o.file.parent().and_then(Path::file_name).and_then(|n| n.to_str()) == Some(r));
    let pick: Option<&RenderedObject> = match (stem, &token) {
        // A file: the same file name, else the kind it names; the component's name decides
        // between several, a single one needs none.
        (Some(stem), _) => {
            let same_file = |o: &&RenderedObject| o.file.file_name().and_then(|n| n.to_str()) == file;
            let s = squash(stem);
            let exact = |o: &&RenderedObject| squash(o.kind()) == s;
            let suffix = |o: &&RenderedObject| {
                let k = squash(o.kind());
                !k.is_empty() && (k.ends_with(&s) || s.starts_with(&k))
            };
            objs.iter().copied().find(|o| same_file(o) && by_token(o))
                .or_else(|| objs.iter().copied().find(|o| exact(o) && by_token(o)))
                .or_else(|| unique(objs.iter().copied().filter(exact).collect()))
                .or_else(|| unique(objs.iter().copied().filter(same_file).collect()))
                .or_else(|| objs.iter().copied().find(|o| suffix(o) && by_token(o)))
        }
        // A directory (or its kustomization file): the component's HelmRelease, else an
        // object of a folder named like it, else one named like it.
        (None, Some(t)) => {
            let folder = |o: &&RenderedObject| o.file.iter().any(|s| s.to_str().is_some_and(|s| squash(s) == *t));
            let hr = |o: &&RenderedObject| o.kind() == "HelmRelease" && named(o, t);
            let release = objs.iter().copied().find(hr);
            if release_only {
                release
            } else {
                objs.iter()
                    .copied()
                    .find(|o| folder(o) && in_role(o))
                    .filter(|_| role.is_some())
                    .or(release)
                    .or_else(|| objs.iter().copied().find(folder))
                    .or_else(|| objs.iter().copied().find(|o| squash(o.name()).contains(t.as_str())))
            }
        }
        (None, None) => None,
    };
    // Nothing Flux applies: a helmfile release can stand in for a folder or a HelmRelease,
    // not for another kind of object.
    let release_like = stem.is_none_or(|s| squash(s) == "helmrelease");
    let Some(pick) = pick else { return token.filter(|_| release_like).and_then(|t| installed_by_helmfile(repo, doc_path, &t)) };
    let found: PathBuf = if file.is_some() && stem.is_some() { pick.file.clone() } else { pick.file.parent().map(Path::to_path_buf).unwrap_or_default() };
    let clusters: Vec<String> = renders
        .iter()
        .filter(|(_, r)| r.objects.iter().any(|o| if found == pick.file { o.file == found } else { o.file.starts_with(&found) }))
        .map(|(c, _)| c.clone())
        .collect();
    let shown = if found == pick.file { found.display().to_string() } else { format!("{}/", found.display()) };
    Some(Finding::deviation(format!("{} {}", pick.kind(), pick.name()), doc_path, shown, &clusters))
}

/// The deviation of a component no Flux Kustomization applies but a bootstrap helmfile
/// installs (before Flux, outside it).
fn installed_by_helmfile(repo: &GitopsRepo, doc_path: &str, token: &str) -> Option<Finding> {
    let (releases, _) = repo.helmfile_releases();
    let r = releases.iter().find(|r| squash(&r.name).contains(token) || squash(&r.chart).contains(token))?;
    let mut f = Finding::deviation(format!("helmfile release {} (chart {})", r.name, r.chart), doc_path, r.file.display().to_string(), &[]);
    f.observed = format!("found at {} (installed by a bootstrap helmfile, outside Flux)", r.file.display());
    Some(f)
}

/// The Fail for a path the plan names that the repository lacks: the deviation when the
/// component is rendered elsewhere, else `missing` as the caller words it.
pub fn missing(repo: &GitopsRepo, doc_path: &str, missing: Finding) -> Finding {
    deviation(repo, doc_path).unwrap_or(missing)
}

/// The cluster's variables are read by a Flux Kustomization in another file than the one
/// the plan names (`clusters/infra/infrastructure.yaml`): the deviation naming both.
pub fn variables_deviation(expected: &Path, vars: &Variables) -> Finding {
    Finding::deviation(
        format!("Kustomization {} (the cluster's postBuild variables)", vars.kustomization),
        expected.display().to_string(),
        vars.file.display().to_string(),
        std::slice::from_ref(&vars.cluster),
    )
}

/// The one object of `found` (the same one rendered on several clusters counts once).
fn unique(found: Vec<&RenderedObject>) -> Option<&RenderedObject> {
    let distinct: BTreeSet<(&str, &str, &Path)> = found.iter().map(|o| (o.kind(), o.name(), o.file.as_path())).collect();
    if distinct.len() == 1 { found.first().copied() } else { None }
}

/// [`missing`] as a whole outcome.
pub fn missing_outcome(repo: &GitopsRepo, doc_path: &str, object: impl Into<String>, expected: impl Into<String>, observed: impl Into<String>) -> Outcome {
    Outcome::Fail { findings: vec![missing(repo, doc_path, Finding::new(object, expected, observed))] }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// One cluster whose Flux Kustomization `cilium` (ks.yaml) applies `app/`.
    fn community(root: &Path) {
        write(root, "kubernetes/clusters/c1/ks.yaml", "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\n  namespace: flux-system\nspec:\n  path: ./kubernetes/apps\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n");
        write(root, "kubernetes/apps/kube-system/cilium/ks.yaml", "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: cilium\n  namespace: flux-system\nspec:\n  path: ./kubernetes/apps/kube-system/cilium/app\n  targetNamespace: kube-system\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n");
        write(root, "kubernetes/apps/kube-system/cilium/app/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - helmrelease.yaml\n  - ocirepository.yaml\n");
        write(root, "kubernetes/apps/kube-system/cilium/app/helmrelease.yaml", "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: cilium\nspec:\n  chartRef:\n    kind: OCIRepository\n    name: cilium\n");
        write(root, "kubernetes/apps/kube-system/cilium/app/ocirepository.yaml", "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata:\n  name: cilium\nspec:\n  url: oci://ghcr.io/home-operations/charts-mirror/cilium\n");
        write(root, "kubernetes/apps/databases/postgres/ks.yaml", "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: postgres\n  namespace: flux-system\nspec:\n  path: ./kubernetes/apps/databases/postgres/app\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n");
        write(root, "kubernetes/apps/databases/postgres/app/pg.yaml", "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: postgres-shared\n  namespace: databases\n");
    }

    #[test]
    fn a_component_elsewhere_is_a_deviation_naming_both_paths() {
        let dir = tempfile::tempdir().unwrap();
        community(dir.path());
        let repo = GitopsRepo::load(dir.path()).unwrap();
        let f = deviation(&repo, "bases/cilium/").expect("cilium is rendered elsewhere");
        assert_eq!(
            f.to_string(),
            "deviates from the plan's layout: HelmRelease cilium found at kubernetes/apps/kube-system/cilium/app/ (rendered on c1), the plan expects bases/cilium/"
        );
        let d = f.deviation.unwrap();
        assert_eq!((d.expected.as_str(), d.found.as_str()), ("bases/cilium/", "kubernetes/apps/kube-system/cilium/app/"));
        // A file the plan names: the object of the kind the file name says.
        let f = deviation(&repo, "kubernetes/bases/cilium/helmrelease.yaml").unwrap();
        assert_eq!(f.deviation.unwrap().found, "kubernetes/apps/kube-system/cilium/app/helmrelease.yaml");
        let f = deviation(&repo, "kubernetes/workloads/platform/databases/cloudnative-pg/cluster/cluster.yaml").unwrap();
        assert_eq!(f.object, "Cluster postgres-shared");
        assert_eq!(f.deviation.unwrap().found, "kubernetes/apps/databases/postgres/app/pg.yaml");
    }

    #[test]
    fn no_deviation_where_the_path_exists_or_nothing_is_rendered() {
        let dir = tempfile::tempdir().unwrap();
        community(dir.path());
        let repo = GitopsRepo::load(dir.path()).unwrap();
        assert!(deviation(&repo, "kubernetes/apps/kube-system/cilium/app/").is_none(), "the path exists");
        assert!(deviation(&repo, "bases/harbor/").is_none(), "no Harbor anywhere");
        assert!(deviation(&repo, "kubernetes/bases/").is_none(), "a layer folder names no component");
        assert!(deviation(&repo, "kubernetes/apps/kube-system/cilium/app/values.yaml").is_none(), "the plan's folder is there, only the file is missing");
        let plain = missing_outcome(&repo, "bases/harbor/", "bases/harbor/", "directory present in the repository", "missing");
        assert_eq!(plain.summary(), "bases/harbor/: expected directory present in the repository, observed missing");
        // A shared base is a HelmRelease: the component's other objects do not stand in for it.
        let hr = dir.path().join("kubernetes/apps/kube-system/cilium/app/helmrelease.yaml");
        let text = std::fs::read_to_string(&hr).unwrap();
        std::fs::remove_file(&hr).unwrap();
        write(dir.path(), "kubernetes/apps/kube-system/cilium/app/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ocirepository.yaml\n");
        let without = GitopsRepo::load(dir.path()).unwrap();
        assert!(deviation(&without, "bases/cilium/").is_none(), "only the OCIRepository is left");
        assert!(deviation(&without, "infrastructure/networking/cilium/").is_some(), "a config folder is any of its objects");
        std::fs::write(&hr, text).unwrap();
        write(dir.path(), "kubernetes/apps/kube-system/cilium/app/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - helmrelease.yaml\n  - ocirepository.yaml\n");
        // Installed only by a bootstrap helmfile: a deviation naming the helmfile.
        let helmfile = "releases:\n  - name: cert-manager\n    namespace: cert-manager\n    chart: oci://quay.io/jetstack/charts/cert-manager\n    values: ['{{ requiredEnv \"ROOT_DIR\" }}/values.yaml']\n";
        write(dir.path(), "bootstrap/helmfile.d/00-crds.yaml.gotmpl", helmfile);
        let repo = GitopsRepo::load(dir.path()).unwrap();
        let f = deviation(&repo, "bases/cert-manager/").expect("cert-manager comes from the helmfile");
        assert_eq!(
            f.to_string(),
            "deviates from the plan's layout: helmfile release cert-manager (chart cert-manager) found at bootstrap/helmfile.d/00-crds.yaml.gotmpl (installed by a bootstrap helmfile, outside Flux), the plan expects bases/cert-manager/"
        );
        // Not rendered: the files exist but no Flux Kustomization applies them.
        std::fs::create_dir_all(dir.path().join("unused")).unwrap();
        std::fs::rename(dir.path().join("kubernetes/apps/kube-system"), dir.path().join("unused/kube-system")).unwrap();
        let repo = GitopsRepo::load(dir.path()).unwrap();
        assert!(deviation(&repo, "bases/cilium/").is_none());
    }
}
