//! Reporters: separate consumers of the runner's events and final report.

pub mod catalog;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod terminal;

/// Bytes of per-unit detail a human-facing report carries (JUnit `system-out`, Markdown
/// details); the JSON report keeps every finding.
pub const DETAIL_BYTES: usize = 4096;
/// Characters of one detail line.
const LINE_CHARS: usize = 600;

/// `lines`, each cut at [`LINE_CHARS`], as many as fit in `limit` bytes (the first always),
/// then one line saying how many were left out.
///
/// ```
/// use platform_acceptance::report::bounded;
/// let lines: Vec<String> = (0..1000).map(|i| format!("finding {i}")).collect();
/// let out = bounded(&lines, 100);
/// assert!(out.join("\n").len() < 160); // 10 findings and the line counting the rest
/// assert_eq!(out.last().unwrap(), &format!("… and {} more (the JSON report has them all)", 1000 - (out.len() - 1)));
/// assert_eq!(bounded(&lines[..2], 100), lines[..2]);
/// ```
pub fn bounded(lines: &[String], limit: usize) -> Vec<String> {
    let mut out = vec![];
    let mut used = 0;
    for (i, line) in lines.iter().enumerate() {
        let line = if line.chars().count() > LINE_CHARS { format!("{}…", line.chars().take(LINE_CHARS).collect::<String>()) } else { line.clone() };
        if i > 0 && used + line.len() + 1 > limit {
            out.push(format!("… and {} more (the JSON report has them all)", lines.len() - i));
            break;
        }
        used += line.len() + 1;
        out.push(line);
    }
    out
}
