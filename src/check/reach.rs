//! Services a run found unreachable, so a data service that stops answering costs one
//! timeout, not one per unit (the data-plane counterpart of the runner's per-cluster
//! health).
//!
//! When an exchange with a service gets no answer in time, the check marks its address
//! down (a refused or dropped connection is not marked: meeting it again costs nothing). Until [`RETRY_AFTER`] has passed, every unit that
//! resolves that address ends at once as Error "… unreachable since hh:mm:ss UTC (…); not
//! evaluated"; then one unit at a time tries it again, and an answer (even an error
//! answer) marks it up.
//!
//! ```
//! use platform_acceptance::check::{Reach, Verdict};
//! let reach = Reach::default();
//! let minio: std::net::SocketAddr = "10.25.11.3:9000".parse().unwrap();
//! assert!(reach.gate("minio.example:9000", minio).is_ok());
//! reach.failed(minio, "S3 ListObjectsV2: timed out");
//! let refused = reach.gate("minio.example:9000", minio).unwrap_err();
//! assert_eq!(refused.verdict(), Verdict::Error);
//! reach.reached(minio);
//! assert!(reach.gate("minio.example:9000", minio).is_ok());
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::errline::Failure;
use crate::outcome::Outcome;

/// How long a service found unreachable is not tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

struct Down {
    since: time::OffsetDateTime,
    why: String,
    last_try: Instant,
    /// A unit is trying it again right now.
    trying: bool,
}

/// The run's record of unreachable services, by address; shared by every unit.
#[derive(Clone, Default)]
pub struct Reach {
    down: Arc<Mutex<HashMap<SocketAddr, Down>>>,
}

impl Reach {
    /// Before an exchange with `service` at `addr`: an Error when it was found unreachable
    /// and it is not yet time (or another unit's turn) to try it again.
    pub fn gate(&self, service: &str, addr: SocketAddr) -> Result<(), Outcome> {
        let mut map = self.down.lock().expect("reach lock");
        let Some(d) = map.get_mut(&addr) else { return Ok(()) };
        if !d.trying && d.last_try.elapsed() >= RETRY_AFTER {
            d.trying = true;
            d.last_try = Instant::now();
            return Ok(());
        }
        let hms = d.since.format(time::macros::format_description!("[hour]:[minute]:[second]")).unwrap_or_default();
        Err(Outcome::error(format!("{service} ({addr}) unreachable since {hms} UTC ({}); not evaluated", d.why)))
    }

    /// An exchange with `addr` got no answer: `why`, one line.
    pub fn failed(&self, addr: SocketAddr, why: &str) {
        let mut map = self.down.lock().expect("reach lock");
        let d = map.entry(addr).or_insert_with(|| Down { since: time::OffsetDateTime::now_utc(), why: why.to_string(), last_try: Instant::now(), trying: false });
        d.last_try = Instant::now();
        d.trying = false;
    }

    /// The verdict of a failed exchange with the service at `addr` (see
    /// [`crate::check::CheckContext::exchange_failed`]).
    pub fn verdict(&self, addr: SocketAddr, object: impl std::fmt::Display, expected: impl std::fmt::Display, failure: Failure) -> Outcome {
        if failure.unreachable {
            // Only silence costs the next units a timeout each; a refusal is quick to meet again.
            if failure.silent {
                self.failed(addr, &failure.line);
            }
            return Outcome::error(format!("{object}: {failure}; not evaluated"));
        }
        self.reached(addr);
        Outcome::fail(object.to_string(), expected.to_string(), failure.line)
    }

    /// `addr` answered.
    pub fn reached(&self, addr: SocketAddr) {
        self.down.lock().expect("reach lock").remove(&addr);
    }
}
