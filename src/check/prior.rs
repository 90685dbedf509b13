//! What an aggregate criterion is given: the results of the rest of the run.

use super::Layer;
use crate::outcome::{Outcome, Verdict};

/// One finished unit of the same run, as an aggregate sees it.
#[derive(Debug, Clone)]
pub struct Prior {
    /// Criterion id: `7.2.3`.
    pub id: String,
    pub story: String,
    /// Cluster name, or `all` for units evaluated once.
    pub cluster: String,
    pub criterion: String,
    /// `None` when no check proves the criterion (unmapped).
    pub layer: Option<Layer>,
    pub outcome: Outcome,
    /// Skipped because a prerequisite story failed.
    pub blocked: bool,
}

impl Prior {
    /// `7.2.3 [infra] Cluster healthy and ready`
    pub fn title(&self) -> String {
        format!("{} [{}] {}", self.id, self.cluster, self.criterion)
    }

    pub fn is_unmapped(&self) -> bool {
        self.layer.is_none()
    }

    pub fn verdict(&self) -> Verdict {
        self.outcome.verdict()
    }
}

/// An aggregate: `(cluster, results of the run so far) -> outcome`.
///
/// ```
/// use platform_acceptance::check::{Prior, Outcome, Verdict};
/// fn none_failed(_cluster: &str, results: &[Prior]) -> Outcome {
///     let failed = results.iter().filter(|r| r.verdict() == Verdict::Fail).count();
///     if failed == 0 { Outcome::pass("nothing failed") } else { Outcome::fail("run", "no failures", failed.to_string()) }
/// }
/// assert_eq!(none_failed("infra", &[]).verdict(), Verdict::Pass);
/// ```
pub type Aggregate = fn(cluster: &str, results: &[Prior]) -> Outcome;
