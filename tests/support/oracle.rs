//! Flux's own rendering of a repository beside the harness's: `flux-render`
//! (sim/go/flux-render) walks a cluster with the generator and post-build substitution
//! kustomize-controller runs (github.com/fluxcd/pkg/kustomize, pinned in
//! sim/versions.env); [`differences`] lists where `GitopsRepo::render` disagrees.
//! Used by tests/repo_render_oracle.rs and `cargo run --example flux_oracle`.
//!
//! One rule of the API server is applied to Flux's output first, because the harness
//! renders what the cluster stores: kustomize sets `metadata.namespace` on every custom
//! resource it is told to namespace (it does not know their scope), and the API server
//! clears it on a cluster-scoped kind. Scopes come from the upstream CRDs `sim/crds.sh`
//! collects, not from the harness. Added by hand: VolumeSnapshotClass, whose CRD
//! (kubernetes-csi/external-snapshotter, `scope: Cluster`) is not among those collected, and
//! MutatingAdmissionPolicy(Binding), built-in cluster-scoped kinds newer than the Kubernetes
//! schema kustomize embeds.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use platform_acceptance::repo::GitopsRepo;
use serde_json::Value;

fn cache() -> PathBuf {
    platform_acceptance::sim::SimConfig::from_env().cache_dir
}

fn oracle() -> PathBuf {
    let bin = cache().join("bin/flux-render");
    assert!(bin.is_file(), "{} missing: run sim/build.sh flux-render (`make test` does)", bin.display());
    bin
}

/// Kinds of the upstream CRDs whose `spec.scope` is `Cluster`.
fn cluster_scoped_custom_kinds() -> BTreeSet<String> {
    let crds = platform_acceptance::sim::crds::load(&cache()).expect("read the upstream CRDs");
    assert!(!crds.is_empty(), "no CRDs in {}/crds: run sim/crds.sh (`make test` does)", cache().display());
    crds.iter()
        .filter(|c| c.value.pointer("/spec/scope").and_then(Value::as_str) == Some("Cluster"))
        .filter_map(|c| c.value.pointer("/spec/names/kind").and_then(Value::as_str).map(String::from))
        .chain(["VolumeSnapshotClass", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"].map(String::from))
        .collect()
}

/// (Kustomization, apiVersion, kind, namespace, name)
type Key = (String, String, String, String, String);

fn key(applied_by: &str, v: &Value) -> Key {
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
    (applied_by.into(), s("/apiVersion"), s("/kind"), s("/metadata/namespace"), s("/metadata/name"))
}

fn show(k: &Key) -> String {
    let ns = if k.3.is_empty() { String::new() } else { format!("{}/", k.3) };
    format!("{} {}/{}{} ({})", k.0, k.2, ns, k.4, k.1)
}

/// What Flux renders for one cluster.
struct Flux {
    /// Objects by Kustomization.
    objects: BTreeMap<Key, Value>,
    /// Kustomizations reached, and those that failed to build (with Flux's error).
    kustomizations: BTreeSet<String>,
    errors: BTreeMap<String, String>,
}

fn flux(repo: &Path, cluster_dir: &Path, cluster_scoped: &BTreeSet<String>) -> Flux {
    let out = Command::new(oracle()).arg(repo).arg(cluster_dir).output().expect("run flux-render");
    assert!(out.status.success(), "flux-render failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("flux-render prints JSON");
    let mut objects = BTreeMap::new();
    let mut errors = BTreeMap::new();
    let mut kustomizations = BTreeSet::new();
    for k in v["kustomizations"].as_array().expect("kustomizations") {
        let name = k["name"].as_str().unwrap();
        kustomizations.insert(name.to_string());
        if let Some(e) = k["error"].as_str() {
            errors.insert(name.to_string(), e.to_string());
        }
        for o in k["objects"].as_array().unwrap() {
            let mut o = o.clone();
            if o["kind"].as_str().is_some_and(|kind| cluster_scoped.contains(kind))
                && let Some(meta) = o["metadata"].as_object_mut()
            {
                meta.remove("namespace");
            }
            objects.insert(key(name, &o), o);
        }
    }
    Flux { objects, kustomizations, errors }
}

/// Every difference between Flux's rendering of one cluster of `flux_repo` and the
/// harness's of `harness_repo` (the same repository, but for the test that shows a
/// difference is found), one line each.
pub fn differences(flux_repo: &Path, harness_repo: &Path, cluster: &str) -> Vec<String> {
    let repo = GitopsRepo::load(harness_repo).expect("fixture loads");
    let Flux { objects: want, kustomizations, errors } = flux(flux_repo, &repo.cluster_dir(cluster), &cluster_scoped_custom_kinds());
    let mut diffs: Vec<String> = errors.iter().map(|(k, e)| format!("Flux fails Kustomization {k}: {e}")).collect();
    let rendered = match repo.render(cluster) {
        Ok(r) => r,
        Err(e) => {
            diffs.push(format!("the harness cannot render the cluster: {e}"));
            return diffs;
        }
    };
    let harness: BTreeSet<String> = rendered.kustomizations.iter().cloned().collect();
    diffs.extend(kustomizations.difference(&harness).map(|k| format!("only Flux reaches Kustomization {k}")));
    diffs.extend(harness.difference(&kustomizations).map(|k| format!("only the harness reaches Kustomization {k}")));
    let got: BTreeMap<Key, Value> = rendered.objects.iter().map(|o| (key(&o.applied_by, &o.value), o.value.clone())).collect();
    let keys: BTreeSet<&Key> = want.keys().chain(got.keys()).collect();
    for k in keys {
        match (want.get(k), got.get(k)) {
            (Some(_), None) => diffs.push(format!("only Flux renders {}", show(k))),
            (None, Some(_)) => diffs.push(format!("only the harness renders {}", show(k))),
            (Some(w), Some(g)) if numbers_as_floats(w) != numbers_as_floats(g) => diffs.push(format!("{} differs: {}", show(k), first_difference(w, g, String::new()))),
            _ => {}
        }
    }
    diffs
}

/// Numbers compared by value: Flux writes the float 0.0 as `0` (Go's JSON), YAML keeps `0.0`.
fn numbers_as_floats(v: &Value) -> Value {
    match v {
        Value::Number(n) => n.as_f64().and_then(serde_json::Number::from_f64).map_or_else(|| v.clone(), Value::Number),
        Value::Array(a) => Value::Array(a.iter().map(numbers_as_floats).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), numbers_as_floats(v))).collect()),
        other => other.clone(),
    }
}

/// The first field where two objects differ: `path: Flux <value>, harness <value>`.
fn first_difference(w: &Value, g: &Value, at: String) -> String {
    match (w, g) {
        (Value::Object(a), Value::Object(b)) => {
            for k in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
                let (x, y) = (a.get(k).unwrap_or(&Value::Null), b.get(k).unwrap_or(&Value::Null));
                if numbers_as_floats(x) != numbers_as_floats(y) {
                    return first_difference(x, y, format!("{at}/{k}"));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                if numbers_as_floats(x) != numbers_as_floats(y) {
                    return first_difference(x, y, format!("{at}/{i}"));
                }
            }
        }
        _ => {}
    }
    let cut = |v: &Value| {
        let s = v.to_string();
        if s.chars().count() > 160 { format!("{}…", s.chars().take(160).collect::<String>()) } else { s }
    };
    format!("{at}: Flux {}, harness {}", cut(w), cut(g))
}

