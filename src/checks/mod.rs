//! The check library: one module per epic, one [`Check`] per criterion.
//!
//! To find the check for criterion 7.2.4, open `epic07.rs` and search for the
//! criterion's text (checks are listed in document order). To add one, write an
//! async fn that reads like the criterion and add a line to that module's
//! `checks()`; `platform-acceptance catalog` shows it mapped.

pub mod dod;
pub mod epic01;
pub mod epic02;
pub mod epic03;
pub mod epic04;
pub mod epic05;
pub mod epic06;
pub mod epic07;
pub mod epic08;
pub mod epic09;
pub mod epic10;
pub mod support;

use crate::catalog::{Story, DOD_STORY};
use crate::check::{Applies, Check};

/// Every check, in document order.
pub fn all() -> Vec<Check> {
    [
        epic01::checks(),
        epic02::checks(),
        epic03::checks(),
        epic04::checks(),
        epic05::checks(),
        epic06::checks(),
        epic07::checks(),
        epic08::checks(),
        epic09::checks(),
        epic10::checks(),
        dod::checks(),
    ]
    .concat()
}

/// Where a story's work lives, by role name, when its title does not say.
/// Read from each story's text (its criteria and "Variables Used"); roles are
/// matched against the repository's `clusters/` directory names.
const STORY_HOME: &[(&str, &str)] = &[
    ("2.1", "infra"), // "all infra nodes transition to Ready", variables from clusters/infra
    ("4.1", "infra"), // "Operator deployed on infra cluster"
    ("4.2", "infra"), // Ceph runs on the infra nodes
    ("4.5", "apps"),  // "Apps cluster can access Ceph from infra cluster"
    ("7.1", "infra"),
    ("7.2", "infra"),
    ("7.3", "infra"), // databases live in the shared cluster on infra
    ("7.4", "infra"),
    ("8.1", "infra"),
    ("8.2", "infra"),
    ("8.3", "infra"),
    ("9.1", "apps"),
    ("9.2", "apps"),
    ("9.3", "apps"),
];

/// The clusters a story applies to: "Both Clusters" or a shared-base story → all,
/// "on Infra Cluster"/"Apps Cluster" → that one, else the table above, else all.
pub fn story_clusters(story: Option<&Story>, story_id: &str, clusters: &[String]) -> Vec<String> {
    if story_id == DOD_STORY {
        return clusters.to_vec();
    }
    let title = story.map(|s| s.title.to_lowercase()).unwrap_or_default();
    let role = if title.contains("both") {
        None
    } else if let Some(role) = clusters.iter().find(|c| title.contains(&format!("{c} cluster"))) {
        Some(role.clone())
    } else {
        STORY_HOME.iter().find(|(s, _)| *s == story_id).map(|(_, r)| r.to_string())
    };
    match role {
        Some(role) => vec![role],
        None => clusters.to_vec(),
    }
}

/// The clusters one check is evaluated for. A criterion that names one cluster
/// ("Deployed to apps cluster (automatic)") is evaluated there only.
pub fn check_clusters(check: &Check, story: Option<&Story>, clusters: &[String]) -> Vec<String> {
    match &check.applies {
        Applies::Once => vec![ONCE.to_string()],
        Applies::Only(c) => vec![c.to_string()],
        Applies::Story => criterion_clusters(check.criterion, story, check.story, clusters),
    }
}

/// Clusters for a criterion's text: "both clusters" → all; naming exactly one
/// cluster ("on infra cluster", "Apps cluster deployed") → that one; else the story's.
pub fn criterion_clusters(text: &str, story: Option<&Story>, story_id: &str, clusters: &[String]) -> Vec<String> {
    let text = text.to_lowercase();
    if text.contains("both clusters") {
        return clusters.to_vec();
    }
    let named: Vec<String> = clusters
        .iter()
        .filter(|c| text.contains(&format!("{c} cluster")) || text.contains(&format!("on {c}")))
        .cloned()
        .collect();
    if named.len() == 1 { named } else { story_clusters(story, story_id, clusters) }
}

/// Cluster label for checks evaluated once (repository-wide, document-wide).
pub const ONCE: &str = "all";
