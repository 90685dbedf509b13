//! The Definition-of-Done gate end to end on the local simulation: a change ticks three
//! boxes — 1.3.5 (passes on the healthy simulation), 2.1.7 (fails under the `cni-down`
//! fault) and 2.2.2 reworded while ticked — and `gate --base HEAD~1 --sim` exits 1 naming
//! exactly 2.1.7 and 2.2.2; a change ticking only 1.3.5 exits 0, also through ci/gate.sh
//! (the pipelines' entry point).
//! Runs in the shared simulation fixture (lock held, healthy scenario restored at the end).

mod support;

use std::path::Path;
use std::process::Command;

use support::doc_repo;
use support::sim::SimFixture;

const TICK_135: (&str, &str) = ("- [ ] Both clusters bootstrapped and healthy", "- [x] Both clusters bootstrapped and healthy");
const TICK_217: (&str, &str) = ("- [ ] Cilium deployed and all infra nodes transition", "- [x] Cilium deployed and all infra nodes transition");
const REWORD_222: (&str, &str) = ("- [x] CLUSTER_ID set to \"2\"", "- [x] CLUSTER_ID set to \"2\" (unique)");

/// `gate --base HEAD~1 --sim`: exit code, the JSON report, the Markdown comment.
fn gate(dir: &Path) -> (i32, serde_json::Value, String) {
    let (json, md) = (dir.join("gate.json"), dir.join("gate.md"));
    let out = Command::new(env!("CARGO_BIN_EXE_platform-acceptance"))
        .args(["gate", "--doc"])
        .arg(dir.join("plan.md"))
        .args(["--base", "HEAD~1", "--repo", support::GITOPS, "--sim", "--retries", "4", "--progress", "plain", "--json"])
        .arg(&json)
        .arg("--markdown")
        .arg(&md)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{stdout}{stderr}");
    let v = serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_default()).unwrap_or_else(|e| panic!("gate JSON: {e}\n{stderr}"));
    (out.status.code().unwrap_or(-1), v, std::fs::read_to_string(&md).unwrap_or_default())
}

fn not_passing(v: &serde_json::Value) -> Vec<String> {
    v["items"].as_array().unwrap().iter().filter(|i| i["verdict"] != "pass").map(|i| format!("{} {}", i["id"].as_str().unwrap(), i["verdict"].as_str().unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn gate_on_the_simulation() {
    let Some(fx) = SimFixture::start("gate_on_the_simulation").await else { return };

    // Three boxes under cni-down: exactly the failing and the reworded one are named.
    fx.scenario("cni-down").await;
    let three = doc_repo(&[TICK_135, TICK_217, REWORD_222]);
    let (code, v, md) = gate(three.path());
    assert_eq!(code, 1, "{md}");
    assert_eq!(not_passing(&v), ["2.1.7 fail", "2.2.2 unmapped"], "{md}");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.iter().find(|i| i["id"] == "1.3.5").unwrap()["verdict"], "pass", "{md}");
    assert!(md.contains("DaemonSet kube-system/cilium"), "{md}");
    assert!(md.contains("reworded while ticked (was: CLUSTER_ID set to \"2\")"), "{md}");

    // Only the passing box ticked, on the healthy platform: exit 0.
    fx.restore().await;
    let one = doc_repo(&[TICK_135]);
    let (code, v, md) = gate(one.path());
    assert_eq!(code, 0, "{md}");
    assert!(not_passing(&v).is_empty(), "{md}");
    assert!(md.contains("## Definition-of-Done gate: PASSED"), "{md}");

    // The same change through ci/gate.sh, as the GitHub and GitLab pipelines call it.
    let out = one.path().join("out");
    let script = Command::new("ci/gate.sh")
        .env("PA", env!("CARGO_BIN_EXE_platform-acceptance"))
        .arg("--doc")
        .arg(one.path().join("plan.md"))
        .args(["--base", "HEAD~1", "--repo", support::GITOPS, "--out"])
        .arg(&out)
        .args(["--", "--sim", "--retries", "4"])
        .output()
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&script.stdout), String::from_utf8_lossy(&script.stderr));
    assert_eq!(script.status.code(), Some(0), "{log}");
    let comment = std::fs::read_to_string(out.join("gate-comment.md")).unwrap();
    assert!(comment.contains("## Definition-of-Done gate: PASSED") && comment.ends_with("<!-- platform-acceptance-gate -->\n"), "{comment}");
    for file in ["gate-junit.xml", "gate.json"] {
        assert!(out.join(file).is_file(), "{file} missing: {log}");
    }
}
