//! Criteria × checks × clusters: what is mapped, what is not, and what a run selects.
//!
//! ```
//! use platform_acceptance::{catalog::Catalog, checks, plan::{Coverage, Selector}};
//! let catalog = Catalog::load("fixtures/multi-cluster-epics.md").unwrap();
//! let clusters = vec!["apps".to_string(), "infra".to_string()];
//! let coverage = Coverage::map(&catalog, checks::all(), &clusters);
//! let only = vec![Selector::parse("2.2").unwrap()];
//! let units = coverage.units(&only, &[]);
//! assert!(units.iter().all(|u| u.story == "2.2"));
//! ```

use serde::Serialize;

use crate::catalog::{normalize, Catalog, Item, Story, DOD_STORY};
pub use crate::check::ONCE;
use crate::check::{Applies, Check, Layer};

/// How one catalog item is covered.
#[derive(Debug, Clone, Serialize)]
pub struct ItemCoverage {
    #[serde(flatten)]
    pub item: Item,
    /// `repo`, `cluster`, `data-plane`, `manual`, or `unmapped`.
    pub layer: String,
    pub check: Option<String>,
    pub manual_reason: Option<String>,
    pub clusters: Vec<String>,
    #[serde(skip)]
    pub proof: Option<Check>,
}

/// A check whose criterion is not in the document (reworded or removed).
#[derive(Debug, Clone, Serialize)]
pub struct Orphan {
    pub story: String,
    pub criterion: String,
    pub check: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    pub items: Vec<ItemCoverage>,
    pub orphans: Vec<Orphan>,
    pub clusters: Vec<String>,
}

/// One evaluation: a criterion on a cluster.
#[derive(Debug, Clone)]
pub struct Unit {
    /// Criterion id: `7.2.3`, `dod.4`.
    pub id: String,
    pub story: String,
    pub cluster: String,
    pub text: String,
    pub layer: Option<Layer>,
    pub check: Option<Check>,
}

impl Unit {
    /// `7.2.3 [infra] Cluster healthy and ready`
    pub fn title(&self) -> String {
        format!("{} [{}] {}", self.id, self.cluster, self.text)
    }
}

impl Coverage {
    /// Maps checks to items by story and criterion text; nothing is matched loosely.
    pub fn map(catalog: &Catalog, checks: Vec<Check>, clusters: &[String]) -> Self {
        let mut used = vec![false; checks.len()];
        let items = catalog
            .items
            .iter()
            .map(|item| {
                let key = normalize(&item.text);
                let found = checks.iter().position(|c| c.story == item.story && normalize(c.criterion) == key);
                let story = catalog.story(&item.story);
                match found {
                    Some(i) => {
                        used[i] = true;
                        let c = &checks[i];
                        ItemCoverage {
                            item: item.clone(),
                            layer: c.layer.as_str().into(),
                            check: (c.layer != Layer::Manual).then(|| c.name.to_string()),
                            manual_reason: c.manual_reason.map(String::from),
                            clusters: check_clusters(c, story, clusters),
                            proof: Some(c.clone()),
                        }
                    }
                    None => ItemCoverage {
                        item: item.clone(),
                        layer: "unmapped".into(),
                        check: None,
                        manual_reason: None,
                        clusters: criterion_clusters(&item.text, story, &item.story, clusters),
                        proof: None,
                    },
                }
            })
            .collect();
        let orphans = checks
            .iter()
            .zip(used)
            .filter(|(_, u)| !u)
            .map(|(c, _)| Orphan { story: c.story.into(), criterion: c.criterion.into(), check: c.name.into() })
            .collect();
        Coverage { items, orphans, clusters: clusters.to_vec() }
    }

    pub fn count(&self, layer: &str) -> usize {
        self.items.iter().filter(|i| i.layer == layer).count()
    }

    /// Units selected by `only` (all when empty) minus `skip`.
    pub fn units(&self, only: &[Selector], skip: &[Selector]) -> Vec<Unit> {
        let mut units = vec![];
        for ic in &self.items {
            for cluster in &ic.clusters {
                let unit = Unit {
                    id: ic.item.id.clone(),
                    story: ic.item.story.clone(),
                    cluster: cluster.clone(),
                    text: ic.item.text.clone(),
                    layer: ic.proof.as_ref().map(|c| c.layer),
                    check: ic.proof.clone(),
                };
                let selected = only.is_empty() || only.iter().any(|s| s.matches(&unit));
                if selected && !skip.iter().any(|s| s.matches(&unit)) {
                    units.push(unit);
                }
            }
        }
        units
    }
}

/// `--only`/`--skip` selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Epic(u32),
    Story(String),
    Criterion(String),
    Layer(Layer),
    Cluster(String),
}

impl Selector {
    /// Parses `7`, `7.2`, `7.2.3`, `dod`, `dod.4`, `layer=repo`, `cluster=apps`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || format!("unknown selector {s:?}: use EPIC (7), STORY (7.2, dod), CRITERION (7.2.3, dod.4), layer=repo|cluster|data-plane|manual, or cluster=NAME");
        if let Some(v) = s.strip_prefix("layer=") {
            return match v {
                "repo" => Ok(Selector::Layer(Layer::Repo)),
                "cluster" => Ok(Selector::Layer(Layer::Cluster)),
                "data-plane" => Ok(Selector::Layer(Layer::DataPlane)),
                "manual" => Ok(Selector::Layer(Layer::Manual)),
                _ => Err(bad()),
            };
        }
        if let Some(v) = s.strip_prefix("cluster=") {
            return if v.is_empty() { Err(bad()) } else { Ok(Selector::Cluster(v.into())) };
        }
        if s == "dod" {
            return Ok(Selector::Story(s.into()));
        }
        if let Some(n) = s.strip_prefix("dod.") {
            return n.parse::<u32>().map(|_| Selector::Criterion(s.into())).map_err(|_| bad());
        }
        let parts: Vec<&str> = s.split('.').collect();
        if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.is_empty() || p.parse::<u32>().is_err()) {
            return Err(bad());
        }
        Ok(match parts.len() {
            1 => Selector::Epic(parts[0].parse().map_err(|_| bad())?),
            2 => Selector::Story(s.into()),
            _ => Selector::Criterion(s.into()),
        })
    }

    pub fn matches(&self, u: &Unit) -> bool {
        match self {
            Selector::Epic(e) => Catalog::epic_of(&u.story) == Some(*e),
            Selector::Story(s) => &u.story == s,
            Selector::Criterion(c) => &u.id == c,
            Selector::Layer(l) => u.layer == Some(*l),
            Selector::Cluster(c) => &u.cluster == c,
        }
    }

    /// Fails when the selector names something the catalog or the clusters do not have.
    pub fn validate(&self, catalog: &Catalog, clusters: &[String]) -> Result<(), String> {
        let ok = match self {
            Selector::Epic(e) => catalog.epics.iter().any(|x| x.number == *e),
            Selector::Story(s) => s == "dod" || catalog.story(s).is_some(),
            Selector::Criterion(c) => catalog.item(c).is_some(),
            Selector::Layer(_) => true,
            Selector::Cluster(c) => clusters.contains(c) || c == ONCE,
        };
        if ok { Ok(()) } else { Err(format!("selector {} matches nothing in the planning document or the repository's clusters", self.label())) }
    }

    fn label(&self) -> String {
        match self {
            Selector::Epic(e) => format!("{e}"),
            Selector::Story(s) | Selector::Criterion(s) => s.clone(),
            Selector::Layer(l) => format!("layer={}", l.as_str()),
            Selector::Cluster(c) => format!("cluster={c}"),
        }
    }
}

// ---- which clusters a criterion is evaluated on ----------------------------------

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

