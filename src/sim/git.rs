//! The GitOps repository as the real Flux source-controller fetches it: bare Git
//! repositories written by the simulation, served over SSH by [`super::gitssh`].
//!
//! Writing ([`create`], [`commit_on_top`]) uses Git's plumbing through
//! the `git` command line on a scratch index, so no work tree or checkout is involved and
//! the caller's files are only read. Every commit has the same author, committer and date
//! ([`AUTHOR_NAME`], [`AUTHOR_EMAIL`], [`COMMIT_DATE`]), so the same input gives the same
//! commit ids from run to run and a test can name the revision Flux must report. Git runs
//! isolated from the user's and the system's configuration.
//!

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, bail, ensure};

/// Author and committer name of every commit the simulation writes.
pub const AUTHOR_NAME: &str = "platform-acceptance simulation";
/// Author and committer e-mail of every commit the simulation writes (`.invalid`: it
/// reaches no one).
pub const AUTHOR_EMAIL: &str = "simulation@platform-acceptance.invalid";
/// Author and committer date of every commit the simulation writes; fixed so the same
/// input gives the same commit ids.
pub const COMMIT_DATE: &str = "2026-01-01T00:00:00Z";

/// The two commits [`create`] writes, as 40-hex commit ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commits {
    /// The files of the source directory as they are.
    pub base: String,
    /// `base` with the overlay's changes applied; the branch's head.
    pub overlay: String,
}

/// `0` in a `git update-index --index-info` record: remove the path.
const NO_OBJECT: &str = "0000000000000000000000000000000000000000";

/// `OsString` of `a` followed by `b` (`--git-dir=` + path).
fn joined(a: &str, b: &Path) -> OsString {
    let mut s = OsString::from(a);
    s.push(b);
    s
}

/// Runs `git --git-dir=<bare> <args>` (with `GIT_INDEX_FILE=<index>` when given, `input`
/// on stdin) isolated from any configuration but the repository's own; its stdout,
/// trimmed. A failure names the command and carries git's stderr on one line.
fn git<I, S>(bare: &Path, index: Option<&Path>, args: I, input: Option<&[u8]>) -> anyhow::Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Ok(String::from_utf8_lossy(&git_bytes(bare, index, args, input)?).trim().to_string())
}

/// [`git`] with its stdout as it is (file contents).
fn git_bytes<I, S>(bare: &Path, index: Option<&Path>, args: I, input: Option<&[u8]>) -> anyhow::Result<Vec<u8>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
    let mut cmd = Command::new("git");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(name);
        }
    }
    cmd.envs([
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_AUTHOR_NAME", AUTHOR_NAME),
        ("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL),
        ("GIT_AUTHOR_DATE", COMMIT_DATE),
        ("GIT_COMMITTER_NAME", AUTHOR_NAME),
        ("GIT_COMMITTER_EMAIL", AUTHOR_EMAIL),
        ("GIT_COMMITTER_DATE", COMMIT_DATE),
    ]);
    if let Some(index) = index {
        cmd.env("GIT_INDEX_FILE", index);
    }
    // The per-user ignore and attributes files apply even without a global config.
    cmd.args(["-c", "core.excludesFile=/dev/null", "-c", "core.attributesFile=/dev/null", "-c", "core.autocrlf=false"]);
    cmd.arg(joined("--git-dir=", bare)).args(&args);
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
    let shown = || format!("git --git-dir={} {}", bare.display(), args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "));
    let mut child = cmd.spawn().with_context(|| format!("cannot run {}", shown()))?;
    let out = std::thread::scope(|scope| {
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            // A writer of its own: git may answer before it has read all of its input.
            scope.spawn(move || {
                let _ = stdin.write_all(input);
            });
        }
        child.wait_with_output()
    })
    .with_context(|| format!("cannot run {}", shown()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let said: Vec<&str> = err.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let said = if said.is_empty() { format!("exited with {}", out.status) } else { said.join("; ") };
        bail!("{}: {said}", shown());
    }
    Ok(out.stdout)
}

/// A scratch directory next to `near` (its parent), removed again when dropped: room for
/// a temporary index outside the repository.
struct Scratch(PathBuf);

impl Scratch {
    fn next_to(near: &Path) -> anyhow::Result<Self> {
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        let parent = near.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = near.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let dir = parent.join(format!(".{name}.scratch-{}-{}", std::process::id(), SEQUENCE.fetch_add(1, Ordering::Relaxed)));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove stale {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self(dir))
    }

    fn index(&self) -> PathBuf {
        self.0.join("index")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `path` made absolute (without touching the file system): git changes directory to a
/// work tree, where relative paths would name something else.
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot make {} absolute", path.display()))
}

/// Checks that `path` names a file inside a repository: relative, `/`-separated, without
/// empty, `.`, `..` or `.git` components.
fn check_repo_path(path: &str) -> anyhow::Result<()> {
    let bad = path.is_empty()
        || path.contains(['\0', '\\'])
        || path.split('/').any(|c| c.is_empty() || c == "." || c == ".." || c.eq_ignore_ascii_case(".git"));
    ensure!(!bad, "{path:?} is not a path inside the repository (relative, '/'-separated, no '.', '..' or '.git')");
    Ok(())
}

/// Applies `changes` to the scratch `index` of `bare`. A replaced file keeps its
/// executable bit; a new one is a regular file. Deleting a directory deletes every file
/// under it; deleting what the tree does not hold is an error (a mistyped path would
/// otherwise make a commit that changes nothing).
fn apply(bare: &Path, index: &Path, changes: &BTreeMap<String, Option<Vec<u8>>>) -> anyhow::Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    for path in changes.keys() {
        check_repo_path(path)?;
    }
    // `<mode> <object> <stage>\t<path>\0` per entry.
    let listing = git(bare, Some(index), ["ls-files", "--stage", "-z"], None)?;
    let modes: BTreeMap<&str, &str> = listing
        .split('\0')
        .filter_map(|entry| entry.split_once('\t'))
        .filter_map(|(meta, path)| Some((path, meta.split(' ').next()?)))
        .collect();
    let mut records = Vec::new();
    for (path, change) in changes {
        match change {
            Some(bytes) => {
                let blob = git(bare, None, ["hash-object", "-w", "--stdin"], Some(bytes))?;
                let mode = if modes.get(path.as_str()) == Some(&"100755") { "100755" } else { "100644" };
                write!(records, "{mode} {blob}\t{path}\0")?;
            }
            None => {
                let under = format!("{path}/");
                let gone: Vec<&&str> = modes.keys().filter(|p| **p == path || p.starts_with(&under)).collect();
                ensure!(!gone.is_empty(), "cannot delete {path}: the tree of {} holds no such file or directory", bare.display());
                for p in gone {
                    write!(records, "0 {NO_OBJECT}\t{p}\0")?;
                }
            }
        }
    }
    // `--replace`: a file may take the place of a directory and the other way round.
    git(bare, Some(index), ["update-index", "-z", "--add", "--replace", "--index-info"], Some(&records))?;
    Ok(())
}

/// Writes the tree of `index` and a commit of it with `parent` and `message`; its id.
fn commit_index(bare: &Path, index: &Path, parent: Option<&str>, message: &str) -> anyhow::Result<String> {
    let tree = git(bare, Some(index), ["write-tree"], None)?;
    let mut args = vec!["commit-tree", tree.as_str()];
    if let Some(parent) = parent {
        args.extend(["-p", parent]);
    }
    // The message on stdin: it may be long, span lines or start with '-'.
    git(bare, None, args.iter().chain(&["-F", "-"]), Some(message.as_bytes()))
}

/// The full id of the commit `rev` names in `bare`.
fn resolve_commit(bare: &Path, rev: &str) -> anyhow::Result<String> {
    ensure!(!rev.is_empty() && !rev.starts_with('-'), "{rev:?} is not a revision");
    git(bare, None, ["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")], None)
        .map_err(|_| anyhow::anyhow!("{rev:?} names no commit in {}", bare.display()))
}

/// Removes `bare` if it is a bare repository or an empty directory; refuses anything
/// else, so a mistaken path cannot cost someone's files.
fn remove_repository(bare: &Path) -> anyhow::Result<()> {
    if !bare.exists() {
        return Ok(());
    }
    let is_repo = bare.join("HEAD").is_file() && bare.join("objects").is_dir();
    let is_empty = bare.is_dir() && std::fs::read_dir(bare)?.next().is_none();
    ensure!(is_repo || is_empty, "refusing to replace {}: it is neither a bare Git repository nor an empty directory", bare.display());
    std::fs::remove_dir_all(bare).with_context(|| format!("cannot remove {}", bare.display()))
}

/// Creates (replacing any existing one) bare repository `bare` whose branch `branch`
/// holds two commits:
///
/// 1. `base_message`: exactly the files under `source_dir`, honouring the `.gitignore`
///    files there as `git add -A` does (and nothing of the user's own ignore rules);
/// 2. `overlay_message`: the same tree with `changes` applied — keys are paths relative
///    to the repository root with `/` separators; `Some(bytes)` writes or replaces the
///    file, `None` deletes the file (or every file under the directory) of that path.
///
/// `HEAD` of the bare repository points at `branch`, so a clone checks it out. The base
/// is the repository as it is on disk, the overlay what the simulation needs on top
/// (e.g. the stand-ins' endpoints); a test can move Flux between them by name.
///
/// ```
/// use std::collections::BTreeMap;
/// use platform_acceptance::sim::git;
///
/// let dir = tempfile::tempdir().unwrap();
/// let source = dir.path().join("source");
/// std::fs::create_dir(&source).unwrap();
/// std::fs::write(source.join("kustomization.yaml"), "resources: []\n").unwrap();
/// let changes = BTreeMap::from([("extra.yaml".to_string(), Some(b"kind: ConfigMap\n".to_vec()))]);
/// let bare = dir.path().join("k8s-gitops.git");
/// let commits = git::create(&bare, "main", &source, "base", "overlay", &changes).unwrap();
/// assert_eq!(git::head(&bare, "main").unwrap(), commits.overlay);
/// // Fixed author and dates: the same input gives the same commits.
/// let again = git::create(&dir.path().join("again.git"), "main", &source, "base", "overlay", &changes).unwrap();
/// assert_eq!(again, commits);
/// ```
pub fn create(
    bare: &Path,
    branch: &str,
    source_dir: &Path,
    base_message: &str,
    overlay_message: &str,
    changes: &BTreeMap<String, Option<Vec<u8>>>,
) -> anyhow::Result<Commits> {
    let (bare, source) = (absolute(bare)?, absolute(source_dir)?);
    ensure!(source.is_dir(), "{} is not a directory", source.display());
    remove_repository(&bare)?;
    if let Some(parent) = bare.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    git(&bare, None, ["init", "--quiet", "--bare", &format!("--initial-branch={branch}")], None)?;
    let scratch = Scratch::next_to(&bare)?;
    let index = scratch.index();
    git(&bare, Some(&index), [joined("--work-tree=", &source), "add".into(), "--all".into()], None)?;
    let base = commit_index(&bare, &index, None, base_message)?;
    apply(&bare, &index, changes)?;
    let overlay = commit_index(&bare, &index, Some(&base), overlay_message)?;
    git(&bare, None, ["update-ref", &format!("refs/heads/{branch}"), &overlay], None)?;
    Ok(Commits { base, overlay })
}

/// Adds one commit with `changes` (as in [`create`]) on top of `branch`'s head and moves
/// the branch to it; returns its id. For a test that changes the repository Flux watches.
pub fn commit_on_top(bare: &Path, branch: &str, message: &str, changes: &BTreeMap<String, Option<Vec<u8>>>) -> anyhow::Result<String> {
    let bare = absolute(bare)?;
    let parent = head(&bare, branch)?;
    let scratch = Scratch::next_to(&bare)?;
    let index = scratch.index();
    git(&bare, Some(&index), ["read-tree", &parent], None)?;
    apply(&bare, &index, changes)?;
    let commit = commit_index(&bare, &index, Some(&parent), message)?;
    // With the old value: a concurrent move of the branch fails instead of being lost.
    git(&bare, None, ["update-ref", &format!("refs/heads/{branch}"), &commit, &parent], None)?;
    Ok(commit)
}

/// The content of file `path` (relative to the repository root, `/`-separated) in the
/// commit `rev` of `bare` names.
pub fn read(bare: &Path, rev: &str, path: &str) -> anyhow::Result<Vec<u8>> {
    let bare = absolute(bare)?;
    check_repo_path(path)?;
    let id = resolve_commit(&bare, rev)?;
    git_bytes(&bare, None, ["cat-file", "blob", &format!("{id}:{path}")], None)
}

/// The commit `branch` of `bare` points at (40 hex digits).
pub fn head(bare: &Path, branch: &str) -> anyhow::Result<String> {
    let bare = absolute(bare)?;
    git(&bare, None, ["rev-parse", "--verify", "--quiet", &format!("refs/heads/{branch}^{{commit}}")], None)
        .map_err(|_| anyhow::anyhow!("{} has no branch {branch:?}", bare.display()))
}

/// Writes the tree of `commit` (any revision naming a commit of `bare`) into `dest`,
/// which is created, or emptied first: afterwards `dest` holds exactly that tree, as Flux's
/// artifact of that revision would.
pub fn checkout(bare: &Path, commit: &str, dest: &Path) -> anyhow::Result<()> {
    let (bare, dest) = (absolute(bare)?, absolute(dest)?);
    let id = resolve_commit(&bare, commit)?;
    if dest.exists() {
        for entry in std::fs::read_dir(&dest).with_context(|| format!("cannot empty {}", dest.display()))? {
            let path = entry?.path();
            let removed = if path.is_dir() && !path.is_symlink() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            removed.with_context(|| format!("cannot remove {}", path.display()))?;
        }
    } else {
        std::fs::create_dir_all(&dest).with_context(|| format!("cannot create {}", dest.display()))?;
    }
    let scratch = Scratch::next_to(&bare)?;
    git(&bare, Some(&scratch.index()), [joined("--work-tree=", &dest), "read-tree".into(), "--reset".into(), "-u".into(), id.into()], None)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(bare: &Path, format: &str, commit: &str) -> String {
        git(bare, None, ["show", "--no-patch", &format!("--format={format}"), commit], None).unwrap_or_else(|e| panic!("{e:#}"))
    }

    fn files(bare: &Path, commit: &str) -> Vec<String> {
        git(bare, None, ["ls-tree", "-r", "--name-only", commit], None).unwrap().lines().map(str::to_string).collect()
    }

    fn blob(bare: &Path, commit: &str, path: &str) -> String {
        git(bare, None, ["show", &format!("{commit}:{path}")], None).unwrap()
    }

    fn changes(list: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<Vec<u8>>> {
        list.iter().map(|(p, c)| (p.to_string(), c.map(|c| c.as_bytes().to_vec()))).collect()
    }

    /// A source tree: two manifests, a directory, an ignored secret (by the top and a nested `.gitignore`).
    fn source(dir: &Path) -> PathBuf {
        let src = dir.join("source");
        for (path, text) in [
            ("kubernetes/flux/cluster.yaml", "kind: Kustomization\n"),
            ("kubernetes/apps/app.yaml", "kind: HelmRelease\n"),
            ("kubernetes/apps/old/x.yaml", "x\n"),
            ("kubernetes/apps/old/y.yaml", "y\n"),
            ("README.md", "readme\n"),
            (".gitignore", "*.secret\n"),
            ("kubernetes/.gitignore", "scratch/\n"),
            ("kubernetes/age.secret", "AGE-SECRET-KEY\n"),
            ("kubernetes/scratch/notes.txt", "notes\n"),
        ] {
            let file = src.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        src
    }

    fn overlay() -> BTreeMap<String, Option<Vec<u8>>> {
        changes(&[
            ("kubernetes/flux/cluster.yaml", Some("kind: Kustomization # overlaid\n")),
            ("kubernetes/sim/endpoints.yaml", Some("kind: ConfigMap\n")),
            ("README.md", None),
            ("kubernetes/apps/old", None),
        ])
    }

    #[test]
    fn create_writes_the_source_then_the_overlay_on_the_branch() {
        let dir = tempfile::tempdir().unwrap();
        let src = source(dir.path());
        let bare = dir.path().join("repos/monosense-io/k8s-gitops.git");
        let c = create(&bare, "main", &src, "base: the repository", "overlay: the simulation", &overlay()).unwrap();
        for id in [&c.base, &c.overlay] {
            assert_eq!(id.len(), 40, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
        assert_ne!(c.base, c.overlay);
        // Base: exactly the source's files, without the ignored ones.
        assert_eq!(
            files(&bare, &c.base),
            [".gitignore", "README.md", "kubernetes/.gitignore", "kubernetes/apps/app.yaml", "kubernetes/apps/old/x.yaml", "kubernetes/apps/old/y.yaml", "kubernetes/flux/cluster.yaml"]
        );
        assert_eq!(blob(&bare, &c.base, "kubernetes/flux/cluster.yaml"), "kind: Kustomization");
        let who = "platform-acceptance simulation|simulation@platform-acceptance.invalid|2026-01-01T00:00:00+00:00";
        assert_eq!(log(&bare, "%P|%an|%ae|%aI|%cn|%ce|%cI|%s", &c.base), format!("|{who}|{who}|base: the repository"));
        // Overlay: on top of the base, with the change, the new file and both deletions.
        assert_eq!(log(&bare, "%P|%s", &c.overlay), format!("{}|overlay: the simulation", c.base));
        assert_eq!(
            files(&bare, &c.overlay),
            [".gitignore", "kubernetes/.gitignore", "kubernetes/apps/app.yaml", "kubernetes/flux/cluster.yaml", "kubernetes/sim/endpoints.yaml"]
        );
        assert_eq!(blob(&bare, &c.overlay, "kubernetes/flux/cluster.yaml"), "kind: Kustomization # overlaid");
        // The branch, and HEAD on it; nothing left next to the repository.
        assert_eq!(head(&bare, "main").unwrap(), c.overlay);
        assert_eq!(git(&bare, None, ["symbolic-ref", "HEAD"], None).unwrap(), "refs/heads/main");
        let beside: Vec<_> = std::fs::read_dir(bare.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(beside, ["k8s-gitops.git"]);
        // Deterministic: elsewhere, the same ids; replacing the repository forgets the old one.
        assert_eq!(create(&dir.path().join("again.git"), "main", &src, "base: the repository", "overlay: the simulation", &overlay()).unwrap(), c);
        let other = create(&bare, "release", &src, "base", "overlay", &BTreeMap::new()).unwrap();
        assert_ne!(other.base, c.base);
        assert_eq!(files(&bare, &other.overlay), files(&bare, &other.base));
        assert!(head(&bare, "main").is_err(), "the replaced repository's branch survived");
        assert_eq!(git(&bare, None, ["symbolic-ref", "HEAD"], None).unwrap(), "refs/heads/release");
    }

    #[test]
    fn create_refuses_bad_paths_missing_deletions_and_foreign_directories() {
        let dir = tempfile::tempdir().unwrap();
        let src = source(dir.path());
        let bare = dir.path().join("r.git");
        for bad in ["../escape", "/abs", "a//b", ".git/config", "a\\b", ""] {
            let err = create(&bare, "main", &src, "b", "o", &changes(&[(bad, Some("x"))])).unwrap_err();
            assert!(format!("{err:#}").contains("not a path inside the repository"), "{bad}: {err:#}");
        }
        let err = create(&bare, "main", &src, "b", "o", &changes(&[("kubernetes/nope.yaml", None)])).unwrap_err();
        assert!(format!("{err:#}").contains("cannot delete kubernetes/nope.yaml"), "{err:#}");
        // The source directory is not a repository: it must not be removed.
        let err = create(&src, "main", &src, "b", "o", &BTreeMap::new()).unwrap_err();
        assert!(format!("{err:#}").contains("refusing to replace"), "{err:#}");
        assert!(src.join("README.md").is_file());
        // A git failure names the command and carries git's message on one line.
        let err = format!("{:#}", create(&bare, "bad..branch", &src, "b", "o", &BTreeMap::new()).unwrap_err());
        assert!(err.starts_with("git --git-dir=") && err.contains("init") && !err.contains('\n'), "{err}");
    }

    #[test]
    fn commit_on_top_moves_the_branch_and_read_gives_a_file_of_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("r.git");
        let c = create(&bare, "main", &source(dir.path()), "b", "o", &overlay()).unwrap();
        let broken = commit_on_top(&bare, "main", "-broken: a bad manifest", &changes(&[("kubernetes/apps/app.yaml", Some("kind: ["))])).unwrap();
        assert_eq!(head(&bare, "main").unwrap(), broken);
        assert_eq!(log(&bare, "%P|%s", &broken), format!("{}|-broken: a bad manifest", c.overlay));
        assert_eq!(blob(&bare, &broken, "kubernetes/apps/app.yaml"), "kind: [");
        assert_eq!(files(&bare, &broken), files(&bare, &c.overlay));
        // A file replacing a directory and the other way round.
        let swapped = commit_on_top(&bare, "main", "swap", &changes(&[("kubernetes/flux", Some("file\n")), ("kubernetes/apps/app.yaml/inner.yaml", Some("i\n"))])).unwrap();
        assert_eq!(
            files(&bare, &swapped),
            [".gitignore", "kubernetes/.gitignore", "kubernetes/apps/app.yaml/inner.yaml", "kubernetes/flux", "kubernetes/sim/endpoints.yaml"]
        );
        assert_eq!(read(&bare, &broken, "kubernetes/apps/app.yaml").unwrap(), b"kind: [");
        assert!(read(&bare, &broken, "no/such.yaml").is_err());
        assert!(format!("{:#}", head(&bare, "nope").unwrap_err()).contains("has no branch \"nope\""));
        assert!(commit_on_top(&bare, "nope", "m", &BTreeMap::new()).is_err());
    }

    #[test]
    fn checkout_writes_exactly_the_commit_s_tree() {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("r.git");
        let c = create(&bare, "main", &source(dir.path()), "b", "o", &overlay()).unwrap();
        let dest = dir.path().join("out");
        std::fs::create_dir_all(dest.join("stale/dir")).unwrap();
        std::fs::write(dest.join("stale.yaml"), "old").unwrap();
        checkout(&bare, &c.overlay, &dest).unwrap();
        let mut found: Vec<String> = walkdir::WalkDir::new(&dest)
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().strip_prefix(&dest).unwrap().to_string_lossy().into_owned())
            .collect();
        found.sort();
        assert_eq!(found, files(&bare, &c.overlay));
        assert_eq!(std::fs::read_to_string(dest.join("kubernetes/flux/cluster.yaml")).unwrap(), "kind: Kustomization # overlaid\n");
        checkout(&bare, &c.base, &dest.join("fresh/base")).unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("fresh/base/README.md")).unwrap(), "readme\n");
        assert!(checkout(&bare, "nope", &dest).is_err());
    }
}
