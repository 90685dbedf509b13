//! Bad input, one table: the real binary against broken kubeconfigs, planning documents,
//! repositories and command lines. Each row states the exit code (2 for a usage or
//! configuration error; 1 when the input is content under test and the problem is reported
//! as a finding or an Error unit) and a piece of the one clear line expected on stderr.
//! Every row also asserts: no panic, no Debug dump, a short stderr for exit 2, and an end
//! within the time limit (a process still running then is killed and the row fails).
//!
//! Live rows talk only to servers this test starts on 127.0.0.1 (or to a closed port there);
//! nothing here needs the simulation.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;

const BIN: &str = env!("CARGO_BIN_EXE_platform-acceptance");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Longest a row may take before it counts as a hang.
const LIMIT: Duration = Duration::from_secs(60);
/// Most stderr lines a usage error may print (clap's error + usage + hint).
const SHORT: usize = 6;

struct Case {
    name: &'static str,
    args: Vec<String>,
    code: i32,
    /// Expected (case-insensitive) on stderr.
    stderr: &'static str,
}

fn case(name: &'static str, args: &[&str], code: i32, stderr: &'static str) -> Case {
    Case { name, args: args.iter().map(|s| s.to_string()).collect(), code, stderr }
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs the binary with a clean environment (no KUBECONFIG, HOME in the scratch dir) and kills it at [`LIMIT`].
fn run(args: &[String], home: &Path) -> Ran {
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(ROOT)
        .env_remove("KUBECONFIG")
        .env("HOME", home)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = vec![];
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = vec![];
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran { code, stdout: out_reader.join().unwrap(), stderr: err_reader.join().unwrap(), took: start.elapsed() }
}

/// What is wrong with one row's run, if anything.
fn judge(c: &Case, r: &Ran) -> Vec<String> {
    let mut bad = vec![];
    let both = format!("{}\n{}", r.stdout, r.stderr);
    match r.code {
        None => bad.push(format!("still running after {LIMIT:?} (killed)")),
        Some(code) if code != c.code => bad.push(format!("exit {code}, expected {}", c.code)),
        Some(_) => {}
    }
    if both.contains("panicked at") || both.contains("RUST_BACKTRACE") || both.contains("stack backtrace") {
        bad.push("panicked".into());
    }
    // A Debug dump of a library error: struct syntax such as `Error { kind: ..`, `Some(`, `source: `.
    for marker in ["{ kind:", "kind: ", "source: Some(", "Custom {", "Os { code", "ErrorKind", "inner: "] {
        if r.stderr.contains(marker) {
            bad.push(format!("a Debug dump on stderr ({marker:?})"));
        }
    }
    if !r.stderr.to_lowercase().contains(&c.stderr.to_lowercase()) {
        bad.push(format!("stderr lacks {:?}", c.stderr));
    }
    let lines = r.stderr.lines().filter(|l| !l.trim().is_empty()).count();
    if c.code == 2 && lines > SHORT {
        bad.push(format!("{lines} stderr lines for a usage error (at most {SHORT})"));
    }
    if r.stderr.lines().any(|l| l.len() > 2000) {
        bad.push("a stderr line longer than 2000 bytes".into());
    }
    bad
}

// ---------------------------------------------------------------------------
// Fake API servers on 127.0.0.1

/// Answers every HTTP request with `status` and a Kubernetes `Status` body.
fn http_api(status: u16, reason: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for sock in l.incoming() {
            let Ok(mut sock) = sock else { continue };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                let mut seen = vec![];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let body = format!(
                    r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"{} (fake API server)","reason":"{reason}","code":{status}}}"#,
                    reason.to_lowercase()
                );
                let resp = format!("HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                let _ = sock.write_all(resp.as_bytes());
            });
        }
    });
    format!("http://{addr}")
}

/// A port on 127.0.0.1 nothing listens on (bound, then released).
fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("https://{addr}")
}

struct Pki {
    ca_pem: String,
    ca: rcgen::CertificateParams,
    ca_key: rcgen::KeyPair,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "bad-input test CA");
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    Pki { ca_pem, ca, ca_key }
}

impl Pki {
    /// A certificate for `names` signed by this CA, valid in `[from, to]` (years).
    fn issue(&self, names: &[&str], from: i32, to: i32) -> (rcgen::Certificate, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, "bad-input");
        p.not_before = rcgen::date_time_ymd(from, 1, 1);
        p.not_after = rcgen::date_time_ymd(to, 1, 1);
        let issuer = rcgen::Issuer::from_params(&self.ca, &self.ca_key);
        (p.signed_by(&key, &issuer).unwrap(), key)
    }
}

/// A TLS server on 127.0.0.1 presenting `cert`; it never gets as far as HTTP in these rows.
fn tls_api(cert: &rcgen::Certificate, key: &rcgen::KeyPair) -> String {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(cert.der().to_vec())], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
        .unwrap();
    let config = Arc::new(config);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for sock in l.incoming() {
            let Ok(sock) = sock else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, sock);
                let mut buf = [0u8; 4096];
                while let Ok(n) = tls.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    format!("https://{addr}")
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A kubeconfig whose contexts `infra` and `apps` both use `cluster` (YAML mapping body) and `user`.
fn kubeconfig(dir: &Path, name: &str, cluster: &str, user: &str) -> String {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n{cluster}\nusers:\n- name: u\n  user:\n{user}\ncontexts:\n- name: infra\n  context: {{cluster: c, user: u}}\n- name: apps\n  context: {{cluster: c, user: u}}\ncurrent-context: infra\n"
    );
    write(dir, name, text.as_bytes())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

/// A copy of fixtures/gitops to break.
fn gitops_copy(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    let status = Command::new("cp").args(["-r", &format!("{ROOT}/fixtures/gitops"), &to.display().to_string()]).status().unwrap();
    assert!(status.success());
    to
}

/// Lists `file` in the resources of the repository's `kubernetes/bases/cilium` kustomization,
/// so every cluster's rendering reaches it.
fn reached(repo: &Path, file: &str) {
    let k = repo.join("kubernetes/bases/cilium/kustomization.yaml");
    let text = std::fs::read_to_string(&k).unwrap().replace("resources:\n", &format!("resources:\n  - {file}\n"));
    std::fs::write(k, text).unwrap();
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn bad_input_is_one_clear_line_never_a_panic_or_a_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let doc = std::fs::read_to_string(format!("{ROOT}/fixtures/multi-cluster-epics.md")).unwrap();
    let gitops = format!("{ROOT}/fixtures/gitops");
    // One cluster-layer criterion of both clusters: the live rows need nothing more.
    let live = ["run", "--repo", &gitops, "--only", "1.3.5", "--progress", "plain", "--timeout", "20s"];
    let live_with = |k: &str| -> Vec<String> { live.iter().map(|s| s.to_string()).chain(["--kubeconfig".to_string(), k.to_string()]).collect() };

    // --- kubeconfig
    let pki = pki();
    let other = self::pki();
    let (good_cert, good_key) = pki.issue(&["127.0.0.1"], 2020, 2090);
    let (expired_cert, expired_key) = pki.issue(&["127.0.0.1"], 2010, 2011);
    let with_ca = |url: &str, ca: &str| format!("    server: {url}\n    certificate-authority-data: {}", b64(ca));
    let token = "    token: bad-input-token";
    let k_mismatch = kubeconfig(d, "k-mismatch.yaml", &with_ca(&tls_api(&good_cert, &good_key), &other.ca_pem), token);
    let k_expired_server = kubeconfig(d, "k-expired-server.yaml", &with_ca(&tls_api(&expired_cert, &expired_key), &pki.ca_pem), token);
    let (client_cert, client_key) = pki.issue(&["bad-input-user"], 2010, 2011);
    let expired_client = format!("    client-certificate-data: {}\n    client-key-data: {}", b64(&client_cert.pem()), b64(&client_key.serialize_pem()));
    let k_expired_client = kubeconfig(d, "k-expired-client.yaml", &with_ca(&tls_api(&good_cert, &good_key), &pki.ca_pem), &expired_client);
    let k_closed = kubeconfig(d, "k-closed.yaml", &format!("    server: {}", closed_port()), token);
    let k_401 = kubeconfig(d, "k-401.yaml", &format!("    server: {}", http_api(401, "Unauthorized")), token);
    let k_403 = kubeconfig(d, "k-403.yaml", &format!("    server: {}", http_api(403, "Forbidden")), token);
    let exec = "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: kubelogin-not-installed\n      args: [get-token]\n      interactiveMode: Never";
    let k_exec = kubeconfig(d, "k-exec.yaml", &format!("    server: {}", http_api(403, "Forbidden")), exec);
    let k_missing_cert = kubeconfig(d, "k-missing-cert.yaml", &format!("    server: {}", closed_port()), &format!("    client-certificate: {}/nope.crt\n    client-key: {}/nope.key", p(d), p(d)));
    let k_bad_url = kubeconfig(d, "k-bad-url.yaml", "    server: \"http://[::1\"", token);
    let k_not_yaml = write(d, "k-not-yaml.yaml", b"clusters: [\n  - {name: c\n");
    let k_binary = write(d, "k-binary.yaml", &[0xff, 0xfe, 0x00, 0x01, 0x80, 0x81]);
    let k_no_contexts = write(d, "k-none.yaml", b"apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n");

    // --- planning documents
    let empty = write(d, "empty.md", b"");
    let binary = write(d, "binary.md", &(0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<_>>());
    let nul_text = write(d, "nul.md", "\0\u{1}\u{2} not a plan \u{7f}\0".repeat(100).as_bytes());
    let no_stories = write(d, "no-stories.md", b"# Plan\n\n## EPIC-1: Something\n\n- [ ] a box outside any story\n");
    let story = doc.find("### Story 1.1:").unwrap();
    let next = doc[story + 1..].find("### Story").unwrap() + story + 1;
    let duplicated = format!("{}{}{}", &doc[..next], &doc[story..next], &doc[next..]);
    let dup = write(d, "duplicate.md", duplicated.as_bytes());
    let mermaid = doc.find("```mermaid").unwrap();
    let truncated = write(d, "truncated-mermaid.md", &doc.as_bytes()[..mermaid + 120]);
    let mut huge = doc.clone().into_bytes();
    let filler = "Notes. Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. ".repeat(12) + "\n\n";
    while huge.len() < 50 << 20 {
        huge.extend_from_slice(filler.as_bytes());
    }
    let huge = write(d, "50mb.md", &huge);
    let accents = format!("{doc}\n\n{}\n", "é".repeat(512 * 1024));
    let long_run = write(d, "long-non-ascii-run.md", accents.as_bytes());
    let first_box = doc.find("- [ ] ").unwrap();
    let long_box = format!("{}- [ ] {}\n{}", &doc[..first_box], "é".repeat(256 * 1024), &doc[first_box..]);
    let long_box = write(d, "long-criterion.md", long_box.as_bytes());
    let deep = format!("{doc}\n\n{}x\n", "> ".repeat(100_000));
    let deep_quote = write(d, "deep-quote.md", deep.as_bytes());
    std::fs::create_dir_all(d.join("doc-dir.md")).unwrap();

    // --- repositories
    let loop_repo = gitops_copy(d, "repo-loop");
    std::os::unix::fs::symlink(".", loop_repo.join("kubernetes/bases/loop")).unwrap();
    std::os::unix::fs::symlink("self.yaml", loop_repo.join("kubernetes/bases/self.yaml")).unwrap();
    let fifo_repo = gitops_copy(d, "repo-fifo");
    let fifo = std::ffi::CString::new(p(&fifo_repo.join("kubernetes/bases/cilium/blocked.yaml"))).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    reached(&fifo_repo, "blocked.yaml");
    // chmod 000: only a process without CAP_DAC_OVERRIDE is refused; as root the file is
    // read like any other and the row checks exactly that.
    let mode_repo = gitops_copy(d, "repo-mode-000");
    std::fs::set_permissions(mode_repo.join(cilium_hr()), std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let dangling_repo = gitops_copy(d, "repo-dangling");
    std::os::unix::fs::symlink("/nonexistent/target.yaml", dangling_repo.join("kubernetes/bases/cilium/dangling.yaml")).unwrap();
    let latin1_repo = gitops_copy(d, "repo-latin1");
    let cilium = cilium_hr();
    let mut bytes = std::fs::read(latin1_repo.join(cilium)).unwrap();
    bytes.extend_from_slice(b"\n# caf\xe9\n");
    std::fs::write(latin1_repo.join(cilium), bytes).unwrap();
    let big_repo = gitops_copy(d, "repo-100mb");
    {
        let mut f = std::fs::File::create(big_repo.join("kubernetes/bases/cilium/huge.yaml")).unwrap();
        let line = format!("# {}\n", "x".repeat(1022));
        for _ in 0..(100 << 10) {
            f.write_all(line.as_bytes()).unwrap();
        }
    }
    reached(&big_repo, "huge.yaml");
    let bomb_repo = gitops_copy(d, "repo-yaml-bomb");
    let mut bomb = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb, namespace: default}\ndata:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        bomb.push_str(&format!("  a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n", p = i - 1));
    }
    write(&bomb_repo, "kubernetes/bases/cilium/bomb.yaml", bomb.as_bytes());
    reached(&bomb_repo, "bomb.yaml");
    let cycle_repo = gitops_copy(d, "repo-cycle");
    let cyclic = cyclic_depends_on(&cycle_repo.join("kubernetes/clusters/infra"));
    let no_clusters = d.join("repo-no-clusters");
    std::fs::create_dir_all(no_clusters.join("kubernetes/bases")).unwrap();
    let not_dir = write(d, "repo-file", b"not a directory");
    let existing_dir = d.join("existing-dir");
    std::fs::create_dir_all(&existing_dir).unwrap();
    let plain_file = write(d, "plain-file", b"x");

    let run_repo = |repo: &Path| -> Vec<String> { ["run", "--repo", &p(repo), "--only", "layer=repo", "--skip", "dod", "--progress", "plain"].iter().map(|s| s.to_string()).collect() };

    let mut cases = vec![
        // kubeconfig
        case("kubeconfig: missing file", &["run", "--repo", &gitops, "--kubeconfig", &format!("{}/nope.yaml", p(d))], 2, "cannot read kubeconfig"),
        case("kubeconfig: not YAML", &["run", "--repo", &gitops, "--kubeconfig", &k_not_yaml], 2, "kubeconfig"),
        case("kubeconfig: binary", &["run", "--repo", &gitops, "--kubeconfig", &k_binary], 2, "kubeconfig"),
        case("kubeconfig: no contexts", &["run", "--repo", &gitops, "--kubeconfig", &k_no_contexts], 2, "has no context"),
        case("kubeconfig: unknown context", &["run", "--repo", &gitops, "--kubeconfig", &k_closed, "--context", "infra=nope"], 2, "has no context \"nope\""),
        case("kubeconfig: --context without CLUSTER=", &["run", "--repo", &gitops, "--kubeconfig", &k_closed, "--context", "apps"], 2, "bad --context"),
        case("kubeconfig: --context of an unknown cluster", &["run", "--repo", &gitops, "--kubeconfig", &k_closed, "--context", "prod=infra"], 2, "prod"),
        case("kubeconfig: server URL malformed", &["run", "--repo", &gitops, "--kubeconfig", &k_bad_url], 2, "context"),
        case("kubeconfig: client certificate file missing", &["run", "--repo", &gitops, "--kubeconfig", &k_missing_cert], 2, "nope.crt"),
        case("kubeconfig: client certificate expired", &["run", "--repo", &gitops, "--kubeconfig", &k_expired_client], 2, "client certificate of user u expired"),
        case("kubeconfig: exec plugin not installed", &["run", "--repo", &gitops, "--kubeconfig", &k_exec], 2, "kubelogin-not-installed"),
        Case { name: "kubeconfig: unreachable server (closed port)", args: live_with(&k_closed), code: 1, stderr: "connection refused" },
        Case { name: "kubeconfig: server certificate from another CA", args: live_with(&k_mismatch), code: 1, stderr: "certificate" },
        Case { name: "kubeconfig: server certificate expired", args: live_with(&k_expired_server), code: 1, stderr: "expired" },
        Case { name: "kubeconfig: token rejected (401)", args: live_with(&k_401), code: 1, stderr: "401" },
        Case { name: "kubeconfig: token without permissions (403)", args: live_with(&k_403), code: 1, stderr: "forbidden" },
        // planning document
        case("doc: missing", &["catalog", "--doc", &format!("{}/nope.md", p(d))], 2, "cannot read planning document"),
        case("doc: a directory", &["catalog", "--doc", &p(&d.join("doc-dir.md"))], 2, "cannot read planning document"),
        case("doc: empty", &["catalog", "--doc", &empty], 2, "has no stories"),
        case("doc: binary", &["catalog", "--doc", &binary], 2, "not UTF-8"),
        case("doc: control characters", &["catalog", "--doc", &nul_text], 2, "has no stories"),
        case("doc: no stories", &["run", "--doc", &no_stories, "--repo", &gitops], 2, "has no stories"),
        case("doc: duplicate story ids", &["catalog", "--doc", &dup], 2, "has story 1.1 twice"),
        case("doc: truncated mermaid graph", &["run", "--doc", &truncated, "--repo", &gitops, "--only", "layer=repo", "--progress", "quiet"], 0, "dependency graph"),
        case("doc: 50 MB", &["run", "--doc", &huge, "--repo", &gitops, "--only", "layer=repo", "--progress", "quiet"], 0, ""),
        case("doc: 512 Ki non-ASCII characters in one run", &["catalog", "--doc", &long_run, "--format", "json"], 0, ""),
        case("doc: a criterion of 256 Ki non-ASCII characters", &["catalog", "--doc", &long_box, "--format", "json"], 0, ""),
        case("doc: 100 000 nested quotes", &["catalog", "--doc", &deep_quote, "--format", "json"], 0, ""),
        // repository
        case("repo: missing", &["run", "--repo", &format!("{}/nope", p(d))], 2, "not a directory"),
        case("repo: a file", &["run", "--repo", &not_dir], 2, "not a directory"),
        case("repo: no clusters/", &["run", "--repo", &p(&no_clusters)], 2, "clusters"),
        // Not followed (as Flux's generator does not); the link is a base directory no cluster uses.
        Case { name: "repo: symlink loop", args: run_repo(&loop_repo), code: 1, stderr: "kubernetes/bases/loop/: expected rendered into at least one cluster" },
        Case { name: "repo: unreadable file (a FIFO: root reads chmod-000 files)", args: run_repo(&fifo_repo), code: 1, stderr: "\"blocked.yaml\": expected an existing file or directory, observed not a regular file" },
        if root {
            Case { name: "repo: file of mode 000 (read: the test runs as root)", args: run_repo(&mode_repo), code: 0, stderr: "" }
        } else {
            Case { name: "repo: file of mode 000", args: run_repo(&mode_repo), code: 1, stderr: "permission denied" }
        },
        Case { name: "repo: dangling symlink", args: run_repo(&dangling_repo), code: 0, stderr: "" },
        Case { name: "repo: non-UTF-8 file", args: run_repo(&latin1_repo), code: 1, stderr: "helmrelease.yaml" },
        Case { name: "repo: 100 MB file", args: run_repo(&big_repo), code: 1, stderr: "huge.yaml" },
        Case { name: "repo: YAML alias bomb", args: run_repo(&bomb_repo), code: 1, stderr: "bomb.yaml" },
        Case { name: "repo: cyclic Flux dependsOn", args: run_repo(&cycle_repo), code: 1, stderr: cyclic },
        // command line
        case("cli: no command", &[], 2, "a command is required"),
        case("cli: unknown flag", &["run", "--bogus"], 2, "unexpected argument '--bogus'"),
        case("cli: conflicting flags", &["gate", "--base-doc", &empty, "--base", "HEAD"], 2, "cannot be used with"),
        case("cli: --context without --kubeconfig", &["run", "--repo", &gitops, "--context", "infra=x"], 2, "--context needs --kubeconfig"),
        case("cli: unknown selector", &["run", "--repo", &gitops, "--only", "layer=bogus"], 2, "unknown selector"),
        case("cli: selector of a missing story", &["run", "--repo", &gitops, "--only", "7.9"], 2, "7.9"),
        case("cli: selector of an unknown cluster", &["run", "--repo", &gitops, "--skip", "cluster=prod"], 2, "prod"),
        case("cli: report path under a file", &["run", "--repo", &gitops, "--json", &format!("{plain_file}/report.json")], 2, "plain-file is not a directory"),
        case("cli: report path is a directory", &["run", "--repo", &gitops, "--junit", &p(&existing_dir)], 2, "cannot write"),
        case("cli: zero timeout", &["run", "--repo", &gitops, "--timeout", "0s"], 2, "duration must be positive"),
        case("cli: bad duration", &["run", "--repo", &gitops, "--timeout", "soon"], 2, "invalid duration"),
        case("cli: zero concurrency", &["run", "--repo", &gitops, "--concurrency", "0"], 2, "--concurrency must be at least 1"),
        case("cli: unknown phase", &["run", "--repo", &gitops, "--phase", "later"], 2, "invalid value 'later'"),
        case("cli: sync-doc of a non-JSON report", &["sync-doc", "--report", &empty, "--doc", &format!("{ROOT}/fixtures/multi-cluster-epics.md")], 2, "report"),
    ];
    assert!(cases.len() >= 30);

    // Rows run four at a time; each is judged on its own.
    let home = d.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut failures = vec![];
    let total = cases.len();
    while !cases.is_empty() {
        let batch: Vec<Case> = cases.drain(..cases.len().min(4)).collect();
        let handles: Vec<_> = batch
            .into_iter()
            .map(|c| {
                let home = home.clone();
                std::thread::spawn(move || {
                    let r = run(&c.args, &home);
                    (c, r)
                })
            })
            .collect();
        for h in handles {
            let (c, r) = h.join().unwrap();
            let bad = judge(&c, &r);
            eprintln!("{:<60} exit {:?} in {:>5} ms  {}", c.name, r.code, r.took.as_millis(), if bad.is_empty() { "ok" } else { "FAILED" });
            // BAD_INPUT_SHOW=1: the stderr lines holding the expected text, to read what a user gets.
            if std::env::var_os("BAD_INPUT_SHOW").is_some() {
                let needle = c.stderr.to_lowercase();
                for line in r.stderr.lines().filter(|l| l.to_lowercase().contains(&needle)).take(2) {
                    eprintln!("    {}", line.chars().take(400).collect::<String>());
                }
            }
            if !bad.is_empty() {
                let tail: String = r.stderr.lines().take(12).collect::<Vec<_>>().join("\n    ");
                failures.push(format!("{}: {}\n    stderr:\n    {tail}", c.name, bad.join("; ")));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {total} bad-input rows failed:\n{}", failures.len(), failures.join("\n"));
}

fn cilium_hr() -> &'static str {
    "kubernetes/bases/cilium/helmrelease.yaml"
}

/// Makes the infra cluster's infrastructure Kustomization depend on its workloads
/// Kustomization, which already depends on it; returns what the finding names.
fn cyclic_depends_on(cluster_dir: &Path) -> &'static str {
    let file = cluster_dir.join("infrastructure.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let at = text.find("spec:\n").unwrap() + "spec:\n".len();
    let text = format!("{}  dependsOn:\n    - name: cluster-infra-workloads\n{}", &text[..at], &text[at..]);
    std::fs::write(&file, text).unwrap();
    "dependsOn cycle"
}
