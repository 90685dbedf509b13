//! The repository layer on fixtures/gitops-community, the platform of fixtures/gitops in the
//! community layout (per-component `ks.yaml` + `app/`, `chartRef` → OCIRepository,
//! `substituteFrom` only, `targetNamespace`, kustomize Components, Cilium BGPv2).
//!
//! Every unit is held to `fixtures/gitops-community/expected-verdicts.json`: criteria that
//! name a path of the plan's layout fail as deviations naming the plan's path and where the
//! component is; everything the layout really provides passes. Broken variants fail exactly
//! the criteria they break, naming the file and the variable or Kustomization.

mod support;

use std::collections::BTreeMap;

use platform_acceptance::check::Verdict;
use platform_acceptance::runner::{RunReport, UnitResult};
use serde_json::Value;
use support::{run_repo_layer, RepoCopy, GITOPS_COMMUNITY};

fn unit_name(u: &UnitResult) -> String {
    format!("{} [{}]", u.id, u.cluster)
}

/// The fixture as committed to git (dod.3 reads the git state of the repository it is given).
fn committed() -> RepoCopy {
    let copy = RepoCopy::of(GITOPS_COMMUNITY);
    copy.commit_all();
    copy
}

fn expected_verdicts() -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(format!("{GITOPS_COMMUNITY}/expected-verdicts.json")).expect("expected-verdicts.json");
    let v: Value = serde_json::from_str(&text).expect("expected-verdicts.json is JSON");
    v["units"].as_object().expect("units").iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[test]
fn every_unit_has_its_expected_verdict_on_the_community_layout() {
    let copy = committed();
    let report = run_repo_layer(copy.path());
    let expected = expected_verdicts();
    let seen: Vec<String> = report.results.iter().map(unit_name).collect();
    let listed: Vec<String> = expected.keys().cloned().collect();
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, listed, "the run's units differ from expected-verdicts.json");
    let mut wrong = vec![];
    for u in &report.results {
        let name = unit_name(u);
        let want = &expected[&name];
        let got = u.outcome.verdict();
        let text = u.outcome.details().join(" | ");
        let ok = match want {
            Value::String(s) if s == "pass" => got == Verdict::Pass,
            Value::String(s) if s == "skip" => got == Verdict::Skip,
            Value::Object(m) if m.contains_key("deviation") => {
                let d = &m["deviation"];
                let carried = u.deviation.as_ref().is_some_and(|x| d["expected"] == x.expected.as_str() && d["found"] == x.found.as_str());
                // The JSON report's unit carries it too.
                let json = serde_json::to_value(u).unwrap();
                got == Verdict::Fail
                    && carried
                    && json["deviation"] == *d
                    && text.contains("deviates from the plan's layout: ") && text.contains(&format!("the plan expects {}", d["expected"].as_str().unwrap()))
            }
            Value::Object(m) if m.contains_key("fail") => got == Verdict::Fail && u.deviation.is_none() && text.contains(m["fail"].as_str().unwrap()),
            other => panic!("{name}: unknown expectation {other}"),
        };
        if !ok {
            wrong.push(format!("  {name}: expected {want}, got {} {:?}: {text}", got.as_str(), u.deviation));
        }
    }
    assert!(wrong.is_empty(), "units off their expected verdict:\n{}", wrong.join("\n"));
}

/// Units whose outcome differs between two runs, with the new details; dod.1 (which rolls
/// every other unit up) and dod.3 (which names the commit) left out.
fn changed(base: &RunReport, broken: &RunReport) -> BTreeMap<String, String> {
    let before: BTreeMap<String, Vec<String>> = base.results.iter().map(|u| (unit_name(u), u.outcome.details())).collect();
    broken
        .results
        .iter()
        .filter(|u| !matches!(u.id.as_str(), "dod.1" | "dod.3"))
        .filter(|u| before.get(&unit_name(u)) != Some(&u.outcome.details()))
        .map(|u| (unit_name(u), format!("{} {}", u.outcome.verdict().as_str(), u.outcome.details().join(" | "))))
        .collect()
}

fn variant(file: &str, from: &str, to: &str) -> RunReport {
    let copy = RepoCopy::of(GITOPS_COMMUNITY);
    copy.replace(file, from, to);
    copy.commit_all();
    run_repo_layer(copy.path())
}

#[test]
fn broken_variants_fail_exactly_their_criteria_naming_file_and_variable_or_kustomization() {
    let base = run_repo_layer(committed().path());

    // A variable removed from cluster-settings: the manifest that uses it renders it empty.
    let broken = variant("kubernetes/clusters/infra/cluster-settings.yaml", "  EXTERNAL_DNS_CLOUDFLARE_SECRET_PATH: \"kubernetes/infra/external-dns/cloudflare\"\n", "");
    let diff = changed(&base, &broken);
    assert_eq!(diff.keys().collect::<Vec<_>>(), ["2.1.6 [infra]", "3.1.7 [infra]"], "{diff:#?}");
    for text in diff.values() {
        assert!(text.starts_with("fail "), "{text}");
        for needle in [
            "${EXTERNAL_DNS_CLOUDFLARE_SECRET_PATH} (applied by external-dns)",
            "kubernetes/apps/networking/external-dns/ks.yaml or its substituteFrom sources (ConfigMap cluster-settings",
            "renders empty in kubernetes/apps/networking/external-dns/app/externalsecret.yaml (ExternalSecret/external-dns-cloudflare)",
        ] {
            assert!(text.contains(needle), "lacks {needle:?}: {text}");
        }
    }

    // A dependsOn naming a Kustomization the cluster lacks: Flux never reconciles it.
    let broken = variant("kubernetes/apps/mattermost/mattermost/ks.yaml", "    - name: mattermost-operator\n", "    - name: mattermost-operators\n");
    let diff = changed(&base, &broken);
    assert_eq!(diff.keys().collect::<Vec<_>>(), ["3.1.6 [apps]"], "{diff:#?}");
    assert!(
        diff["3.1.6 [apps]"].contains("kubernetes/apps/mattermost/mattermost/ks.yaml: Kustomization mattermost dependsOn: expected a Flux Kustomization of cluster apps, observed \"mattermost-operators\" is not defined for this cluster"),
        "{diff:#?}"
    );

    // A namespaced object with no namespace (none in the manifest, its kustomization or the
    // Kustomization's targetNamespace): server-side apply refuses it, so Flux fails the
    // Kustomization (kustomize-controller's "namespace not specified").
    let broken = variant("kubernetes/apps/auth/keycloak/operator/ocirepository.yaml", "  name: app-template\n  namespace: auth\n", "  name: app-template\n");
    let diff = changed(&base, &broken);
    assert_eq!(diff.keys().collect::<Vec<_>>(), ["3.1.6 [infra]"], "{diff:#?}");
    assert!(
        diff["3.1.6 [infra]"].contains("OCIRepository/app-template (kubernetes/apps/auth/keycloak/operator/ocirepository.yaml) (applied by keycloak-operator): expected metadata.namespace, a namespace: in its kustomization or the Kustomization's spec.targetNamespace, observed none, so Flux fails Kustomization keycloak-operator (OCIRepository/app-template namespace not specified)"),
        "{diff:#?}"
    );
}

#[test]
fn bgp_v2_configures_the_bgp_control_plane_and_its_peer_is_checked() {
    // Passes on the fixture (expected-verdicts.json), fails on a peer ASN of its own.
    let broken = variant("kubernetes/apps/kube-system/cilium/config/bgp.yaml", "peerASN: ${CILIUM_BGP_PEER_ASN}", "peerASN: 64999");
    let u = broken.results.iter().find(|u| unit_name(u) == "2.1.3 [infra]").expect("2.1.3 [infra]");
    assert_eq!(u.outcome.verdict(), Verdict::Fail);
    assert_eq!(
        u.outcome.summary(),
        "CiliumBGPClusterConfig/bgp (kubernetes/apps/kube-system/cilium/config/bgp.yaml) spec.bgpInstances[0].peers[0].peerASN: expected CILIUM_BGP_PEER_ASN \"64501\", observed \"64999\""
    );
    // The peer address is the variable's address without the /32 BGPv1 wants.
    let broken = variant("kubernetes/apps/kube-system/cilium/config/bgp.yaml", "peerAddress: ${CILIUM_BGP_PEER_IP}", "peerAddress: ${CILIUM_BGP_PEER_ADDRESS}");
    let u = broken.results.iter().find(|u| unit_name(u) == "2.1.3 [infra]").unwrap();
    assert!(u.outcome.summary().contains("peers[0].peerAddress: expected the address of CILIUM_BGP_PEER_ADDRESS \"10.25.11.1/32\", observed \"10.25.11.1/32\""), "{}", u.outcome.summary());
    // No BGP configuration at all names both kinds.
    let broken = variant("kubernetes/apps/kube-system/cilium/config/kustomization.yaml", "  - ./bgp.yaml\n", "");
    let u = broken.results.iter().find(|u| unit_name(u) == "2.1.3 [infra]").unwrap();
    assert!(u.outcome.summary().contains("expected a CiliumBGPPeeringPolicy, or a CiliumBGPClusterConfig (BGPv2) (cilium.io), observed none"), "{}", u.outcome.summary());
}

#[test]
fn a_component_only_the_bootstrap_helmfile_installs_is_a_deviation_naming_the_helmfile() {
    let base = run_repo_layer(committed().path());
    // cert-manager left out of Flux on both clusters: only bootstrap/helmfile.d installs it.
    let copy = RepoCopy::of(GITOPS_COMMUNITY);
    for cluster in ["infra", "apps"] {
        copy.replace(&format!("kubernetes/clusters/{cluster}/apps/kustomization.yaml"), "  - ../../../apps/cert-manager\n", "");
    }
    copy.commit_all();
    let diff = changed(&base, &run_repo_layer(copy.path()));
    let units: Vec<&str> = diff.keys().map(String::as_str).collect();
    assert_eq!(units, ["3.1.6 [apps]", "3.1.6 [infra]", "5.1.1 [apps]", "5.1.1 [infra]", "5.1.2 [apps]", "5.1.2 [infra]", "5.1.3 [apps]", "5.1.3 [infra]"], "{diff:#?}");
    let helmfile = "deviates from the plan's layout: helmfile release cert-manager (chart cert-manager) found at bootstrap/helmfile.d/01-apps.yaml.gotmpl (installed by a bootstrap helmfile, outside Flux), the plan expects";
    assert!(diff["5.1.1 [infra]"].contains(&format!("{helmfile} kubernetes/bases/cert-manager/helmrelease.yaml")), "{}", diff["5.1.1 [infra]"]);
    assert!(diff["5.1.2 [apps]"].contains(helmfile), "{}", diff["5.1.2 [apps]"]);
    // A ClusterIssuer is not something a helmfile release stands in for.
    assert!(!diff["5.1.3 [infra]"].contains("helmfile"), "{}", diff["5.1.3 [infra]"]);
    // Flux waits for a dependency that no longer exists.
    assert!(diff["3.1.6 [infra]"].contains("Kustomization gateway dependsOn: expected a Flux Kustomization of cluster infra, observed \"cert-manager\" is not defined"), "{}", diff["3.1.6 [infra]"]);
}
