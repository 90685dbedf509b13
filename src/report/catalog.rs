//! `catalog` output: every item with its layer, check and clusters.
//!
//! JSON shape (`catalog --format json`):
//! ```text
//! { "document": "fixtures/multi-cluster-epics.md",
//!   "counts": { "items": 221, "stories": 34, "criteria": 207, "dod": 14,
//!               "repo": n, "cluster": n, "data-plane": n, "manual": n, "unmapped": n, "orphans": n },
//!   "clusters": ["apps", "infra"],
//!   "stories": [ { "id": "7.2", "epic": 7, "title": "...", "priority": "P0", "points": 5.0,
//!                  "days": 2.0, "status": "CONFIG COMPLETE", "status_mark": "✅",
//!                  "depends_on": ["7.1"] } ],
//!   "items": [ { "id": "7.2.3", "story": "7.2", "ordinal": 3, "text": "...", "ticked": true, "line": 812,
//!                "layer": "repo|cluster|data-plane|manual|unmapped", "check": "name or null",
//!                "manual_reason": "... or null", "clusters": ["infra"] } ],
//!   "orphans": [ { "story": "7.2", "criterion": "...", "check": "..." } ],
//!   "warnings": [] }
//! ```

use serde_json::json;

use crate::session::Session;

pub fn json(session: &Session) -> String {
    let c = &session.catalog;
    let cov = &session.coverage;
    let stories: Vec<_> = c
        .stories
        .iter()
        .map(|s| {
            let mut v = serde_json::to_value(s).unwrap_or_default();
            v["depends_on"] = json!(c.prerequisites(&s.id));
            v
        })
        .collect();
    let doc = json!({
        "document": c.source,
        "counts": {
            "items": c.items.len(),
            "stories": c.stories.len(),
            "criteria": c.criteria().count(),
            "dod": c.dod().count(),
            "repo": cov.count("repo"),
            "cluster": cov.count("cluster"),
            "data-plane": cov.count("data-plane"),
            "manual": cov.count("manual"),
            "unmapped": cov.count("unmapped"),
            "orphans": cov.orphans.len(),
        },
        "clusters": cov.clusters,
        "stories": stories,
        "items": cov.items,
        "orphans": cov.orphans,
        "warnings": c.warnings,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

pub fn table(session: &Session) -> String {
    let cov = &session.coverage;
    let mut out = String::new();
    let mut story = String::new();
    for i in &cov.items {
        if i.item.story != story {
            story = i.item.story.clone();
            let title = session.catalog.story(&story).map(|s| s.title.as_str()).unwrap_or("Definition of Done");
            out.push_str(&format!("\n{story}  {title}\n"));
        }
        let check = i.check.clone().or_else(|| i.manual_reason.clone().map(|r| format!("manual: {r}"))).unwrap_or_default();
        out.push_str(&format!(
            "  {:<8} [{}] {:<10} {:<11} {}{}\n",
            i.item.id,
            if i.item.ticked { "x" } else { " " },
            i.layer,
            i.clusters.join(","),
            i.item.text,
            if check.is_empty() { String::new() } else { format!("  -> {check}") }
        ));
    }
    for o in &cov.orphans {
        out.push_str(&format!("\norphan check {} (story {}): criterion not in the document: {}", o.check, o.story, o.criterion));
    }
    out.push_str(&format!(
        "\n{} items ({} criteria in {} stories + {} DoD): {} repo, {} cluster, {} data-plane, {} manual, {} unmapped; {} orphan checks\n",
        session.catalog.items.len(),
        session.catalog.criteria().count(),
        session.catalog.stories.len(),
        session.catalog.dod().count(),
        cov.count("repo"),
        cov.count("cluster"),
        cov.count("data-plane"),
        cov.count("manual"),
        cov.count("unmapped"),
        cov.orphans.len()
    ));
    out
}
