//! JSON report: the whole [`RunReport`] plus document and coverage facts.
//!
//! Shape: `{ "document", "started_at", "duration", "phase", "summary": {total, passed,
//! failed, errors, skipped, unmapped, manual, interrupted, basis: {real,
//! real_over_simulated, stand_in}, api_requests: {total, by_access: {"list nodes on infra": 4}}},
//! "results": [ { "id", "story", "cluster", "criterion",
//! "check", "layer", "outcome": { "verdict": "pass|fail|error|skip", "evidence" |
//! "findings": [{object, expected, observed, in_progress?, deviation?}] | "message" | "reason" }, "duration",
//! "attempts", "blocked_by", "deviation"?: {"expected": the plan's path, "found": where the component
//! is} (a Fail because the component is not where the plan puts it), "basis": {"kind": "real|real-over-simulated|stand-in",
//! "stand_in": [...]}, "access": ["get apps/deployments on infra", "connect host:port"],
//! "api_requests": {"get apps/deployments on infra": 3} } ],
//! "orphans": [...], "warnings": ["malformed YAML in <file>:<line>: ... (no Flux Kustomization
//! of any cluster reaches it, ...)"] }`. `basis` and `access` appear on live units that were evaluated.

use serde_json::json;

use crate::plan::Coverage;
use crate::runner::RunReport;

pub fn render(report: &RunReport, coverage: &Coverage, document: &std::path::Path) -> String {
    let mut v = serde_json::to_value(report).unwrap_or_default();
    v["document"] = json!(document);
    v["orphans"] = json!(coverage.orphans);
    serde_json::to_string_pretty(&v).unwrap_or_default()
}
