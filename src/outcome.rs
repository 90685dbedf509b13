//! What a check saw: pass, fail with evidence, error, or skip.
//!
//! The lowest layer of the crate: it imports nothing else of it, so the repository
//! reader, the cluster helpers and the checks all speak the same result type.
//!
//! ```
//! use platform_acceptance::outcome::{Finding, Outcome, Verdict};
//! let o = Outcome::from_findings(vec![Finding::new("Node/infra-01", "Ready=True", "NotReady")], "all nodes Ready");
//! assert_eq!(o.verdict(), Verdict::Fail);
//! assert_eq!(o.summary(), "Node/infra-01: expected Ready=True, observed NotReady");
//! ```

use serde::Serialize;

/// One piece of evidence: which object, what was expected, what was observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub object: String,
    pub expected: String,
    pub observed: String,
    /// The object's controller is still working on it (a reconciliation, an upgrade, a
    /// renewal): not yet a failure, see [`Finding::in_progress`].
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub in_progress: bool,
    /// The object exists, only not where the plan puts it (see [`Finding::deviation`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deviation: Option<Box<Deviation>>,
}

/// Where the plan puts a component and where the repository has it instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deviation {
    /// The path the plan names (`bases/cilium/`).
    pub expected: String,
    /// The path the component was found at, relative to the repository root.
    pub found: String,
}

/// How an in-progress finding's `observed` starts.
pub const IN_PROGRESS: &str = "in progress: ";

impl Finding {
    pub fn new(object: impl Into<String>, expected: impl Into<String>, observed: impl Into<String>) -> Self {
        Finding { object: object.into(), expected: expected.into(), observed: observed.into(), in_progress: false, deviation: None }
    }

    /// The plan names `expected` for a component that the repository has at `found`:
    /// `object` is what was found there (`HelmRelease cilium`), `clusters` where it renders.
    /// Reads "deviates from the plan's layout: HelmRelease cilium found at … (rendered on
    /// apps, infra), the plan expects bases/cilium/".
    pub fn deviation(object: impl Into<String>, expected: impl Into<String>, found: impl Into<String>, clusters: &[String]) -> Self {
        let (expected, found) = (expected.into(), found.into());
        Finding {
            object: object.into(),
            expected: format!("at {expected}"),
            observed: format!("found at {found} (rendered on {})", clusters.join(", ")),
            in_progress: false,
            deviation: Some(Box::new(Deviation { expected, found })),
        }
    }

    /// The same finding about `object` (a name with more context), kept in progress if it was.
    pub fn renamed(self, object: impl Into<String>) -> Self {
        Finding { object: object.into(), ..self }
    }

    /// The controller is still working towards `expected`; `state` is what it says it is
    /// doing (its condition reason and message). Observed reads `in progress: <state>`.
    /// The runner re-evaluates such a check for a bounded time before the Fail stands.
    pub fn in_progress(object: impl Into<String>, expected: impl Into<String>, state: impl std::fmt::Display) -> Self {
        Finding { in_progress: true, ..Finding::new(object, expected, format!("{IN_PROGRESS}{state}")) }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(d) = &self.deviation {
            return write!(f, "deviates from the plan's layout: {} {}, the plan expects {}", self.object, self.observed, d.expected);
        }
        write!(f, "{}: expected {}, observed {}", self.object, self.expected, self.observed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Error,
    Skip,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
            Verdict::Skip => "skip",
        }
    }
}

/// The result of evaluating a check once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Outcome {
    /// Holds; `evidence` says what was looked at (shown in reports).
    Pass { evidence: Vec<String> },
    /// Does not hold.
    Fail { findings: Vec<Finding> },
    /// Could not be evaluated: unreachable, forbidden, bad configuration.
    Error { message: String },
    /// Not evaluated, with the reason.
    Skip { reason: String },
}

impl Outcome {
    pub fn pass(evidence: impl Into<String>) -> Self {
        Outcome::Pass { evidence: vec![evidence.into()] }
    }
    pub fn fail(object: impl Into<String>, expected: impl Into<String>, observed: impl Into<String>) -> Self {
        Outcome::Fail { findings: vec![Finding::new(object, expected, observed)] }
    }
    pub fn error(message: impl std::fmt::Display) -> Self {
        Outcome::Error { message: message.to_string() }
    }
    pub fn skip(reason: impl Into<String>) -> Self {
        Outcome::Skip { reason: reason.into() }
    }
    /// A Fail that is only a reconciliation still running (see [`Finding::in_progress`]).
    pub fn in_progress(object: impl Into<String>, expected: impl Into<String>, state: impl std::fmt::Display) -> Self {
        Outcome::Fail { findings: vec![Finding::in_progress(object, expected, state)] }
    }

    /// The first layout deviation among a Fail's findings.
    pub fn deviation(&self) -> Option<&Deviation> {
        match self {
            Outcome::Fail { findings } => findings.iter().find_map(|f| f.deviation.as_deref()),
            _ => None,
        }
    }

    /// A Fail whose every finding is a reconciliation still in progress: worth waiting for.
    pub fn is_in_progress(&self) -> bool {
        matches!(self, Outcome::Fail { findings } if !findings.is_empty() && findings.iter().all(|f| f.in_progress))
    }

    /// The verdict once the wait for an in-progress state is over: the same Fail, each
    /// in-progress finding saying it was `still in progress after <waited>`.
    pub fn still_in_progress(self, waited: std::time::Duration) -> Self {
        match self {
            Outcome::Fail { findings } => Outcome::Fail {
                findings: findings
                    .into_iter()
                    .map(|f| match f.observed.strip_prefix(IN_PROGRESS).filter(|_| f.in_progress) {
                        Some(state) => Finding { observed: format!("still in progress after {}s: {state}", waited.as_secs()), ..f.clone() },
                        None => f,
                    })
                    .collect(),
            },
            other => other,
        }
    }

    /// Pass with `evidence` when there are no findings, else Fail with all of them.
    pub fn from_findings(findings: Vec<Finding>, evidence: impl Into<String>) -> Self {
        if findings.is_empty() { Outcome::pass(evidence) } else { Outcome::Fail { findings } }
    }

    /// Combines the outcomes of several sub-checks: any error wins, then failures (all kept).
    pub fn all(outcomes: impl IntoIterator<Item = Outcome>) -> Self {
        let mut evidence = vec![];
        let mut findings = vec![];
        let mut skip = None;
        for o in outcomes {
            match o {
                Outcome::Error { .. } => return o,
                Outcome::Fail { findings: f } => findings.extend(f),
                Outcome::Pass { evidence: e } => evidence.extend(e),
                Outcome::Skip { reason } => skip = Some(reason),
            }
        }
        if !findings.is_empty() {
            Outcome::Fail { findings }
        } else if let Some(reason) = skip.filter(|_| evidence.is_empty()) {
            Outcome::Skip { reason }
        } else {
            Outcome::Pass { evidence }
        }
    }

    pub fn verdict(&self) -> Verdict {
        match self {
            Outcome::Pass { .. } => Verdict::Pass,
            Outcome::Fail { .. } => Verdict::Fail,
            Outcome::Error { .. } => Verdict::Error,
            Outcome::Skip { .. } => Verdict::Skip,
        }
    }

    /// One line for a terminal or a JUnit `message` attribute.
    pub fn summary(&self) -> String {
        match self {
            Outcome::Pass { evidence } => evidence.first().cloned().unwrap_or_default(),
            Outcome::Fail { findings } => match findings.as_slice() {
                [one] => one.to_string(),
                [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
                [] => "failed".into(),
            },
            Outcome::Error { message } => message.clone(),
            Outcome::Skip { reason } => reason.clone(),
        }
    }

    /// Every line of evidence, for JUnit `system-out` and Markdown details.
    pub fn details(&self) -> Vec<String> {
        match self {
            Outcome::Pass { evidence } => evidence.clone(),
            Outcome::Fail { findings } => findings.iter().map(ToString::to_string).collect(),
            Outcome::Error { message } => vec![message.clone()],
            Outcome::Skip { reason } => vec![reason.clone()],
        }
    }
}

/// `?` for checks: an `Err(Outcome)` ends the check with that outcome.
pub type CheckResult<T> = Result<T, Outcome>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_progress_findings_are_failures_worth_waiting_for_until_the_wait_ends() {
        let o = Outcome::in_progress("HelmRelease a/b", "Ready=True", "Progressing: Running 'upgrade' action");
        assert_eq!(o.verdict(), Verdict::Fail);
        assert!(o.is_in_progress());
        assert_eq!(o.summary(), "HelmRelease a/b: expected Ready=True, observed in progress: Progressing: Running 'upgrade' action");
        // One real finding next to it: an ordinary failure.
        let mixed = Outcome::all([o.clone(), Outcome::fail("Deployment a/c", "1 ready", "0/1 ready")]);
        assert!(!mixed.is_in_progress());
        assert!(Outcome::all([o.clone(), Outcome::pass("fine")]).is_in_progress());
        let done = o.still_in_progress(std::time::Duration::from_secs(30));
        assert_eq!(done.summary(), "HelmRelease a/b: expected Ready=True, observed still in progress after 30s: Progressing: Running 'upgrade' action");
        let renamed = Finding::in_progress("x", "y", "z").renamed("x (cluster infra)");
        assert!(renamed.in_progress && renamed.object == "x (cluster infra)");
    }

    #[test]
    fn a_deviation_reads_as_one_line_and_is_carried_by_the_outcome() {
        let f = Finding::deviation("HelmRelease cilium", "bases/cilium/", "kubernetes/apps/kube-system/cilium/app/helmrelease.yaml", &["apps".into(), "infra".into()]);
        let o = Outcome::Fail { findings: vec![f] };
        assert_eq!(
            o.summary(),
            "deviates from the plan's layout: HelmRelease cilium found at kubernetes/apps/kube-system/cilium/app/helmrelease.yaml (rendered on apps, infra), the plan expects bases/cilium/"
        );
        assert_eq!(o.deviation().map(|d| d.expected.as_str()), Some("bases/cilium/"));
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json["findings"][0]["deviation"]["found"], "kubernetes/apps/kube-system/cilium/app/helmrelease.yaml");
        // An ordinary failure carries none.
        let plain = Outcome::fail("bases/cilium/", "directory present in the repository", "missing");
        assert!(plain.deviation().is_none());
        assert!(serde_json::to_value(&plain).unwrap()["findings"][0].get("deviation").is_none());
    }
}
