//! The simulation's cert-manager is the real controller (sim/go/cert-manager), not status
//! written by the simulation: `sim status` lists it per cluster (pid, version, health)
//! with the stand-in CA ClusterIssuers; a deleted TLS Secret is re-issued by it; while it
//! is stopped nothing re-issues, and 5.1.7's test Certificate is never issued (its
//! ClusterIssuer still reads Ready, stale); `sim up` restarts it and it re-issues. An
//! issuer whose CA Secret is gone is marked not Ready by cert-manager, and the checks quote
//! its message.
//!
//! Runs in the shared simulation fixture (lock held; cert-manager restarted and the
//! healthy scenario restored at the end, also when an assertion fails).

mod support;

use std::time::{Duration, Instant};

use platform_acceptance::sim::{self, Health, scenario};
use serde_json::Value;
use support::ReportExt;
use support::sim::SimFixture;

const CERT: (&str, &str) = ("networking", "wildcard-infra");
const TLS: &str = "wildcard-infra-tls";

fn ready(o: &Value) -> bool {
    o.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn revision(o: &Value) -> i64 {
    o.pointer("/status/revision").and_then(Value::as_i64).unwrap_or(0)
}

/// Waits (90 s at most) until the Certificate is Ready at a revision above `above` and
/// its Secret exists; returns the revision.
async fn wait_reissued(fx: &SimFixture, above: i64) -> i64 {
    let t = Instant::now();
    loop {
        let c = fx.get("infra", "cert-manager.io/v1", "Certificate", Some(CERT.0), CERT.1).await;
        let secret = fx.get_opt("infra", "v1", "Secret", Some(CERT.0), TLS).await;
        if ready(&c) && revision(&c) > above && secret.is_some() {
            return revision(&c);
        }
        assert!(t.elapsed() < Duration::from_secs(90), "not re-issued after 90s (revision > {above}): {}", c["status"]);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cert_manager_is_the_real_controller() {
    let Some(fx) = SimFixture::start("cert_manager_is_the_real_controller").await else { return };

    // It runs, per cluster, and `sim status` says so (and names the stand-ins).
    let st = sim::status(fx.cfg()).await.expect("sim status");
    for cluster in ["infra", "apps"] {
        let p = st.cluster(cluster).unwrap().components.iter().find(|p| p.name == "cert-manager").expect("cert-manager in sim status");
        assert!(p.alive && p.health == Health::Healthy, "{cluster}: {p:?}");
        assert_eq!(p.version.as_deref(), Some("v1.21.2"));
        assert!(p.rss_kib.is_some_and(|k| k > 0));
    }
    let text = st.to_string();
    assert!(text.contains("stand-in: ClusterIssuer letsencrypt-production is a CA issuer (Secret cert-manager/letsencrypt-production-sim-ca)"), "{text}");
    assert!(text.contains(scenario::ACME_STAND_IN_NOTE));

    // A deleted TLS Secret is re-issued by cert-manager (new revision).
    let rev0 = revision(&fx.get("infra", "cert-manager.io/v1", "Certificate", Some(CERT.0), CERT.1).await);
    assert!(rev0 >= 1, "issued at least once");
    fx.delete("infra", "v1", "Secret", Some(CERT.0), TLS).await;
    let rev1 = wait_reissued(&fx, rev0).await;

    // cert-manager stopped: nothing re-issues the Secret, and 5.1.7's round trip waits in
    // vain for its test Certificate although the ClusterIssuer still reads Ready (stale).
    let rec = sim::lookup(&fx.cfg().state_dir, "infra", "cert-manager").expect("cert-manager registered");
    fx.on_restore("restart cert-manager (sim up)", |cfg| async move { sim::up(&cfg).await.map(|_| ()) });
    sim::stop_process(&rec, Duration::from_secs(10)).await;
    assert!(!rec.is_alive());
    let st = sim::status(fx.cfg()).await.expect("sim status");
    assert!(!st.is_healthy(), "a stopped cert-manager makes the simulation unhealthy");
    fx.delete("infra", "v1", "Secret", Some(CERT.0), TLS).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(fx.get_opt("infra", "v1", "Secret", Some(CERT.0), TLS).await.is_none(), "nothing but cert-manager issues the Secret");
    fx.run("5.1.7")
        .await
        .expect_findings(&["5.1.7 [infra]"])
        .expect_message("5.1.7 [infra]", &["/pa-test-cert for pa-", ".monosense.io from ClusterIssuer letsencrypt-staging (cluster infra): expected Ready=True within 30s, observed no status from cert-manager (is its controller running?)"]);

    // `sim up` restarts it; it sees the missing Secret and re-issues.
    sim::up(fx.cfg()).await.expect("sim up");
    wait_reissued(&fx, rev1).await;
    fx.run("5.1.6,5.1.7")
        .await
        .expect_all_pass()
        .expect_message("5.1.7 [apps]", &["Secret pa-cert-", "verified: SAN pa-", "anchored at the issuer's CA, key matches"]);
    fx.restore().await;
}

/// An issuer whose CA Secret is gone: cert-manager itself marks the ClusterIssuer not Ready,
/// and 5.1.6 and 5.1.7 fail on infra with cert-manager's own message; apps (its own issuer)
/// is untouched. The healthy scenario puts the Secret back and cert-manager verifies it again.
#[tokio::test(flavor = "multi_thread")]
async fn an_issuer_without_its_ca_secret_fails_with_cert_managers_message() {
    let Some(fx) = SimFixture::start("an_issuer_without_its_ca_secret_fails_with_cert_managers_message").await else { return };
    fx.delete("infra", "v1", "Secret", Some("cert-manager"), "letsencrypt-staging-sim-ca").await;
    let said = "Ready=False (ErrGetKeyPair: Error getting keypair for CA issuer: secrets \"letsencrypt-staging-sim-ca\" not found)";
    fx.run_with("5.1.6,5.1.7", support::sim::retries(2))
        .await
        .expect_findings(&["5.1.6 [infra]", "5.1.7 [infra]"])
        .expect_message("5.1.6 [infra]", &["ClusterIssuer letsencrypt-staging (cert-manager.io/v1): expected Ready=True, observed ", said])
        .expect_message("5.1.7 [infra]", &[said]);
    fx.restore().await;
    fx.run_with("5.1.6,5.1.7", support::sim::retries(2)).await.expect_all_pass();
}
