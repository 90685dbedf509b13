//! Command line: `catalog`, `run`, `gate`, `sync-doc`, `sweep`, `render`, `sim`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::check::Phase;
use crate::report;
use crate::runner::RunConfig;
use crate::session::{Session, SetupError};

mod gate;
mod rbac;
mod render;

const DEFAULT_DOC: &str = "fixtures/multi-cluster-epics.md";

#[derive(Parser, Debug)]
#[command(
    name = "platform-acceptance",
    version,
    about = "Proves, criterion by criterion, that a two-cluster Kubernetes platform meets its planning document.",
    long_about = "Proves, criterion by criterion, that a two-cluster Kubernetes platform meets its planning document.\n\n\
Every acceptance-criterion checkbox of the planning document maps to one check (or is marked manual with a reason). \
Checks run in layers: `repo` (the GitOps repository alone), `cluster` (the Kubernetes API of each cluster), \
`data-plane` (traffic to PostgreSQL, Redis, S3, HTTP) and `manual`.",
    after_help = "Examples:\n  \
platform-acceptance catalog                          # all 221 items, mapped or not\n  \
platform-acceptance run --repo fixtures/gitops --junit out/junit.xml\n  \
platform-acceptance run --repo . --kubeconfig ~/.kube/config --only 7 --markdown summary.md\n  \
platform-acceptance sim up && platform-acceptance run --repo fixtures/gitops --sim\n  \
platform-acceptance gate --doc docs/plan.md --base origin/main --repo . --kubeconfig ~/.kube/config --markdown comment.md\n  \
platform-acceptance sync-doc --report out/report.json --doc docs/plan.md --write\n\n\
Exit codes: 0 all selected passed, 1 any failure or error, 2 usage or configuration error, 130 interrupted (SIGINT), 143 terminated (SIGTERM); both stop the checks, run their cleanups and write the reports."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List every criterion and Definition-of-Done item with its layer, check and clusters.
    #[command(after_help = "Examples:\n  platform-acceptance catalog --format json | jq '.items[] | select(.layer==\"unmapped\")'\n  platform-acceptance catalog --repo fixtures/gitops   # cluster names from the repository")]
    Catalog {
        /// Planning document to parse.
        #[arg(long, default_value = DEFAULT_DOC)]
        doc: PathBuf,
        /// GitOps repository whose clusters/ directories name the clusters (default: infra, apps).
        #[arg(long)]
        repo: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Run the checks and write reports.
    Run(RunArgs),
    /// Definition-of-Done gate of a change to the planning document: prove what it ticks.
    Gate(gate::GateArgs),
    /// Tick the boxes a run proved and untick the ones it disproved (prints a diff; --write applies).
    #[command(
        long_about = "Makes the planning document say what a run's JSON report proved.\n\n\
A criterion passes when it passed on every cluster it ran on, and fails when any cluster failed or \
errored; criteria only skipped are left as they are, and manual criteria are never ticked. Passing \
boxes are ticked, failing ones unticked; a story whose boxes are then all ticked gets ✅, a story \
marked ✅ with a box left unticked gets 🔄. Only those bytes change: the document's double-encoded \
emoji (the marker is written in the same encoding) and line endings stay as they are.",
        after_help = "Examples:\n  \
platform-acceptance run --repo fixtures/gitops --sim --json out/report.json\n  \
platform-acceptance sync-doc --report out/report.json --doc fixtures/multi-cluster-epics.md           # prints a unified diff\n  \
platform-acceptance sync-doc --report out/report.json --doc fixtures/multi-cluster-epics.md --write   # applies it\n\n\
Exit codes: 0 done (also when nothing changes), 2 unreadable report or document."
    )]
    SyncDoc {
        /// JSON report of `run --json`.
        #[arg(long)]
        report: PathBuf,
        /// Planning document to update.
        #[arg(long, default_value = DEFAULT_DOC)]
        doc: PathBuf,
        /// Write the changes into --doc instead of printing the diff.
        #[arg(long)]
        write: bool,
    },
    /// Print the least-privilege roles the harness needs (ServiceAccount, ClusterRoles, bindings).
    Rbac(rbac::RbacArgs),
    /// Delete what runs that died left behind: disposable namespaces labelled with a run
    /// whose Lease expired or is gone. Objects of a run still renewing its Lease, and
    /// anything without the run label, are left alone.
    #[command(after_help = "Examples:\n  platform-acceptance sweep --kubeconfig ~/.kube/config --context infra=admin@infra --context apps=admin@apps\n  platform-acceptance sweep --sim")]
    Sweep {
        /// Kubeconfig of the clusters to sweep.
        #[arg(long, required_unless_present = "sim")]
        kubeconfig: Option<PathBuf>,
        /// Sweep the local simulation.
        #[arg(long, conflicts_with = "kubeconfig")]
        sim: bool,
        /// Kubeconfig context for a cluster, CLUSTER=CONTEXT (default: the context named like the cluster).
        #[arg(long = "context", value_name = "CLUSTER=CONTEXT")]
        contexts: Vec<String>,
        /// GitOps repository whose clusters/ directories name the clusters (default: infra, apps).
        #[arg(long)]
        repo: Option<PathBuf>,
    },
    /// What the repository makes Flux apply, for deploy scripts: a HelmRelease's values and
    /// chart, and Flux's entry objects pointed at one commit (with a target profile's patches).
    Render {
        #[command(subcommand)]
        command: render::RenderCommand,
    },
    /// The local two-cluster simulation: real control planes, KWOK nodes, PostgreSQL, Redis, MinIO.
    #[command(after_help = crate::sim::cli::env_help())]
    Sim {
        #[command(subcommand)]
        command: crate::sim::cli::SimCommand,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Selectors (--only/--skip, repeatable or comma-separated):\n  \
7            epic 7\n  7.2          story 7.2 (dod = Definition of Done)\n  7.2.3        one criterion (dod.4)\n  \
layer=repo   a layer: repo, cluster, data-plane, manual\n  cluster=apps one cluster\n\n\
Examples:\n  platform-acceptance run --repo fixtures/gitops --junit out/junit.xml --json out/report.json\n  \
platform-acceptance run --repo . --kubeconfig ~/.kube/config --context infra=admin@infra --only 2,3 --skip layer=data-plane\n  \
platform-acceptance run --repo fixtures/gitops --sim --phase bootstrap --only 1.3")]
pub struct RunArgs {
    /// Planning document to parse.
    #[arg(long, default_value = DEFAULT_DOC)]
    pub doc: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Run only these (see Selectors below).
    #[arg(long)]
    pub only: Vec<String>,
    /// Leave these out (see Selectors below).
    #[arg(long)]
    pub skip: Vec<String>,
    /// Write JUnit XML here (one testsuite per story, one testcase per criterion and cluster).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a Markdown summary here (fit for $GITHUB_STEP_SUMMARY or a PR comment).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Exit 1 when any criterion is unmapped (a Definition-of-Done gate).
    #[arg(long)]
    pub strict: bool,
}

/// What to check and how to run the checks: shared by `run` and `gate`.
#[derive(clap::Args, Debug)]
pub struct TargetArgs {
    /// GitOps repository to check (the repository layer needs it).
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// Kubeconfig for the cluster and data-plane layers. Without it (or --sim) those are skipped.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Use the local simulation's kubeconfig (see `platform-acceptance sim up`).
    #[arg(long, conflicts_with = "kubeconfig")]
    pub sim: bool,
    /// Let round-trip checks create (and remove) labelled objects in disposable namespaces of
    /// the --kubeconfig clusters. Without it those checks are skipped and every other write
    /// is refused before it leaves the process. The simulation always allows writes.
    #[arg(long)]
    pub allow_writes: bool,
    /// How data-plane checks reach services: `relay` (default) starts one SOCKS5 relay pod per
    /// cluster (needs --allow-writes) and connects through API-server port-forwards, so names
    /// resolve and connections start inside the cluster; `direct` connects from this machine
    /// (run inside the cluster, or where cluster names resolve and service ranges route).
    #[arg(long, value_enum, default_value_t = crate::cluster::relay::Network::Relay)]
    pub network: crate::cluster::relay::Network,
    /// Image of the relay pod: a SOCKS5 server on port 1080 without authentication (e.g. a
    /// mirror in the platform's own registry for air-gapped clusters).
    #[arg(long, value_name = "IMAGE", default_value = crate::cluster::relay::DEFAULT_IMAGE)]
    pub relay_image: String,
    /// Kubeconfig context for a cluster, CLUSTER=CONTEXT (default: the context named like the cluster).
    #[arg(long = "context", value_name = "CLUSTER=CONTEXT")]
    pub contexts: Vec<String>,
    /// Send every API request as this user (impersonation, like `kubectl --as`), e.g.
    /// system:serviceaccount:platform-acceptance:harness to try the roles of `rbac`.
    #[arg(long = "as", value_name = "USER")]
    pub as_user: Option<String>,
    /// Platform phase: `bootstrap` (clusters up, no CNI yet) or `operate`.
    #[arg(long, value_enum, default_value_t = Phase::Operate)]
    pub phase: Phase,
    /// Checks evaluated at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Per-check time limit, retries included (e.g. 30s, 2m).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Extra attempts for cluster and data-plane checks (eventually consistent state).
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
    /// How long a check that sees only reconciliations in progress (an upgrade, a new
    /// revision being applied, a renewal) is re-evaluated before it fails (e.g. 30s, 2m).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub in_progress_wait: Duration,
    /// Target profile (YAML): criteria this kind of target cannot prove (skipped with the
    /// profile's reason) and variables its deploy step changes, e.g. ci/kind-profile.yaml.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Terminal output: progress bar on a TTY, plain lines otherwise.
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    pub progress: Progress,
    /// Send every read to the API server. By default, checks that only look share one
    /// LIST per resource type and cluster for the whole run (a retry LISTs again); use this
    /// to compare, or against an API server whose RBAC allows no cluster-wide LIST.
    #[arg(long)]
    pub no_read_cache: bool,
    /// Evaluate every unit even when a story it depends on failed. By default such a unit
    /// is skipped as "blocked by N.M", so one broken foundation reports once rather than
    /// through every criterion built on it; use this to see everything at once.
    #[arg(long)]
    pub no_block: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Progress {
    Auto,
    Bar,
    Plain,
    Quiet,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len()));
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?} (use e.g. 500ms, 30s, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("invalid duration unit in {s:?} (use ms, s or m)")),
    };
    if secs <= 0.0 {
        return Err(format!("duration must be positive, got {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Entry point; never panics on bad input: one line on stderr and exit 2.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Without a command clap would print the whole help as an error: one line instead.
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            return usage_error(if std::env::args_os().count() <= 1 {
                "a command is required: catalog, run, gate, sync-doc, sweep or sim (see --help)"
            } else {
                "a subcommand is required (see --help)"
            });
        }
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return usage_error(format!("cannot start the async runtime: {e}")),
    };
    rt.block_on(dispatch(cli))
}

fn usage_error(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("platform-acceptance: error: {msg}");
    ExitCode::from(2)
}

async fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Catalog { doc, repo, format } => match catalog(&doc, repo.as_deref(), format) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => usage_error(e),
        },
        Command::Run(args) => run(args).await,
        Command::Gate(args) => gate::run(args).await,
        Command::SyncDoc { report, doc, write } => match gate::sync_doc(&report, &doc, write) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => usage_error(e),
        },
        Command::Rbac(args) => match rbac::manifests(&args) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => usage_error(e),
        },
        Command::Sweep { kubeconfig, sim, contexts, repo } => match sweep(kubeconfig, sim, &contexts, repo).await {
            Ok(code) => code,
            Err(e) => usage_error(e),
        },
        Command::Render { command } => match render::run(command) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => usage_error(e),
        },
        Command::Sim { command } => match crate::sim::cli::run(command).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("platform-acceptance sim: error: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

async fn sweep(kubeconfig: Option<PathBuf>, sim: bool, contexts: &[String], repo: Option<PathBuf>) -> Result<ExitCode, String> {
    let clusters: Vec<String> = match repo {
        Some(r) => crate::repo::GitopsRepo::load(&r).map_err(|e| e.to_string())?.clusters().to_vec(),
        None => vec!["apps".into(), "infra".into()],
    };
    let overrides = crate::cluster::parse_overrides(contexts, &clusters).map_err(|e| e.to_string())?;
    let targets = match (kubeconfig, sim) {
        (Some(k), _) => crate::cluster::targets(&k, &clusters, &overrides).await.map_err(|e| e.to_string())?,
        (None, _) => crate::sim::targets::targets(&clusters, &overrides).await?,
    };
    let mut failed = false;
    for (cluster, target) in &targets {
        match crate::cluster::lease::sweep(&target.client).await {
            Ok(s) => {
                println!(
                    "{cluster}: removed {} [{}]; kept {} of running runs; left alone {} without a run label",
                    s.removed.len(),
                    s.removed.join(", "),
                    s.live.len(),
                    s.unowned.len()
                );
                for f in &s.failed {
                    failed = true;
                    eprintln!("{cluster}: not removed: {f}");
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("{cluster}: {}", crate::cluster::api_error("sweep", e).summary());
            }
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn catalog(doc: &std::path::Path, repo: Option<&std::path::Path>, format: Format) -> Result<(), SetupError> {
    let session = Session::new(doc, repo)?;
    for w in &session.catalog.warnings {
        eprintln!("warning: {}: {w}", doc.display());
    }
    match format {
        Format::Json => println!("{}", report::catalog::json(&session)),
        Format::Table => print!("{}", report::catalog::table(&session)),
    }
    Ok(())
}

async fn run(args: RunArgs) -> ExitCode {
    match prepare(&args).await {
        Ok((session, only, skip, outputs)) => execute(&args, session, &only, &skip, outputs).await,
        Err(e) => usage_error(e),
    }
}

/// Report files, created (empty) before the run so a bad path fails fast with exit 2.
struct Outputs {
    junit: Option<std::fs::File>,
    json: Option<std::fs::File>,
    markdown: Option<std::fs::File>,
}

fn create_output(path: &Option<PathBuf>) -> Result<Option<std::fs::File>, String> {
    let Some(path) = path else { return Ok(None) };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if dir.exists() && !dir.is_dir() {
            return Err(format!("cannot write {}: {} is not a directory", path.display(), dir.display()));
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::File::create(path).map(Some).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

async fn prepare(args: &RunArgs) -> Result<(Session, Vec<crate::plan::Selector>, Vec<crate::plan::Selector>, Outputs), String> {
    let session = Session::new(&args.doc, args.target.repo.as_deref()).map_err(|e| e.to_string())?;
    let only = session.selectors(&args.only).map_err(|e| e.to_string())?;
    let skip = session.selectors(&args.skip).map_err(|e| e.to_string())?;
    let session = attach_targets(&args.target, session).await?;
    let outputs = Outputs { junit: create_output(&args.junit)?, json: create_output(&args.json)?, markdown: create_output(&args.markdown)? };
    Ok((session, only, skip, outputs))
}

/// The live targets the target flags name (`--kubeconfig`/`--context`, `--sim`), if any, with
/// the `--profile` in force.
async fn attach_targets(args: &TargetArgs, session: Session) -> Result<Session, String> {
    if args.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    let session = match &args.profile {
        Some(path) => session.with_profile(crate::session::profile::TargetProfile::load(path)?).map_err(|e| e.to_string())?,
        None => session,
    };
    let clusters = session.coverage.clusters.clone();
    let overrides = crate::cluster::parse_overrides(&args.contexts, &clusters).map_err(|e| e.to_string())?;
    let mut targets = match (&args.kubeconfig, args.sim) {
        (Some(k), _) => {
            let mut targets = crate::cluster::targets(k, &clusters, &overrides).await.map_err(|e| e.to_string())?;
            for t in targets.values_mut() {
                t.writable = args.allow_writes;
            }
            targets
        }
        (None, true) => crate::sim::targets::targets(&clusters, &overrides).await?,
        (None, false) if !args.contexts.is_empty() => return Err("--context needs --kubeconfig FILE (or --sim)".into()),
        (None, false) if args.as_user.is_some() => return Err("--as needs --kubeconfig FILE (or --sim)".into()),
        (None, false) => return Ok(session),
    };
    if let Some(user) = &args.as_user {
        for t in targets.values_mut() {
            *t = t.acting_as(user)?;
        }
    }
    // After --as: the relay's pods and port-forwards are requested as that user too.
    if args.network == crate::cluster::relay::Network::Relay {
        crate::cluster::relay::attach(&mut targets, &args.relay_image);
    }
    Ok(session.with_targets(targets))
}

async fn execute(args: &RunArgs, session: Session, only: &[crate::plan::Selector], skip: &[crate::plan::Selector], outputs: Outputs) -> ExitCode {
    let units = session.units(only, skip);
    let report = drive(&args.target, &session, units).await;
    write_run_reports(args, &session, report, outputs)
}

/// Set when a run was stopped by SIGTERM (exit 143) rather than SIGINT (exit 130).
static TERMINATED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Exit status of a run stopped by a signal: 143 for SIGTERM, 130 for SIGINT.
fn interrupted_exit() -> ExitCode {
    ExitCode::from(if TERMINATED.load(std::sync::atomic::Ordering::SeqCst) { 143 } else { 130 })
}

/// Runs `units` with the terminal reporter and the SIGINT/SIGTERM handling of `run`.
async fn drive(args: &TargetArgs, session: &Session, units: Vec<crate::plan::Unit>) -> crate::runner::RunReport {
    let config = RunConfig { concurrency: args.concurrency, timeout: args.timeout, retries: args.retries, in_progress_wait: args.in_progress_wait, phase: args.phase, read_cache: !args.no_read_cache, block: !args.no_block, ..RunConfig::default() };
    let runner = session.runner(config);
    let mode = match args.progress {
        Progress::Bar => report::terminal::Mode::Bar,
        Progress::Plain => report::terminal::Mode::Plain,
        Progress::Quiet => report::terminal::Mode::Quiet,
        Progress::Auto if std::io::stderr().is_terminal() => report::terminal::Mode::Bar,
        Progress::Auto => report::terminal::Mode::Plain,
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let printer = tokio::spawn(report::terminal::consume(rx, mode));
    let cancel = runner.cancel.clone();
    let interrupt = tokio::spawn(async move {
        // SIGINT (Ctrl-C) or SIGTERM (a CI job cancelled, `kill`): stop, clean up, report.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(t) => t.recv().await,
                None => std::future::pending().await,
            }
        };
        let signal = tokio::select! {
            r = tokio::signal::ctrl_c() => if r.is_ok() { "interrupted" } else { return },
            _ = terminated => { TERMINATED.store(true, std::sync::atomic::Ordering::SeqCst); "terminated" }
        };
        eprintln!("\n{signal}: stopping checks, running cleanups, writing reports (Ctrl-C again to abort)");
        cancel.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
    let report = runner.run(units, tx).await;
    interrupt.abort();
    let _ = printer.await;
    report
}

/// Writes a report into an output created by [`create_output`]; false (and one line on stderr) on failure.
fn write_output(file: Option<std::fs::File>, what: &str, f: &dyn Fn(&mut std::fs::File) -> std::io::Result<()>) -> bool {
    match file {
        Some(mut file) => match f(&mut file) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("platform-acceptance: error: cannot write the {what} report: {e}");
                false
            }
        },
        None => true,
    }
}

fn write_run_reports(args: &RunArgs, session: &Session, report: crate::runner::RunReport, outputs: Outputs) -> ExitCode {
    use std::io::Write as _;
    let mut ok = write_output(outputs.junit, "JUnit", &|f| report::junit::write(&report, &session.catalog, f));
    ok &= write_output(outputs.json, "JSON", &|f| f.write_all(report::json::render(&report, &session.coverage, &args.doc).as_bytes()));
    ok &= write_output(outputs.markdown, "Markdown", &|f| f.write_all(report::markdown::render(&report, &session.catalog).as_bytes()));
    let write_failed = !ok;

    for w in &session.catalog.warnings {
        eprintln!("warning: {}: {w}", args.doc.display());
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    for o in &session.coverage.orphans {
        eprintln!("warning: check {} (story {}) proves a criterion the document no longer has: {}", o.check, o.story, o.criterion);
    }
    println!("{}", report.summary.line());
    if report.summary.basis.total() > 0 {
        println!("basis: {}", report.summary.basis.line());
    }
    if report.summary.api_requests.total > 0 {
        println!("api requests sent by the checks: {}", report.summary.api_requests.total);
    }
    let s = &report.summary;
    if s.interrupted {
        interrupted_exit()
    } else if !s.success() || write_failed || (args.strict && (s.unmapped > 0 || !session.coverage.orphans.is_empty())) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
