//! One row of the table `make bench` prints at the end (`scripts/bench.sh`): each
//! benchmark prints its own lines as it measures, and also appends its headline figures to
//! the file named by `$BENCH_TABLE` (when set) as `figure<TAB>value<TAB>goal` lines.

use std::io::Write;

/// Appends one row (`goal` may be empty) to `$BENCH_TABLE`; does nothing without it.
pub fn row(figure: &str, value: impl std::fmt::Display, goal: &str) {
    let Some(path) = std::env::var_os("BENCH_TABLE") else { return };
    let line = format!("{}\t{}\t{}\n", one_cell(figure), one_cell(&value.to_string()), one_cell(goal));
    let written = std::fs::OpenOptions::new().create(true).append(true).open(&path).and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("bench table {}: {e}", std::path::Path::new(&path).display());
    }
}

fn one_cell(text: &str) -> String {
    text.replace(['\t', '\n'], " ")
}
