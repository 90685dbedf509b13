//! Runner events and the final report that reporters consume.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::check::{Layer, Outcome, Phase, Prior, Verdict};
use crate::cluster::access::{Basis, BasisKind};
use crate::plan::Unit;

#[derive(Debug, Clone)]
pub enum Event {
    RunStarted { total: usize },
    UnitStarted { title: String },
    UnitFinished { result: UnitResult, done: usize, total: usize },
    RunFinished { summary: Summary },
}

#[derive(Debug, Clone, Serialize)]
pub struct UnitResult {
    /// Criterion id: `7.2.3`.
    pub id: String,
    pub story: String,
    pub cluster: String,
    pub criterion: String,
    pub check: Option<String>,
    pub layer: Option<Layer>,
    pub outcome: Outcome,
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    pub attempts: u32,
    pub blocked_by: Option<String>,
    /// What a live verdict rests on (absent for units that touched no cluster).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basis: Option<Basis>,
    /// What the check touched: API resources read or written, services dialled.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub access: Vec<String>,
    /// API requests the check sent, by access (`list nodes on infra` → 2), retries included.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub api_requests: BTreeMap<String, u64>,
    /// A Fail because the component is not where the plan puts it: the plan's path and
    /// where it was found (from the outcome's first deviating finding).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deviation: Option<Box<crate::outcome::Deviation>>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

impl UnitResult {
    pub fn new(unit: &Unit, outcome: Outcome, duration: Duration, attempts: u32, blocked_by: Option<String>) -> Self {
        UnitResult {
            deviation: outcome.deviation().cloned().map(Box::new),
            id: unit.id.clone(),
            story: unit.story.clone(),
            cluster: unit.cluster.clone(),
            criterion: unit.text.clone(),
            check: unit.check.as_ref().map(|c| c.name.to_string()),
            layer: unit.layer,
            outcome,
            duration,
            attempts,
            blocked_by,
            basis: None,
            access: vec![],
            api_requests: BTreeMap::new(),
        }
    }

    /// `7.2.3 [infra] Cluster healthy and ready`
    pub fn title(&self) -> String {
        format!("{} [{}] {}", self.id, self.cluster, self.criterion)
    }

    pub fn is_unmapped(&self) -> bool {
        self.check.is_none()
    }

    /// This result as an aggregate criterion sees it.
    pub fn prior(&self) -> Prior {
        Prior {
            id: self.id.clone(),
            story: self.story.clone(),
            cluster: self.cluster.clone(),
            criterion: self.criterion.clone(),
            layer: if self.is_unmapped() { None } else { self.layer },
            outcome: self.outcome.clone(),
            blocked: self.blocked_by.is_some(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    pub skipped: usize,
    /// Of the skipped: criteria with no check yet.
    pub unmapped: usize,
    /// Of the skipped: manual criteria.
    pub manual: usize,
    pub interrupted: bool,
    /// Live verdicts by basis: real, real over simulated inputs, resting on a stand-in.
    pub basis: BasisSplit,
    /// API requests the checks sent, as the harness counts them itself (the runner's
    /// Lease and health probes not included): total, and per cluster, verb and resource.
    pub api_requests: ApiRequests,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ApiRequests {
    pub total: u64,
    /// `list apps/deployments on infra` → 14.
    pub by_access: BTreeMap<String, u64>,
}

/// How many live verdicts rest on what (see [`crate::cluster::access::BasisKind`]).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct BasisSplit {
    pub real: usize,
    pub real_over_simulated: usize,
    pub stand_in: usize,
}

impl BasisSplit {
    pub fn total(&self) -> usize {
        self.real + self.real_over_simulated + self.stand_in
    }

    /// `95 live verdicts: 14 real, 32 real-over-simulated, 49 stand-in`
    pub fn line(&self) -> String {
        format!("{} live verdicts: {} real, {} real-over-simulated, {} stand-in", self.total(), self.real, self.real_over_simulated, self.stand_in)
    }
}

impl Summary {
    pub fn of(results: &[UnitResult], interrupted: bool) -> Self {
        let mut s = Summary { total: results.len(), interrupted, ..Default::default() };
        for r in results {
            for (access, n) in &r.api_requests {
                *s.api_requests.by_access.entry(access.clone()).or_default() += n;
                s.api_requests.total += n;
            }
            match r.basis.as_ref().map(|b| b.kind) {
                Some(BasisKind::Real) => s.basis.real += 1,
                Some(BasisKind::RealOverSimulated) => s.basis.real_over_simulated += 1,
                Some(BasisKind::StandIn) => s.basis.stand_in += 1,
                None => {}
            }
            match r.outcome.verdict() {
                Verdict::Pass => s.passed += 1,
                Verdict::Fail => s.failed += 1,
                Verdict::Error => s.errors += 1,
                Verdict::Skip => {
                    s.skipped += 1;
                    if r.is_unmapped() {
                        s.unmapped += 1;
                    } else if r.layer == Some(Layer::Manual) {
                        s.manual += 1;
                    }
                }
            }
        }
        s
    }

    /// `12 passed, 1 failed, 0 errors, 30 skipped`
    pub fn line(&self) -> String {
        format!(
            "{} passed, {} failed, {} errors, {} skipped ({} unmapped, {} manual){}",
            self.passed,
            self.failed,
            self.errors,
            self.skipped,
            self.unmapped,
            self.manual,
            if self.interrupted { " — interrupted" } else { "" }
        )
    }

    pub fn success(&self) -> bool {
        self.failed == 0 && self.errors == 0 && !self.interrupted
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    #[serde(serialize_with = "rfc3339")]
    pub started_at: time::OffsetDateTime,
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    pub phase: Phase,
    pub summary: Summary,
    pub results: Vec<UnitResult>,
    /// Problems of the inputs that decide no criterion (a malformed YAML file no Flux
    /// Kustomization reaches), one line each.
    pub warnings: Vec<String>,
}

fn rfc3339<S: serde::Serializer>(t: &time::OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default())
}

impl RunReport {
    pub fn new(results: Vec<UnitResult>, started_at: time::OffsetDateTime, duration: Duration, interrupted: bool, phase: Phase) -> Self {
        let summary = Summary::of(&results, interrupted);
        RunReport { started_at, duration, phase, summary, results, warnings: vec![] }
    }

    /// Results grouped by story, in document order of first appearance.
    pub fn by_story(&self) -> Vec<(String, Vec<&UnitResult>)> {
        let mut order: Vec<String> = vec![];
        let mut groups: BTreeMap<String, Vec<&UnitResult>> = BTreeMap::new();
        for r in &self.results {
            if !groups.contains_key(&r.story) {
                order.push(r.story.clone());
            }
            groups.entry(r.story.clone()).or_default().push(r);
        }
        order.into_iter().map(|s| { let g = groups.remove(&s).unwrap_or_default(); (s, g) }).collect()
    }
}
