//! Services a run found unreachable, so a data service that stops answering costs one
//! timeout, not one per unit (the data-plane counterpart of the runner's per-cluster
//! health).
//!
//! When an exchange with a service gets no answer in time, the check marks its address
//! down (a refused or dropped connection alone is not marked: meeting it again costs
//! nothing). Until [`RETRY_AFTER`] has passed since the last try, every unit that resolves
//! that address ends at once as Error "… unreachable since hh:mm:ss UTC (…); not
//! evaluated"; then the next unit tries it again (at most one try per interval), and an
//! answer (even an error answer) marks it up.
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
}

/// The run's record of unreachable services, by address; shared by every unit.
#[derive(Clone, Default)]
pub struct Reach {
    down: Arc<Mutex<HashMap<SocketAddr, Down>>>,
}

impl Reach {
    /// Before an exchange with `service` at `addr`: an Error when it was found unreachable
    /// and it is not yet time to try it again.
    pub fn gate(&self, service: &str, addr: SocketAddr) -> Result<(), Outcome> {
        let mut map = self.down.lock().expect("reach lock");
        let Some(d) = map.get_mut(&addr) else { return Ok(()) };
        if d.last_try.elapsed() >= RETRY_AFTER {
            // This unit tries; the others wait for the next interval.
            d.last_try = Instant::now();
            return Ok(());
        }
        let hms = d.since.format(time::macros::format_description!("[hour]:[minute]:[second]")).unwrap_or_default();
        Err(Outcome::error(format!("{service} ({addr}) unreachable since {hms} UTC ({}); not evaluated", d.why)))
    }

    /// An exchange with `addr` got no answer: `why`, one line.
    pub fn failed(&self, addr: SocketAddr, why: &str) {
        let mut map = self.down.lock().expect("reach lock");
        let d = map.entry(addr).or_insert_with(|| Down { since: time::OffsetDateTime::now_utc(), why: why.to_string(), last_try: Instant::now() });
        d.last_try = Instant::now();
    }

    /// The verdict of a failed exchange with the service at `addr` (see
    /// [`crate::check::CheckContext::exchange_failed`]).
    pub fn verdict(&self, addr: SocketAddr, object: impl std::fmt::Display, expected: impl std::fmt::Display, failure: Failure) -> Outcome {
        if failure.unreachable {
            // Only silence costs the next units a timeout each; a refusal is quick to meet
            // again, and keeps down a service already found silent.
            if failure.silent || self.down.lock().expect("reach lock").contains_key(&addr) {
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
