//! Waiting inside a round trip: the one place a check polls. Bounded by the caller's
//! limit (kept inside the runner's per-check timeout) and by the run's cancellation.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::time::Duration;
//! use platform_acceptance::check::{CheckContext, Cleanup, Phase};
//! use platform_acceptance::checks::kit::wait::until;
//! let ctx = CheckContext {
//!     cluster: "infra".into(), repo: None, target: None, phase: Phase::default(),
//!     cancel: Default::default(), cleanup: Cleanup::default(), run: "doc".into(),
//! };
//! let mut n = 0;
//! let got = until(&ctx, Duration::from_secs(5), || { n += 1; let v = n; async move { Ok((v >= 2).then_some(v)) } }).await;
//! assert_eq!(got.unwrap(), Some(2));
//! # });
//! ```

use std::future::Future;
use std::time::Duration;

use crate::check::{CheckContext, Outcome};

/// Time between two probes.
pub const POLL: Duration = Duration::from_millis(500);

/// Calls `probe` until it yields `Some`, an error, `within` has passed or the run is
/// cancelled; `Ok(None)` means it never yielded (the caller builds the Fail).
pub async fn until<T, F, Fut>(ctx: &CheckContext, within: Duration, mut probe: F) -> Result<Option<T>, Outcome>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, Outcome>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = probe().await? {
            return Ok(Some(v));
        }
        if tokio::time::Instant::now() >= deadline || ctx.cancel.is_cancelled() {
            return Ok(None);
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = ctx.cancel.cancelled() => {}
        }
    }
}
