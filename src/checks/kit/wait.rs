//! Waiting inside a round trip: the one place a check waits. Bounded by the caller's
//! limit (kept inside the runner's per-check timeout) and by the run's cancellation.
//! [`object`] waits for one object's condition through a watch (kube-runtime's
//! `await_condition`: one LIST and one WATCH, however long the wait); [`until`] polls what
//! a watch cannot express.
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

use kube::api::{Api, DynamicObject};

use crate::check::{CheckContext, Outcome};
use crate::cluster::objects::{self, Found, Kind};

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

/// Waits until object `name` of `kind` exists and satisfies `cond`, watching it; `Ok(None)`
/// when `within` passed (or the run was cancelled) first: the caller reads the state it
/// was left in and builds the Fail.
pub async fn object(ctx: &CheckContext, client: &kube::Client, kind: &Kind, ns: Option<&str>, name: &str, within: Duration, cond: impl Fn(&Found) -> bool + Send + 'static) -> Result<Option<Found>, Outcome> {
    let (ar, api_version) = objects::resource(client, kind).await?;
    let api: Api<DynamicObject> = match ns {
        Some(ns) if kind.namespaced => Api::namespaced_with(client.clone(), ns, &ar),
        _ => Api::all_with(client.clone(), &ar),
    };
    let version = api_version.clone();
    let condition = move |o: Option<&DynamicObject>| o.is_some_and(|o| cond(&Found { object: o.clone(), api_version: version.clone() }));
    let waited = tokio::select! {
        w = tokio::time::timeout(within, kube::runtime::wait::await_condition(api, name, condition)) => w,
        _ = ctx.cancel.cancelled() => return Ok(None),
    };
    match waited {
        Ok(Ok(o)) => Ok(o.map(|object| Found { object, api_version })),
        Ok(Err(e)) => Err(Outcome::error(format!("watch {} {name} (cluster {}): {}", kind.kind, ctx.cluster, crate::errline::chain(&e)))),
        Err(_) => Ok(None),
    }
}
