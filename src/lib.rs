//! platform-acceptance: proves, criterion by criterion, that a two-cluster
//! Kubernetes platform meets its planning document.
//!
//! Flow: [`catalog`] (criteria parsed from the document) → [`checks`] (one async
//! check per criterion, one module per epic) → [`plan`] (criteria × clusters,
//! selectors) → [`runner`] (concurrency, timeouts, retries, cleanup, ordering by
//! the story graph) → [`report`] (JUnit, JSON, Markdown, terminal).

pub mod catalog;
pub mod check;
pub mod checks;
pub mod cli;
pub mod gate;
pub mod cluster;
pub mod errline;
pub mod net;
pub mod outcome;
pub mod random;
pub mod plan;
pub mod repo;
pub mod report;
pub mod runner;
pub mod sim;
pub mod session;
