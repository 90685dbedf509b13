//! Repository-layer checks of EPIC-1, EPIC-2 and EPIC-3, both ways: every unit
//! passes on fixtures/gitops, and each broken copy fails exactly the criteria it
//! breaks, with messages naming the file/object, the expected and the observed value.

mod support;

use std::path::Path;

use platform_acceptance::catalog::Catalog;
use platform_acceptance::check::{Layer, Verdict};
use platform_acceptance::checks;
use platform_acceptance::plan::{Coverage, Selector};
use platform_acceptance::runner::{RunConfig, RunReport};
use platform_acceptance::session::Session;
use rstest::rstest;
use support::{RepoCopy, ReportExt, DOC, GITOPS};

/// The repository layer of epics 1–3 only (other epics' checks are other engineers'
/// and would make these expectations depend on their work in progress).
fn run(repo: &Path) -> RunReport {
    let session = Session::new(DOC, Some(repo)).expect("session");
    let skip: Vec<Selector> = (4..=10).map(Selector::Epic).chain([Selector::Story("dod".into())]).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(session.run(&[Selector::Layer(Layer::Repo)], &skip, RunConfig::default()))
}

/// Every unit `id [cluster]` the repository layer of epics 1–3 evaluates on the fixture.
const REPO_UNITS: &[&str] = &[
    "1.1.1 [all]",
    "1.1.2 [all]",
    "1.1.3 [all]",
    "1.1.4 [apps]",
    "1.1.4 [infra]",
    "1.1.5 [all]",
    "2.1.1 [infra]",
    "2.1.2 [infra]",
    "2.1.3 [infra]",
    "2.1.4 [infra]",
    "2.1.5 [infra]",
    "2.1.6 [infra]",
    "2.2.1 [apps]",
    "2.2.2 [apps]",
    "2.2.3 [apps]",
    "2.2.4 [apps]",
    "2.2.5 [apps]",
    "2.2.6 [apps]",
    "2.2.7 [apps]",
    "2.3.1 [apps]",
    "2.3.1 [infra]",
    "2.4.1 [apps]",
    "2.4.1 [infra]",
    "2.4.2 [apps]",
    "2.4.2 [infra]",
    "2.4.3 [apps]",
    "2.4.3 [infra]",
    "2.4.4 [apps]",
    "2.4.4 [infra]",
    "2.5.1 [apps]",
    "2.5.1 [infra]",
    "2.5.2 [apps]",
    "2.5.2 [infra]",
    "3.1.1 [all]",
    "3.1.2 [all]",
    "3.1.3 [all]",
    "3.1.4 [all]",
    "3.1.5 [all]",
    "3.1.6 [apps]",
    "3.1.6 [infra]",
    "3.1.7 [apps]",
    "3.1.7 [infra]",
    "3.1.8 [all]",
    "3.2.1 [infra]",
    "3.3.1 [apps]",
];

#[test]
fn intact_fixture_passes_every_repo_unit_of_epics_1_to_3() {
    let report = run(Path::new(GITOPS));
    let mut passed = report.with_verdict(Verdict::Pass);
    passed.sort();
    let mut want: Vec<String> = REPO_UNITS.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(passed, want, "not every unit passed:\n{}", report.summary());
    assert_eq!(report.results.len(), REPO_UNITS.len(), "unexpected extra units");
}

/// The mapping itself: which criteria are repo checks, which manual, which left for
/// the cluster / data-plane round; no check text is orphaned by a typo.
#[test]
fn criteria_of_epics_1_to_3_are_mapped_as_decided() {
    let catalog = Catalog::load(DOC).unwrap();
    let clusters = vec!["apps".to_string(), "infra".to_string()];
    let coverage = Coverage::map(&catalog, checks::all(), &clusters);
    let mine = |id: &str| matches!(id.split('.').next(), Some("1" | "2" | "3"));
    assert!(coverage.orphans.iter().all(|o| !mine(&o.story)), "orphaned checks: {:?}", coverage.orphans);
    let layer = |id: &str| coverage.items.iter().find(|i| i.item.id == id).map(|i| i.layer.clone()).unwrap();
    let repo: Vec<&str> = REPO_UNITS.iter().map(|u| u.split(' ').next().unwrap()).collect();
    let manual = ["1.1.6", "1.2.1", "1.2.2", "1.2.3", "1.2.4", "1.2.5", "2.3.7", "2.4.5", "2.5.4"];
    for item in coverage.items.iter().filter(|i| mine(&i.item.id)) {
        let id = item.item.id.as_str();
        let want = if repo.contains(&id) {
            "repo"
        } else if manual.contains(&id) {
            "manual"
        } else {
            // Live criteria: proven by the cluster or data-plane layer (none left unmapped).
            let got = layer(id);
            assert!(["cluster", "data-plane"].contains(&got.as_str()), "{id} {}: {got}", item.item.text);
            continue;
        };
        assert_eq!(layer(id), want, "{id} {}", item.item.text);
        if want == "manual" {
            assert!(item.manual_reason.as_deref().is_some_and(|r| r.len() > 60), "{id} needs a concrete reason");
        }
    }
}

/// A broken variant: what to do to the copy, which units fail, what every message names.
struct Variant {
    edits: &'static [Edit],
    fails: &'static [&'static str],
    needles: &'static [&'static str],
}

enum Edit {
    Replace(&'static str, &'static str, &'static str),
    Remove(&'static str),
    Write(&'static str, &'static str),
}
use Edit::*;

const APPS_INFRA: &str = "kubernetes/clusters/apps/infrastructure.yaml";
const INFRA_INFRA: &str = "kubernetes/clusters/infra/infrastructure.yaml";

fn apply(variant: &Variant) -> RunReport {
    let copy = RepoCopy::new();
    for e in variant.edits {
        match e {
            Replace(file, from, to) => copy.replace(file, from, to),
            Remove(file) => copy.remove(file),
            Write(file, text) => copy.write(file, text),
        }
    }
    run(copy.path())
}

#[rstest]
// ---- missing files
#[case::missing_talos_node_config(Variant {
    edits: &[Remove("talos/apps/10.25.11.15.yaml")],
    fails: &["1.1.1 [all]", "1.1.2 [all]", "1.1.3 [all]"],
    needles: &["talos/apps/"],
})]
#[case::missing_gatewayclass_manifest(Variant {
    edits: &[Remove("kubernetes/infrastructure/networking/cilium/gateway/gatewayclass.yaml")],
    fails: &["2.1.2 [infra]", "2.1.4 [infra]", "3.1.6 [apps]", "3.1.6 [infra]"],
    needles: &["gatewayclass.yaml", "expected", "observed"],
})]
#[case::missing_convert_script(Variant {
    edits: &[Remove("scripts/convert-to-multicluster.sh")],
    fails: &["1.1.1 [all]"],
    needles: &["scripts/convert-to-multicluster.sh", "missing"],
})]
#[case::missing_overlay_template(Variant {
    edits: &[Remove("talos/machineconfig-multicluster.yaml.j2")],
    fails: &["1.1.4 [apps]", "1.1.4 [infra]"],
    needles: &["talos/machineconfig-multicluster.yaml.j2", "missing"],
})]
#[case::missing_external_dns_externalsecret(Variant {
    edits: &[
        Remove("kubernetes/infrastructure/networking/external-dns/externalsecret.yaml"),
        Replace("kubernetes/infrastructure/networking/external-dns/kustomization.yaml", "  - externalsecret.yaml\n", ""),
    ],
    fails: &["2.4.2 [apps]", "2.4.2 [infra]", "2.4.4 [apps]", "2.4.4 [infra]"],
    needles: &["external-dns"],
})]
#[case::missing_gotk_sync(Variant {
    edits: &[
        Remove("kubernetes/clusters/apps/flux-system/gotk-sync.yaml"),
        Replace("kubernetes/clusters/apps/flux-system/kustomization.yaml", "  - gotk-sync.yaml\n", ""),
    ],
    fails: &["3.1.5 [all]", "3.3.1 [apps]"],
    needles: &["kubernetes/clusters/apps/flux-system/gotk-sync.yaml", "missing"],
})]
#[case::missing_base_directory_of_the_tree(Variant {
    edits: &[Remove("kubernetes/infrastructure/security/rbac")],
    fails: &["3.1.3 [all]", "3.1.6 [apps]", "3.1.6 [infra]"],
    needles: &["rbac", "kubernetes/infrastructure/security/"],
})]
// ---- wrong kinds
#[case::bgp_policy_of_another_kind(Variant {
    edits: &[Replace("kubernetes/infrastructure/networking/cilium/bgp/bgppeeringpolicy.yaml", "kind: CiliumBGPPeeringPolicy", "kind: CiliumBGPClusterConfig")],
    fails: &["2.1.3 [infra]"],
    // Read as BGPv2 now: a cluster config with the policy's fields has no instance.
    needles: &["CiliumBGPClusterConfig/bgp-peering-policy", "spec.bgpInstances: expected at least one BGP instance, observed none"],
})]
#[case::spegel_base_not_a_helmrelease(Variant {
    edits: &[Replace("kubernetes/bases/spegel/helmrelease.yaml", "kind: HelmRelease", "kind: HelmChart")],
    fails: &["2.5.1 [apps]", "2.5.1 [infra]"],
    needles: &["kubernetes/bases/spegel/", "HelmRelease", "HelmChart/spegel"],
})]
#[case::gotk_sync_source_of_another_kind(Variant {
    edits: &[Replace("kubernetes/clusters/infra/flux-system/gotk-sync.yaml", "kind: GitRepository\nmetadata", "kind: OCIRepository\nmetadata")],
    fails: &["3.2.1 [infra]"],
    needles: &["kubernetes/clusters/infra/flux-system/gotk-sync.yaml", "GitRepository", "OCIRepository"],
})]
#[case::infrastructure_yaml_without_flux_kustomization(Variant {
    edits: &[
        Replace("kubernetes/clusters/apps/workloads.yaml", "apiVersion: kustomize.toolkit.fluxcd.io/v1", "apiVersion: kustomize.config.k8s.io/v1beta1"),
        Replace("kubernetes/clusters/apps/workloads.yaml", "apiVersion: kustomize.toolkit.fluxcd.io/v1", "apiVersion: kustomize.config.k8s.io/v1beta1"),
    ],
    // tenants/ and the mattermost-operator base are then applied by no cluster
    fails: &["3.1.4 [all]", "3.1.6 [apps]", "3.1.8 [all]"],
    needles: &["kubernetes/", "expected", "observed"],
})]
// ---- CIDRs
#[case::overlapping_service_cidr(Variant {
    edits: &[Replace(INFRA_INFRA, r#"SERVICE_CIDR: "10.245.0.0/16""#, r#"SERVICE_CIDR: "10.246.0.0/15""#)],
    fails: &["1.1.4 [infra]", "2.1.6 [infra]", "2.2.3 [apps]", "2.2.4 [apps]"],
    needles: &["SERVICE_CIDR", "10.246.0.0/15"],
})]
#[case::overlapping_pod_cidr(Variant {
    edits: &[Replace(APPS_INFRA, r#"POD_CIDR: "10.246.0.0/16""#, r#"POD_CIDR: "10.245.128.0/17""#)],
    fails: &["1.1.4 [apps]", "2.1.5 [infra]", "2.2.3 [apps]"],
    needles: &["POD_CIDR"],
})]
#[case::json_list_pod_cidr_is_accepted(Variant {
    edits: &[Replace(APPS_INFRA, r#"POD_CIDR: "10.246.0.0/16""#, r#"POD_CIDR: '["10.246.0.0/16"]'"#)],
    fails: &[],
    needles: &[],
})]
// ---- cluster ids, ASNs
#[case::duplicate_cluster_id(Variant {
    edits: &[Replace(INFRA_INFRA, r#"CLUSTER_ID: "1""#, r#"CLUSTER_ID: "2""#)],
    fails: &["2.1.6 [infra]", "2.2.2 [apps]"],
    needles: &["CLUSTER_ID", "\"2\""],
})]
#[case::apps_cluster_id_wrong(Variant {
    edits: &[Replace(APPS_INFRA, r#"CLUSTER_ID: "2""#, r#"CLUSTER_ID: "3""#)],
    fails: &["2.2.2 [apps]"],
    needles: &["kubernetes/clusters/apps/infrastructure.yaml: CLUSTER_ID", "\"2\"", "\"3\""],
})]
#[case::same_bgp_asn(Variant {
    edits: &[Replace(APPS_INFRA, r#"CILIUM_BGP_LOCAL_ASN: "64513""#, r#"CILIUM_BGP_LOCAL_ASN: "64512""#)],
    fails: &["2.2.6 [apps]"],
    needles: &["CILIUM_BGP_LOCAL_ASN", "64512"],
})]
// ---- LB pools
#[case::lb_pool_overlapping_infra(Variant {
    edits: &[Replace(APPS_INFRA, r#"CILIUM_LB_POOL_START: "10.25.11.150""#, r#"CILIUM_LB_POOL_START: "10.25.11.140""#)],
    fails: &["2.2.5 [apps]"],
    needles: &["CILIUM_LB_POOL_START", "10.25.11.140"],
})]
#[case::gateway_ip_outside_pool(Variant {
    edits: &[Replace(APPS_INFRA, r#"CILIUM_GATEWAY_LB_IP: "10.25.11.170""#, r#"CILIUM_GATEWAY_LB_IP: "10.25.11.120""#)],
    fails: &["2.2.5 [apps]"],
    needles: &["CILIUM_GATEWAY_LB_IP", "10.25.11.150-10.25.11.199", "10.25.11.120"],
})]
#[case::clustermesh_ip_outside_pool(Variant {
    edits: &[Replace(APPS_INFRA, r#"CLUSTERMESH_IP: "10.25.11.150""#, r#"CLUSTERMESH_IP: "10.25.11.200""#)],
    fails: &["2.1.5 [infra]", "2.2.5 [apps]", "2.2.7 [apps]"],
    needles: &["CLUSTERMESH", "10.25.11.200"],
})]
#[case::rendered_pool_block_outside_pool(Variant {
    edits: &[Replace("kubernetes/infrastructure/networking/cilium/lb-ipam/ippool.yaml", "stop: ${CILIUM_LB_POOL_END}", "stop: 10.25.11.250")],
    fails: &["2.2.5 [apps]"],
    needles: &["CiliumLoadBalancerIPPool/apps-pool", "10.25.11.150-10.25.11.250"],
})]
// ---- variables
#[case::missing_variable(Variant {
    edits: &[Replace(INFRA_INFRA, "      CILIUM_BGP_LOCAL_ASN: \"64512\"\n", "")],
    fails: &["2.1.3 [infra]", "2.1.6 [infra]", "3.1.7 [infra]"],
    needles: &["CILIUM_BGP_LOCAL_ASN", "not defined"],
})]
#[case::unresolved_variable_in_cilium_manifest(Variant {
    edits: &[Replace("kubernetes/infrastructure/networking/cilium/bgp/bgppeeringpolicy.yaml", "${CILIUM_BGP_LOCAL_ASN}", "${CILIUM_BGP_LOCAL_ASNN}")],
    fails: &["2.1.3 [infra]", "2.1.6 [infra]", "3.1.7 [apps]", "3.1.7 [infra]"],
    needles: &["bgp", "CILIUM_BGP_LOCAL_ASN"],
})]
#[case::substitute_from_configmap_missing(Variant {
    edits: &[
        Remove("kubernetes/clusters/apps/cluster-settings.yaml"),
        Replace("kubernetes/clusters/apps/kustomization.yaml", "  - cluster-settings.yaml\n", ""),
    ],
    fails: &["2.4.3 [apps]", "2.4.4 [apps]", "3.1.7 [apps]"],
    needles: &["kubernetes/", "expected", "observed"],
})]
#[case::variable_only_in_cluster_settings(Variant {
    edits: &[
        Replace(INFRA_INFRA, "      CILIUM_GATEWAY_LB_IP: \"10.25.11.120\"\n", ""),
        Replace("kubernetes/clusters/infra/cluster-settings.yaml", "\ndata:\n", "\ndata:\n  CILIUM_GATEWAY_LB_IP: \"10.25.11.120\"\n"),
    ],
    fails: &["2.1.6 [infra]"],
    needles: &["CILIUM_GATEWAY_LB_IP", "postBuild.substitute"],
})]
#[case::apps_infrastructure_yaml_without_task_variable(Variant {
    edits: &[Replace(APPS_INFRA, "      CLUSTERMESH_IP: \"10.25.11.150\"\n", "")],
    fails: &["2.2.1 [apps]", "2.2.5 [apps]", "2.2.7 [apps]", "3.1.7 [apps]"],
    needles: &["CLUSTERMESH_IP", "not defined"],
})]
// ---- kustomization paths
#[case::dangling_flux_path(Variant {
    edits: &[Replace("kubernetes/clusters/infra/workloads.yaml", "path: ./kubernetes/workloads/platform\n", "path: ./kubernetes/workloads/platfrom\n")],
    fails: &["3.1.4 [all]", "3.1.6 [infra]", "3.1.8 [all]"],
    needles: &["kubernetes/"],
})]
#[case::dangling_resources_entry(Variant {
    edits: &[Replace("kubernetes/infrastructure/networking/spegel/kustomization.yaml", "  - ../../../bases/spegel\n", "  - ../../../bases/spegel\n  - mirror.yaml\n")],
    fails: &["2.5.2 [apps]", "2.5.2 [infra]", "3.1.6 [apps]", "3.1.6 [infra]"],
    needles: &["kubernetes/infrastructure/networking/spegel/kustomization.yaml", "mirror.yaml", "does not exist"],
})]
#[case::component_not_wired_into_the_layer(Variant {
    edits: &[Replace("kubernetes/infrastructure/networking/kustomization.yaml", "  - spegel\n", "")],
    fails: &["2.5.2 [apps]", "2.5.2 [infra]", "3.1.3 [all]", "3.1.8 [all]"],
    needles: &["spegel", "expected", "observed"],
})]
#[case::component_without_its_base(Variant {
    edits: &[Replace("kubernetes/infrastructure/networking/external-dns/kustomization.yaml", "  - ../../../bases/external-dns\n", "")],
    fails: &["2.4.2 [apps]", "2.4.2 [infra]", "2.4.3 [apps]", "2.4.3 [infra]", "2.4.4 [apps]", "2.4.4 [infra]", "3.1.8 [all]"],
    needles: &["external-dns"],
})]
#[case::unknown_depends_on(Variant {
    edits: &[Replace("kubernetes/clusters/apps/workloads.yaml", "    - name: cluster-apps-infrastructure\n", "    - name: cluster-apps-infra\n")],
    fails: &["3.1.6 [apps]"],
    needles: &["dependsOn", "cluster-apps-infra"],
})]
// ---- Cilium values and objects
#[case::bgp_control_plane_disabled(Variant {
    edits: &[Replace("kubernetes/bases/cilium/helmrelease.yaml", "bgpControlPlane:\n      enabled: true", "bgpControlPlane:\n      enabled: false")],
    fails: &["2.1.3 [infra]"],
    needles: &["HelmRelease/cilium", "bgpControlPlane.enabled", "false"],
})]
#[case::gateway_api_disabled(Variant {
    edits: &[Replace("kubernetes/bases/cilium/helmrelease.yaml", "gatewayAPI:\n      enabled: true", "gatewayAPI:\n      enabled: false")],
    fails: &["2.1.4 [infra]"],
    needles: &["HelmRelease/cilium", "gatewayAPI.enabled", "false"],
})]
#[case::clustermesh_apiserver_not_on_clustermesh_ip(Variant {
    edits: &[Replace("kubernetes/bases/cilium/helmrelease.yaml", "lbipam.cilium.io/ips: ${CLUSTERMESH_IP}", "lbipam.cilium.io/ips: ${CILIUM_GATEWAY_LB_IP}")],
    fails: &["2.1.5 [infra]"],
    needles: &["HelmRelease/cilium", "CLUSTERMESH_IP \"10.25.11.100\"", "10.25.11.120"],
})]
#[case::clustermesh_externalsecret_not_wired(Variant {
    edits: &[Replace("kubernetes/infrastructure/networking/cilium/kustomization.yaml", "  - clustermesh/externalsecret.yaml\n", "")],
    fails: &["2.1.2 [infra]", "2.3.1 [apps]", "2.3.1 [infra]"],
    needles: &["clustermesh"],
})]
#[case::clustermesh_secret_wrong_target(Variant {
    edits: &[Replace("kubernetes/infrastructure/networking/cilium/clustermesh/externalsecret.yaml", "    name: cilium-clustermesh\n    creationPolicy", "    name: clustermesh-remote\n    creationPolicy")],
    fails: &["2.3.1 [apps]", "2.3.1 [infra]"],
    needles: &["ExternalSecret/cilium-clustermesh", "spec.target.name", "clustermesh-remote"],
})]
// ---- External DNS
#[case::external_dns_provider_not_cloudflare(Variant {
    edits: &[Replace("kubernetes/bases/external-dns/helmrelease.yaml", "name: cloudflare", "name: aws")],
    fails: &["2.4.3 [apps]", "2.4.3 [infra]"],
    needles: &["HelmRelease/external-dns", "cloudflare", "aws"],
})]
#[case::external_dns_secret_name_mismatch(Variant {
    edits: &[Replace("kubernetes/infrastructure/networking/external-dns/externalsecret.yaml", "  target:\n    name: external-dns-cloudflare", "  target:\n    name: cloudflare-token")],
    fails: &["2.4.4 [apps]", "2.4.4 [infra]"],
    needles: &["networking/external-dns-cloudflare", "cloudflare-token"],
})]
// ---- bases
#[case::base_with_hard_coded_cluster_value(Variant {
    edits: &[Replace("kubernetes/bases/external-dns/helmrelease.yaml", "txtOwnerId: ${CLUSTER}", "txtOwnerId: infra")],
    fails: &["2.4.3 [apps]", "2.4.3 [infra]", "3.1.8 [all]"],
    needles: &["txtOwnerId", "infra"],
})]
#[case::base_with_hard_coded_address(Variant {
    edits: &[Replace("kubernetes/bases/cilium/helmrelease.yaml", "extraIpAddresses:\n              - ${CLUSTERMESH_IP}", "extraIpAddresses:\n              - 10.25.11.100")],
    fails: &["3.1.8 [all]"],
    needles: &["kubernetes/bases/cilium/helmrelease.yaml", "10.25.11.100", "CLUSTERMESH_IP"],
})]
#[case::base_used_by_no_cluster(Variant {
    edits: &[Replace("kubernetes/infrastructure/networking/coredns/kustomization.yaml", "  - ../../../bases/coredns\n", "")],
    fails: &["3.1.8 [all]"],
    needles: &["kubernetes/bases/coredns/", "used by no cluster"],
})]
#[case::base_chart_source_undefined(Variant {
    edits: &[Replace("kubernetes/bases/cilium/helmrelease.yaml", "        name: cilium\n        namespace: flux-system", "        name: cilium-charts\n        namespace: flux-system")],
    fails: &["3.1.2 [all]"],
    needles: &["HelmRelease/cilium", "HelmRepository flux-system/cilium-charts"],
})]
#[case::old_per_cluster_layout(Variant {
    edits: &[Replace("kubernetes/clusters/apps/infrastructure.yaml", "  path: ./kubernetes/infrastructure\n", "  path: ./kubernetes/clusters/apps/infrastructure\n")],
    // apps then renders no infrastructure at all
    fails: &["2.2.5 [apps]", "2.3.1 [apps]", "2.4.2 [apps]", "2.4.3 [apps]", "2.4.4 [apps]", "2.5.2 [apps]", "3.1.1 [all]", "3.1.6 [apps]"],
    needles: &["apps"],
})]
#[case::old_per_cluster_copy_left(Variant {
    edits: &[Write("kubernetes/apps/base/cilium/helmrelease.yaml", "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: cilium\n")],
    fails: &["3.1.1 [all]"],
    needles: &["kubernetes/apps/base/", "present"],
})]
// ---- gotk-sync
#[case::gotk_sync_wrong_branch(Variant {
    edits: &[Replace("kubernetes/clusters/apps/flux-system/gotk-sync.yaml", "branch: main", "branch: develop")],
    fails: &["3.3.1 [apps]"],
    needles: &["GitRepository/flux-system", "spec.ref.branch", "develop"],
})]
// ---- Talos, Taskfiles
#[case::wrong_hostname(Variant {
    edits: &[Replace("talos/infra/10.25.11.12.yaml", "hostname: infra-02", "hostname: infra-2")],
    fails: &["1.1.3 [all]"],
    needles: &["machine.network.hostname", "infra-02"],
})]
#[case::node_config_of_other_cluster(Variant {
    edits: &[Replace("talos/apps/10.25.11.14.yaml", "clusterName: apps", "clusterName: infra")],
    fails: &["1.1.2 [all]"],
    needles: &["talos/apps/10.25.11.14.yaml: cluster.clusterName", "apps", "infra"],
})]
#[case::template_hard_codes_cluster_name(Variant {
    edits: &[Replace("talos/machineconfig.yaml.j2", "clusterName: {{ cluster }}", "clusterName: infra")],
    fails: &["1.1.4 [apps]", "1.1.4 [infra]"],
    needles: &["talos/machineconfig.yaml.j2: cluster.clusterName", "\"infra\""],
})]
#[case::apply_node_without_cluster(Variant {
    edits: &[Replace(".taskfiles/talos/Taskfile.yaml", "[MODE=auto] [INSECURE=false]\n    requires:\n      vars: [CLUSTER, NODE]", "[MODE=auto] [INSECURE=false]\n    requires:\n      vars: [NODE]")],
    fails: &["1.1.5 [all]"],
    needles: &[".taskfiles/talos/Taskfile.yaml: task apply-node", "CLUSTER"],
})]
fn broken_copy_fails_exactly_the_right_criteria(#[case] variant: Variant) {
    let report = apply(&variant);
    report.expect_failing(variant.fails).expect_failing_mention(variant.needles);
    // Nothing else of epics 1–3 silently stopped being evaluated.
    assert_eq!(report.results.len(), REPO_UNITS.len(), "{}", report.summary());
}

/// Talos 1.12 multi-document node patches: the hostname in a `HostnameConfig` document of
/// its own (the other documents lack `machine:`) is still the node's hostname.
#[test]
fn a_hostname_in_a_hostnameconfig_document_of_a_multi_document_patch_counts() {
    let moved = Variant {
        edits: &[
            Replace("talos/infra/10.25.11.12.yaml", "    hostname: infra-02\n", ""),
            Replace("talos/infra/10.25.11.12.yaml", "machine:\n", "apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: infra-02\nauto: \"off\"\n---\nmachine:\n"),
        ],
        fails: &[],
        needles: &[],
    };
    apply(&moved).expect_failing(&[]);
    let wrong = Variant {
        edits: &[
            Replace("talos/infra/10.25.11.12.yaml", "    hostname: infra-02\n", ""),
            Replace("talos/infra/10.25.11.12.yaml", "machine:\n", "apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: infra-2\n---\nmachine:\n"),
        ],
        fails: &["1.1.3 [all]"],
        needles: &["talos/infra/10.25.11.12.yaml: machine.network.hostname", "infra-02"],
    };
    apply(&wrong).expect_failing(wrong.fails).expect_failing_mention(wrong.needles);
}

/// Variables from a Secret are never printed, even in a failure.
#[test]
fn secret_sourced_values_are_redacted_in_messages() {
    let copy = RepoCopy::new();
    copy.replace(APPS_INFRA, "      CLUSTER_ID: \"2\"\n", "");
    copy.write(
        "kubernetes/clusters/apps/cluster-secrets.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cluster-secrets\n  namespace: flux-system\nstringData:\n  CLUSTER_ID: \"7\"\n",
    );
    let report = run(copy.path());
    let unit = report.results.iter().find(|r| r.id == "2.2.2").unwrap();
    let text = unit.outcome.details().join("\n");
    assert_eq!(unit.outcome.verdict(), Verdict::Fail, "{text}");
    assert!(text.contains("<redacted>") && !text.contains("\"7\""), "{text}");
}
