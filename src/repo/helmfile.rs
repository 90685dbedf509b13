//! Releases a bootstrap helmfile installs before Flux runs (community repositories install
//! Cilium, CoreDNS, cert-manager or CRDs this way: `bootstrap/helmfile.yaml`,
//! `bootstrap/helmfile.d/*.yaml.gotmpl`). Read statically, never executed: every Go
//! template action (`{{ ... }}`) is blanked first, then each document's `releases:` list
//! is read. A file that still does not parse is skipped with a note.
//!
//! ```
//! let text = "releases:\n  - name: cilium\n    namespace: kube-system\n    chart: oci://ghcr.io/home-operations/charts-mirror/cilium\n    version: 1.17.4\n    values: ['{{ requiredEnv \"ROOT_DIR\" }}/values.yaml']\n";
//! let r = platform_acceptance::repo::helmfile::parse(std::path::Path::new("bootstrap/helmfile.yaml.gotmpl"), text).unwrap();
//! assert_eq!((r[0].name.as_str(), r[0].chart.as_str()), ("cilium", "cilium"));
//! ```

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

/// One release of a helmfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The helmfile, relative to the repository root.
    pub file: PathBuf,
    pub name: String,
    pub namespace: Option<String>,
    /// The chart's name: the last segment of `oci://…/<chart>` or `<repo>/<chart>`.
    pub chart: String,
}

static ACTION: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?s)\{\{.*?\}\}").expect("static regex"));

/// Whether a file is a helmfile by its name: `helmfile.yaml`, `helmfile*.yaml(.gotmpl)`, or
/// a YAML file (templated or not) in a `helmfile.d/` folder.
pub fn is_helmfile(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return false };
    let yaml = [".yaml", ".yml", ".yaml.gotmpl", ".yml.gotmpl"].iter().any(|e| name.ends_with(e));
    let in_d = path.parent().and_then(Path::file_name).is_some_and(|d| d == "helmfile.d");
    yaml && (name.starts_with("helmfile") || in_d)
}

/// The releases of one helmfile's text, or why it cannot be read.
pub fn parse(file: &Path, text: &str) -> Result<Vec<Release>, String> {
    // A template action becomes a plain word, or nothing where it is the whole line.
    let blanked: String = text
        .lines()
        .map(|l| if ACTION.replace_all(l, "").trim().is_empty() && l.contains("{{") { String::new() } else { ACTION.replace_all(l, "TEMPLATE").into_owned() })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = vec![];
    for doc in blanked.split("\n---").filter(|d| !d.trim().is_empty()) {
        let v = super::parse_yaml(doc).map_err(|e| format!("{}: {e}", file.display()))?;
        for r in v.get("releases").and_then(Value::as_array).into_iter().flatten() {
            let s = |k: &str| r.get(k).and_then(Value::as_str).filter(|x| !x.is_empty()).map(String::from);
            let (Some(name), Some(chart)) = (s("name"), s("chart")) else { continue };
            let chart = chart.trim_end_matches('/').rsplit('/').next().unwrap_or(&chart).to_string();
            out.push(Release { file: file.to_path_buf(), name, namespace: s("namespace"), chart });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helmfiles_are_known_by_name_and_folder() {
        for yes in ["bootstrap/helmfile.yaml", "bootstrap/helmfile.d/01-apps.yaml.gotmpl", "helmfile-crds.yaml.gotmpl"] {
            assert!(is_helmfile(Path::new(yes)), "{yes}");
        }
        for no in ["bootstrap/values.yaml", "helmfile.d/README.md", "kubernetes/apps/kustomization.yaml"] {
            assert!(!is_helmfile(Path::new(no)), "{no}");
        }
    }

    #[test]
    fn templates_are_blanked_and_every_document_is_read() {
        let text = "---\n{{- $root := env \"ROOT\" }}\nhelmDefaults:\n  wait: true\n---\nreleases:\n  - name: coredns\n    namespace: kube-system\n    chart: coredns/coredns\n    needs: ['{{ .Release.Namespace }}/cilium']\n  - name: no-chart\n";
        let r = parse(Path::new("b/helmfile.d/01.yaml.gotmpl"), text).unwrap();
        assert_eq!(r, vec![Release { file: "b/helmfile.d/01.yaml.gotmpl".into(), name: "coredns".into(), namespace: Some("kube-system".into()), chart: "coredns".into() }]);
        assert!(parse(Path::new("h.yaml"), "releases: [\n").unwrap_err().starts_with("h.yaml: "));
    }
}
