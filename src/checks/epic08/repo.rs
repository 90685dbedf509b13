//! EPIC-8, repository layer: the Keycloak operator and instance as the GitOps repository
//! declares them, and the OIDC settings of Grafana, GitLab and Harbor.

use serde_json::Value;

use super::{INSTANCE_FILE, OPERATOR_BASE, OPERATOR_CONFIG};
use crate::check::{CheckResult, Ctx, IntoOutcome, Outcome};
use crate::checks::kit::prelude::*;
use crate::repo::{scalar_text, Rendered, RenderedObject};

pub(super) async fn keycloak_operator_base_helmrelease(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(base_helmrelease(repo(&ctx)?, &ctx.cluster, OPERATOR_BASE, "keycloak-operator"))
}

pub(super) async fn keycloak_operator_config(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(component_config(repo(&ctx)?, &ctx.cluster, OPERATOR_CONFIG, Provides::Base("bases/keycloak-operator")))
}

/// The Keycloak CR(s) of the plan's keycloak.yaml, rendered on this cluster.
pub(super) fn keycloaks(ctx: &Ctx) -> Result<Vec<RenderedObject>, Outcome> {
    let repo = repo(ctx)?;
    let r = rendered(ctx)?;
    if repo.resolve(INSTANCE_FILE).is_none() {
        return Err(missing_outcome(repo, INSTANCE_FILE, INSTANCE_FILE, "the Keycloak instance manifest", "missing"));
    }
    let ks: Vec<_> = from_file(repo, &r, INSTANCE_FILE).into_iter().filter(|o| is_keycloak(o)).cloned().collect();
    if ks.is_empty() {
        return Err(Outcome::fail(INSTANCE_FILE, format!("a Keycloak (k8s.keycloak.org) rendered on cluster {}", ctx.cluster), "none"));
    }
    Ok(ks)
}

/// A Keycloak CR of the operator (§16 [KC1]: group `k8s.keycloak.org`).
fn is_keycloak(o: &RenderedObject) -> bool {
    o.kind() == "Keycloak" && group(o) == "k8s.keycloak.org"
}

/// Every Keycloak CR rendered on this cluster, wherever the repository keeps it: what the
/// cluster checks look for (the plan's file is the repository checks' concern).
pub(super) fn rendered_keycloaks(ctx: &Ctx) -> Result<Vec<RenderedObject>, Outcome> {
    let r = rendered(ctx)?;
    let ks: Vec<_> = r.objects.iter().filter(|o| is_keycloak(o)).cloned().collect();
    if ks.is_empty() {
        return Err(Outcome::fail(format!("Keycloaks rendered for cluster {}", ctx.cluster), "a Keycloak (k8s.keycloak.org)", "none"));
    }
    Ok(ks)
}

pub(super) async fn keycloak_instance_manifest(ctx: Ctx) -> CheckResult<Outcome> {
    let ks = keycloaks(&ctx)?;
    Ok(Outcome::pass(ks.iter().map(|k| format!("{} {} ({} instances), applied by {}", k.api_version(), k.describe(), k.get("/spec/instances").map(|v| v.to_string()).unwrap_or("1".into()), k.applied_by)).collect::<Vec<_>>().join("; ")))
}

pub(super) async fn keycloak_uses_shared_postgres(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let r = rendered(&ctx)?;
    let ks = keycloaks(&ctx)?;
    Ok(Outcome::all(ks.iter().map(|k| {
        let user = format!("{} spec.db", k.describe());
        let vendor = k.str("/spec/db/vendor").unwrap_or("");
        if vendor != "postgres" {
            return Outcome::fail(format!("{user}.vendor"), "\"postgres\"", format!("{vendor:?}"));
        }
        let conn = postgres_connection(repo, &ctx.cluster, k.namespace(), &user, k.str("/spec/db/host"), k.str("/spec/db/database"), None);
        let creds = ["usernameSecret", "passwordSecret"].iter().map(|s| match k.str(&format!("/spec/db/{s}/name")) {
            Some(name) => secret_from_external_secret(&r, k.namespace(), name, &format!("{user}.{s}")).map(|es| Outcome::pass(format!("{s} from {}", es.describe()))).unwrap_or_else(|f| Outcome::Fail { findings: vec![f] }),
            None => Outcome::fail(format!("{user}.{s}"), "a Secret reference", "not set"),
        });
        Outcome::all(std::iter::once(conn).chain(creds))
    })))
}

/// Fails unless `secret` in `ns` comes from an ExternalSecret on a 1Password store.
fn from_1password(r: &Rendered, ns: Option<&str>, secret: &str, user: &str) -> CheckResult<Outcome> {
    let es = secret_from_external_secret(r, ns, secret, user).map_err(|f| Outcome::Fail { findings: vec![f] })?;
    Ok(match store_provider(r, es) {
        Ok((store, p)) if p.starts_with("onepassword") => Outcome::pass(format!("{user}: Secret {secret} from {} via {store} (provider {p}), items {:?}", es.describe(), remote_keys(es))),
        Ok((store, p)) => Outcome::fail(format!("{} secretStoreRef {store}", es.describe()), "a 1Password provider (onepassword/onepasswordSDK)", format!("provider {p:?}")),
        Err(f) => Outcome::Fail { findings: vec![f] },
    })
}

pub(super) async fn keycloak_admin_from_1password(ctx: Ctx) -> CheckResult<Outcome> {
    let r = rendered(&ctx)?;
    let ks = keycloaks(&ctx)?;
    Ok(Outcome::all(ks.iter().map(|k| match k.str("/spec/bootstrapAdmin/user/secret") {
        Some(secret) => from_1password(&r, k.namespace(), secret, &format!("{} spec.bootstrapAdmin.user.secret", k.describe())).into_outcome(),
        None => Outcome::fail(
            format!("{} spec.bootstrapAdmin.user.secret", k.describe()),
            "an admin Secret produced from 1Password",
            format!("not set (the operator generates {}-initial-admin, not from 1Password)", k.name()),
        ),
    })))
}

/// Host name of a Keycloak (`spec.hostname.hostname`, URL or bare name).
pub(super) fn keycloak_host(k: &RenderedObject) -> Option<String> {
    let h = k.str("/spec/hostname/hostname")?;
    let h = h.split_once("://").map(|(_, rest)| rest).unwrap_or(h);
    Some(h.split(['/', ':']).next().unwrap_or(h).to_string())
}

pub(super) fn covers(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.split_once('.').is_some_and(|(_, rest)| rest == suffix),
        None => pattern == host,
    }
}

pub(super) async fn keycloak_tls_certificate(ctx: Ctx) -> CheckResult<Outcome> {
    let r = rendered(&ctx)?;
    let ks = keycloaks(&ctx)?;
    Ok(Outcome::all(ks.iter().map(|k| {
        let Some(host) = keycloak_host(k) else {
            return Outcome::fail(format!("{} spec.hostname.hostname", k.describe()), "the public host name", "not set");
        };
        let certs = objects(&r, "cert-manager.io", "Certificate");
        let dns = |c: &RenderedObject| -> Vec<String> { c.get("/spec/dnsNames").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(String::from).collect() };
        // The certificate that must cover the host: the one behind Keycloak's own TLS Secret,
        // else the one served by the Gateway listener for that host (edge TLS).
        let (cert, how) = if let Some(secret) = k.str("/spec/http/tlsSecret") {
            match certs.iter().find(|c| c.namespace() == k.namespace() && c.str("/spec/secretName") == Some(secret)) {
                Some(c) => (*c, format!("spec.http.tlsSecret {secret}")),
                None => return Outcome::fail(format!("{} spec.http.tlsSecret", k.describe()), "a Secret issued by a cert-manager Certificate in the same namespace", format!("{secret:?}: no Certificate has this secretName")),
            }
        } else {
            let served: Vec<(String, String)> = objects(&r, "gateway.networking.k8s.io", "Gateway")
                .into_iter()
                .flat_map(|g| {
                    let ns = g.namespace().unwrap_or("").to_string();
                    let host = host.clone();
                    g.get("/spec/listeners").and_then(Value::as_array).cloned().unwrap_or_default().into_iter().filter_map(move |l| {
                        let lh = l.get("hostname").and_then(Value::as_str).unwrap_or("*").to_string();
                        let secret = l.pointer("/tls/certificateRefs/0/name").and_then(Value::as_str)?.to_string();
                        Some((ns.clone(), secret)).filter(|_| lh == "*" || covers(&lh, &host))
                    })
                })
                .collect();
            let found = certs.iter().find(|c| served.iter().any(|(ns, s)| c.namespace() == Some(ns) && c.str("/spec/secretName") == Some(s)) && dns(c).iter().any(|d| covers(d, &host)));
            match found {
                Some(c) => (*c, "Gateway listener certificate".to_string()),
                None => return Outcome::fail(k.describe(), format!("TLS for {host} from a cert-manager Certificate (spec.http.tlsSecret or the Gateway listener)"), "no tlsSecret and no Gateway certificate covering the host"),
            }
        };
        let names = dns(cert);
        if !names.iter().any(|d| covers(d, &host)) {
            return Outcome::fail(format!("{} spec.dnsNames", cert.describe()), format!("covers {host}"), format!("[{}]", names.join(", ")));
        }
        let kind = cert.str("/spec/issuerRef/kind").unwrap_or("Issuer");
        let issuer = cert.str("/spec/issuerRef/name").unwrap_or("");
        let ns = if kind == "ClusterIssuer" { None } else { cert.namespace() };
        match find(&r, "cert-manager.io", kind, issuer, ns) {
            Some(i) => Outcome::pass(format!("{host}: {} ({how}) covers it, issued by {}", cert.describe(), i.describe())),
            None => Outcome::fail(format!("{} spec.issuerRef", cert.describe()), format!("a {kind} rendered on cluster {}", ctx.cluster), format!("{kind} {issuer:?} not found")),
        }
    })))
}

pub(super) async fn keycloak_backup_configured(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let ks = keycloaks(&ctx)?;
    let mut outcomes = vec![];
    for k in &ks {
        // Keycloak keeps all state in its database: its backup is the CNPG cluster's.
        let host = k.str("/spec/db/host").unwrap_or("");
        let landing = match resolve_host(repo, &ctx.cluster, k.namespace(), host, "CloudNativePG Cluster", cnpg_owner) {
            Ok(l) => l,
            Err(e) => {
                outcomes.push(Outcome::fail(format!("{} spec.db.host", k.describe()), "the shared CloudNativePG cluster (whose backups cover Keycloak)", e));
                continue;
            }
        };
        let r = repo.render(&landing.cluster).map_err(Outcome::error)?;
        let Some(c) = find(&r, CNPG_GROUP, "Cluster", &landing.instance_name, Some(&landing.namespace)) else { continue };
        let store = backup_store(&r, c);
        let scheduled = objects(&r, CNPG_GROUP, "ScheduledBackup").into_iter().find(|s| s.namespace() == c.namespace() && s.str("/spec/cluster/name") == Some(c.name()));
        outcomes.push(match (store, scheduled) {
            (Err(f), _) => Outcome::Fail { findings: vec![f] },
            (Ok(_), None) => Outcome::fail(format!("{} (database of {})", c.describe(), k.describe()), "a ScheduledBackup (postgresql.cnpg.io) for this cluster", "none"),
            (Ok((obj, v)), Some(s)) => Outcome::pass(format!(
                "{} stores in {} ({obj} → {}), base backups by {} schedule {:?}",
                k.describe(),
                c.describe(),
                v.get("destinationPath").and_then(Value::as_str).unwrap_or("?"),
                s.describe(),
                s.str("/spec/schedule").unwrap_or("")
            )),
        });
    }
    Ok(Outcome::all(outcomes))
}

// ---------------------------------------------------------------------------
// SSO
// ---------------------------------------------------------------------------

pub(super) async fn grafana_keycloak_sso(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let clusters = scope(&ctx, repo);
    let issuers = keycloak_issuers(repo)?;
    let mut outcomes = vec![];
    for c in &clusters {
        let r = repo.render(c).map_err(Outcome::error)?;
        for hr in objects(&r, HELM_GROUP, "HelmRelease") {
            let values = helm_values(&r, hr);
            let ini = values.pointer("/grafana/grafana.ini").or_else(|| values.get("grafana.ini"));
            let Some(ini) = ini else { continue };
            let object = format!("{} grafana.ini auth.generic_oauth", hr.describe());
            let Some(oauth) = ini.get("auth.generic_oauth") else {
                outcomes.push(Outcome::fail(object, "an OIDC provider section", "absent"));
                continue;
            };
            if oauth.get("enabled").map(scalar_text).as_deref() != Some("true") {
                outcomes.push(Outcome::fail(format!("{object}.enabled"), "true", oauth.get("enabled").map(|v| v.to_string()).unwrap_or("unset".into())));
                continue;
            }
            let auth_url = oauth.get("auth_url").and_then(Value::as_str).unwrap_or("");
            let issuer = auth_url.split_once("/protocol/openid-connect").map(|(i, _)| i);
            let token_issuer = oauth.get("token_url").and_then(Value::as_str).and_then(|t| t.split_once("/protocol/openid-connect")).map(|(i, _)| i);
            if issuer.is_some() && token_issuer.map(normalize_url) != issuer.map(normalize_url) {
                outcomes.push(Outcome::fail(format!("{object}.token_url"), format!("the same issuer {:?}", issuer.unwrap_or("")), format!("{:?}", token_issuer.unwrap_or(""))));
                continue;
            }
            let client = oauth.get("client_id").and_then(Value::as_str);
            outcomes.push(expect_keycloak_client(&issuers, &format!("{object} (auth_url {auth_url})"), issuer, client));
        }
    }
    Ok(if outcomes.is_empty() { none_found("a Grafana HelmRelease with grafana.ini (values or valuesFrom)", &clusters) } else { Outcome::all(outcomes) })
}

pub(super) async fn gitlab_keycloak_sso_all(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    gitlab_sso(repo, &scope(&ctx, repo))
}

pub(super) async fn harbor_keycloak_sso_all(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    harbor_sso(repo, &scope(&ctx, repo))
}
