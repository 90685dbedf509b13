//! Running a read-only command in a container through the API server's `pods/exec`
//! (WebSocket): how a check reads state a component exposes only on its own command line
//! (e.g. `cilium-dbg bgp peers` in a Cilium agent). A privileged read: the API server
//! authorizes it as `create` on `pods/exec`, and a check that uses it declares so
//! ([`crate::check::Check::execs`]).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use tokio::io::AsyncReadExt;

use crate::outcome::Outcome;

/// Output kept per stream; more is cut (a check reads a short report).
const MAX_OUTPUT: usize = 1 << 20;

/// What a command printed, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    /// `None` when the command exited 0; otherwise the API server's status message.
    pub failure: Option<String>,
}

async fn read_all(stream: Option<impl tokio::io::AsyncRead + Unpin>) -> String {
    let mut out = Vec::new();
    if let Some(s) = stream {
        let _ = s.take(MAX_OUTPUT as u64).read_to_end(&mut out).await;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs `command` in `container` of pod `ns/pod` and returns its output within `limit`.
/// An Error outcome when the exec cannot be made (forbidden, no such container, the node
/// unreachable from the API server) or does not end in time.
pub async fn run(client: &kube::Client, ns: &str, pod: &str, container: &str, command: &[&str], limit: Duration) -> Result<ExecOutput, Outcome> {
    let what = format!("exec `{}` in {ns}/{pod} (container {container})", command.join(" "));
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let params = AttachParams::default().container(container).stdin(false).stdout(true).stderr(true);
    let session = async {
        let mut attached = api.exec(pod, command.iter().copied(), &params).await.map_err(|e| super::api_error(&what, e))?;
        let status = attached.take_status();
        let (stdout, stderr) = tokio::join!(read_all(attached.stdout()), read_all(attached.stderr()));
        let status = match status {
            Some(s) => s.await,
            None => None,
        };
        let _ = attached.join().await;
        let failure = status.filter(|s| s.status.as_deref() != Some("Success")).map(|s| s.message.unwrap_or_else(|| s.reason.unwrap_or_default()));
        Ok(ExecOutput { stdout, stderr, failure })
    };
    tokio::time::timeout(limit, session).await.unwrap_or_else(|_| Err(Outcome::error(format!("{what}: no answer within {limit:?}"))))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::outcome::Verdict;
    use crate::cluster::access::{AccessLog, api_access};
    use crate::cluster::fake::FakeApi;

    const CMD: [&str; 3] = ["cilium-dbg", "bgp", "peers"];

    #[tokio::test]
    async fn exec_is_refused_unless_the_check_declares_it() {
        let fake = FakeApi::new(|_| None);
        let log = AccessLog::default();
        let undeclared = fake.target().recorded("infra", &log, false, None).client;
        let o = run(&undeclared, "kube-system", "cilium-x", "cilium-agent", &CMD, Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(o.verdict(), Verdict::Error);
        assert!(o.summary().contains("create pods/exec on infra refused: the check does not declare that it runs commands in containers"), "{}", o.summary());
        assert!(fake.asked().is_empty(), "refused before it left the process");
    }

    #[tokio::test]
    async fn a_declared_exec_the_api_server_forbids_is_an_error_naming_pod_and_command() {
        let fake = FakeApi::new(|path| {
            (path == "/api/v1/namespaces/kube-system/pods/cilium-x/exec").then(|| {
                (403, json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403, "message": "pods \"cilium-x\" is forbidden: cannot create resource \"pods/exec\""}))
            })
        });
        let log = AccessLog::default();
        let declared = fake.target().recorded("infra", &log, true, None).client;
        let o = run(&declared, "kube-system", "cilium-x", "cilium-agent", &CMD, Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(o.summary(), "exec `cilium-dbg bgp peers` in kube-system/cilium-x (container cilium-agent): forbidden: needs create pods/exec: pods \"cilium-x\" is forbidden: cannot create resource \"pods/exec\"");
        assert_eq!(fake.asked(), ["/api/v1/namespaces/kube-system/pods/cilium-x/exec"]);
        assert_eq!(log.entries(), [api_access("infra", "GET", "/api/v1/namespaces/kube-system/pods/cilium-x/exec?command=cilium-dbg").unwrap()]);
        assert_eq!(log.entries()[0].to_string(), "create pods/exec on infra", "authorized as create");
    }
}
