//! The helper kit every epic module uses, so each check reads like its criterion.
pub mod disposable;
