//! Waiting inside a round trip: the one place a check waits for a controller. Bounded by
//! the caller's limit (kept inside the runner's per-check timeout) and by the run's
//! cancellation. [`object`] watches one object until its condition holds (kube-runtime's
//! `await_condition`: one LIST and one WATCH, however long the wait).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::time::Duration;
//! use platform_acceptance::check::{CheckContext, Cleanup, Phase, Verdict};
//! use platform_acceptance::checks::kit::wait;
//! use platform_acceptance::cluster::objects::Kind;
//! const BACKUP: Kind = Kind::namespaced("velero.io", &["v1"], "Backup");
//! let ctx = CheckContext {
//!     cluster: "infra".into(), repo: None, target: None, phase: Phase::default(),
//!     cancel: Default::default(), cleanup: Cleanup::default(), run: "doc".into(), reach: Default::default(),
//! };
//! // An API server that does not answer ends the wait at once as an Error, not a hang.
//! let client = kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
//! let waited = wait::object(&ctx, &client, &BACKUP, Some("velero"), "b", Duration::from_secs(60), |b| b.str("/status/phase") == Some("Completed")).await;
//! assert_eq!(waited.unwrap_err().verdict(), Verdict::Error);
//! # });
//! ```

use std::time::Duration;

use kube::api::{Api, DynamicObject};

use crate::check::{CheckContext, Outcome};
use crate::cluster::objects::{self, Found, Kind};

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
