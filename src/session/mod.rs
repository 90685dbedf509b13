//! One run, assembled: catalog + checks + repository + targets → runner → report.
//! The CLI, the live rstest cases and the integration tests all go through here.
//!
//! ```no_run
//! # async fn demo() -> Result<(), platform_acceptance::session::SetupError> {
//! use platform_acceptance::session::Session;
//! let session = Session::new("fixtures/multi-cluster-epics.md", Some("fixtures/gitops".as_ref()))?;
//! let report = session.run(&[], &[], Default::default()).await;
//! println!("{}", report.summary.line());
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::catalog::{Catalog, CatalogError};
use crate::check::Target;
use crate::checks;
use crate::plan::{Coverage, Selector, Unit};
use crate::repo::{GitopsRepo, RepoError};
use crate::runner::{Environment, Event, RunConfig, RunReport, Runner};

pub mod profile;

use profile::TargetProfile;

/// Problems that stop a run before it starts (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("{0}")]
    Selector(String),
    #[error("{0}")]
    Target(String),
    #[error("{0}")]
    Profile(String),
}

pub struct Session {
    pub catalog: Catalog,
    pub repo: Option<Arc<GitopsRepo>>,
    pub coverage: Coverage,
    pub targets: BTreeMap<String, Target>,
    /// The target profile in force and the criteria it skips (id → reason).
    pub profile: Option<(TargetProfile, BTreeMap<String, String>)>,
}

/// Cluster names when no repository says otherwise (the planning document's two).
pub const DEFAULT_CLUSTERS: [&str; 2] = ["apps", "infra"];

impl Session {
    /// Loads the document and, if given, the repository; maps every check.
    pub fn new(doc: impl AsRef<Path>, repo: Option<&Path>) -> Result<Self, SetupError> {
        Self::with_catalog(Catalog::load(doc)?, repo)
    }

    /// As [`Session::new`], for a document already parsed (another revision of it, say).
    pub fn with_catalog(catalog: Catalog, repo: Option<&Path>) -> Result<Self, SetupError> {
        let repo = repo.map(GitopsRepo::load).transpose()?.map(Arc::new);
        let clusters: Vec<String> = match &repo {
            Some(r) => r.clusters().to_vec(),
            None => DEFAULT_CLUSTERS.iter().map(|s| s.to_string()).collect(),
        };
        let coverage = Coverage::map(&catalog, checks::all(), &clusters);
        Ok(Session { catalog, repo, coverage, targets: BTreeMap::new(), profile: None })
    }

    /// Puts a target profile in force, validated against the document and the repository:
    /// targets attached afterwards skip what it cannot prove. Its variables are not applied
    /// here: checks judge the repository as written, and the profile lists the criteria its
    /// replaced values make unprovable on that target.
    pub fn with_profile(mut self, profile: TargetProfile) -> Result<Self, SetupError> {
        profile.validate(Some(&self.catalog), &self.coverage.clusters, self.repo.as_deref()).map_err(SetupError::Profile)?;
        let skipped = profile.skipped(&self.catalog);
        self.profile = Some((profile, skipped));
        Ok(self)
    }

    pub fn with_targets(mut self, mut targets: BTreeMap<String, Target>) -> Self {
        if let Some((profile, skipped)) = &self.profile {
            for t in targets.values_mut() {
                t.provenance = profile.wrap(t.provenance.clone(), skipped);
            }
        }
        self.targets = targets;
        self
    }

    /// These targets with every request sent as `user` ([`Target::acting_as`]).
    pub fn acting_as(mut self, user: &str) -> Result<Self, String> {
        for t in self.targets.values_mut() {
            *t = t.acting_as(user)?;
        }
        Ok(self)
    }

    /// Parses and validates selectors against this document and these clusters.
    pub fn selectors(&self, raw: &[String]) -> Result<Vec<Selector>, SetupError> {
        raw.iter()
            .flat_map(|s| s.split(','))
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                let sel = Selector::parse(s).map_err(SetupError::Selector)?;
                sel.validate(&self.catalog, &self.coverage.clusters).map_err(SetupError::Selector)?;
                Ok(sel)
            })
            .collect()
    }

    pub fn units(&self, only: &[Selector], skip: &[Selector]) -> Vec<Unit> {
        self.coverage.units(only, skip)
    }

    pub fn runner(&self, config: RunConfig) -> Runner {
        let env = Environment { repo: self.repo.clone(), targets: self.targets.clone() };
        Runner::new(config, env, self.catalog.dependencies.clone())
    }

    /// Runs the selected units without a live event consumer.
    pub async fn run(&self, only: &[Selector], skip: &[Selector], config: RunConfig) -> RunReport {
        let (tx, _rx) = mpsc::unbounded_channel::<Event>();
        self.runner(config).run(self.units(only, skip), tx).await
    }
}
