//! Story dependency edges from a mermaid `graph` block.
//!
//! ```
//! let edges = platform_acceptance::catalog::mermaid::edges("graph TD\n  S1.1[1.1: Talos] --> S1.2[x]\n  S1.2 --> S1.3\n");
//! assert_eq!(edges, vec![("1.1".into(), "1.2".into()), ("1.2".into(), "1.3".into())]);
//! ```

use regex::Regex;
use std::sync::LazyLock;

static EDGE: LazyLock<Regex> = LazyLock::new(|| {
    // `A[label] --> B[label]`, `A -->|text| B`, `A --- B` is not a dependency.
    Regex::new(r"^\s*([A-Za-z]*[0-9][0-9.]*)\s*(?:\[[^\]]*\])?\s*-->(?:\|[^|]*\|)?\s*([A-Za-z]*[0-9][0-9.]*)\s*(?:\[[^\]]*\])?\s*;?\s*$")
        .expect("static regex")
});

/// `(prerequisite, dependent)` pairs; node ids like `S7.2` become story ids `7.2`.
pub fn edges(block: &str) -> Vec<(String, String)> {
    block
        .lines()
        .filter_map(|line| EDGE.captures(line))
        .map(|c| (story_id(&c[1]), story_id(&c[2])))
        .collect()
}

fn story_id(node: &str) -> String {
    node.trim_start_matches(|c: char| c.is_ascii_alphabetic()).to_string()
}
