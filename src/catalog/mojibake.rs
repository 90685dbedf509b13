//! Repair of double-encoded UTF-8 ("mojibake").
//!
//! The planning document was saved through a Windows code page once too often:
//! `✅` reads as `âœ…`, `🔲` as `ğŸ”²`. Bytes that the code page cannot show
//! (0x81, 0x8D, 0x8F, 0x90, 0x9D) were dropped on the way, so `❌` arrives as
//! `âŒ`. We undo the damage run by run and leave text we cannot prove broken alone.
//!
//! ```
//! use platform_acceptance::catalog::mojibake::repair;
//! assert_eq!(repair("DNS (infra-k8s â†’ 10.25.11.11)"), "DNS (infra-k8s → 10.25.11.11)");
//! assert_eq!(repair("Status: âŒ 0%"), "Status: ❌ 0%");
//! assert_eq!(repair("already fine ✅"), "already fine ✅");
//! ```

use encoding_rs::{Encoding, WINDOWS_1252, WINDOWS_1254};

/// Bytes that Windows code pages 1252/1254 leave undefined; a round trip loses them.
const LOST_BYTES: [u8; 5] = [0x9D, 0x8F, 0x81, 0x8D, 0x90];

/// Repairs every run of non-ASCII characters that is a double-encoded UTF-8 sequence.
pub fn repair(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for ch in text.chars() {
        if ch.is_ascii() {
            flush(&mut run, &mut out);
            out.push(ch);
        } else {
            run.push(ch);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn flush(run: &mut String, out: &mut String) {
    if run.is_empty() {
        return;
    }
    out.push_str(&repair_run(run).unwrap_or_else(|| run.clone()));
    run.clear();
}

fn repair_run(run: &str) -> Option<String> {
    for enc in [WINDOWS_1254, WINDOWS_1252] {
        let Some(bytes) = encode_exact(enc, run) else { continue };
        if let Ok(s) = std::str::from_utf8(&bytes) {
            return Some(s.to_string());
        }
        if let Some(s) = restore_one_lost_byte(&bytes) {
            return Some(s);
        }
    }
    None
}

fn encode_exact(enc: &'static Encoding, run: &str) -> Option<Vec<u8>> {
    let (bytes, _, had_errors) = enc.encode(run);
    (!had_errors).then(|| bytes.into_owned())
}

/// Longest run (in bytes) [`restore_one_lost_byte`] tries: a status marker or two. Each
/// try copies the run, so a long run of accented text would cost time quadratic in its length.
const MAX_LOST_BYTE_RUN: usize = 32;

/// Tries to re-insert one dropped byte; accepts only results made of pictographs
/// and symbols (what the document's status markers are), so ordinary accented
/// text never gets "repaired" into something else.
fn restore_one_lost_byte(bytes: &[u8]) -> Option<String> {
    if bytes.len() > MAX_LOST_BYTE_RUN {
        return None;
    }
    for pos in 0..=bytes.len() {
        for lost in LOST_BYTES {
            let mut candidate = bytes.to_vec();
            candidate.insert(pos, lost);
            if let Ok(s) = std::str::from_utf8(&candidate)
                && s.chars().all(is_symbolic)
            {
                return Some(s.to_string());
            }
        }
    }
    None
}

fn is_symbolic(c: char) -> bool {
    matches!(c as u32,
        0x2190..=0x21FF | 0x2500..=0x257F | 0x2600..=0x27BF | 0x2B00..=0x2BFF |
        0xFE0F | 0x1F000..=0x1FAFF)
}

#[cfg(test)]
mod tests {
    use super::repair;

    #[test]
    fn repairs_every_marker_the_document_uses() {
        assert_eq!(repair("âœ…"), "✅");
        assert_eq!(repair("ğŸ”²"), "🔲");
        assert_eq!(repair("âš\u{a0}ï¸"), "⚠️");
        assert_eq!(repair("âŒ"), "❌");
        assert_eq!(repair("â”œâ”€â”€"), "├──");
        assert_eq!(repair("â†“"), "↓");
    }

    #[test]
    fn leaves_correct_text_alone() {
        assert_eq!(repair("café – ✅ ❌ → naïve"), "café – ✅ ❌ → naïve");
    }
}
