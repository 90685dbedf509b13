//! Target profiles: what a kind of target cannot prove, and the few variables it needs
//! changed (`run --profile ci/kind-profile.yaml`).
//!
//! A profile is YAML:
//!
//! ```yaml
//! name: kind
//! skip:                      # criteria, stories or epics ("2.1.9", "4.2", "1", "dod.3")
//!   - items: ["1.1", "1.2"]
//!     reason: kind nodes are containers on Docker, not Talos machines
//! variables:                 # per cluster: values Flux substitutes on this target instead
//!   infra: {CILIUM_LB_POOL_START: "172.18.255.100"}
//! suspend:                   # per cluster: Flux Kustomizations the deploy step suspends
//!   infra: [gitlab]
//! values:                    # per cluster and HelmRelease: values merged over the rendered ones
//!   infra:
//!     kube-system/cilium: {k8sServiceHost: infra-control-plane, k8sServicePort: 6443}
//! ```
//!
//! Skipped criteria of the cluster and data-plane layers are reported as Skip "not provable
//! in … (profile kind): reason" on every cluster (the repository layer still judges the
//! repository). Variables and suspensions are for the deploy step: `render bootstrap`
//! turns them into patches of the Flux Kustomizations that substitute them, and `render
//! values` renders a HelmRelease with them. Checks keep judging the repository as written,
//! so a profile that replaces a variable skips the criteria that depend on it. Everything is
//! validated against the document and the repository: an item that matches no criterion,
//! a variable no Kustomization substitutes, or a Kustomization that does not exist is an
//! error, so a profile cannot silently drift from the plan.
//!
//! ```
//! use platform_acceptance::session::profile::TargetProfile;
//! let p = TargetProfile::parse("name: kind\nskip:\n  - items: ['2.1.9']\n    reason: no BGP router\n").unwrap();
//! assert_eq!(p.name, "kind");
//! assert!(p.skips("2.1.9").is_some());
//! assert!(p.skips("2.1.1").is_none());
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::catalog::Catalog;
use crate::cluster::access::{Access, Basis, Provenance};
use crate::repo::GitopsRepo;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetProfile {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub skip: Vec<SkipRule>,
    #[serde(default)]
    pub variables: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    pub suspend: BTreeMap<String, Vec<String>>,
    /// Per cluster, per HelmRelease (`NAMESPACE/NAME`): values merged over the rendered ones
    /// on this target (e.g. Cilium's API server address on kind).
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    /// The file it was read from, for messages.
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipRule {
    /// Criterion, story or epic ids.
    pub items: Vec<String>,
    pub reason: String,
}

/// `sel` names `id` itself or an enclosing story or epic (`4.2` → `4.2.7`, `dod` → `dod.3`).
fn covers(sel: &str, id: &str) -> bool {
    id == sel || id.strip_prefix(sel).is_some_and(|rest| rest.starts_with('.'))
}

impl TargetProfile {
    /// Reads and parses a profile file (validate it with [`TargetProfile::validate`]).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read profile {}: {e}", path.display()))?;
        let mut p = Self::parse(&text).map_err(|e| format!("profile {}: {e}", path.display()))?;
        p.file = Some(path.to_path_buf());
        Ok(p)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let p: TargetProfile = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        if p.name.trim().is_empty() {
            return Err("`name` is empty".into());
        }
        if let Some(r) = p.skip.iter().find(|r| r.reason.trim().is_empty()) {
            return Err(format!("skip rule for {} has no reason", r.items.join(", ")));
        }
        Ok(p)
    }

    /// The reason the profile gives for not proving criterion `id`, if it skips it.
    pub fn skips(&self, id: &str) -> Option<&str> {
        self.skip.iter().find(|r| r.items.iter().any(|s| covers(s, id))).map(|r| r.reason.as_str())
    }

    /// Every item named must match a criterion of the document (when one is given), every cluster must be one
    /// of `clusters`, every variable must be substituted by a Flux Kustomization of its
    /// cluster and every suspended Kustomization must exist. One line per problem.
    pub fn validate(&self, catalog: Option<&Catalog>, clusters: &[String], repo: Option<&GitopsRepo>) -> Result<(), String> {
        let mut problems = vec![];
        for sel in self.skip.iter().flat_map(|r| &r.items).filter(|_| catalog.is_some()) {
            if !catalog.into_iter().flat_map(|c| &c.items).any(|i| covers(sel, &i.id)) {
                problems.push(format!("skip item {sel:?} matches no criterion of the document"));
            }
        }
        let named = self.variables.keys().chain(self.suspend.keys()).chain(self.values.keys());
        for cluster in named.filter(|c| !clusters.contains(c)) {
            problems.push(format!("cluster {cluster:?} is not one of the repository's clusters ({})", clusters.join(", ")));
        }
        let needs_repo = !self.variables.is_empty() || !self.suspend.is_empty() || !self.values.is_empty();
        match repo {
            None if needs_repo => problems.push("variables, suspend and values need the repository (--repo PATH)".into()),
            None => {}
            Some(repo) => {
                for (cluster, vars) in self.variables.iter().filter(|(c, _)| clusters.contains(c)) {
                    let ks = repo.flux_kustomizations(cluster).map_err(|e| e.to_string())?;
                    let defined: Vec<String> = ks.iter().flat_map(|k| k.substitute.keys().cloned()).collect();
                    for var in vars.keys().filter(|v| !defined.contains(v)) {
                        problems.push(format!("variable {var} is not substituted by any Flux Kustomization of cluster {cluster}"));
                    }
                }
                for (cluster, releases) in self.values.iter().filter(|(c, _)| clusters.contains(c)) {
                    let rendered = repo.render(cluster).map_err(|e| e.to_string())?;
                    for release in releases.keys() {
                        let found = rendered.of_kind("HelmRelease").any(|o| release.split_once('/') == Some((o.namespace().unwrap_or(""), o.name())));
                        if !found {
                            problems.push(format!("values: cluster {cluster} renders no HelmRelease {release} (NAMESPACE/NAME)"));
                        }
                    }
                }
                for (cluster, names) in self.suspend.iter().filter(|(c, _)| clusters.contains(c)) {
                    let ks = repo.flux_kustomizations(cluster).map_err(|e| e.to_string())?;
                    for name in names.iter().filter(|n| !ks.iter().any(|k| &k.name == *n)) {
                        problems.push(format!("suspend: cluster {cluster} has no Flux Kustomization {name:?}"));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            let file = self.file.as_ref().map(|f| f.display().to_string()).unwrap_or_else(|| self.name.clone());
            Err(format!("profile {file}: {}", problems.join("; ")))
        }
    }

    /// Applies the variable replacements to a repository view used for deploying (`render`).
    pub fn apply_to_repo(&self, repo: &mut GitopsRepo) {
        for (cluster, vars) in &self.variables {
            repo.override_variables(cluster, &self.name, vars.clone());
        }
    }

    /// Criterion id → reason, for every criterion of `catalog` the profile skips.
    pub fn skipped(&self, catalog: &Catalog) -> BTreeMap<String, String> {
        catalog.items.iter().filter_map(|i| self.skips(&i.id).map(|r| (i.id.clone(), r.to_string()))).collect()
    }

    /// `inner`, with the profile's skipped criteria (see [`TargetProfile::skipped`]) added
    /// to what it cannot prove; the profile's reason wins.
    pub fn wrap(&self, inner: Arc<dyn Provenance>, skipped: &BTreeMap<String, String>) -> Arc<dyn Provenance> {
        let describe = format!("{} (profile {})", inner.describe(), self.name);
        Arc::new(Profiled { inner, skipped: skipped.clone(), describe })
    }
}

struct Profiled {
    inner: Arc<dyn Provenance>,
    skipped: BTreeMap<String, String>,
    describe: String,
}

impl Provenance for Profiled {
    fn basis(&self, accesses: &[Access]) -> Basis {
        self.inner.basis(accesses)
    }

    fn not_provable(&self) -> BTreeMap<String, String> {
        let mut out = self.inner.not_provable();
        out.extend(self.skipped.clone());
        out
    }

    fn describe(&self) -> &str {
        &self.describe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_cover_themselves_their_stories_and_epics_only() {
        assert!(covers("4.2", "4.2.7"));
        assert!(covers("4", "4.2.7"));
        assert!(covers("4.2.7", "4.2.7"));
        assert!(covers("dod", "dod.3"));
        assert!(!covers("4.2", "4.21.1"));
        assert!(!covers("4.2.1", "4.2.10"));
        assert!(!covers("1", "10.1.1"));
    }

    #[test]
    fn unknown_fields_and_empty_reasons_are_errors() {
        assert!(TargetProfile::parse("name: kind
skips: []
").unwrap_err().contains("skips"));
        assert!(TargetProfile::parse("name: kind
skip:
  - items: ['1']
    reason: ' '
").unwrap_err().contains("no reason"));
        assert!(TargetProfile::parse("name: ''
").is_err());
    }
}
