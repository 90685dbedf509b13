//! `sim up --repo`: the simulation brought up from another GitOps repository,
//! `fixtures/gitops-community` (the platform in the community layout: per-component
//! `ks.yaml` + `app/`, `chartRef` → OCIRepository, Components, `substituteFrom`), whose Flux
//! graph the real Flux controllers reconcile. The test stops the simulation at the end (also
//! when an assertion fails), so the next test starts one from `fixtures/gitops` again.

mod support;

use futures::FutureExt;
use kube::api::{Api, DynamicObject};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use platform_acceptance::session::Session;
use platform_acceptance::sim;
use serde_json::Value;

use support::{ReportExt, GITOPS_COMMUNITY};

/// The Kustomizations Flux reconciles on `cluster`, as (name, Ready status, message).
async fn kustomizations(cfg: &sim::SimConfig, cluster: &str) -> Vec<(String, String, String)> {
    let client = sim::client(cfg, cluster).await.expect("client");
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("kustomize.toolkit.fluxcd.io", "v1", "Kustomization"), "kustomizations");
    let list = Api::<DynamicObject>::all_with(client, &ar).list(&Default::default()).await.expect("list Kustomizations");
    list.items
        .into_iter()
        .map(|k| {
            let v = serde_json::to_value(&k).unwrap();
            let ready = v["status"]["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == "Ready").cloned().unwrap_or(Value::Null);
            (k.metadata.name.unwrap_or_default(), ready["status"].as_str().unwrap_or("").to_string(), ready["message"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_up_from_the_community_layout_and_flux_reconciles_its_graph() {
    let Some((cfg, _lock)) = support::sim::lock_only("sim_up_from_the_community_layout_and_flux_reconciles_its_graph").await else { return };
    // A simulation of another repository runs: stop it, as `sim up --repo` asks.
    sim::down(&cfg).await.expect("sim down");
    let community = cfg.clone().simulating(std::path::Path::new(GITOPS_COMMUNITY)).expect("sim up --repo");
    let body = {
        let community = community.clone();
        std::panic::AssertUnwindSafe(async move {
            sim::up_with(&community, sim::scenario::apply(&community, "healthy")).await.expect("sim up --repo fixtures/gitops-community, healthy");
            // Later commands find the repository recorded.
            let recorded = std::fs::read_to_string(community.state_dir.join("repo")).expect("$STATE/repo");
            assert_eq!(std::path::Path::new(recorded.trim()), community.repo.as_path());
            for cluster in ["infra", "apps"] {
                let ks = kustomizations(&community, cluster).await;
                let names: Vec<&str> = ks.iter().map(|(n, ..)| n.as_str()).collect();
                // Names only the community layout has: one Kustomization per component.
                for expected in ["cluster-apps", "cilium", "cilium-config", "spegel"] {
                    assert!(names.contains(&expected), "{cluster}: Kustomization {expected} of the community layout: {names:?}");
                }
                let not_ready: Vec<_> = ks.iter().filter(|(_, ready, _)| ready != "True").collect();
                assert!(not_ready.is_empty(), "{cluster}: Kustomizations not Ready: {not_ready:?}");
            }
            let infra = kustomizations(&community, "infra").await;
            assert!(infra.iter().any(|(n, ..)| n == "keycloak-operator"), "infra runs the Keycloak operator's Kustomization");
            // The live checks look at what the repository renders wherever it keeps it: the
            // ClusterIssuers, the ClusterSecretStore and the Keycloak the community layout
            // keeps under apps/ are Ready (their plan paths are the repository checks'
            // deviations: 5.1.3, 5.2.3, 8.2.1).
            let session = Session::new(support::DOC, Some(community.repo.as_path())).expect("session");
            let targets = support::sim::targets(&session.coverage.clusters).await;
            let session = session.with_targets(targets);
            let only = session.selectors(&["5.1.6,5.2.6,8.1.4,dod.13".to_string()]).expect("selection");
            let report = session.run(&only, &[], support::sim::retries(2)).await;
            report.expect_all_pass();
            assert!(report.message("5.1.6 [infra]").contains("ClusterIssuer"), "{}", report.message("5.1.6 [infra]"));
            assert!(report.message("8.1.4 [infra]").contains("Keycloak auth/keycloak"), "{}", report.message("8.1.4 [infra]"));
            // A HelmRelease written once and rendered for both clusters is a shared base,
            // wherever it lives (the community layout has no kubernetes/bases/).
            assert!(report.message("dod.13 [apps]").contains("shared-base HelmReleases Ready (cert-manager/cert-manager"), "{}", report.message("dod.13 [apps]"));
        })
        .catch_unwind()
    };
    let outcome = body.await;
    sim::down(&community).await.expect("sim down");
    assert!(!community.state_dir.join("repo").exists(), "sim down forgets the repository");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
