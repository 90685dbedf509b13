//! Nothing leaves the harness that should not: the whole suite runs on the simulation (round
//! trips included) with a planted password in a Secret a check reads and fails on, and
//! - no output (terminal, JUnit, JSON, Markdown) holds any secret value the clusters hold, the
//!   planted one, or the kubeconfig's keys, neither as written nor in base64;
//! - every connection the harness opens (each `connect(2)` of its process and threads,
//!   recorded with strace) goes to loopback — the simulation's forwards into its network
//!   namespace — or to a local socket: nothing dials the site's 10.25.11.x addresses, DNS
//!   servers or anything else on the host's network.

mod support;

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use support::sim::SimFixture;

/// Pieces of a value worth looking for, with where they come from: each token of the value
/// (a whole password, or the keys inside a credentials file or connection string) long and
/// random-looking enough not to be a name the reports rightly mention.
fn secret_pieces(value: &str, origin: &str, out: &mut BTreeMap<String, String>) {
    for token in value.split(|c: char| c.is_whitespace() || matches!(c, '=' | ':' | '@' | '/' | '"' | ',' | ';' | '?' | '&' | '.' | '[' | ']')) {
        // Random secrets mix character classes; names and URLs' words do not.
        let classes = [token.chars().any(|c| c.is_ascii_lowercase()), token.chars().any(|c| c.is_ascii_uppercase()), token.chars().any(|c| c.is_ascii_digit())];
        // (A header name such as "X-Log-Tenant" has two classes and 12 characters.)
        let n = classes.iter().filter(|c| **c).count();
        if (token.len() >= 16 && n >= 2) || (token.len() >= 12 && n == 3) {
            out.insert(token.to_string(), origin.to_string());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_output_holds_a_secret() {
    let Some(fx) = SimFixture::start("no_output_holds_a_secret").await else { return };
    // A planted password in the Secret 7.4.6 reads (put into 1Password, synced by the real
    // external-secrets): Dragonfly refuses it, the check fails and says so.
    const DRAGONFLY_AUTH: (&str, &str, &str, &str) = ("infra", "databases", "dragonfly-auth", "password");
    let planted = format!("Planted{}Value9", platform_acceptance::random::token(16));
    let kept = fx.rotate_in_1password(("dragonfly", "password"), &planted, DRAGONFLY_AUTH).await;

    let mut secrets = BTreeMap::from([(planted.clone(), "the planted password".to_string())]);
    for cluster in ["infra", "apps"] {
        let all: Api<Secret> = Api::all(fx.client(cluster));
        for s in all.list(&ListParams::default()).await.unwrap() {
            let name = format!("{}/{}", s.metadata.namespace.clone().unwrap_or_default(), s.metadata.name.clone().unwrap_or_default());
            // Service-account tokens and TLS keys are secrets too; a public certificate is not.
            for (key, v) in s.data.unwrap_or_default() {
                if key.ends_with(".crt") {
                    continue;
                }
                secret_pieces(&String::from_utf8_lossy(&v.0), &format!("Secret {name} key {key} on {cluster}"), &mut secrets);
            }
        }
    }
    let kubeconfig = std::fs::read_to_string(platform_acceptance::sim::kubeconfig_path(fx.cfg())).unwrap();
    for line in kubeconfig.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("client-key-data:").or_else(|| line.strip_prefix("token:")) {
            secret_pieces(v, "the kubeconfig", &mut secrets);
            if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(v.trim()) {
                secret_pieces(&String::from_utf8_lossy(&decoded), "the kubeconfig", &mut secrets);
            }
        }
    }
    assert!(secrets.len() > 20, "the clusters hold secrets to look for: {}", secrets.len());

    let out = tempfile::tempdir().unwrap();
    let (junit, json, markdown) = (out.path().join("junit.xml"), out.path().join("report.json"), out.path().join("summary.md"));
    let trace = out.path().join("connect.trace");
    let run = std::process::Command::new("strace")
        .args(["-f", "-qq", "--seccomp-bpf", "-e", "trace=connect", "-e", "signal=none", "-o", trace.to_str().unwrap()])
        .arg(env!("CARGO_BIN_EXE_platform-acceptance"))
        .args(["run", "--repo", "fixtures/gitops", "--sim", "--junit", junit.to_str().unwrap(), "--json", json.to_str().unwrap(), "--markdown", markdown.to_str().unwrap()])
        .output()
        .expect("strace (scripts/deps.sh installs it)");
    fx.rotate_in_1password(("dragonfly", "password"), &kept, DRAGONFLY_AUTH).await;
    let report = std::fs::read_to_string(&json).unwrap();
    assert!(report.contains("Password authentication failed") || report.contains("WRONGPASS"), "7.4.6 fails on the planted password:\n{}", String::from_utf8_lossy(&run.stdout));

    let outputs = [
        ("terminal", String::from_utf8_lossy(&run.stdout).into_owned() + &String::from_utf8_lossy(&run.stderr)),
        ("JUnit", std::fs::read_to_string(&junit).unwrap()),
        ("JSON", report),
        ("Markdown", std::fs::read_to_string(&markdown).unwrap()),
    ];
    let mut hits = vec![];
    for (secret, origin) in &secrets {
        let encoded = base64::engine::general_purpose::STANDARD.encode(secret);
        for (name, text) in &outputs {
            if text.contains(secret.as_str()) || text.contains(&encoded) {
                // Never print the value itself: its length and where it was found.
                hits.push(format!("{} bytes of {origin} in the {name} output", secret.len()));
            }
        }
    }
    assert!(hits.is_empty(), "{} secret value(s) in the outputs (of {} looked for): {hits:?}", hits.len(), secrets.len());
    eprintln!("no_output_holds_a_secret: {} secret values and their base64 looked for in 4 outputs: 0 hits", secrets.len());

    let (total, elsewhere) = connections(&std::fs::read_to_string(&trace).unwrap());
    // Clients keep their connections open: a few dozen connects serve the whole run.
    assert!(total > 10, "the run's connections were recorded: {total}");
    assert!(elsewhere.is_empty(), "{} of {total} connections left loopback: {elsewhere:?}", elsewhere.len());
    eprintln!("no_output_holds_a_secret: {total} connect() calls, all to loopback or local sockets");
}

/// The number of `connect` calls in an strace log, and those to an address that is not
/// loopback (IPv4 127/8, IPv6 ::1) or a local socket.
fn connections(trace: &str) -> (usize, Vec<String>) {
    let ipv4 = regex::Regex::new(r#"inet_addr\("([^"]+)"\)"#).unwrap();
    let ipv6 = regex::Regex::new(r#"inet_pton\(AF_INET6, "([^"]+)""#).unwrap();
    let calls: Vec<&str> = trace.lines().filter(|l| l.contains("connect(")).collect();
    let elsewhere = calls
        .iter()
        .filter(|l| {
            let v4 = ipv4.captures(l).is_some_and(|c| !c[1].starts_with("127."));
            let v6 = ipv6.captures(l).is_some_and(|c| !(&c[1] == "::1" || c[1].starts_with("::ffff:127.")));
            v4 || v6 || !(l.contains("AF_INET") || l.contains("AF_UNIX") || l.contains("AF_UNSPEC"))
        })
        .map(|l| l.to_string())
        .collect();
    (calls.len(), elsewhere)
}

#[test]
fn a_connection_off_loopback_is_named() {
    let trace = r#"101 connect(7, {sa_family=AF_INET, sin_port=htons(32100), sin_addr=inet_addr("127.0.0.1")}, 16) = -1 EINPROGRESS (Operation now in progress)
102 connect(8, {sa_family=AF_INET6, sin6_port=htons(5432), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0
103 connect(9, {sa_family=AF_UNIX, sun_path="/run/x.sock"}, 110) = 0
104 connect(10, {sa_family=AF_INET, sin_port=htons(9000), sin_addr=inet_addr("10.25.11.3")}, 16) = -1 ENETUNREACH (Network is unreachable)
105 connect(11, {sa_family=AF_INET6, sin6_port=htons(53), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "fd00::1", &sin6_addr), sin6_scope_id=0}, 28) = 0"#;
    let (total, elsewhere) = connections(trace);
    assert_eq!(total, 5);
    assert_eq!(elsewhere.len(), 2, "{elsewhere:?}");
    assert!(elsewhere[0].contains("10.25.11.3") && elsewhere[1].contains("fd00::1"));
}
