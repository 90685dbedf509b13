//! Flux `Kustomization` entry points of a cluster and the variables they substitute.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Serialize;
use serde_json::Value;

use super::{str_at, string_map, Document, GitopsRepo};
use crate::outcome::{Finding, Outcome};

const FLUX_KUSTOMIZE_GROUP: &str = "kustomize.toolkit.fluxcd.io/";

/// A Flux Kustomization found in a cluster's entry directory.
#[derive(Debug, Clone, Serialize)]
pub struct FluxKustomization {
    pub name: String,
    /// `metadata.namespace`: where Flux looks up its `substituteFrom` ConfigMaps and Secrets.
    pub namespace: String,
    pub api_version: String,
    /// File that defines it, relative to the root.
    pub file: PathBuf,
    /// `spec.path` as written (`./kubernetes/infrastructure`).
    pub path: String,
    /// Whether `spec.postBuild` is present: Flux substitutes variables only then.
    pub post_build: bool,
    pub substitute: BTreeMap<String, String>,
    pub substitute_from: Vec<SubstituteRef>,
    pub depends_on: Vec<String>,
    /// `spec.targetNamespace`: the namespace of every namespaced object it applies.
    pub target_namespace: Option<String>,
    /// `spec.patches` as written (`patch` text and `target`).
    pub patches: Vec<Value>,
    /// `spec.components`: component directories relative to `spec.path`.
    pub components: Vec<String>,
    /// `spec` fields set that the rendering does not apply (`namePrefix`, `nameSuffix`, `images`).
    pub unsupported: Vec<String>,
    /// `spec.sourceRef` as `Kind/namespace/name` (namespace defaults to the Kustomization's own).
    pub source_ref: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubstituteRef {
    /// `ConfigMap` or `Secret`.
    pub kind: String,
    pub name: String,
    pub optional: bool,
}

/// Where a variable's value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "kebab-case")]
pub enum VarSource {
    Substitute,
    ConfigMap(String),
    /// Values from Secrets are never printed.
    Secret(String),
    /// A SOPS-encrypted Secret of the repository (it has a `sops` block): Flux decrypts it
    /// with a key the harness does not have, so the value is unknown, not missing.
    Encrypted(String),
    /// Replaced by a target profile (`run --profile`): the value Flux substitutes on that
    /// target because the profile's deploy step patches it in; names the profile.
    Profile(String),
    /// A source whose values the repository does not hold: a ConfigMap or Secret outside the
    /// cluster's entry directory (typically a bootstrap directory a script applies, often
    /// with values injected from a password manager), or the Secret an ExternalSecret makes
    /// (its values come from the secret store). Its keys count as defined, its values as
    /// unknown. Says what it is and where, for messages.
    Unheld(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct Variable {
    #[serde(skip)] // values may come from Secrets; never serialised
    pub value: String,
    pub source: VarSource,
}

impl Variable {
    /// Whether the value must not be shown (from a Secret, SOPS-encrypted or not, or from a
    /// source whose values the repository does not hold).
    pub fn is_secret(&self) -> bool {
        matches!(self.source, VarSource::Secret(_) | VarSource::Encrypted(_) | VarSource::Unheld(_))
    }
    /// Whether the value is unknown here (from a SOPS-encrypted Secret, or from an object
    /// created outside Flux).
    pub fn is_unknown(&self) -> bool {
        matches!(self.source, VarSource::Encrypted(_) | VarSource::Unheld(_))
    }
    /// The value for messages: Secret-sourced values are redacted.
    pub fn shown(&self) -> String {
        if self.is_secret() { "<redacted>".into() } else { format!("{:?}", self.value) }
    }
}

/// The variables one Flux Kustomization substitutes, with their origin.
#[derive(Debug, Clone, Serialize)]
pub struct Variables {
    pub cluster: String,
    /// The Flux Kustomization they belong to.
    pub kustomization: String,
    /// File that defines the Kustomization (for messages).
    pub file: PathBuf,
    pub entries: BTreeMap<String, Variable>,
    /// `substituteFrom` references that could not be satisfied.
    pub problems: Vec<Finding>,
    /// Sources whose keys cannot be known here (an ExternalSecret's `dataFrom`): a variable
    /// no other source defines may come from one of them.
    pub open: Vec<String>,
}

impl Variables {
    /// A variable's value; `None` when it is not defined or its value is unknown (from a
    /// SOPS-encrypted Secret).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.get(name).filter(|v| !v.is_unknown()).map(|v| v.value.as_str())
    }

    /// Plain map for substitution. A variable whose value is unknown renders as its own
    /// reference (`${NAME}`), so the text shows what Flux fills in, not a guess.
    pub fn values(&self) -> BTreeMap<String, String> {
        self.entries.iter().map(|(k, v)| (k.clone(), if v.is_unknown() { format!("${{{k}}}") } else { v.value.clone() })).collect()
    }

    /// Why a variable cannot be compared: it comes from a SOPS-encrypted Secret.
    fn unknown(&self, name: &str) -> Option<Outcome> {
        match &self.entries.get(name)?.source {
            VarSource::Encrypted(secret) => Some(Outcome::skip(format!(
                "{} comes from the SOPS-encrypted Secret {secret}; Flux decrypts it, its value is unknown without the key",
                self.object(name)
            ))),
            VarSource::Unheld(object) => Some(Outcome::skip(format!("{} comes from {object}; its value on cluster {} is unknown here", self.object(name), self.cluster))),
            _ => None,
        }
    }

    /// `file: VAR` for messages.
    pub fn object(&self, name: &str) -> String {
        format!("{}: {name}", self.file.display())
    }

    /// Looks a variable up, or fails naming the file and the variable.
    pub fn require(&self, name: &str) -> Result<&str, Outcome> {
        if let Some(skip) = self.unknown(name) {
            return Err(skip);
        }
        self.get(name).ok_or_else(|| Outcome::fail(self.object(name), "defined", "not defined"))
    }

    /// Passes when `name` is defined with exactly `expected`.
    pub fn expect_eq(&self, name: &str, expected: &str) -> Outcome {
        if let Some(skip) = self.unknown(name) {
            return skip;
        }
        match self.entries.get(name) {
            Some(v) if v.value == expected => Outcome::pass(format!("{} = {}", self.object(name), v.shown())),
            Some(v) => Outcome::fail(self.object(name), format!("{expected:?}"), v.shown()),
            None => Outcome::fail(self.object(name), format!("{expected:?}"), "not defined"),
        }
    }
}

pub(super) fn kustomizations(repo: &GitopsRepo, cluster: &str) -> Vec<FluxKustomization> {
    repo.documents_under(&repo.cluster_dir(cluster))
        .filter(|d| d.kind() == "Kustomization" && d.api_version().starts_with(FLUX_KUSTOMIZE_GROUP))
        .map(parse_kustomization)
        .collect()
}

fn parse_kustomization(d: &Document) -> FluxKustomization {
    let v = &d.value;
    let substitute_from = v
        .pointer("/spec/postBuild/substituteFrom")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .map(|r| SubstituteRef {
                    kind: str_at(r, "/kind").unwrap_or("ConfigMap").to_string(),
                    name: str_at(r, "/name").unwrap_or_default().to_string(),
                    optional: r.get("optional").and_then(Value::as_bool).unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default();
    FluxKustomization {
        name: d.name().to_string(),
        namespace: str_at(v, "/metadata/namespace").unwrap_or_default().to_string(),
        api_version: d.api_version().to_string(),
        file: d.file.clone(),
        path: str_at(v, "/spec/path").unwrap_or_default().to_string(),
        post_build: v.pointer("/spec/postBuild").is_some_and(|p| !p.is_null()),
        target_namespace: str_at(v, "/spec/targetNamespace").filter(|ns| !ns.is_empty()).map(String::from),
        patches: v.pointer("/spec/patches").and_then(Value::as_array).cloned().unwrap_or_default(),
        components: v
            .pointer("/spec/components")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default(),
        substitute: string_map(v.pointer("/spec/postBuild/substitute")),
        unsupported: ["namePrefix", "nameSuffix", "images"]
            .iter()
            .filter(|f| v.pointer(&format!("/spec/{f}")).is_some_and(|x| !x.is_null()))
            .map(|f| f.to_string())
            .collect(),
        substitute_from,
        depends_on: v
            .pointer("/spec/dependsOn")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|d| str_at(d, "/name")).map(String::from).collect())
            .unwrap_or_default(),
        source_ref: format!(
            "{}/{}/{}",
            str_at(v, "/spec/sourceRef/kind").unwrap_or_default(),
            str_at(v, "/spec/sourceRef/namespace").or_else(|| str_at(v, "/metadata/namespace")).unwrap_or_default(),
            str_at(v, "/spec/sourceRef/name").unwrap_or_default(),
        ),
    }
}

/// The Kustomization that carries the cluster's variables: the first one with
/// post-build variables in `infrastructure.yaml`, else the first one with any.
pub(super) fn main_kustomization<'a>(all: &'a [FluxKustomization], cluster_dir: &Path) -> Option<&'a FluxKustomization> {
    let has_vars = |k: &&FluxKustomization| !k.substitute.is_empty() || !k.substitute_from.is_empty();
    let infra = cluster_dir.join("infrastructure.yaml");
    all.iter().filter(has_vars).find(|k| k.file == infra).or_else(|| all.iter().find(has_vars))
}

/// Resolves variables the way kustomize-controller does: every `substituteFrom`
/// source in order (later wins), then inline `substitute` on top. ConfigMaps and
/// Secrets are looked up in the cluster's own entry directory, which is what
/// Flux applies to that cluster before it substitutes, in the Kustomization's namespace;
/// else elsewhere in the repository, then among its ExternalSecrets, with unknown values
/// ([`VarSource::Unheld`]).
pub(super) fn variables(repo: &GitopsRepo, cluster: &str, k: &FluxKustomization) -> Variables {
    let mut entries = BTreeMap::new();
    let mut problems = vec![];
    let mut open = vec![];
    let cluster_dir = repo.cluster_dir(cluster);
    for r in &k.substitute_from {
        // In the Kustomization's own namespace (a document without one is taken to be there).
        let is_source = |d: &&Document| d.kind() == r.kind && d.name() == r.name && d.api_version() == "v1";
        let found = repo.documents_under(&cluster_dir).find(|d| {
            let ns = str_at(&d.value, "/metadata/namespace").unwrap_or_default();
            is_source(d) && (ns.is_empty() || ns == k.namespace)
        });
        // Held elsewhere in the repository (not in another cluster's directory): Flux finds
        // it on the cluster if whatever applies that file ran; its keys count as defined,
        // their values as unknown.
        let elsewhere = || repo.documents.iter().find(|d| is_source(d) && may_be_on(repo, cluster, &k.namespace, d));
        match found {
            Some(doc) => {
                let (data, source) = if r.kind == "Secret" && doc.value.get("sops").is_some_and(Value::is_object) {
                    (secret_data(&doc.value).into_keys().map(|k| (k, String::new())).collect(), VarSource::Encrypted(r.name.clone()))
                } else if r.kind == "Secret" {
                    (secret_data(&doc.value), VarSource::Secret(r.name.clone()))
                } else {
                    (string_map(doc.value.get("data")), VarSource::ConfigMap(r.name.clone()))
                };
                for (name, value) in data {
                    entries.insert(name, Variable { value, source: source.clone() });
                }
            }
            None if r.optional => {}
            None if let Some(doc) = elsewhere() => {
                let keys: Vec<String> = if r.kind == "Secret" { secret_data(&doc.value).into_keys().collect() } else { string_map(doc.value.get("data")).into_keys().collect() };
                let source = VarSource::Unheld(format!(
                    "{} {} ({}, outside the entry directory of cluster {cluster}: applied at bootstrap or by another Kustomization)",
                    r.kind,
                    r.name,
                    doc.file.display()
                ));
                define_unknown(&mut entries, keys, &source);
            }
            None if let Some((es, keys)) = (r.kind == "Secret").then(|| external_secret(repo, cluster, &k.namespace, &r.name)).flatten() => {
                let source = VarSource::Unheld(format!("Secret {} (made by ExternalSecret {} in {})", r.name, es.name(), es.file.display()));
                match keys {
                    Some(keys) => define_unknown(&mut entries, keys, &source),
                    None => open.push(format!("Secret {} (made by ExternalSecret {} in {} from `dataFrom`, whose keys only the secret store knows)", r.name, es.name(), es.file.display())),
                }
            }
            None => problems.push(Finding::new(
                format!("{}: Kustomization {} substituteFrom {} {}", k.file.display(), k.name, r.kind, r.name),
                format!("{} {}/{} in {}", r.kind, k.namespace, r.name, cluster_dir.display()),
                "not found (and not optional)",
            )),
        }
    }
    for (name, value) in &k.substitute {
        entries.insert(name.clone(), Variable { value: value.clone(), source: VarSource::Substitute });
    }
    if let Some((profile, overrides)) = repo.overrides.get(cluster) {
        for (name, value) in overrides {
            if let Some(v) = entries.get_mut(name) {
                *v = Variable { value: value.clone(), source: VarSource::Profile(profile.clone()) };
            }
        }
    }
    Variables { cluster: cluster.into(), kustomization: k.name.clone(), file: k.file.clone(), entries, problems, open }
}

/// Defines each of `keys` with an unknown value from `source` (a [`VarSource::Unheld`]).
fn define_unknown(entries: &mut BTreeMap<String, Variable>, keys: Vec<String>, source: &VarSource) {
    for name in keys {
        entries.insert(name, Variable { value: String::new(), source: source.clone() });
    }
}

/// The ExternalSecret of the repository (not in another cluster's entry directory) that
/// makes Secret `namespace/name` (`spec.target.name`, else its own name), with the keys of
/// that Secret where the manifest tells them (`spec.target.template.data`, `spec.data[].secretKey`);
/// `None` for the keys when `dataFrom` fills it without a template (only the store knows them).
fn external_secret<'a>(repo: &'a GitopsRepo, cluster: &str, namespace: &str, name: &str) -> Option<(&'a Document, Option<Vec<String>>)> {
    let es = repo.documents.iter().find(|d| {
        let target = str_at(&d.value, "/spec/target/name").unwrap_or(d.name());
        d.kind() == "ExternalSecret" && d.api_version().starts_with("external-secrets.io/") && target == name && may_be_on(repo, cluster, namespace, d)
    })?;
    let template: Option<Vec<String>> = es.value.pointer("/spec/target/template/data").and_then(Value::as_object).map(|m| m.keys().cloned().collect());
    let data: Vec<String> = es.value.pointer("/spec/data").and_then(Value::as_array).into_iter().flatten().filter_map(|d| d["secretKey"].as_str().map(String::from)).collect();
    let data_from = es.value.pointer("/spec/dataFrom").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    let keys = match template {
        Some(keys) => Some(keys),
        None if data_from => None,
        None => Some(data),
    };
    Some((es, keys))
}

/// Whether document `d` may stand for an object in `namespace` on `cluster`: it names that
/// namespace or none (a kustomization's `namespace:` may set it), and it does not lie in the
/// entry directory of another cluster.
fn may_be_on(repo: &GitopsRepo, cluster: &str, namespace: &str, d: &Document) -> bool {
    let ns = str_at(&d.value, "/metadata/namespace").unwrap_or_default();
    (ns.is_empty() || ns == namespace) && !repo.clusters().iter().any(|c| c != cluster && d.file.starts_with(repo.cluster_dir(c)))
}

fn secret_data(secret: &Value) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = string_map(secret.get("data"))
        .into_iter()
        .map(|(k, v)| {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            (k, decoded)
        })
        .collect();
    out.extend(string_map(secret.get("stringData")));
    out
}

/// A Flux Kustomization found among rendered manifests (nested entry points).
pub(super) fn kustomizations_from(value: &Value, file: &Path) -> FluxKustomization {
    let doc = Document { file: file.to_path_buf(), index: 0, raw: String::new(), value: value.clone() };
    parse_kustomization(&doc)
}
