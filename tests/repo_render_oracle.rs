//! The repository layer's renderer against Flux's own (`support::oracle`): every Flux
//! Kustomization of both fixtures and of fixtures/kustomize-features, on each cluster, renders the same objects field for
//! field as kustomize-controller's generator and substitution render them, and a
//! rendering that differs is reported naming the object and the field.

mod support;

use std::path::Path;

use support::oracle::differences;
use support::{GITOPS, GITOPS_COMMUNITY};

/// kustomize and Flux features in community shapes (see its README).
const FEATURES: &str = "fixtures/kustomize-features";

#[test]
fn every_kustomization_of_the_plan_layout_renders_as_flux_renders_it() {
    for cluster in ["infra", "apps"] {
        let d = differences(Path::new(GITOPS), Path::new(GITOPS), cluster);
        assert!(d.is_empty(), "{GITOPS} {cluster}: {} differences:\n{}", d.len(), d.join("\n"));
    }
}

#[test]
fn every_kustomization_of_the_community_layout_renders_as_flux_renders_it() {
    for cluster in ["infra", "apps"] {
        let d = differences(Path::new(GITOPS_COMMUNITY), Path::new(GITOPS_COMMUNITY), cluster);
        assert!(d.is_empty(), "{GITOPS_COMMUNITY} {cluster}: {} differences:\n{}", d.len(), d.join("\n"));
    }
}

#[test]
fn replacements_generators_components_merge_keys_and_substitution_functions_render_as_flux_renders_them() {
    let d = differences(Path::new(FEATURES), Path::new(FEATURES), "c1");
    assert!(d.is_empty(), "{FEATURES}: {} differences:\n{}", d.len(), d.join("\n"));
}

#[test]
fn a_rendering_that_differs_from_flux_is_reported_naming_object_and_field() {
    // The harness renders a copy whose cluster settings name another storage class; Flux
    // renders the fixture as committed.
    let copy = support::RepoCopy::of(GITOPS_COMMUNITY);
    // The harness also renders it without the mesh-demo component.
    copy.replace("kubernetes/clusters/infra/cluster-settings.yaml", "CNPG_STORAGE_CLASS: \"openebs-local-nvme\"", "CNPG_STORAGE_CLASS: \"other\"");
    copy.replace("kubernetes/clusters/infra/apps/kustomization.yaml", "  - ../../../apps/mesh-demo\n", "");
    let d = differences(Path::new(GITOPS_COMMUNITY), copy.path(), "infra");
    let text = d.join("\n");
    assert!(text.contains("Cluster/databases/postgres-shared (postgresql.cnpg.io/v1) differs: /spec/storage/storageClass: Flux \"openebs-local-nvme\", harness \"other\""), "{text}");
    assert!(text.contains("only Flux renders cluster-apps Namespace/mesh-demo (v1)"), "{text}");
    assert!(d.iter().any(|l| l.starts_with("only Flux reaches Kustomization ")), "{text}");
}
