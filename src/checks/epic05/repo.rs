//! Repository layer of EPIC-5: the HelmReleases, their wiring, the ClusterIssuers and the
//! 1Password ClusterSecretStore.

use super::*;
use crate::check::{CheckResult, Ctx, Finding, Outcome};
use crate::checks::kit::prelude::*;
use crate::repo::str_at;


pub(super) async fn cert_manager_base(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(file_has_helmrelease(repo(&ctx)?, "kubernetes/bases/cert-manager/helmrelease.yaml", &["cert-manager"]))
}

pub(super) async fn cert_manager_config(ctx: Ctx) -> CheckResult<Outcome> {
    config_renders_base(&ctx, "kubernetes/infrastructure/security/cert-manager/kustomization.yaml", "kubernetes/bases/cert-manager", "HelmRelease")
}

/// The ClusterIssuers of `clusterissuer.yaml` are applied to the cluster (`cert-manager.io/v1`),
/// at least one is an ACME issuer at Let's Encrypt, and every ACME issuer is complete
/// (account email, account key Secret, a solver).
pub(super) async fn cluster_issuers(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    if repo.resolve(CLUSTERISSUER_FILE).is_none() {
        return Ok(missing_outcome(repo, CLUSTERISSUER_FILE, CLUSTERISSUER_FILE, "ClusterIssuer manifests", "file missing"));
    }
    let names: Vec<String> =
        repo.documents_in(CLUSTERISSUER_FILE).iter().filter(|d| d.kind() == "ClusterIssuer").map(|d| d.name().to_string()).collect();
    if names.is_empty() {
        let kinds: Vec<String> = repo.documents_in(CLUSTERISSUER_FILE).iter().map(|d| d.kind().to_string()).collect();
        return Ok(Outcome::fail(CLUSTERISSUER_FILE, "ClusterIssuer documents", format!("kinds [{}]", kinds.join(", "))));
    }
    let rendered = rendered(&ctx)?;
    let mut findings = vec![];
    let mut evidence = vec![];
    let mut issuer_types = vec![];
    for name in &names {
        let Some(issuer) = rendered.of_kind("ClusterIssuer").find(|o| o.name() == name) else {
            findings.push(Finding::new(format!("ClusterIssuer/{name} ({CLUSTERISSUER_FILE})"), format!("rendered for cluster {}", ctx.cluster), "not rendered"));
            continue;
        };
        let obj = issuer.describe();
        if issuer.api_version() != "cert-manager.io/v1" {
            findings.push(Finding::new(&obj, "apiVersion cert-manager.io/v1", issuer.api_version()));
        }
        let Some(acme) = issuer.get("/spec/acme") else {
            let kinds: Vec<String> =
                issuer.get("/spec").and_then(|s| s.as_object()).map(|m| m.keys().cloned().collect()).unwrap_or_default();
            issuer_types.push(format!("{name}: {}", if kinds.is_empty() { "no issuer type".into() } else { kinds.join("/") }));
            continue;
        };
        let server = str_at(acme, "/server").unwrap_or("");
        issuer_types.push(format!("{name}: acme {server}"));
        let host = server.strip_prefix("https://").and_then(|r| r.split('/').next()).unwrap_or("");
        let letsencrypt = host == LETSENCRYPT_DOMAIN || host.ends_with(&format!(".{LETSENCRYPT_DOMAIN}"));
        if !letsencrypt {
            continue;
        }
        let email = str_at(acme, "/email").unwrap_or("");
        if !email.contains('@') {
            findings.push(Finding::new(format!("{obj} spec.acme.email"), "an account email address", format!("{email:?}")));
        }
        if str_at(acme, "/privateKeySecretRef/name").unwrap_or("").is_empty() {
            findings.push(Finding::new(format!("{obj} spec.acme.privateKeySecretRef.name"), "an account key Secret name", "not set"));
        }
        let solvers = acme.get("solvers").and_then(|s| s.as_array()).map(Vec::len).unwrap_or(0);
        if solvers == 0 {
            findings.push(Finding::new(format!("{obj} spec.acme.solvers"), "at least one HTTP01/DNS01 solver", "none"));
        }
        evidence.push(format!("{} {obj}: ACME {server}, {solvers} solver(s)", issuer.api_version()));
    }
    if evidence.is_empty() && findings.is_empty() {
        findings.push(Finding::new(
            format!("ClusterIssuers of {CLUSTERISSUER_FILE} on cluster {}", ctx.cluster),
            format!("an ACME issuer with spec.acme.server at https://*.{LETSENCRYPT_DOMAIN}"),
            format!("[{}]", issuer_types.join(", ")),
        ));
    }
    Ok(if findings.is_empty() { Outcome::Pass { evidence } } else { Outcome::Fail { findings } })
}

pub(super) async fn eso_base(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(file_has_helmrelease(repo(&ctx)?, "kubernetes/bases/external-secrets/helmrelease.yaml", &["external-secrets"]))
}

pub(super) async fn eso_config(ctx: Ctx) -> CheckResult<Outcome> {
    config_renders_base(
        &ctx,
        "kubernetes/infrastructure/security/external-secrets/kustomization.yaml",
        "kubernetes/bases/external-secrets",
        "HelmRelease",
    )
}

/// The ClusterSecretStore of `clustersecretstore.yaml` is applied to the cluster and uses the
/// 1Password Connect provider: `connectHost` from `ONEPASSWORD_CONNECT_HOST`, at least one vault
/// (including `ONEPASSWORD_VAULT` when defined), the token Secret from
/// `ONEPASSWORD_CONNECT_TOKEN_SECRET` with a key and a namespace (story 5.2 "1Password Configuration").
pub(super) async fn onepassword_store(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    if repo.resolve(CLUSTERSECRETSTORE_FILE).is_none() {
        return Ok(missing_outcome(repo, CLUSTERSECRETSTORE_FILE, CLUSTERSECRETSTORE_FILE, "a ClusterSecretStore for 1Password", "file missing"));
    }
    let names: Vec<String> = repo
        .documents_in(CLUSTERSECRETSTORE_FILE)
        .iter()
        .filter(|d| d.kind() == "ClusterSecretStore")
        .map(|d| d.name().to_string())
        .collect();
    if names.is_empty() {
        let kinds: Vec<String> = repo.documents_in(CLUSTERSECRETSTORE_FILE).iter().map(|d| d.kind().to_string()).collect();
        return Ok(Outcome::fail(CLUSTERSECRETSTORE_FILE, "a ClusterSecretStore", format!("kinds [{}]", kinds.join(", "))));
    }
    let rendered = rendered(&ctx)?;
    let vars = variables(&ctx)?;
    let mut findings = vec![];
    let mut evidence = vec![];
    for name in &names {
        let Some(store) = rendered.of_kind("ClusterSecretStore").find(|o| o.name() == name) else {
            findings.push(Finding::new(format!("ClusterSecretStore/{name} ({CLUSTERSECRETSTORE_FILE})"), format!("rendered for cluster {}", ctx.cluster), "not rendered"));
            continue;
        };
        let obj = store.describe();
        if !ESO_VERSIONS.contains(&store.api_version()) {
            findings.push(Finding::new(&obj, format!("apiVersion {}", ESO_VERSIONS.join(" or ")), store.api_version()));
        }
        let Some(op) = store.get("/spec/provider/onepassword") else {
            let providers: Vec<String> =
                store.get("/spec/provider").and_then(|p| p.as_object()).map(|m| m.keys().cloned().collect()).unwrap_or_default();
            findings.push(Finding::new(
                format!("{obj} spec.provider"),
                "provider onepassword (1Password Connect)",
                if providers.is_empty() { "no provider".to_string() } else { format!("provider {}", providers.join(", ")) },
            ));
            continue;
        };
        let host = str_at(op, "/connectHost").unwrap_or("");
        match vars.get("ONEPASSWORD_CONNECT_HOST") {
            Some(want) if want == host && (host.starts_with("http://") || host.starts_with("https://")) => {}
            Some(want) => findings.push(Finding::new(format!("{obj} connectHost"), format!("{want:?} (ONEPASSWORD_CONNECT_HOST, an http(s) URL)"), format!("{host:?}"))),
            None => findings.push(Finding::new(vars.object("ONEPASSWORD_CONNECT_HOST"), "defined (source of connectHost)", "not defined")),
        }
        let vaults: Vec<String> = op.get("vaults").and_then(|v| v.as_object()).map(|m| m.keys().cloned().collect()).unwrap_or_default();
        let vault_var = vars.get("ONEPASSWORD_VAULT");
        if vaults.is_empty() || vault_var.is_some_and(|v| !vaults.iter().any(|x| x == v)) {
            findings.push(Finding::new(
                format!("{obj} vaults"),
                match vault_var {
                    Some(v) => format!("vault {v:?} (ONEPASSWORD_VAULT)"),
                    None => "at least one vault".into(),
                },
                format!("{vaults:?}"),
            ));
        }
        let token = op.pointer("/auth/secretRef/connectTokenSecretRef");
        let token_name = token.and_then(|t| str_at(t, "/name")).unwrap_or("");
        match vars.get("ONEPASSWORD_CONNECT_TOKEN_SECRET") {
            Some(want) if want == token_name => {}
            Some(want) => findings.push(Finding::new(
                format!("{obj} auth.secretRef.connectTokenSecretRef.name"),
                format!("{want:?} (ONEPASSWORD_CONNECT_TOKEN_SECRET)"),
                format!("{token_name:?}"),
            )),
            None => findings.push(Finding::new(vars.object("ONEPASSWORD_CONNECT_TOKEN_SECRET"), "defined (source of the token Secret)", "not defined")),
        }
        for field in ["key", "namespace"] {
            if token.and_then(|t| str_at(t, &format!("/{field}"))).unwrap_or("").is_empty() {
                findings.push(Finding::new(format!("{obj} auth.secretRef.connectTokenSecretRef.{field}"), "set", "not set"));
            }
        }
        evidence.push(format!("{} {obj}: onepassword connectHost {host}, vaults {vaults:?}, token Secret {token_name}", store.api_version()));
    }
    Ok(if findings.is_empty() { Outcome::Pass { evidence } } else { Outcome::Fail { findings } })
}
