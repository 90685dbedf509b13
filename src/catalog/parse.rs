//! Planning document → [`Catalog`], driven by pulldown-cmark events with source offsets.

use std::path::Path;
use std::sync::LazyLock;

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use regex::Regex;

use super::{mermaid, normalize, Catalog, Epic, Item, Story, DOD_STORY};

static EPIC_HEADING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^EPIC-(\d+)\s*:\s*(.+)$").expect("static regex"));
static STORY_HEADING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^Story\s+(\d+\.\d+)\s*:\s*(.+)$").expect("static regex"));
static FIELD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\*\*(Priority|Points|Days|Status):\*\*\s*([^|]*)").expect("static regex"));
static TASK_MARKER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*[-*+]\s+\[[ xX]\]\s*").expect("static regex"));

enum Section {
    None,
    Story(String),
    Dod,
}

/// Ends the warning about a repeated story heading ([`super::Catalog::load`] refuses such a document).
pub(super) const APPEARS_TWICE: &str = " appears twice; later criteria are appended to it";

pub(super) fn parse(text: &str, source: &Path) -> Catalog {
    let line_starts: Vec<usize> =
        std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
    let line_of = |offset: usize| line_starts.partition_point(|&s| s <= offset);

    let mut catalog = Catalog {
        source: source.to_path_buf(),
        epics: vec![],
        stories: vec![],
        items: vec![],
        dependencies: vec![],
        warnings: vec![],
    };
    let mut section = Section::None;
    let mut heading: Option<(HeadingLevel, String)> = None;
    let mut in_mermaid = false;
    let mut mermaid_text = String::new();
    let mut pending_task: Option<(bool, usize)> = None;

    let parser = Parser::new_ext(text, Options::ENABLE_TASKLISTS | Options::ENABLE_TABLES);
    for (event, range) in parser.into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, .. }) => heading = Some((level, String::new())),
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, raw)) = heading.take() {
                    section = on_heading(&mut catalog, level, &normalize(&raw), section);
                }
            }
            Event::Text(t) | Event::Code(t) if heading.is_some() => {
                if let Some((_, h)) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                in_mermaid = info.trim() == "mermaid";
                let block = text[range.clone()].trim_end();
                let fence = block.trim_start().chars().take_while(|c| *c == '`' || *c == '~').collect::<String>();
                let closed = block.lines().count() > 1 && block.lines().last().is_some_and(|l| l.trim().starts_with(fence.as_str()));
                if in_mermaid && !closed {
                    catalog.warnings.push(format!(
                        "line {}: the dependency graph (mermaid block) is not closed: the document looks truncated, and only the edges before its end are used",
                        line_of(range.start)
                    ));
                }
            }
            Event::Text(t) if in_mermaid => mermaid_text.push_str(&t),
            Event::End(TagEnd::CodeBlock) => {
                if in_mermaid {
                    catalog.dependencies.extend(mermaid::edges(&mermaid_text));
                    mermaid_text.clear();
                }
                in_mermaid = false;
            }
            Event::Start(Tag::Paragraph) => {
                if let Section::Story(id) = &section {
                    let para = &text[range.clone()];
                    if para.contains("**Priority:**") {
                        fill_story_fields(&mut catalog, id, para);
                    }
                }
            }
            Event::TaskListMarker(ticked) => pending_task = Some((ticked, range.start)),
            Event::End(TagEnd::Item) => {
                if let Some((ticked, start)) = pending_task.take() {
                    add_item(&mut catalog, &section, ticked, text, start, range.end, line_of(start));
                }
            }
            _ => {}
        }
    }
    catalog
}

fn on_heading(catalog: &mut Catalog, level: HeadingLevel, title: &str, current: Section) -> Section {
    if let Some(c) = EPIC_HEADING.captures(title) {
        catalog.epics.push(Epic {
            number: c[1].parse().unwrap_or(0),
            id: format!("EPIC-{}", &c[1]),
            name: strip_marks(&c[2]),
        });
        return Section::None;
    }
    if let Some(c) = STORY_HEADING.captures(title) {
        let id = c[1].to_string();
        if catalog.story(&id).is_some() {
            catalog.warnings.push(format!("story {id}{APPEARS_TWICE}"));
        } else {
            catalog.stories.push(Story {
                epic: Catalog::epic_of(&id).unwrap_or(0),
                id: id.clone(),
                title: strip_marks(&c[2]),
                priority: None,
                points: None,
                days: None,
                status: None,
                status_mark: None,
            });
        }
        return Section::Story(id);
    }
    if title.eq_ignore_ascii_case("Definition of Done") {
        return Section::Dod;
    }
    // A new level-2 section ends a story; deeper headings inside a story do not.
    match (level, current) {
        (HeadingLevel::H1 | HeadingLevel::H2, _) => Section::None,
        (_, Section::Story(id)) if level > HeadingLevel::H3 => Section::Story(id),
        (_, Section::Dod) => Section::Dod,
        _ => Section::None,
    }
}

fn fill_story_fields(catalog: &mut Catalog, id: &str, para: &str) {
    let Some(story) = catalog.stories.iter_mut().find(|s| s.id == id) else { return };
    for c in FIELD.captures_iter(para) {
        let value = normalize(c[2].trim());
        match &c[1] {
            "Priority" => story.priority = Some(value),
            "Points" => story.points = value.parse().ok(),
            "Days" => story.days = value.parse().ok(),
            "Status" => {
                let (mark, words) = split_mark(&value);
                story.status = Some(words);
                story.status_mark = mark;
            }
            _ => {}
        }
    }
}

fn add_item(catalog: &mut Catalog, section: &Section, ticked: bool, text: &str, start: usize, end: usize, line: usize) {
    // The item's own source line(s), minus the `- [ ]` marker, keeping inline code as written.
    let item_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let raw = &text[item_start..end];
    let first_block = raw.split("\n\n").next().unwrap_or(raw);
    let body = TASK_MARKER.replace(first_block, "");
    let body = normalize(body.lines().map(str::trim).collect::<Vec<_>>().join(" ").as_str());
    let story = match section {
        Section::Story(id) => id.clone(),
        Section::Dod => DOD_STORY.to_string(),
        Section::None => {
            catalog.warnings.push(format!("line {line}: checkbox outside any story ignored: {body}"));
            return;
        }
    };
    let ordinal = catalog.items_of(&story).count() + 1;
    let id = format!("{story}.{ordinal}");
    catalog.items.push(Item { id, story, ordinal, text: body, ticked, line });
}

/// Splits a leading or trailing status marker (emoji, possibly unrepaired) from words.
fn split_mark(value: &str) -> (Option<String>, String) {
    let mark: String = value.chars().take_while(|c| !c.is_ascii()).collect();
    let words = value[mark.len()..].trim().to_string();
    let mark = mark.trim().to_string();
    ((!mark.is_empty()).then_some(mark), words)
}

fn strip_marks(title: &str) -> String {
    title.trim_end_matches(|c: char| !c.is_ascii() || c.is_whitespace()).trim().to_string()
}
