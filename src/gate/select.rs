//! What a change to the planning document claims: boxes ticked, stories marked done,
//! criteria reworded while ticked, boxes unticked, status markers changed.
//!
//! Items are paired story by story: first by identical (normalised) text, then what is left
//! by position, so a criterion edited in place is *reworded*, not removed and added.
//!
//! ```
//! use platform_acceptance::catalog::Catalog;
//! use platform_acceptance::gate::select::{select, Why};
//! let base = Catalog::parse("### Story 1.1: A\n- [ ] one\n- [x] two\n", "base.md".as_ref());
//! let head = Catalog::parse("### Story 1.1: A\n- [x] one\n- [x] two, reworded\n", "head.md".as_ref());
//! let s = select(&base, &head);
//! assert_eq!(s.selected[0].id, "1.1.1");
//! assert_eq!(s.selected[0].why, vec![Why::Ticked]);
//! assert_eq!(s.selected[1].why, vec![Why::Reworded { before: "two".into() }]);
//! ```

use std::collections::BTreeSet;

use serde::Serialize;

use crate::catalog::{normalize, Catalog, Item, Story, DOD_STORY};

/// What a story's status marker says, repaired from its double encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatusClass {
    /// ✅
    Done,
    /// 🔄
    InProgress,
    /// ❌ or 🔲
    NotStarted,
    /// Any other marker (⚠️) or none: free text, reported as written and never interpreted.
    FreeText,
}

impl StatusClass {
    pub fn of(story: Option<&Story>) -> Self {
        match story.and_then(|s| s.status_mark.as_deref()).map(|m| m.trim_end_matches('\u{fe0f}')) {
            Some("✅") => StatusClass::Done,
            Some("🔄") => StatusClass::InProgress,
            Some("❌" | "🔲") => StatusClass::NotStarted,
            _ => StatusClass::FreeText,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StatusClass::Done => "done",
            StatusClass::InProgress => "in progress",
            StatusClass::NotStarted => "not started",
            StatusClass::FreeText => "free text",
        }
    }
}

/// Why a box is in the gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Why {
    /// Ticked in head, not in base (a Definition-of-Done item too).
    Ticked,
    /// Its story's status marker moved to done.
    StoryDone,
    /// Ticked in head, and its text differs from the base's.
    Reworded { before: String },
}

impl Why {
    pub fn label(&self) -> String {
        match self {
            Why::Ticked => "ticked".into(),
            Why::StoryDone => "story marked done".into(),
            Why::Reworded { before } => format!("reworded while ticked (was: {before})"),
        }
    }
}

/// A box the gate must prove.
#[derive(Debug, Clone, Serialize)]
pub struct Selected {
    pub id: String,
    pub story: String,
    pub text: String,
    pub ticked: bool,
    pub line: usize,
    pub why: Vec<Why>,
}

/// A box that only changed in a way the gate lists (unticked, removed).
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub id: String,
    pub story: String,
    pub text: String,
}

/// A story whose status string changed.
#[derive(Debug, Clone, Serialize)]
pub struct StatusChange {
    pub story: String,
    pub title: String,
    /// Marker and words as written, repaired: `🔲 PENDING`; `None` when absent.
    pub before: Option<String>,
    pub after: Option<String>,
    pub class_before: StatusClass,
    pub class_after: StatusClass,
}

impl StatusChange {
    /// Moved to ✅ from anything else: every criterion of the story is in the gate.
    pub fn to_done(&self) -> bool {
        self.class_after == StatusClass::Done && self.class_before != StatusClass::Done
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Selection {
    /// In head document order.
    pub selected: Vec<Selected>,
    pub unticked: Vec<Listed>,
    /// Ticked in base, gone from head.
    pub removed: Vec<Listed>,
    pub status: Vec<StatusChange>,
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.selected.is_empty()
    }

    /// Stories that have a selected box, in document order.
    pub fn stories(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.selected.iter().filter(|s| seen.insert(s.story.clone())).map(|s| s.story.clone()).collect()
    }
}

/// Compares two versions of the planning document.
pub fn select(base: &Catalog, head: &Catalog) -> Selection {
    let mut out = Selection::default();
    let mut done_stories = BTreeSet::new();
    for h in &head.stories {
        let b = base.story(&h.id);
        let (before, after) = (b.and_then(status_text), status_text(h));
        if before == after {
            continue;
        }
        let change = StatusChange {
            story: h.id.clone(),
            title: h.title.clone(),
            before,
            after,
            class_before: StatusClass::of(b),
            class_after: StatusClass::of(Some(h)),
        };
        if change.to_done() {
            done_stories.insert(h.id.clone());
        }
        out.status.push(change);
    }

    let mut stories: Vec<String> = head.stories.iter().map(|s| s.id.clone()).collect();
    stories.push(DOD_STORY.into());
    for s in base.stories.iter().filter(|s| head.story(&s.id).is_none()) {
        stories.push(s.id.clone());
    }
    for story in &stories {
        let b: Vec<&Item> = base.items_of(story).collect();
        let h: Vec<&Item> = head.items_of(story).collect();
        let (pairs, unused) = pair(&b, &h);
        for (before, item) in pairs {
            let mut why = vec![];
            if item.ticked && !before.is_some_and(|x| x.ticked) {
                why.push(Why::Ticked);
            }
            if done_stories.contains(story) {
                why.push(Why::StoryDone);
            }
            if let Some(x) = before.filter(|x| item.ticked && normalize(&x.text) != normalize(&item.text)) {
                why.push(Why::Reworded { before: x.text.clone() });
            }
            if before.is_some_and(|x| x.ticked) && !item.ticked {
                out.unticked.push(listed(item));
            }
            if !why.is_empty() {
                out.selected.push(Selected { id: item.id.clone(), story: item.story.clone(), text: item.text.clone(), ticked: item.ticked, line: item.line, why });
            }
        }
        out.removed.extend(unused.into_iter().filter(|x| x.ticked).map(listed));
    }
    out
}

fn listed(i: &Item) -> Listed {
    Listed { id: i.id.clone(), story: i.story.clone(), text: i.text.clone() }
}

fn status_text(s: &Story) -> Option<String> {
    match (&s.status_mark, &s.status) {
        (None, None) => None,
        (m, w) => Some([m.as_deref(), w.as_deref()].into_iter().flatten().filter(|x| !x.is_empty()).collect::<Vec<_>>().join(" ")),
    }
}

/// Head items with their base counterpart (same text first, then same position), and the
/// base items nothing in head took.
fn pair<'a>(base: &[&'a Item], head: &[&'a Item]) -> (Vec<(Option<&'a Item>, &'a Item)>, Vec<&'a Item>) {
    let mut used = vec![false; base.len()];
    let mut matched: Vec<Option<usize>> = vec![None; head.len()];
    for (hi, h) in head.iter().enumerate() {
        let key = normalize(&h.text);
        if let Some(bi) = (0..base.len()).find(|&bi| !used[bi] && normalize(&base[bi].text) == key) {
            used[bi] = true;
            matched[hi] = Some(bi);
        }
    }
    for (hi, h) in head.iter().enumerate() {
        if matched[hi].is_none()
            && let Some(bi) = (0..base.len()).find(|&bi| !used[bi] && base[bi].ordinal == h.ordinal)
        {
            used[bi] = true;
            matched[hi] = Some(bi);
        }
    }
    let pairs = head.iter().zip(&matched).map(|(h, m)| (m.map(|bi| base[bi]), *h)).collect();
    let unused = base.iter().zip(&used).filter(|(_, u)| !**u).map(|(b, _)| *b).collect();
    (pairs, unused)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "## EPIC-1: E\n### Story 1.1: Alpha\n**Priority:** P0 | **Status:** \u{f0}\u{178}\u{201d}\u{b2} PENDING\n\n- [ ] first\n- [x] second\n- [x] third\n\n### Story 1.2: Beta\n**Priority:** P0 | **Status:** \u{e2}\u{161}\u{a0}\u{ef}\u{b8} PARTIALLY COMPLETE\n\n- [ ] b one\n- [ ] b two\n\n## Definition of Done\n- [ ] dod one\n- [ ] dod two\n";

    fn parse(t: &str) -> Catalog {
        Catalog::parse(t, "x.md".as_ref())
    }

    fn ids(s: &Selection) -> Vec<(&str, Vec<Why>)> {
        s.selected.iter().map(|x| (x.id.as_str(), x.why.clone())).collect()
    }

    #[test]
    fn the_same_document_selects_nothing() {
        let s = select(&parse(BASE), &parse(BASE));
        assert!(s.is_empty() && s.unticked.is_empty() && s.status.is_empty() && s.removed.is_empty(), "{s:?}");
    }

    #[test]
    fn newly_ticked_boxes_and_dod_items_are_selected_unticked_ones_only_listed() {
        let head = BASE.replace("- [ ] first", "- [x] first").replace("- [x] third", "- [ ] third").replace("- [ ] dod two", "- [x] dod two");
        let s = select(&parse(BASE), &parse(&head));
        assert_eq!(ids(&s), vec![("1.1.1", vec![Why::Ticked]), ("dod.2", vec![Why::Ticked])]);
        assert_eq!(s.unticked.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), ["1.1.3"]);
    }

    #[test]
    fn rewording_a_ticked_box_selects_it_rewording_an_unticked_one_does_not() {
        let head = BASE.replace("- [x] second", "- [x] second, but better").replace("- [ ] b one", "- [ ] b one changed");
        let s = select(&parse(BASE), &parse(&head));
        assert_eq!(ids(&s), vec![("1.1.2", vec![Why::Reworded { before: "second".into() }])]);
        assert!(s.removed.is_empty());
    }

    #[test]
    fn a_box_inserted_before_others_does_not_make_them_reworded() {
        let head = BASE.replace("- [ ] first\n", "- [x] new one\n- [ ] first\n");
        let s = select(&parse(BASE), &parse(&head));
        assert_eq!(ids(&s), vec![("1.1.1", vec![Why::Ticked])]);
        assert_eq!(s.selected[0].text, "new one");
    }

    #[test]
    fn a_ticked_box_removed_is_listed() {
        let head = BASE.replace("- [x] third\n", "");
        let s = select(&parse(BASE), &parse(&head));
        assert!(s.is_empty());
        assert_eq!(s.removed.iter().map(|x| x.text.as_str()).collect::<Vec<_>>(), ["third"]);
    }

    #[test]
    fn a_story_marked_done_selects_all_its_boxes_from_the_repaired_marker() {
        // Double-encoded ✅, as the planning document writes it.
        let head = BASE.replace("\u{f0}\u{178}\u{201d}\u{b2} PENDING", "\u{e2}\u{153}\u{2026} COMPLETE");
        let s = select(&parse(BASE), &parse(&head));
        assert_eq!(s.status.len(), 1);
        assert_eq!(s.status[0].before.as_deref(), Some("🔲 PENDING"));
        assert_eq!(s.status[0].after.as_deref(), Some("✅ COMPLETE"));
        assert!(s.status[0].to_done());
        assert_eq!(
            ids(&s),
            vec![("1.1.1", vec![Why::StoryDone]), ("1.1.2", vec![Why::StoryDone]), ("1.1.3", vec![Why::StoryDone])]
        );
    }

    #[test]
    fn free_text_and_other_moves_are_reported_not_interpreted() {
        let head = BASE.replace("\u{e2}\u{161}\u{a0}\u{ef}\u{b8} PARTIALLY COMPLETE", "90% Complete").replace("\u{f0}\u{178}\u{201d}\u{b2} PENDING", "🔄 IN PROGRESS");
        let s = select(&parse(BASE), &parse(&head));
        assert!(s.is_empty(), "{s:?}");
        let by: Vec<_> = s.status.iter().map(|c| (c.story.as_str(), c.class_before, c.class_after, c.to_done())).collect();
        assert_eq!(
            by,
            vec![("1.1", StatusClass::NotStarted, StatusClass::InProgress, false), ("1.2", StatusClass::FreeText, StatusClass::FreeText, false)]
        );
        assert_eq!(s.status[1].after.as_deref(), Some("90% Complete"));
    }
}
