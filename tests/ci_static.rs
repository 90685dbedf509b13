//! The pipelines in ci/ are validated as their platforms would: actionlint (with shellcheck
//! over every `run:` block) for the GitHub workflows, the GitHub workflow and GitLab CI JSON
//! schemas (check-jsonschema), and shellcheck for every script. The tools come from
//! `make test` (sim/build.sh builds actionlint, scripts/ci-tools.sh installs the others);
//! a missing tool fails the test rather than skipping it.
//!
//! Every platform-acceptance command line the workflows run goes through ci/gate.sh or
//! ci/kind-deploy.sh, which tests/sim_gate.rs and tests/sim_ci_scripts.rs run against the
//! local simulation with the workflows' arguments; the test below keeps it that way.

use std::path::PathBuf;
use std::process::Command;

const GITHUB_WORKFLOWS: [&str; 2] = ["ci/gate-github.yaml", "ci/nightly.yaml"];
const GITLAB_PIPELINES: [&str; 1] = ["ci/gate-gitlab.yml"];

fn cache() -> PathBuf {
    PathBuf::from(std::env::var("PA_CACHE").unwrap_or_else(|_| "/var/cache/platform-acceptance".into()))
}

fn tool(path: PathBuf, how: &str) -> PathBuf {
    assert!(path.is_file(), "{} missing: {how} (`make test` does both)", path.display());
    path
}

fn venv_tool(name: &str) -> PathBuf {
    tool(cache().join("ci-venv/bin").join(name), "run scripts/ci-tools.sh")
}

/// Runs a validator; on failure the assertion shows its whole output.
fn passes(mut cmd: Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn github_workflows_pass_actionlint_with_shellcheck() {
    let actionlint = tool(cache().join("bin/actionlint"), "run sim/build.sh actionlint");
    let shellcheck = venv_tool("shellcheck");
    let mut cmd = Command::new(actionlint);
    cmd.args(["-shellcheck", shellcheck.to_str().unwrap(), "-no-color"]).args(GITHUB_WORKFLOWS);
    passes(cmd, "actionlint");
}

/// The validators can fail: a workflow with an unquoted variable, an untrusted expression in
/// a script and a misspelt action input is rejected with each named.
#[test]
fn actionlint_rejects_a_broken_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let text = "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo $FOO ${{ github.event.pull_request.title }}\n      - uses: actions/checkout@v4\n        with: {fetch-deph: 0}\n";
    std::fs::write(&bad, text).unwrap();
    let out = Command::new(tool(cache().join("bin/actionlint"), "run sim/build.sh actionlint"))
        .args(["-shellcheck", venv_tool("shellcheck").to_str().unwrap(), "-no-color"])
        .arg(&bad)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    for finding in ["SC2086", "potentially untrusted", "fetch-deph"] {
        assert!(text.contains(finding), "actionlint did not report {finding}: {text}");
    }
}

#[test]
fn pipelines_match_the_github_and_gitlab_schemas() {
    let check = venv_tool("check-jsonschema");
    let mut gh = Command::new(&check);
    gh.args(["--builtin-schema", "vendor.github-workflows"]).args(GITHUB_WORKFLOWS);
    passes(gh, "check-jsonschema (GitHub workflows)");
    let mut gl = Command::new(&check);
    gl.args(["--builtin-schema", "vendor.gitlab-ci"]).args(GITLAB_PIPELINES);
    passes(gl, "check-jsonschema (GitLab CI)");
}

#[test]
fn scripts_pass_shellcheck() {
    let mut scripts: Vec<String> = vec![".ci/run".into()];
    for dir in ["ci", "scripts", "sim"] {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "sh") {
                scripts.push(p.to_string_lossy().into_owned());
            }
        }
    }
    assert!(scripts.iter().any(|s| s == "ci/kind-deploy.sh") && scripts.iter().any(|s| s == "ci/gate.sh"));
    let mut cmd = Command::new(venv_tool("shellcheck"));
    cmd.arg("-x").args(&scripts);
    passes(cmd, "shellcheck");
}

/// The workflows run the harness only through the two scripts the simulation tests run.
#[test]
fn workflows_run_the_harness_only_through_the_tested_scripts() {
    for file in GITHUB_WORKFLOWS.iter().chain(&GITLAB_PIPELINES) {
        let text = std::fs::read_to_string(file).unwrap();
        let v: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
        let mut runs = vec![];
        collect_scripts(&v, &mut runs);
        assert!(!runs.is_empty(), "{file}: no run/script steps found");
        for line in runs.iter().flat_map(|r| r.lines()) {
            assert!(!runs_harness(line), "{file}: runs the harness directly, not through ci/gate.sh or ci/kind-deploy.sh: {line}");
        }
        let calls = runs.iter().any(|r| r.contains("ci/gate.sh") || r.contains("ci/kind-deploy.sh"));
        assert!(calls, "{file}: calls neither ci/gate.sh nor ci/kind-deploy.sh");
    }
}

/// A command line that starts the harness itself: `…/platform-acceptance SUBCOMMAND`,
/// `$PA SUBCOMMAND` or `cargo run`.
fn runs_harness(line: &str) -> bool {
    const SUBCOMMANDS: [&str; 7] = ["run", "gate", "render", "sync-doc", "sweep", "catalog", "sim"];
    let words: Vec<&str> = line.split_whitespace().collect();
    line.contains("cargo run")
        || words.windows(2).any(|w| {
            let program = w[0].trim_matches('"').rsplit('/').next().unwrap_or("");
            (program == "platform-acceptance" || program == "$PA" || program == "${PA}") && SUBCOMMANDS.contains(&w[1])
        })
}

#[test]
fn the_harness_call_detector_sees_direct_calls_only() {
    assert!(runs_harness("platform-acceptance gate --doc x"));
    assert!(runs_harness("  \".platform-acceptance/target/release/platform-acceptance\" run --sim"));
    assert!(runs_harness("\"$PA\" render values"));
    assert!(runs_harness("cargo run --release -- run"));
    assert!(!runs_harness("git -C .platform-acceptance checkout --detach \"$PA_REF\""));
    assert!(!runs_harness(".platform-acceptance/ci/gate.sh --doc x -- --sim"));
}

/// Every `run:` (GitHub) and `script:`/`before_script:` line (GitLab) in a pipeline.
fn collect_scripts(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("run", serde_json::Value::String(s)) => out.push(s.clone()),
                    ("script" | "before_script", serde_json::Value::Array(lines)) => {
                        out.extend(lines.iter().filter_map(|l| l.as_str().map(str::to_string)))
                    }
                    _ => collect_scripts(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_scripts(x, out)),
        _ => {}
    }
}
