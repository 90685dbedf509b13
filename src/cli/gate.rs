//! `gate`: the command line of [`crate::gate`]; the logic lives there.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{attach_targets, create_output, drive, interrupted_exit, usage_error, write_output, Outputs, TargetArgs, DEFAULT_DOC};
use crate::catalog::Catalog;
use crate::check::Phase;
use crate::gate::{self, git, select::Selection, Labels};
use crate::session::Session;

#[derive(clap::Args, Debug)]
#[command(
    long_about = "Definition-of-Done gate of a change to the planning document.\n\n\
Compares two versions of the document (--base REV [--head REV] of the git repository holding it, or \
--base-doc FILE against --doc) and selects: boxes ticked in head but not in base (Definition-of-Done \
items too); every box of a story whose status marker moved to done (✅; 🔄 is in progress, ❌ and 🔲 \
not started; other statuses such as \"90% Complete\" are reported, never interpreted); boxes reworded \
while ticked (a reworded criterion maps to no check, so the gate fails naming it). It runs exactly \
those checks, plus every check of the stories they depend on (reported separately; a live failure \
there blocks them), against the target given as for `run`, and passes only when every selected \
criterion passes on every cluster it runs on. Manual criteria are listed for a reviewer; unticked \
boxes are listed, never failures.",
    after_help = "Examples:\n  \
platform-acceptance gate --doc docs/plan.md --base origin/main --repo . --kubeconfig ~/.kube/config \\\n      \
--context infra=admin@infra --context apps=admin@apps --markdown comment.md --junit gate.xml\n  \
platform-acceptance gate --doc fixtures/multi-cluster-epics.md --base HEAD~1 --repo fixtures/gitops --sim\n  \
platform-acceptance gate --doc plan-new.md --base-doc plan-old.md --repo fixtures/gitops   # repository layer only\n\n\
Exit codes: 0 every selected criterion passed (or nothing to prove), 1 any did not (failed, error, \
not proven, unmapped or reworded), 2 usage or configuration error, 130 interrupted (SIGINT), 143 terminated (SIGTERM)."
)]
pub struct GateArgs {
    /// The planning document; head is this file as it is on disk, unless --head.
    #[arg(long, default_value = DEFAULT_DOC)]
    pub doc: PathBuf,
    /// Base revision of the git repository holding --doc (origin/main, HEAD~1, a commit).
    #[arg(long, required_unless_present = "base_doc")]
    pub base: Option<String>,
    /// Head revision (default: the file on disk).
    #[arg(long, requires = "base")]
    pub head: Option<String>,
    /// Base version as a file, instead of --base.
    #[arg(long, conflicts_with_all = ["base", "head"])]
    pub base_doc: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Write JUnit XML here (suite `gate`: one testcase per selected box; suite `prerequisites`).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write the JSON gate report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the Markdown pull-request comment here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

impl GateArgs {
    /// One command line that runs this gate again (revisions resolved to commits, target kept).
    fn reproduce(&self, base: &str, head: Option<&str>) -> String {
        let path = |p: &Path| shell(&p.to_string_lossy());
        let t = &self.target;
        let mut a: Vec<String> = vec!["platform-acceptance gate --doc".into(), path(&self.doc)];
        match &self.base_doc {
            Some(f) => a.extend(["--base-doc".into(), path(f)]),
            None => a.extend(["--base".into(), shell(base)]),
        }
        if let Some(h) = head {
            a.extend(["--head".into(), shell(h)]);
        }
        if let Some(r) = &t.repo {
            a.extend(["--repo".into(), path(r)]);
        }
        if t.sim {
            a.push("--sim".into());
        }
        if let Some(k) = &t.kubeconfig {
            a.extend(["--kubeconfig".into(), path(k)]);
        }
        for c in &t.contexts {
            a.extend(["--context".into(), shell(c)]);
        }
        if t.allow_writes {
            a.push("--allow-writes".into());
        }
        if let Some(p) = &t.profile {
            a.extend(["--profile".into(), path(p)]);
        }
        if t.phase != Phase::Operate {
            a.extend(["--phase".into(), t.phase.as_str().into()]);
        }
        a.join(" ")
    }
}

/// Quotes for a POSIX shell when needed.
fn shell(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=~@:^+,".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

pub async fn run(args: GateArgs) -> ExitCode {
    match prepare(&args).await {
        Ok(prepared) => execute(&args, prepared).await,
        Err(e) => usage_error(e),
    }
}

struct Prepared {
    session: Session,
    selection: Selection,
    labels: Labels,
    outputs: Outputs,
}

async fn prepare(args: &GateArgs) -> Result<Prepared, String> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("cannot read planning document {}: {e}", p.display()));
    let (base_text, base_label, base_rev) = match (&args.base_doc, &args.base) {
        (Some(f), _) => (read(f)?, f.display().to_string(), String::new()),
        (None, Some(rev)) => {
            let commit = git::commit(&args.doc, rev)?;
            (git::show(&args.doc, &commit)?, commit.clone(), commit)
        }
        (None, None) => return Err("give --base REV or --base-doc FILE".into()),
    };
    let (head_text, head_label, head_rev) = match &args.head {
        Some(rev) => {
            let commit = git::commit(&args.doc, rev)?;
            (git::show(&args.doc, &commit)?, commit.clone(), Some(commit))
        }
        None => (read(&args.doc)?, "working tree".to_string(), None),
    };
    let base = Catalog::parse(&base_text, Path::new(&base_label));
    let head = Catalog::parse(&head_text, &args.doc);
    if head.stories.is_empty() {
        return Err(format!("planning document {} ({head_label}) has no stories (expected `### Story N.M: Title` headings)", args.doc.display()));
    }
    let selection = gate::select::select(&base, &head);
    let session = Session::with_catalog(head, args.target.repo.as_deref()).map_err(|e| e.to_string())?;
    let session = attach_targets(&args.target, session).await?;
    let labels = Labels {
        document: args.doc.display().to_string(),
        base: base_label,
        head: head_label,
        reproduce: args.reproduce(&base_rev, head_rev.as_deref()),
    };
    let outputs = Outputs { junit: create_output(&args.junit)?, json: create_output(&args.json)?, markdown: create_output(&args.markdown)? };
    Ok(Prepared { session, selection, labels, outputs })
}

async fn execute(args: &GateArgs, p: Prepared) -> ExitCode {
    let (units, prereqs) = gate::plan_units(&p.selection, &p.session.coverage, &p.session.catalog);
    let report = drive(&args.target, &p.session, units).await;
    let g = gate::judge(&p.selection, &p.session.coverage, &report, prereqs, p.labels);
    use std::io::Write as _;
    let mut ok = write_output(p.outputs.junit, "JUnit", &|f| gate::render::junit(&g, f));
    ok &= write_output(p.outputs.json, "JSON", &|f| f.write_all(gate::render::json(&g).as_bytes()));
    ok &= write_output(p.outputs.markdown, "Markdown", &|f| f.write_all(gate::render::markdown(&g).as_bytes()));
    for i in &g.items {
        println!("{:<10} {} {} — {}", i.verdict.as_str(), i.id, i.text, i.message);
    }
    for x in &g.selection.unticked {
        println!("unticked   {} {} (listed, not a failure)", x.id, x.text);
    }
    for c in g.selection.status.iter().filter(|c| c.class_after == gate::select::StatusClass::FreeText) {
        println!("status     story {}: {:?} is free text, not interpreted", c.story, c.after.as_deref().unwrap_or(""));
    }
    if !g.prerequisite_stories.is_empty() {
        println!("prerequisites {}: {}", g.prerequisite_stories.join(", "), crate::runner::Summary::of(&g.prerequisites, false).line());
    }
    let proven = g.items.iter().filter(|i| i.verdict.ok()).count();
    println!("gate {}: {proven} of {} selected box(es) proven", if g.passed { "PASSED" } else { "FAILED" }, g.items.len());
    if g.interrupted {
        interrupted_exit()
    } else if !g.passed || !ok {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `sync-doc`: prints the diff, or writes it with `write`; changes and warnings go to stderr.
pub fn sync_doc(report: &Path, doc: &Path, write: bool) -> Result<(), String> {
    let raw = std::fs::read_to_string(report).map_err(|e| format!("cannot read report {}: {e}", report.display()))?;
    let value: serde_json::Value = serde_json::from_str(&raw).map_err(|e| format!("report {} is not JSON: {e}", report.display()))?;
    let text = std::fs::read_to_string(doc).map_err(|e| format!("cannot read planning document {}: {e}", doc.display()))?;
    let synced = gate::sync::sync(&text, &value)?;
    for w in &synced.warnings {
        eprintln!("warning: {w}");
    }
    for c in &synced.changes {
        eprintln!("line {}: {}", c.line, c.what);
    }
    if write {
        if synced.text != text {
            std::fs::write(doc, &synced.text).map_err(|e| format!("cannot write {}: {e}", doc.display()))?;
        }
        eprintln!("{} change(s) written to {}", synced.changes.len(), doc.display());
    } else {
        print!("{}", gate::sync::diff(&doc.to_string_lossy(), &text, &synced.text));
    }
    Ok(())
}
