//! Terminal reporter: a progress bar on a TTY, plain lines otherwise (CI logs).

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

use crate::check::Verdict;
use crate::runner::{Event, UnitResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bar,
    Plain,
    Quiet,
}

/// Consumes runner events until the run ends.
pub async fn consume(mut events: mpsc::UnboundedReceiver<Event>, mode: Mode) {
    let mut bar: Option<ProgressBar> = None;
    while let Some(event) = events.recv().await {
        match event {
            Event::RunStarted { total } => {
                if mode == Mode::Bar {
                    let b = ProgressBar::new(total as u64);
                    b.set_style(
                        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    bar = Some(b);
                } else if mode == Mode::Plain {
                    eprintln!("running {total} checks");
                }
            }
            Event::UnitStarted { title } => {
                if let Some(b) = &bar {
                    b.set_message(title);
                }
            }
            Event::UnitFinished { result, done, total } => {
                let line = line(&result);
                match (&bar, mode) {
                    (Some(b), _) => {
                        if result.outcome.verdict() != Verdict::Pass && result.outcome.verdict() != Verdict::Skip {
                            b.println(line);
                        }
                        b.set_position(done as u64);
                    }
                    (None, Mode::Plain) => {
                        // CI logs: every problem as it happens, progress every tenth of the run.
                        if matches!(result.outcome.verdict(), Verdict::Fail | Verdict::Error) {
                            eprintln!("{line}");
                        }
                        let step = (total / 10).max(1);
                        if done % step == 0 || done == total {
                            eprintln!("progress: {done}/{total} checks done");
                        }
                    }
                    _ => {}
                }
            }
            Event::RunFinished { .. } => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
            }
        }
    }
}

/// `FAIL 2.2.2 [apps] CLUSTER_ID set to "2": file: CLUSTER_ID: expected "2", observed "3"`
pub fn line(r: &UnitResult) -> String {
    let tag = match r.outcome.verdict() {
        Verdict::Pass => "PASS ",
        Verdict::Fail => "FAIL ",
        Verdict::Error => "ERROR",
        Verdict::Skip => "SKIP ",
    };
    let summary = r.outcome.summary();
    if summary.is_empty() { format!("{tag} {}", r.title()) } else { format!("{tag} {} — {summary}", r.title()) }
}
