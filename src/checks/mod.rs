//! The check library: one module per epic, one [`Check`] per criterion.
//!
//! To find the check for criterion 7.2.4, open `epic07/` (`mod.rs` lists the checks) and search for the
//! criterion's text (checks are listed in document order). To add one, write an
//! async fn that reads like the criterion and add a line to that module's
//! `checks()`; `platform-acceptance catalog` shows it mapped.

pub mod dod;
pub mod epic01;
pub mod epic02;
pub mod epic03;
pub mod epic04;
pub mod epic05;
pub mod epic06;
pub mod epic07;
pub mod epic08;
pub mod epic09;
pub mod epic10;
pub mod kit;

use crate::check::Check;

/// Every check, in document order.
pub fn all() -> Vec<Check> {
    [
        epic01::checks(),
        epic02::checks(),
        epic03::checks(),
        epic04::checks(),
        epic05::checks(),
        epic06::checks(),
        epic07::checks(),
        epic08::checks(),
        epic09::checks(),
        epic10::checks(),
        dod::checks(),
    ]
    .concat()
}
