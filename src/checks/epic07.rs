//! EPIC-7 checks.
//!
//! Writing a check here? Read docs/CHECKS-GUIDE.md first ({GUIDE} in your task): conventions, helpers, test support, rules for shared files and the shared CARGO_TARGET_DIR.

use crate::check::Check;

pub fn checks() -> Vec<Check> {
    vec![]
}
