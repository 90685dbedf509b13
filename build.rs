//! For `--features live`: generates one rstest case per criterion of the planning
//! document (parsed with the crate's own catalog parser, never retyped).

#[allow(dead_code)]
#[path = "src/catalog/mod.rs"]
mod catalog;

fn main() {
    println!("cargo:rerun-if-changed=fixtures/multi-cluster-epics.md");
    println!("cargo:rerun-if-changed=src/catalog");
    println!("cargo:rerun-if-env-changed=CARGO_FEATURE_LIVE");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("live_cases.rs");
    let mut cases = String::new();
    if std::env::var_os("CARGO_FEATURE_LIVE").is_some() {
        let catalog = catalog::Catalog::load("fixtures/multi-cluster-epics.md").expect("planning document");
        for item in &catalog.items {
            let ident = item.id.replace('.', "_");
            cases.push_str(&format!("#[case::c_{ident}({:?})]\n", item.id));
        }
    }
    let body = format!(
        "/// One case per criterion × cluster, generated from the planning document.\n\
         #[rstest::rstest]\n{cases}fn criterion(#[case] id: &str, #[values(\"infra\", \"apps\")] cluster: &str) {{\n    crate::evaluate(id, cluster);\n}}\n"
    );
    std::fs::write(out, if cases.is_empty() { String::new() } else { body }).expect("write live cases");
}
