//! Definition of Done checks.
//!
//! Repository layer: the configuration committed to git (dod.3), the README (dod.8), the
//! per-cluster variables (dod.11) and the Kustomizations' base paths (dod.12). Live items
//! per cluster: Flux Kustomizations applied (dod.4), workloads and pods ready (dod.5),
//! cross-cluster services served by a peer (dod.7), shared-base HelmReleases Ready on every
//! cluster (dod.13) and the per-cluster variables observable in the running Cilium
//! (dod.14). dod.1 and dod.6 aggregate this run's results (repo layer, so the runner never
//! blocks them when a story failed). Every live item is blocked when a selected story
//! failed live: the story failure is the finding. Repository-layer checks and the
//! aggregates are in [`repo`], cluster checks in [`live`].
//!
//! Citations `§n [ID]` refer to docs/reference/components.md.

mod live;
mod repo;

use crate::check::Check;

/// Every Definition-of-Done item, in document order.
pub fn checks() -> Vec<Check> {
    vec![
        Check::aggregate("dod", "All acceptance criteria met", "all_acceptance_criteria_met", repo::all_acceptance_criteria_met).once(),
        Check::manual(
            "dod",
            "All tasks completed",
            "Tasks are prose steps in each story, without checkboxes or an observable end state of their own; their outcomes are proven by the story criteria, and a person confirms the steps themselves were done.",
        ),
        Check::repo("dod", "Configuration files created and committed to git", "configuration_committed_to_git", repo::configuration_committed_to_git).once(),
        Check::cluster("dod", "Manifests deployed to cluster (via Flux or kubectl)", "flux_kustomizations_applied", live::flux_kustomizations_applied),
        Check::cluster("dod", "Services healthy and running (pods, health checks)", "platform_workloads_ready", live::platform_workloads_ready),
        // An aggregate of this run's results (like dod.1): not itself a live unit, so the
        // runner never blocks it when a story failed; that failure is what it reports.
        Check::aggregate("dod", "Tests passed (manual or automated)", "live_checks_passed", repo::live_checks_passed),
        Check::cluster("dod", "Cross-cluster connectivity verified (if applicable)", "cross_cluster_services_served", live::cross_cluster_services_served),
        Check::repo("dod", "Documentation updated (inline comments, README)", "readme_documents_repository", repo::readme_documents_repository).once(),
        Check::manual(
            "dod",
            "Peer reviewed (if applicable)",
            "A review is recorded on the code host (pull-request approvals), not in the git tree, the clusters or any service the platform runs; a person must confirm each change was reviewed, or that review did not apply.",
        ),
        Check::manual(
            "dod",
            "No known bugs or issues",
            "'Known' bugs live in people's knowledge and the issue tracker, outside the repository and the clusters; no check can prove the absence of unknown-to-the-harness issues. A person must confirm the tracker has no open bug for the story.",
        ),
        Check::repo("dod", "Variables defined in `clusters/*/infrastructure.yaml`", "cluster_variables_defined", repo::cluster_variables_defined),
        Check::repo("dod", "Kustomization references correct base paths", "kustomization_base_paths", repo::kustomization_base_paths),
        Check::cluster("dod", "Deployed to both clusters (if applicable)", "shared_bases_ready_everywhere", live::shared_bases_ready_everywhere),
        Check::cluster("dod", "Cluster-specific behavior verified", "cluster_variables_live", live::cluster_variables_live),
    ]
}
