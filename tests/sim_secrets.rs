//! Nothing secret leaves the harness: the whole suite runs on the simulation (round trips
//! included) with a planted password in a Secret a check reads and fails on, and no output
//! (terminal, JUnit, JSON, Markdown) holds any secret value the clusters hold, the planted one,
//! or the kubeconfig's keys, neither as written nor in base64.

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
    // A planted password in the Secret 7.4.6 reads: Dragonfly refuses it, the check fails and says so.
    let planted = format!("Planted{}Value9", platform_acceptance::random::token(16));
    fx.set_secret_key("infra", "databases", "dragonfly-auth", "password", &planted).await;

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
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_platform-acceptance"))
        .args(["run", "--repo", "fixtures/gitops", "--sim", "--junit", junit.to_str().unwrap(), "--json", json.to_str().unwrap(), "--markdown", markdown.to_str().unwrap()])
        .output()
        .unwrap();
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
}
