//! The simulation's GitHub over SSH: the Git server the real Flux source-controller
//! fetches `ssh://git@github.com/<owner>/<repo>` from.
//!
//! `flux bootstrap` leaves the clusters a Secret `flux-system` with a deploy key
//! (`identity`, `identity.pub`) and GitHub's host key (`known_hosts`); source-controller
//! (go-git) dials `github.com:22`, checks the host key, authenticates as user `git` with
//! the deploy key and runs `git-upload-pack '<owner>/<repo>'`. [`Keys`] holds both keys
//! as files, so the Secret the simulation writes and the server it runs agree, and
//! [`serve`] answers that exchange with Git's own `git upload-pack` on the bare
//! repositories under a root directory (the simulation routes `github.com` to its port).
//!
//! Access is decided per authentication attempt by [`Keys::authorized_keys`], so a
//! scenario revokes the deploy key by editing that file, as removing a deploy key on
//! GitHub does. The server is read-only: a push is refused, as GitHub refuses it for a
//! read-only deploy key.
//!
//! The SSH protocol is the `russh` crate's server; the server's messages to the client
//! (refusals) go to the client's stderr as SSH extended data, with exit status 1.

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::authorized_keys::Entry;
use russh::keys::{Algorithm, PrivateKey, PublicKey};
use russh::server::{Auth, ChannelOpenHandle, Config, Handler, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelMsg, ChannelReadHalf, ChannelWriteHalf, MethodKind, MethodSet};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::process::{ChildStdin, Command};

/// The only user the server accepts, as on GitHub.
pub const USER: &str = "git";
/// Refusal of `git-receive-pack`.
pub const PUSH_REFUSED: &str = "pushing is not possible: this is the simulation's read-only Git server";
/// File names under [`Keys::dir`].
const HOST_KEY: &str = "ssh_host_ed25519_key";
const DEPLOY_KEY: &str = "deploy_key";
const DEPLOY_KEY_PUB: &str = "deploy_key.pub";
const AUTHORIZED_KEYS: &str = "authorized_keys";

/// The server's host key and the deploy key the clusters authenticate with, as files under `dir`
/// (`ssh_host_ed25519_key`, `deploy_key`, `deploy_key.pub`, `authorized_keys` holding the deploy key's public line), generated once (ed25519) and reused.
///
/// Reuse keeps the Secret written into a cluster valid across runs of the server.
/// `authorized_keys` is written only when the deploy key is generated: a revocation
/// (the line or the file removed) survives [`Keys::ensure`].
#[derive(Debug, Clone)]
pub struct Keys {
    pub dir: PathBuf,
}

impl Keys {
    /// Creates `dir` and the missing keys in it (each private key written whole or not
    /// at all, mode 0600), or reuses those already there.
    pub fn ensure(dir: &Path) -> anyhow::Result<Keys> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let keys = Keys { dir: dir.to_path_buf() };
        let host = keys.dir.join(HOST_KEY);
        if !host.exists() {
            write_private(&host, &generate()?)?;
        }
        let deploy = keys.dir.join(DEPLOY_KEY);
        if !deploy.exists() {
            let key = generate()?;
            // authorized_keys first: the private key's presence marks a finished generation.
            write_file(&keys.authorized_keys(), public_line(key.public_key())?.as_bytes(), 0o600)?;
            write_private(&deploy, &key)?;
        }
        let public = keys.dir.join(DEPLOY_KEY_PUB);
        if !public.exists() {
            write_file(&public, keys.identity_pub()?.as_bytes(), 0o644)?;
        }
        Ok(keys)
    }

    /// OpenSSH private key text of the deploy key (the Secret's `identity`).
    pub fn identity(&self) -> anyhow::Result<String> {
        let path = self.dir.join(DEPLOY_KEY);
        fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }

    /// `ssh-ed25519 AAAA... ` line of the deploy key (`identity.pub`), newline-terminated.
    pub fn identity_pub(&self) -> anyhow::Result<String> {
        public_line(read_private(&self.dir.join(DEPLOY_KEY))?.public_key())
    }

    /// known_hosts line for `host` with the server's host key, e.g. `github.com ssh-ed25519 AAAA...` (the Secret's `known_hosts`),
    /// newline-terminated. For a port other than 22 OpenSSH looks hosts up as `[host]:port`.
    pub fn known_hosts(&self, host: &str) -> anyhow::Result<String> {
        if host.is_empty() || host.contains(char::is_whitespace) {
            bail!("known_hosts host pattern {host:?} is empty or has whitespace");
        }
        Ok(format!("{host} {}", public_line(self.host_key()?.public_key())?))
    }

    /// Path of authorized_keys: removing the deploy key's line from it (or the file) revokes access at once (read on every authentication).
    pub fn authorized_keys(&self) -> PathBuf {
        self.dir.join(AUTHORIZED_KEYS)
    }

    fn host_key(&self) -> anyhow::Result<PrivateKey> {
        read_private(&self.dir.join(HOST_KEY))
    }
}

fn generate() -> anyhow::Result<PrivateKey> {
    PrivateKey::random(&mut russh::keys::key::safe_rng(), Algorithm::Ed25519).context("generating an ed25519 key")
}

/// `<algorithm> <base64>\n`, without a comment.
fn public_line(key: &PublicKey) -> anyhow::Result<String> {
    let mut key = key.clone();
    key.set_comment("");
    Ok(format!("{}\n", key.to_openssh().context("encoding a public key")?))
}

fn read_private(path: &Path) -> anyhow::Result<PrivateKey> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    PrivateKey::from_openssh(text).with_context(|| format!("parsing the OpenSSH private key {}", path.display()))
}

fn write_private(path: &Path, key: &PrivateKey) -> anyhow::Result<()> {
    let text = key.to_openssh(LineEnding::LF).context("encoding a private key")?;
    write_file(path, text.as_bytes(), 0o600)
}

/// Writes `path` through a temporary file and a rename, so it exists whole or not at all.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(contents).and_then(|()| f.sync_all()).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// Serves the bare repositories under `root` as GitHub does over SSH: user `git`, public-key authentication against `keys.authorized_keys()` (read per attempt; no password/none auth), exec request `git-upload-pack '<path>'` (path with or without leading '/', with or without quotes, with or without the `.git` suffix of the bare repository directory; never outside `root`, reject `..`) runs `git upload-pack <abs path>` and pipes the channel to its stdin/stdout (stderr as extended data), sends the exit status, EOF and close. `git-receive-pack` and anything else: a message on stderr ("pushing is not possible: this is the simulation's read-only Git server" or "unknown command") and exit status 1. Each connection in its own task; a failing connection never stops the server.
///
/// Returns only when it cannot start (host key unreadable, `root` missing); a failing
/// `accept` is reported on stderr and retried.
pub async fn serve(listener: TcpListener, root: PathBuf, keys: &Keys) -> anyhow::Result<()> {
    let root = Arc::new(root.canonicalize().with_context(|| format!("Git repository root {}", root.display()))?);
    let authorized = Arc::new(keys.authorized_keys());
    let config = Arc::new(Config {
        keys: vec![keys.host_key()?],
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        // OpenSSH probes with "none" first; only real rejections are delayed.
        auth_rejection_time_initial: Some(Duration::ZERO),
        ..Config::default()
    });
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("git ssh server: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // upload-pack's exchange is many small messages: no Nagle delays.
        let _ = stream.set_nodelay(true);
        let handler = Connection { root: root.clone(), authorized: authorized.clone(), channels: HashMap::new(), protocol: HashMap::new() };
        let config = config.clone();
        tokio::spawn(async move {
            let result = match russh::server::run_stream(config, stream, handler).await {
                Ok(session) => session.await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) | Err(russh::Error::Disconnect | russh::Error::HUP | russh::Error::IO(_)) => {}
                Err(e) => eprintln!("git ssh server: connection from {peer}: {e}"),
            }
        });
    }
}

/// One client connection.
struct Connection {
    root: Arc<PathBuf>,
    authorized: Arc<PathBuf>,
    /// Session channels opened and not yet given to an exec request.
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// `GIT_PROTOCOL` the client asked for per channel (`version=2`), passed to upload-pack.
    protocol: HashMap<ChannelId, String>,
}

impl Connection {
    /// Whether `user` is `git` and `key` is a line of authorized_keys right now.
    async fn check(&self, user: &str, key: &PublicKey) -> Auth {
        if user != USER {
            return Auth::reject();
        }
        let Ok(text) = tokio::fs::read_to_string(&*self.authorized).await else { return Auth::reject() };
        let listed = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.parse::<Entry>().ok())
            .any(|e| e.public_key().key_data() == key.key_data());
        if listed { Auth::Accept } else { Auth::reject() }
    }
}

impl Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey_offered(&mut self, user: &str, offer: PublicKeyOffer<'_>) -> Result<Auth, Self::Error> {
        Ok(self.check(user, offer.public_key).await)
    }

    async fn auth_publickey(&mut self, user: &str, key: VerifiedPublicKey<'_>) -> Result<Auth, Self::Error> {
        Ok(self.check(user, key.public_key).await)
    }

    async fn channel_open_session(&mut self, channel: Channel<Msg>, reply: ChannelOpenHandle, _: &mut Session) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn env_request(&mut self, channel: ChannelId, name: &str, value: &str, session: &mut Session) -> Result<(), Self::Error> {
        let valid = !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric() || b":=._-".contains(&b));
        if name == "GIT_PROTOCOL" && valid {
            self.protocol.insert(channel, value.to_string());
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }

    async fn exec_request(&mut self, channel: ChannelId, command: &[u8], session: &mut Session) -> Result<(), Self::Error> {
        let Some(chan) = self.channels.remove(&channel) else { return session.channel_failure(channel) };
        session.channel_success(channel)?;
        let job = job(&self.root, command);
        let protocol = self.protocol.remove(&channel);
        tokio::spawn(run(chan, job, protocol));
        Ok(())
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn subsystem_request(&mut self, channel: ChannelId, _: &str, session: &mut Session) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn channel_close(&mut self, channel: ChannelId, _: &mut Session) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        self.protocol.remove(&channel);
        Ok(())
    }
}

/// What an exec request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Job {
    /// `git upload-pack` on this bare repository (canonical, under the root).
    UploadPack(PathBuf),
    /// A message for the client's stderr, then exit status 1.
    Refuse(String),
}

fn job(root: &Path, command: &[u8]) -> Job {
    let Ok(command) = std::str::from_utf8(command) else { return Job::Refuse("unknown command\n".into()) };
    let (verb, arg) = command.trim().split_once(char::is_whitespace).unwrap_or((command.trim(), ""));
    match verb {
        "git-upload-pack" => match repository(root, arg) {
            Ok(path) => Job::UploadPack(path),
            Err(message) => Job::Refuse(message),
        },
        "git-receive-pack" => Job::Refuse(format!("{PUSH_REFUSED}\n")),
        _ => Job::Refuse(format!("unknown command: {verb}\n")),
    }
}

/// The bare repository `arg` names under `root` (`root` canonical): `'owner/repo'`,
/// `/owner/repo.git`, ..., or the message refusing it.
fn repository(root: &Path, arg: &str) -> Result<PathBuf, String> {
    let invalid = || format!("ERROR: invalid repository path {arg:?}\n");
    let not_found = || "ERROR: Repository not found.\n".to_string();
    let arg = arg.trim();
    let unquoted = ['\'', '"']
        .iter()
        .find_map(|q| arg.strip_prefix(*q).and_then(|a| a.strip_suffix(*q)))
        .unwrap_or(arg);
    let relative = unquoted.trim_start_matches('/');
    if relative.is_empty() || relative.contains(['\'', '"', '\\', '\0']) || relative.chars().any(char::is_whitespace) {
        return Err(invalid());
    }
    let mut path = root.to_path_buf();
    for part in relative.split('/') {
        // `..`, `.`, `~user` and empty parts name nothing GitHub serves.
        if matches!(Path::new(part).components().next(), Some(Component::ParentDir | Component::CurDir) | None) || part.starts_with('~') {
            return Err(invalid());
        }
        path.push(part);
    }
    let alternative = match relative.strip_suffix(".git") {
        Some(stem) => root.join(stem),
        None => root.join(format!("{relative}.git")),
    };
    let found = [path, alternative].into_iter().find(|p| p.is_dir()).ok_or_else(not_found)?;
    // A symbolic link must not lead out of the root either.
    let found = found.canonicalize().map_err(|_| not_found())?;
    if !found.starts_with(root) || found == root {
        return Err(invalid());
    }
    Ok(found)
}

/// How one exec channel ended.
enum Outcome {
    /// The command ran (or was refused) and exited with this status.
    Exited(u32),
    /// The client closed the channel or the connection first: nothing more to send.
    Gone,
}

/// Runs `job` on `channel`, then sends the exit status, EOF and close.
async fn run(channel: Channel<Msg>, job: Job, protocol: Option<String>) {
    let (mut rx, tx) = channel.split();
    let outcome = match job {
        Job::Refuse(message) => match tx.extended_data_bytes(1, message.into_bytes()).await {
            Ok(()) => Outcome::Exited(1),
            Err(_) => Outcome::Gone,
        },
        Job::UploadPack(path) => match upload_pack(&mut rx, &tx, &path, protocol).await {
            Ok(outcome) => outcome,
            Err(e) => {
                let _ = tx.extended_data_bytes(1, format!("ERROR: git upload-pack: {e:#}\n").into_bytes()).await;
                Outcome::Exited(1)
            }
        },
    };
    if let Outcome::Exited(status) = outcome {
        let _ = tx.exit_status(status).await;
        let _ = tx.eof().await;
        let _ = tx.close().await;
    }
}

/// Runs `git upload-pack` on `repo` with the channel as its stdin and stdout (stderr as
/// extended data 1). Output is sent as it comes: the protocol is a conversation.
async fn upload_pack(rx: &mut ChannelReadHalf, tx: &ChannelWriteHalf<Msg>, repo: &Path, protocol: Option<String>) -> anyhow::Result<Outcome> {
    let mut command = Command::new("git");
    command
        .args(["upload-pack", "--strict"])
        .arg(repo)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Dropped when the client goes away mid-fetch: the process goes with it.
        .kill_on_drop(true);
    if let Some(protocol) = protocol {
        command.env("GIT_PROTOCOL", protocol);
    }
    let mut child = command.spawn().context("starting git")?;
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let (Some(stdin), Some(stdout), Some(stderr)) = (stdin, stdout, stderr) else { bail!("git's pipes are missing") };

    let input = forward_input(rx, stdin);
    let output = async {
        let (out, err) = tokio::join!(forward_output(stdout, tx, None), forward_output(stderr, tx, Some(1)));
        out.and(err)?;
        anyhow::Ok(child.wait().await?)
    };
    tokio::select! {
        () = input => Ok(Outcome::Gone),
        status = output => match status {
            Ok(status) => Ok(Outcome::Exited(status.code().map_or(255, |c| c as u32))),
            // The channel refused our data: the client is gone.
            Err(e) if e.downcast_ref::<russh::Error>().is_some() => Ok(Outcome::Gone),
            Err(e) => Err(e),
        },
    }
}

/// Copies the channel's data to `stdin` and closes it at the client's EOF; returns when
/// the client closes the channel or the connection ends (after EOF it keeps waiting for
/// that, while upload-pack finishes).
async fn forward_input(rx: &mut ChannelReadHalf, stdin: ChildStdin) {
    let mut stdin = Some(stdin);
    loop {
        match rx.wait().await {
            Some(ChannelMsg::Data { data }) => {
                if let Some(pipe) = stdin.as_mut() {
                    // upload-pack stopped reading (it exited): drop what follows.
                    if pipe.write_all(&data).await.is_err() {
                        stdin = None;
                    }
                }
            }
            Some(ChannelMsg::Eof) => stdin = None,
            Some(ChannelMsg::Close) | None => return,
            Some(_) => {}
        }
    }
}

/// Sends everything `pipe` yields to the channel as soon as it is read, as data
/// (`ext` none) or extended data.
async fn forward_output(mut pipe: impl AsyncRead + Unpin, tx: &ChannelWriteHalf<Msg>, ext: Option<u32>) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = pipe.read(&mut buf).await.context("reading git's output")?;
        if n == 0 {
            return Ok(());
        }
        let chunk = buf[..n].to_vec();
        match ext {
            None => tx.data_bytes(chunk).await?,
            Some(ext) => tx.extended_data_bytes(ext, chunk).await?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Output;

    /// Environment of every `git` the tests run: no user or system configuration.
    const GIT_ENV: [(&str, &str); 3] = [("GIT_CONFIG_NOSYSTEM", "1"), ("GIT_CONFIG_GLOBAL", "/dev/null"), ("GIT_TERMINAL_PROMPT", "0")];

    fn git(dir: &Path, args: &[&str]) {
        let out = std::process::Command::new("git").current_dir(dir).envs(GIT_ENV).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// A served root with the bare repository `owner/repo.git` (branch `main`, file
    /// `README.md`), a repository outside the root, keys, and a running server.
    struct Fixture {
        dir: tempfile::TempDir,
        keys: Keys,
        port: u16,
        known_hosts: PathBuf,
    }

    impl Fixture {
        async fn start() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root");
            fs::create_dir_all(root.join("owner")).unwrap();
            let work = dir.path().join("work");
            fs::create_dir_all(&work).unwrap();
            git(&work, &["init", "-q", "-b", "main"]);
            fs::write(work.join("README.md"), "served over ssh\n").unwrap();
            git(&work, &["add", "README.md"]);
            git(&work, &["-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "-m", "first"]);
            for bare in [root.join("owner/repo.git"), dir.path().join("outside.git")] {
                git(dir.path(), &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()]);
                git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
            }
            let keys = Keys::ensure(&dir.path().join("keys")).unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let served = keys.clone();
            tokio::spawn(async move { serve(listener, root, &served).await.unwrap() });
            let known_hosts = dir.path().join("known_hosts");
            fs::write(&known_hosts, keys.known_hosts(&format!("[127.0.0.1]:{port}")).unwrap()).unwrap();
            Fixture { dir, keys, port, known_hosts }
        }

        fn ssh_args(&self, known_hosts: &Path) -> String {
            format!(
                "-F /dev/null -p {} -i {} -o IdentitiesOnly=yes -o IdentityAgent=none -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes -o LogLevel=ERROR",
                self.port,
                self.keys.dir.join(DEPLOY_KEY).display(),
                known_hosts.display()
            )
        }

        /// `git args...` in the fixture's directory with ssh set up for the server.
        async fn git_ssh(&self, known_hosts: &Path, args: &[&str]) -> Output {
            let mut cmd = Command::new("git");
            cmd.current_dir(self.dir.path())
                .envs(GIT_ENV)
                .env("GIT_SSH_COMMAND", format!("/usr/bin/ssh {}", self.ssh_args(known_hosts)))
                .args(args)
                .stdin(Stdio::null())
                .kill_on_drop(true);
            tokio::time::timeout(Duration::from_secs(60), cmd.output()).await.expect("git timed out").unwrap()
        }

        /// `ssh <user>@127.0.0.1 <remote>` with empty stdin.
        async fn ssh(&self, user: &str, remote: &str) -> Output {
            self.ssh_input(&[], user, remote, b"").await
        }

        /// `ssh <options> <user>@127.0.0.1 <remote>` with `input` as stdin.
        async fn ssh_input(&self, options: &[&str], user: &str, remote: &str, input: &[u8]) -> Output {
            let mut cmd = Command::new("/usr/bin/ssh");
            cmd.args(self.ssh_args(&self.known_hosts).split(' '))
                .args(options)
                .arg(format!("{user}@127.0.0.1"))
                .arg(remote)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            let mut child = cmd.spawn().unwrap();
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input).await.unwrap();
            drop(stdin);
            tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.expect("ssh timed out").unwrap()
        }

        async fn clone(&self, url: &str, dest: &str) -> Output {
            self.git_ssh(&self.known_hosts, &["clone", "-q", url, dest]).await
        }

        fn url(&self, path: &str) -> String {
            format!("ssh://git@127.0.0.1:{}/{path}", self.port)
        }
    }

    fn stderr(out: &Output) -> String {
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn clone_and_fetch_over_ssh() {
        let f = Fixture::start().await;
        let out = f.clone(&f.url("owner/repo"), "a").await;
        assert!(out.status.success(), "clone: {}", stderr(&out));
        assert_eq!(fs::read_to_string(f.dir.path().join("a/README.md")).unwrap(), "served over ssh\n");

        // scp form: no leading '/', `.git` suffix; and the original Git protocol (v0).
        let scp = "git@127.0.0.1:owner/repo.git";
        let out = f.git_ssh(&f.known_hosts, &["-c", "protocol.version=0", "clone", "-q", scp, "b"]).await;
        assert!(out.status.success(), "clone v0: {}", stderr(&out));
        assert!(f.dir.path().join("b/README.md").exists());

        // An incremental fetch negotiates (haves/acks) before the pack.
        let work = f.dir.path().join("work");
        fs::write(work.join("second.txt"), "2\n").unwrap();
        git(&work, &["add", "second.txt"]);
        git(&work, &["-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "-m", "second"]);
        git(&work, &["push", "-q", f.dir.path().join("root/owner/repo.git").to_str().unwrap(), "main"]);
        for (clone, version) in [("a", "2"), ("b", "0")] {
            let out = f.git_ssh(&f.known_hosts, &["-C", clone, "-c", &format!("protocol.version={version}"), "pull", "-q", "--ff-only"]).await;
            assert!(out.status.success(), "pull v{version}: {}", stderr(&out));
        }
        assert_eq!(fs::read_to_string(f.dir.path().join("b/second.txt")).unwrap(), "2\n");
        assert_eq!(fs::read_to_string(f.dir.path().join("a/second.txt")).unwrap(), "2\n");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn upload_pack_follows_stdin_and_reports_stderr_and_status() {
        let f = Fixture::start().await;
        // After the ref advertisement upload-pack waits for the client: a flush packet
        // (no wants) and EOF end it cleanly, unquoted path and all.
        let out = f.ssh_input(&[], "git", "git-upload-pack /owner/repo", b"0000").await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("refs/heads/main"), "advertisement: {stdout:?}; stderr: {}", stderr(&out));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        // GIT_PROTOCOL from the client's environment selects protocol v2, as on GitHub.
        let out = f.ssh_input(&["-o", "SetEnv=GIT_PROTOCOL=version=2"], "git", "git-upload-pack '/owner/repo.git'", b"0000").await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with("000eversion 2\n") && stdout.contains("ls-refs"), "v2 capabilities: {stdout:?}; stderr: {}", stderr(&out));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        // EOF without a flush: upload-pack's complaint arrives on stderr, its status as ours.
        let out = f.ssh("git", "git-upload-pack /owner/repo").await;
        assert!(String::from_utf8_lossy(&out.stdout).contains("refs/heads/main"));
        assert!(stderr(&out).contains("hung up unexpectedly"), "{}", stderr(&out));
        assert_eq!(out.status.code(), Some(128), "{}", stderr(&out));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn revoked_key_is_refused_at_once() {
        let f = Fixture::start().await;
        let authorized = f.keys.authorized_keys();
        let line = fs::read_to_string(&authorized).unwrap();
        assert_eq!(line, f.keys.identity_pub().unwrap());

        fs::write(&authorized, "# revoked\n").unwrap();
        let out = f.clone(&f.url("owner/repo"), "revoked").await;
        assert!(!out.status.success());
        assert!(stderr(&out).contains("Permission denied"), "{}", stderr(&out));

        fs::remove_file(&authorized).unwrap();
        let out = f.clone(&f.url("owner/repo"), "revoked").await;
        assert!(stderr(&out).contains("Permission denied"), "{}", stderr(&out));

        // Restored: the same server accepts the key again.
        fs::write(&authorized, &line).unwrap();
        let out = f.clone(&f.url("owner/repo"), "restored").await;
        assert!(out.status.success(), "{}", stderr(&out));

        // Only user `git`.
        let out = f.ssh("alice", "git-upload-pack 'owner/repo'").await;
        assert!(stderr(&out).contains("Permission denied"), "{}", stderr(&out));
        // Keys::ensure keeps keys and the revocation state it finds.
        let again = Keys::ensure(&f.keys.dir).unwrap();
        assert_eq!(again.identity().unwrap(), f.keys.identity().unwrap());
        assert_eq!(again.known_hosts("h").unwrap(), f.keys.known_hosts("h").unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn push_and_other_commands_are_refused() {
        let f = Fixture::start().await;
        let out = f.clone(&f.url("owner/repo"), "c").await;
        assert!(out.status.success(), "{}", stderr(&out));
        let work = f.dir.path().join("c");
        git(&work, &["-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "--allow-empty", "-m", "x"]);
        let out = f.git_ssh(&f.known_hosts, &["-C", "c", "push", "-q", "origin", "main"]).await;
        assert!(!out.status.success());
        assert!(stderr(&out).contains(PUSH_REFUSED), "{}", stderr(&out));

        let out = f.ssh("git", "git-receive-pack 'owner/repo'").await;
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains(PUSH_REFUSED), "{}", stderr(&out));
        let out = f.ssh("git", "cat /etc/passwd").await;
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("unknown command"), "{}", stderr(&out));
        assert!(out.stdout.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn paths_stay_under_the_root() {
        let f = Fixture::start().await;
        // Each names an existing repository if `..` were followed.
        for path in ["owner/../owner/repo", "../outside", "owner/../../outside.git"] {
            let out = f.ssh("git", &format!("git-upload-pack '{path}'")).await;
            assert_eq!(out.status.code(), Some(1), "{path}");
            assert!(stderr(&out).contains("invalid repository path"), "{path}: {}", stderr(&out));
            assert!(out.stdout.is_empty(), "{path}");
        }
        let out = f.clone(&f.url("owner/../owner/repo"), "dots").await;
        assert!(!out.status.success());
        let out = f.ssh("git", "git-upload-pack 'owner/missing'").await;
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("Repository not found"), "{}", stderr(&out));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn host_key_is_checked() {
        let f = Fixture::start().await;
        let other = Keys::ensure(&f.dir.path().join("other-keys")).unwrap();
        let wrong = f.dir.path().join("wrong_known_hosts");
        fs::write(&wrong, other.known_hosts(&format!("[127.0.0.1]:{}", f.port)).unwrap()).unwrap();
        let out = f.git_ssh(&wrong, &["clone", "-q", &f.url("owner/repo"), "wrong"]).await;
        assert!(!out.status.success());
        assert!(stderr(&out).contains("Host key verification failed"), "{}", stderr(&out));
        assert!(!f.dir.path().join("wrong/README.md").exists());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broken_connection_does_not_stop_the_server() {
        let f = Fixture::start().await;
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", f.port)).await.unwrap();
        s.write_all(b"SSH-2.0-garbage\r\n\x00\x00\x00\x05nonsense-and-more").await.unwrap();
        drop(s);
        let out = f.clone(&f.url("owner/repo"), "after").await;
        assert!(out.status.success(), "{}", stderr(&out));
    }

    #[test]
    fn keys_have_openssh_formats() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::ensure(dir.path()).unwrap();
        assert!(keys.identity().unwrap().starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        let public = keys.identity_pub().unwrap();
        assert!(public.starts_with("ssh-ed25519 AAAA") && public.ends_with('\n') && public.trim_end().split(' ').count() == 2, "{public:?}");
        assert_eq!(fs::read_to_string(dir.path().join(DEPLOY_KEY_PUB)).unwrap(), public);
        let known = keys.known_hosts("github.com").unwrap();
        assert!(known.starts_with("github.com ssh-ed25519 AAAA"), "{known:?}");
        assert_ne!(known.split(' ').nth(1), public.split(' ').nth(1));
        use std::os::unix::fs::PermissionsExt as _;
        for private in [HOST_KEY, DEPLOY_KEY] {
            assert_eq!(fs::metadata(dir.path().join(private)).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // ssh-keygen reads what we wrote and derives the same public key.
        let out = std::process::Command::new("ssh-keygen").arg("-y").arg("-f").arg(dir.path().join(DEPLOY_KEY)).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), public.trim_end());
    }

    #[test]
    fn repository_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir_all(root.join("o/r.git")).unwrap();
        fs::create_dir_all(root.join("o/plain")).unwrap();
        let r = root.join("o/r.git");
        for arg in ["'/o/r'", "'o/r.git'", "/o/r", "o/r.git", "\"o/r\"", "//o/r"] {
            assert_eq!(repository(&root, arg), Ok(r.clone()), "{arg}");
        }
        assert_eq!(repository(&root, "'o/plain.git'"), Ok(root.join("o/plain")));
        for arg in ["", "'/'", "o/../o/r", "./o/r", "o//r", "~o/r", "'o/r", "o/r'\\''x", "o /r"] {
            assert!(repository(&root, arg).is_err(), "{arg}");
        }
        std::os::unix::fs::symlink("/", root.join("o/escape")).unwrap();
        assert!(repository(&root, "o/escape").unwrap_err().contains("invalid"));
        assert_eq!(job(&root, b"git-receive-pack 'o/r'"), Job::Refuse(format!("{PUSH_REFUSED}\n")));
        assert_eq!(job(&root, b"git-upload-pack 'o/r'"), Job::UploadPack(r));
        assert!(matches!(job(&root, b"sh -c id"), Job::Refuse(m) if m.starts_with("unknown command")));
    }
}
