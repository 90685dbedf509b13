//! The catalog is computed from the planning document as it is.

use platform_acceptance::catalog::Catalog;

const DOC: &str = "fixtures/multi-cluster-epics.md";

#[test]
fn planning_document_has_221_items_in_34_stories() {
    let c = Catalog::load(DOC).unwrap();
    assert_eq!(c.epics.len(), 10);
    assert_eq!(c.stories.len(), 34);
    assert_eq!(c.criteria().count(), 207);
    assert_eq!(c.dod().count(), 14);
    assert_eq!(c.items.len(), 221);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn fixture_copy_is_byte_identical_to_the_shared_document() {
    let shared = std::path::Path::new("../shared/planning/multi-cluster-epics.md");
    if shared.exists() {
        assert_eq!(std::fs::read(shared).unwrap(), std::fs::read(DOC).unwrap());
    }
}

#[test]
fn stories_carry_their_metadata_and_repaired_status() {
    let c = Catalog::load(DOC).unwrap();
    let s = c.story("7.2").unwrap();
    assert_eq!(s.title, "Deploy Shared PostgreSQL Cluster");
    assert_eq!(s.priority.as_deref(), Some("P0"));
    assert_eq!(s.points, Some(5.0));
    assert_eq!(s.days, Some(2.0));
    assert_eq!(s.status.as_deref(), Some("CONFIG COMPLETE"));
    assert_eq!(s.status_mark.as_deref(), Some("✅"));
    let s = c.story("8.1").unwrap();
    assert_eq!(s.status_mark.as_deref(), Some("❌"));
    assert_eq!(c.story("1.2").unwrap().status_mark.as_deref(), Some("⚠️"));
    assert_eq!(c.story("1.3").unwrap().status_mark.as_deref(), Some("🔲"));
}

#[test]
fn criteria_keep_inline_code_and_repair_arrows() {
    let c = Catalog::load(DOC).unwrap();
    assert_eq!(c.item("1.1.1").unwrap().text, "`convert-to-multicluster.sh` script executed successfully");
    assert!(c.item("1.1.1").unwrap().ticked);
    assert_eq!(c.item("1.3.1").unwrap().text, "DNS records created (infra-k8s.monosense.io → 10.25.11.11)");
    assert!(!c.item("1.3.1").unwrap().ticked);
    assert_eq!(c.item("dod.9").unwrap().text, "Peer reviewed (if applicable)");
}

#[test]
fn dependency_graph_comes_from_the_mermaid_block() {
    let c = Catalog::load(DOC).unwrap();
    assert_eq!(c.dependencies.len(), 38);
    assert_eq!(c.prerequisites("9.1"), vec!["4.5", "7.3", "8.3"]);
    assert_eq!(c.prerequisites("1.1"), Vec::<String>::new());
}

#[test]
fn crlf_and_reencoded_documents_parse_the_same() {
    let text = std::fs::read_to_string(DOC).unwrap();
    let crlf = text.replace('\n', "\r\n");
    let fixed = platform_acceptance::catalog::mojibake::repair(&text);
    let base = Catalog::parse(&text, DOC.as_ref());
    for variant in [crlf, fixed] {
        let c = Catalog::parse(&variant, DOC.as_ref());
        assert_eq!(c.items.len(), 221);
        let a: Vec<_> = base.items.iter().map(|i| (&i.id, &i.text, i.ticked)).collect();
        let b: Vec<_> = c.items.iter().map(|i| (&i.id, &i.text, i.ticked)).collect();
        assert_eq!(a, b);
        assert_eq!(c.dependencies, base.dependencies);
    }
}

#[test]
fn extra_and_missing_stories_are_followed() {
    let text = std::fs::read_to_string(DOC).unwrap();
    let extra = text.replace(
        "## EPIC-10: Backup & DR",
        "### Story 9.4: Deploy Wiki\n**Priority:** P2 | **Points:** 1 | **Days:** 1 | **Status:** PENDING\n\n- [ ] Wiki deployed\n\n## EPIC-10: Backup & DR",
    );
    let c = Catalog::parse(&extra, DOC.as_ref());
    assert_eq!(c.stories.len(), 35);
    assert_eq!(c.item("9.4.1").unwrap().text, "Wiki deployed");
    let start = text.find("### Story 2.4").unwrap();
    let end = text.find("### Story 2.5").unwrap();
    let missing = format!("{}{}", &text[..start], &text[end..]);
    let c = Catalog::parse(&missing, DOC.as_ref());
    assert_eq!(c.stories.len(), 33);
    assert_eq!(c.items.len(), 215);
}

/// The chainsaw tests examples/bench_chainsaw.rs runs beside the harness: one per criterion
/// and cluster, named `c<id with dashes>-<cluster>`, for a criterion of the document, and
/// read-only (assert operations only), so they can run against any cluster.
#[test]
fn chainsaw_side_by_side_tests_name_real_criteria_and_only_assert() {
    let c = Catalog::load(DOC).unwrap();
    let mut n = 0;
    for e in std::fs::read_dir("fixtures/chainsaw").unwrap() {
        let dir = e.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let (id, cluster) = name.strip_prefix('c').and_then(|n| n.rsplit_once('-')).unwrap_or_else(|| panic!("{name}: not c<id>-<cluster>"));
        let id = id.replace('-', ".");
        assert!(c.criteria().any(|i| i.id == id), "{name}: no criterion {id} in the document");
        assert!(["infra", "apps"].contains(&cluster), "{name}: cluster {cluster}");
        let test: serde_json::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(dir.join("chainsaw-test.yaml")).unwrap()).unwrap();
        assert_eq!(test["kind"], "Test", "{name}");
        assert_eq!(test["metadata"]["name"], name.as_str());
        assert_eq!(test["spec"]["cluster"], cluster, "{name}");
        for step in test["spec"]["steps"].as_array().unwrap() {
            for op in step["try"].as_array().unwrap() {
                let kinds: Vec<&String> = op.as_object().unwrap().keys().collect();
                assert_eq!(kinds, ["assert"], "{name}: only assert operations");
            }
        }
        n += 1;
    }
    assert!(n >= 30, "{n} chainsaw tests (the comparison needs at least 30)");
}
