//! EPIC-3 checks: GitOps foundation.
//!
//! They prove that the repository has the Flux shared-base structure (bases,
//! infrastructure and workloads layers reused by every cluster, per-cluster entry
//! points with their `postBuild.substitute` variables) and each cluster's pre-created
//! `gotk-sync.yaml`, and that on each cluster Flux is installed, connected to the
//! repository, in sync, healthy and reconciling the cluster's path. Repository-layer
//! checks are in [`repo`], cluster checks in [`live`].
//!
//! Citations `§n [ID]` refer to docs/reference/components.md.

mod live;
mod repo;

use crate::check::Check;

const RECONCILE_INFRA: &str = "Flux can reconcile manifests from `kubernetes/clusters/infra/`";

/// Every criterion of EPIC-3, in document order.
pub fn checks() -> Vec<Check> {
    vec![
        // Story 3.1
        Check::repo("3.1", "FluxCD directory structure created using shared-base pattern", "flux_structure_shared_base", repo::flux_structure_shared_base).once(),
        Check::repo("3.1", "`kubernetes/bases/` created with shared HelmReleases", "bases_with_helmreleases", repo::bases_with_helmreleases).once(),
        Check::repo(
            "3.1",
            "`kubernetes/infrastructure/` created with platform capabilities",
            "infrastructure_layer_created",
            repo::infrastructure_layer_created,
        )
        .once(),
        Check::repo("3.1", "`kubernetes/workloads/` created with application manifests", "workloads_layer_created", repo::workloads_layer_created).once(),
        Check::repo(
            "3.1",
            "`clusters/infra/` and `clusters/apps/` created with Flux entry points",
            "cluster_entry_points",
            repo::cluster_entry_points,
        )
        .once(),
        Check::repo(
            "3.1",
            "`infrastructure.yaml` and `workloads.yaml` created for each cluster",
            "cluster_layer_kustomizations",
            repo::cluster_layer_kustomizations,
        ),
        Check::repo("3.1", "`postBuild.substitute` variables defined", "post_build_substitute_defined", repo::post_build_substitute_defined),
        Check::repo("3.1", "Base configs reusable across clusters", "bases_reusable", repo::bases_reusable).once(),
        // Story 3.2 (infra)
        Check::repo("3.2", "`clusters/infra/flux-system/gotk-sync.yaml` created", "gotk_sync_infra", repo::gotk_sync),
        Check::cluster("3.2", "FluxCD installed on infra cluster", "flux_installed_infra", live::flux_installed),
        Check::cluster("3.2", "GitHub repository connected", "git_repository_connected_infra", live::git_repository_connected),
        Check::cluster("3.2", "Flux sync verified", "flux_sync_verified_infra", live::flux_sync_verified),
        Check::cluster("3.2", "All Flux controllers healthy", "flux_controllers_healthy_infra", live::flux_controllers_healthy),
        Check::cluster("3.2", RECONCILE_INFRA, "flux_reconciles_cluster_path", |ctx| live::flux_reconciles_cluster_path(ctx, RECONCILE_INFRA)),
        // Story 3.3 (apps)
        Check::repo("3.3", "`clusters/apps/flux-system/gotk-sync.yaml` created", "gotk_sync_apps", repo::gotk_sync),
        Check::cluster("3.3", "FluxCD installed on apps cluster", "flux_installed_apps", live::flux_installed),
        Check::cluster("3.3", "GitHub repository connected", "git_repository_connected_apps", live::git_repository_connected),
        Check::cluster("3.3", "Flux sync verified", "flux_sync_verified_apps", live::flux_sync_verified),
        Check::cluster("3.3", "All Flux controllers healthy", "flux_controllers_healthy_apps", live::flux_controllers_healthy),
    ]
}
