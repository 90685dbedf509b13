//! EPIC-1 checks: Talos multi-cluster bootstrap.
//!
//! They prove that the repository holds what Story 1.1 converts to (node configs split
//! per cluster with their hostnames and addresses, a template and Taskfiles taking the
//! cluster as a parameter), and that Story 1.3's clusters run: nodes at the documented
//! addresses, healthy API servers, one kubeconfig for both, NotReady nodes before the CNI,
//! disjoint podCIDRs and the API DNS records. Story 1.2 happens in 1Password and on a
//! workstation, so its criteria are manual. Repository-layer checks are in [`repo`],
//! cluster and data-plane checks in [`live`].
//!
//! Citations `§n [ID]` refer to docs/reference/components.md.

mod live;
mod repo;

use crate::check::{Check, Phase};

const HOSTNAMES_CRITERION: &str = "Hostnames updated (infra-01, infra-02, infra-03, apps-01, apps-02, apps-03)";

/// Node addresses per cluster, from Story 1.3's criteria ("Infra cluster deployed
/// (10.25.11.11-13)", "Apps cluster deployed (10.25.11.14-16)") and Story 1.1's file list.
const NODE_RANGES: [(&str, &str); 2] = [("infra", "10.25.11.11-13"), ("apps", "10.25.11.14-16")];

const CONVERT_SCRIPT: &str = "scripts/convert-to-multicluster.sh";
const TEMPLATE: &str = "talos/machineconfig.yaml.j2";
const OVERLAY: &str = "talos/machineconfig-multicluster.yaml.j2";
const TASKFILES: [&str; 2] = [".taskfiles/talos/Taskfile.yaml", ".taskfiles/bootstrap/Taskfile.yaml"];

const DNS_INFRA: &str = "DNS records created (infra-k8s.monosense.io → 10.25.11.11)";
const DNS_APPS: &str = "DNS records created (apps-k8s.monosense.io → 10.25.11.14)";
const INFRA_DEPLOYED: &str = "Infra cluster deployed (10.25.11.11-13)";
const APPS_DEPLOYED: &str = "Apps cluster deployed (10.25.11.14-16)";
const ALL_NOT_READY: &str = "All 6 nodes in NotReady state (expected - no CNI yet)";

/// Every criterion of EPIC-1, in document order.
pub fn checks() -> Vec<Check> {
    vec![
        // Story 1.1
        Check::repo("1.1", "`convert-to-multicluster.sh` script executed successfully", "talos_conversion_done", repo::talos_conversion_done).once(),
        Check::repo("1.1", "Node configs moved to `talos/infra/` and `talos/apps/`", "talos_node_configs_split", repo::talos_node_configs_split).once(),
        Check::repo("1.1", HOSTNAMES_CRITERION, "talos_hostnames", repo::talos_hostnames).once(),
        Check::repo(
            "1.1",
            "`machineconfig.yaml.j2` updated with cluster parameterization",
            "talos_template_parameterised",
            repo::talos_template_parameterised,
        ),
        Check::repo("1.1", "Taskfiles updated with CLUSTER parameter support", "taskfiles_take_cluster", repo::taskfiles_take_cluster).once(),
        Check::manual(
            "1.1",
            "machineconfig.yaml.j2 validated with `talosctl validate`",
            "talosctl validate needs the template rendered (minijinja-cli) and its op:// references resolved by `op inject` \
             against 1Password vault Prod, plus the talosctl binary: run `task talos:validate CLUSTER=infra` and \
             `CLUSTER=apps` on a workstation signed in to 1Password and confirm every node config validates",
        ),
        // Story 1.2
        Check::manual(
            "1.2",
            "Secrets generated for infra cluster",
            "`talosctl gen secrets` output lives only in /tmp on the operator's workstation and in 1Password, never in Git \
             (.gitignore excludes talos/**/*secrets*.yaml): a person confirms the infra bundle exists by opening item \
             infra-talos in vault Prod (fields MACHINE_TOKEN, CLUSTER_CA_CRT, ... that talos/machineconfig.yaml.j2 references)",
        ),
        Check::manual(
            "1.2",
            "Secrets generated for apps cluster",
            "`talosctl gen secrets` output lives only in /tmp on the operator's workstation and in 1Password, never in Git: \
             a person confirms the apps bundle exists by opening item apps-talos in vault Prod",
        ),
        Check::manual(
            "1.2",
            "Secrets imported to 1Password (infra-talos item)",
            "the harness has no 1Password access: a person runs `op item get infra-talos --vault Prod` and checks that every \
             op://Prod/infra-talos/<FIELD> referenced by talos/machineconfig.yaml.j2 is a field of the item",
        ),
        Check::manual(
            "1.2",
            "Secrets imported to 1Password (apps-talos item)",
            "the harness has no 1Password access: a person runs `op item get apps-talos --vault Prod` and checks that every \
             op://Prod/apps-talos/<FIELD> referenced by talos/machineconfig.yaml.j2 is a field of the item",
        ),
        Check::manual(
            "1.2",
            "`op inject` tested and working",
            "needs the 1Password CLI signed in to vault Prod: a person runs \
             `echo \"op://Prod/infra-talos/MACHINE_TOKEN\" | op inject` (and the same for apps-talos) and sees a token, not an error",
        ),
        // Story 1.3
        Check::data_plane("1.3", DNS_INFRA, "dns_record_infra_api", |ctx| live::dns_record_resolves(ctx, DNS_INFRA)).once(),
        Check::data_plane("1.3", DNS_APPS, "dns_record_apps_api", |ctx| live::dns_record_resolves(ctx, DNS_APPS)).once(),
        Check::cluster("1.3", INFRA_DEPLOYED, "infra_nodes_at_documented_addresses", |ctx| live::nodes_at_documented_addresses(ctx, INFRA_DEPLOYED)),
        Check::cluster("1.3", APPS_DEPLOYED, "apps_nodes_at_documented_addresses", |ctx| live::nodes_at_documented_addresses(ctx, APPS_DEPLOYED)),
        Check::cluster("1.3", "Both clusters bootstrapped and healthy", "cluster_bootstrapped_and_healthy", live::cluster_bootstrapped_and_healthy),
        Check::cluster("1.3", "Kubeconfigs generated and merged", "kubeconfig_contexts_merged", live::kubeconfig_contexts_merged).once(),
        Check::cluster("1.3", ALL_NOT_READY, "all_nodes_not_ready_before_cni", live::all_nodes_not_ready_before_cni).once().in_phase(Phase::Bootstrap),
        Check::cluster("1.3", "PodCIDRs verified as non-overlapping", "pod_cidrs_non_overlapping", live::pod_cidrs_non_overlapping).once(),
    ]
}
