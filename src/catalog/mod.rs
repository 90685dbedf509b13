//! The criteria catalog: epics, stories, acceptance criteria and Definition-of-Done
//! items, parsed from the planning document itself.
//!
//! ```
//! let catalog = platform_acceptance::catalog::Catalog::load("fixtures/multi-cluster-epics.md").unwrap();
//! let c = catalog.item("7.2.7").unwrap();
//! assert_eq!(c.text, "Cluster healthy and ready");
//! assert_eq!(catalog.prerequisites("7.2"), vec!["7.1".to_string()]);
//! ```

pub mod mermaid;
pub mod mojibake;
mod parse;

use std::path::{Path, PathBuf};

use serde::Serialize;

/// Story id used for Definition-of-Done items.
pub const DOD_STORY: &str = "dod";

#[derive(Debug, Clone, Serialize)]
pub struct Epic {
    pub number: u32,
    /// `EPIC-7`
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Story {
    /// `7.2`
    pub id: String,
    pub epic: u32,
    pub title: String,
    pub priority: Option<String>,
    pub points: Option<f64>,
    pub days: Option<f64>,
    /// Status as the document states it, marker stripped: `CONFIG COMPLETE`.
    pub status: Option<String>,
    /// The status marker, repaired: `✅`.
    pub status_mark: Option<String>,
}

/// One checkbox: an acceptance criterion of a story or a Definition-of-Done item.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// `7.2.3` or `dod.4`
    pub id: String,
    /// `7.2` or `dod`
    pub story: String,
    /// 1-based position within its story.
    pub ordinal: usize,
    /// The criterion as written (inline code kept), emoji repaired, whitespace collapsed.
    pub text: String,
    pub ticked: bool,
    /// 1-based line in the document.
    pub line: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Catalog {
    pub source: PathBuf,
    pub epics: Vec<Epic>,
    pub stories: Vec<Story>,
    pub items: Vec<Item>,
    /// `(prerequisite, dependent)` story pairs from the mermaid graph.
    pub dependencies: Vec<(String, String)>,
    /// Things the parser noticed and did not use (checkboxes outside any story...).
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read planning document {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("planning document {path} is not UTF-8 text")]
    NotUtf8 { path: PathBuf },
    #[error("planning document {path} has no stories (expected `### Story N.M: Title` headings)")]
    NoStories { path: PathBuf },
    #[error("planning document {path} has story {id} twice (each `### Story {id}:` heading must be unique, or criterion ids are ambiguous)")]
    DuplicateStory { path: PathBuf, id: String },
}

impl Catalog {
    /// Reads and parses a planning document.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CatalogError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| CatalogError::Read { path: path.into(), source })?;
        let text = String::from_utf8(bytes).map_err(|_| CatalogError::NotUtf8 { path: path.into() })?;
        let catalog = Self::parse(&text, path);
        if catalog.stories.is_empty() {
            return Err(CatalogError::NoStories { path: path.into() });
        }
        if let Some(id) = catalog.warnings.iter().find_map(|w| w.strip_suffix(parse::APPEARS_TWICE)?.strip_prefix("story ")) {
            return Err(CatalogError::DuplicateStory { path: path.into(), id: id.to_string() });
        }
        Ok(catalog)
    }

    /// Parses document text; `source` is only recorded.
    pub fn parse(text: &str, source: &Path) -> Self {
        parse::parse(text, source)
    }

    pub fn story(&self, id: &str) -> Option<&Story> {
        self.stories.iter().find(|s| s.id == id)
    }

    pub fn item(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.id == id)
    }

    pub fn items_of<'a>(&'a self, story: &'a str) -> impl Iterator<Item = &'a Item> + 'a {
        self.items.iter().filter(move |i| i.story == story)
    }

    /// Story criteria, without Definition-of-Done items.
    pub fn criteria(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| i.story != DOD_STORY)
    }

    pub fn dod(&self) -> impl Iterator<Item = &Item> {
        self.items_of(DOD_STORY)
    }

    /// Direct prerequisites of a story, in document order.
    pub fn prerequisites(&self, story: &str) -> Vec<String> {
        self.dependencies.iter().filter(|(_, d)| d == story).map(|(p, _)| p.clone()).collect()
    }

    /// The epic a story id belongs to (`"7.2"` → 7).
    pub fn epic_of(story: &str) -> Option<u32> {
        story.split('.').next()?.parse().ok()
    }
}

/// Normalises criterion text for matching: repaired emoji, collapsed whitespace.
pub fn normalize(text: &str) -> String {
    mojibake::repair(text).split_whitespace().collect::<Vec<_>>().join(" ")
}
