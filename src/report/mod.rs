//! Reporters: separate consumers of the runner's events and final report.

pub mod catalog;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod terminal;
