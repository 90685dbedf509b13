//! EPIC-8 checks: Keycloak operator and instance, SSO for Grafana, GitLab, Harbor.
//!
//! Writing a check here? Read docs/CHECKS-GUIDE.md first ({GUIDE} in your task): conventions, helpers, test support, rules for shared files and the shared CARGO_TARGET_DIR.
//!
//! Repository layer first (`repo_checks`), then the cluster layer (`cluster_checks`):
//! operator deployed and healthy (8.1.3-8.1.4), the admin console's HTTPRoute accepted by
//! the Gateway with a ready Keycloak behind it (8.2.4). 8.3.4 (test logins) is manual.
//! `live` holds the live helpers EPIC-9, EPIC-10 and the Definition of Done share.


use serde_json::Value;

use crate::check::{Check, Ctx, Outcome};
use crate::checks::kit::prelude::*;
use crate::repo::RenderedObject;

const OPERATOR_BASE: &str = "kubernetes/bases/keycloak-operator/helmrelease.yaml";
const OPERATOR_CONFIG: &str = "kubernetes/workloads/platform/auth/keycloak/operator/kustomization.yaml";
const INSTANCE_FILE: &str = "kubernetes/workloads/platform/auth/keycloak/instance/keycloak.yaml";

pub fn checks() -> Vec<Check> {
    [repo_checks(), cluster_checks()].concat()
}

fn repo_checks() -> Vec<Check> {
    vec![
        Check::repo("8.1", "Keycloak operator base HelmRelease created", "keycloak_operator_base_helmrelease", keycloak_operator_base_helmrelease),
        Check::repo("8.1", "Keycloak operator infrastructure config created", "keycloak_operator_config", keycloak_operator_config),
        Check::repo("8.2", "Keycloak instance manifest created", "keycloak_instance_manifest", keycloak_instance_manifest),
        Check::repo("8.2", "Connected to shared PostgreSQL (CloudNativePG)", "keycloak_uses_shared_postgres", keycloak_uses_shared_postgres),
        Check::repo("8.2", "Admin credentials in 1Password", "keycloak_admin_from_1password", keycloak_admin_from_1password),
        Check::repo("8.2", "TLS certificate configured (cert-manager)", "keycloak_tls_certificate", keycloak_tls_certificate),
        Check::repo("8.2", "Backup configured", "keycloak_backup_configured", keycloak_backup_configured),
        Check::repo("8.3", "Grafana configured with Keycloak SSO (OIDC)", "grafana_keycloak_sso", grafana_keycloak_sso).once(),
        Check::repo("8.3", "GitLab configured with Keycloak SSO (OIDC)", "gitlab_keycloak_sso", gitlab_keycloak_sso_all).once(),
        Check::repo("8.3", "Harbor configured with Keycloak SSO (OIDC)", "harbor_keycloak_sso", harbor_keycloak_sso_all).once(),
    ]
}

async fn keycloak_operator_base_helmrelease(ctx: Ctx) -> Outcome {
    outcome(|| Ok(base_helmrelease(repo(&ctx)?, &ctx.cluster, OPERATOR_BASE, "keycloak-operator")))
}

async fn keycloak_operator_config(ctx: Ctx) -> Outcome {
    outcome(|| Ok(component_config(repo(&ctx)?, &ctx.cluster, OPERATOR_CONFIG, Provides::Base("bases/keycloak-operator"))))
}

/// The Keycloak CR(s) of the plan's keycloak.yaml, rendered on this cluster.
fn keycloaks(ctx: &Ctx) -> Result<Vec<RenderedObject>, Outcome> {
    let repo = repo(ctx)?;
    let r = rendered(ctx)?;
    if repo.resolve(INSTANCE_FILE).is_none() {
        return Err(Outcome::fail(INSTANCE_FILE, "the Keycloak instance manifest", "missing"));
    }
    let ks: Vec<_> = from_file(repo, &r, INSTANCE_FILE).into_iter().filter(|o| o.kind() == "Keycloak" && group(o) == "k8s.keycloak.org").cloned().collect();
    if ks.is_empty() {
        return Err(Outcome::fail(INSTANCE_FILE, format!("a Keycloak (k8s.keycloak.org) rendered on cluster {}", ctx.cluster), "none"));
    }
    Ok(ks)
}

async fn keycloak_instance_manifest(ctx: Ctx) -> Outcome {
    outcome(|| {
        let ks = keycloaks(&ctx)?;
        Ok(Outcome::pass(ks.iter().map(|k| format!("{} {} ({} instances), applied by {}", k.api_version(), k.describe(), k.get("/spec/instances").map(|v| v.to_string()).unwrap_or("1".into()), k.applied_by)).collect::<Vec<_>>().join("; ")))
    })
}

async fn keycloak_uses_shared_postgres(ctx: Ctx) -> Outcome {
    outcome(|| {
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
    })
}

/// Fails unless `secret` in `ns` comes from an ExternalSecret on a 1Password store.
fn from_1password(r: &crate::repo::Rendered, ns: Option<&str>, secret: &str, user: &str) -> Outcome {
    let es = match secret_from_external_secret(r, ns, secret, user) {
        Ok(es) => es,
        Err(f) => return Outcome::Fail { findings: vec![f] },
    };
    match store_provider(r, es) {
        Ok((store, p)) if p.starts_with("onepassword") => Outcome::pass(format!("{user}: Secret {secret} from {} via {store} (provider {p}), items {:?}", es.describe(), remote_keys(es))),
        Ok((store, p)) => Outcome::fail(format!("{} secretStoreRef {store}", es.describe()), "a 1Password provider (onepassword/onepasswordSDK)", format!("provider {p:?}")),
        Err(f) => Outcome::Fail { findings: vec![f] },
    }
}

async fn keycloak_admin_from_1password(ctx: Ctx) -> Outcome {
    outcome(|| {
        let r = rendered(&ctx)?;
        let ks = keycloaks(&ctx)?;
        Ok(Outcome::all(ks.iter().map(|k| match k.str("/spec/bootstrapAdmin/user/secret") {
            Some(secret) => from_1password(&r, k.namespace(), secret, &format!("{} spec.bootstrapAdmin.user.secret", k.describe())),
            None => Outcome::fail(
                format!("{} spec.bootstrapAdmin.user.secret", k.describe()),
                "an admin Secret produced from 1Password",
                format!("not set (the operator generates {}-initial-admin, not from 1Password)", k.name()),
            ),
        })))
    })
}

/// Host name of a Keycloak (`spec.hostname.hostname`, URL or bare name).
fn keycloak_host(k: &RenderedObject) -> Option<String> {
    let h = k.str("/spec/hostname/hostname")?;
    let h = h.split_once("://").map(|(_, rest)| rest).unwrap_or(h);
    Some(h.split(['/', ':']).next().unwrap_or(h).to_string())
}

fn covers(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.split_once('.').is_some_and(|(_, rest)| rest == suffix),
        None => pattern == host,
    }
}

async fn keycloak_tls_certificate(ctx: Ctx) -> Outcome {
    outcome(|| {
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
    })
}

async fn keycloak_backup_configured(ctx: Ctx) -> Outcome {
    outcome(|| {
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
    })
}

// ---------------------------------------------------------------------------
// SSO
// ---------------------------------------------------------------------------

async fn grafana_keycloak_sso(ctx: Ctx) -> Outcome {
    outcome(|| {
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
                if oauth.get("enabled").map(crate::repo::scalar_text).as_deref() != Some("true") {
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
    })
}

async fn gitlab_keycloak_sso_all(ctx: Ctx) -> Outcome {
    outcome(|| {
        let repo = repo(&ctx)?;
        gitlab_sso(repo, &scope(&ctx, repo))
    })
}

async fn harbor_keycloak_sso_all(ctx: Ctx) -> Outcome {
    outcome(|| {
        let repo = repo(&ctx)?;
        harbor_sso(repo, &scope(&ctx, repo))
    })
}

// ---------------------------------------------------------------------------
// Cluster layer
// ---------------------------------------------------------------------------

/// §16 [KC1][KC3]: `k8s.keycloak.org` v2alpha1 (served by every operator release); v2beta1 in newer code.
const KEYCLOAK: crate::cluster::objects::Kind = crate::cluster::objects::Kind::namespaced("k8s.keycloak.org", &["v2alpha1", "v2beta1"], "Keycloak");

fn cluster_checks() -> Vec<Check> {
    vec![
        Check::cluster("8.1", "Operator deployed on infra cluster", "keycloak_operator_deployed", keycloak_operator_deployed),
        Check::cluster("8.1", "Operator healthy", "keycloak_operator_healthy", keycloak_operator_healthy),
        Check::cluster("8.2", "Admin console accessible via HTTPRoute", "keycloak_console_route_accepted", keycloak_console_route_accepted),
        Check::manual(
            "8.3",
            "Test logins work for each service",
            "A login is an interactive OIDC authorization-code flow in a browser (Grafana, GitLab and Harbor each redirect to \
             Keycloak, a person signs in, possibly with a second factor, and is sent back with a session). The harness holds no \
             user's credentials and must not create users or sessions in Keycloak's realm (that would mutate the production \
             identity store outside a disposable namespace). The configuration behind it is proven by 8.3.1-8.3.3 (repository) \
             and 8.2.4 (route). A person signs in to https://grafana.<domain>, https://gitlab.<domain> and \
             https://harbor.<domain> with a Keycloak account and confirms each lands logged in as that user.",
        ),
    ]
}

/// The operator's HelmRelease (from the repository) is Ready on the cluster and its
/// Deployment is ready (§16 [KC6]: label `app.kubernetes.io/name=keycloak-operator`).
async fn keycloak_operator_deployed(ctx: Ctx) -> Outcome {
    component_deployed(&ctx, "keycloak-operator", |_| "app.kubernetes.io/name=keycloak-operator".into()).await
}

/// The operator works: its pods are Ready and every Keycloak it manages reports
/// `Ready=True` and `HasErrors=False` for its current generation (§16 [KC1]).
async fn keycloak_operator_healthy(ctx: Ctx) -> Outcome {
    let client = match ctx.kube() { Ok(c) => c, Err(o) => return o };
    let hr = match rendered_release(&ctx, "keycloak-operator") { Ok(h) => h, Err(o) => return o };
    let ns = Release::of(&hr).namespace;
    let pods = crate::cluster::objects::expect_pods_ready(client, &ctx.cluster, &ns, "app.kubernetes.io/name=keycloak-operator").await;
    let ks = match keycloaks(&ctx) { Ok(k) => k, Err(o) => return o };
    let mut outcomes = vec![pods];
    for k in &ks {
        outcomes.push(keycloak_ready(client, &ctx.cluster, k.namespace().unwrap_or("default"), k.name()).await);
    }
    Outcome::all(outcomes)
}

/// §16 [KC1]: `Ready=True` (current generation) and `HasErrors=False`.
async fn keycloak_ready(client: &kube::Client, cluster: &str, ns: &str, name: &str) -> Outcome {
    use crate::cluster::objects::{expect_condition, require};
    let found = match require(client, &KEYCLOAK, Some(ns), name).await { Ok(f) => f, Err(o) => return o };
    let object = format!("{} (cluster {cluster})", found.describe(&KEYCLOAK));
    let ready = match expect_condition(&found, &KEYCLOAK, "Ready") {
        Outcome::Fail { findings } => Outcome::Fail { findings: findings.into_iter().map(|f| crate::check::Finding::new(object.clone(), f.expected, f.observed)).collect() },
        o => o,
    };
    let errors = match found.condition("HasErrors") {
        Some(c) if c.status == "True" => Outcome::fail(object.clone(), "HasErrors=False", format!("HasErrors=True ({})", c.message)),
        _ => Outcome::pass(format!("{object}: no errors, {} instances", found.get("/status/instances").map(|v| v.to_string()).unwrap_or("?".into()))),
    };
    Outcome::all([ready, errors])
}

/// The admin console's route: the HTTPRoute in the Keycloak's namespace that serves its
/// host name is Accepted (and its references resolved) by the Gateway, points at the
/// operator's `<name>-service` (§16 [KC2]) and that Keycloak is Ready. The HTTP GET of the
/// console itself is not made: it needs the Gateway's data path and a real Keycloak.
async fn keycloak_console_route_accepted(ctx: Ctx) -> Outcome {
    let client = match ctx.kube() { Ok(c) => c, Err(o) => return o };
    let ks = match keycloaks(&ctx) { Ok(k) => k, Err(o) => return o };
    let mut outcomes = vec![];
    for k in &ks {
        let ns = k.namespace().unwrap_or("default");
        let Some(host) = keycloak_host(k) else {
            outcomes.push(Outcome::fail(format!("{} spec.hostname.hostname", k.describe()), "the console's host name", "not set"));
            continue;
        };
        let routes = match routes_in(&ctx, ns) { Ok(r) => r, Err(o) => return o };
        let service = format!("{}-service", k.name());
        let serving: Vec<_> = routes
            .into_iter()
            .filter(|r| r.get("/spec/hostnames").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).any(|h| covers(h, &host)))
            .collect();
        if serving.is_empty() {
            outcomes.push(Outcome::fail(format!("HTTPRoutes in namespace {ns} (cluster {})", ctx.cluster), format!("one serving {host}"), "none in the repository's manifests"));
            continue;
        }
        let to_keycloak = serving.iter().any(|r| {
            r.get("/spec/rules").and_then(Value::as_array).into_iter().flatten().flat_map(|x| x.get("backendRefs").and_then(Value::as_array).cloned().unwrap_or_default()).any(|b| b.get("name").and_then(Value::as_str) == Some(service.as_str()))
        });
        if !to_keycloak {
            outcomes.push(Outcome::fail(format!("HTTPRoute {} backendRefs", serving[0].describe()), format!("Service {service} (the operator's service for {})", k.name()), "not referenced"));
            continue;
        }
        outcomes.push(httproutes_accepted(client, &ctx.cluster, &serving).await);
        outcomes.push(keycloak_ready(client, &ctx.cluster, ns, k.name()).await);
    }
    Outcome::all(outcomes)
}
