//! EPIC-7, data plane: PostgreSQL and Redis traffic to the shared Cluster and Dragonfly,
//! with the credentials the clusters' Secrets hold (CloudNativePG's app Secret, the
//! applications' own Secrets).
//!
//! Services are reached through `ctx.resolve`; no secret value is ever put in an outcome.
//! Protocol facts from docs/reference/components.md §14 (CloudNativePG) and §15 (Dragonfly).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::live::live_pg_clusters;
use super::repo::{listed_databases, managed_roles};
use super::DRAGONFLY;
use crate::check::{CheckContext, CheckResult, Ctx, Finding, Outcome};
use crate::errline::Failure;
use crate::checks::kit::prelude::*;
use crate::cluster::objects;
use crate::repo::{GitopsRepo, Rendered, RenderedObject};

/// §14 [PG1][PG2], §15 [DF3].
const PG_PORT: u16 = 5432;
const REDIS_PORT: u16 = 6379;
const TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------

fn client_of<'a>(ctx: &'a CheckContext, cluster: &str) -> Result<&'a kube::Client, Outcome> {
    let target = ctx.target.as_ref().ok_or_else(|| Outcome::skip("no cluster target"))?;
    target.peers.get(cluster).ok_or_else(|| Outcome::error(format!("no client for cluster {cluster} (kubeconfig context missing)")))
}

/// The rendering that holds `kind` of `grp` (the cluster running it) and those objects.
fn home_of(repo: &GitopsRepo, grp: &str, kind: &str) -> Result<(String, Arc<Rendered>, Vec<RenderedObject>), Outcome> {
    for (cluster, r) in renders(repo)? {
        let found: Vec<RenderedObject> = objects(&r, grp, kind).into_iter().cloned().collect();
        if !found.is_empty() {
            return Ok((cluster, r, found));
        }
    }
    Err(Outcome::fail(format!("{grp} {kind}"), "rendered for some cluster of the repository", "rendered for none"))
}

fn take(data: &BTreeMap<String, String>, key: &str, object: &str) -> Result<String, Outcome> {
    data.get(key).cloned().ok_or_else(|| Outcome::fail(object, format!("a key {key:?}"), format!("keys [{}]", data.keys().cloned().collect::<Vec<_>>().join(", "))))
}

/// `svc` as a fully qualified in-cluster name (`.svc.cluster.local` or `.svc.clusterset.local`).
fn service_host(svc: &str, ns: &str, clusterset: bool) -> String {
    let short = svc.split('.').next().unwrap_or(svc);
    format!("{short}.{ns}.svc.{}", if clusterset { "clusterset.local" } else { "cluster.local" })
}

/// Connects as `user` to `db` at `addr` and returns `(current_user, current_database, extra)` where
/// `extra` is the text of the first column of `probe` (or "" without one).
async fn pg_probe(addr: SocketAddr, user: &str, password: &str, db: &str, probe: Option<&str>) -> Result<(String, String, String), Failure> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(addr.ip().to_string()).port(addr.port()).user(user).password(password).dbname(db).connect_timeout(TIMEOUT);
    cfg.application_name("platform-acceptance");
    let redact = |e: tokio_postgres::Error| Failure::postgres(&e).redacted(password);
    let (client, conn) = tokio::time::timeout(TIMEOUT, cfg.connect(tokio_postgres::NoTls)).await.map_err(|_| Failure::no_answer("connect timed out"))?.map_err(redact)?;
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    let row = client.query_one("SELECT current_user::text, current_database()::text, 1", &[]).await.map_err(redact)?;
    let one: i32 = row.get(2);
    if one != 1 {
        return Err(Failure::answer(format!("SELECT 1 answered {one}")));
    }
    let extra = match probe {
        Some(sql) => client.query_one(sql, &[]).await.map_err(redact)?.get::<_, String>(0),
        None => String::new(),
    };
    drop(client);
    task.abort();
    Ok((row.get(0), row.get(1), extra))
}

async fn redis_conn(addr: SocketAddr, password: &str) -> Result<redis::aio::MultiplexedConnection, Failure> {
    use redis::IntoConnectionInfo;
    let redact = |e: redis::RedisError| Failure::redis(&e).redacted(password);
    let info = redis::ConnectionAddr::Tcp(addr.ip().to_string(), addr.port())
        .into_connection_info()
        .map_err(redact)?
        .set_redis_settings(redis::RedisConnectionInfo::default().set_password(password));
    let client = redis::Client::open(info).map_err(redact)?;
    // redis-rs bounds a connection by 1 s and each response by 500 ms unless told: too short for
    // a path through a relay pod and the API server, where the first answer waits for the dial.
    let config = redis::AsyncConnectionConfig::new().set_connection_timeout(Some(TIMEOUT)).set_response_timeout(Some(TIMEOUT));
    tokio::time::timeout(TIMEOUT, client.get_multiplexed_async_connection_with_config(&config)).await.map_err(|_| Failure::no_answer("connect timed out"))?.map_err(redact)
}

// ---------------------------------------------------------------------------
// 7.2 the shared PostgreSQL Cluster
// ---------------------------------------------------------------------------

/// The CNPG app Secret `<cluster>-app` (§14 [PG2]) and a `SELECT 1` through the host it names.
pub(super) async fn postgres_app_connects(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let mut outcomes = vec![];
    for c in live_pg_clusters(&ctx).await? {
        let (name, ns) = (c.name().to_string(), c.namespace().unwrap_or("default").to_string());
        let secret = format!("{name}-app");
        let object = format!("Secret {ns}/{secret} (cluster {})", ctx.cluster);
        let data = secret_data(client, &ctx.cluster, &ns, &secret).await?;
        let user = take(&data, "username", &object)?;
        let password = take(&data, "password", &object)?;
        let db = take(&data, "dbname", &object)?;
        let host = service_host(data.get("host").map(String::as_str).unwrap_or(&format!("{name}-rw")), &ns, false);
        let port = data.get("port").and_then(|p| p.parse().ok()).unwrap_or(PG_PORT);
        let addr = ctx.resolve(&host, port).await?;
        outcomes.push(match pg_probe(addr, &user, &password, &db, None).await {
            Ok((u, d, _)) => {
                ctx.reached(addr);
                Outcome::pass(format!("{host}:{port}: connected as {u} to {d} with {object}, SELECT 1 = 1"))
            }
            Err(e) => ctx.exchange_failed(addr, format!("{host}:{port} as {user} to {db} (credentials of {object})"), "connection and SELECT 1", e),
        });
    }
    Ok(Outcome::all(outcomes))
}

// ---------------------------------------------------------------------------
// Application credentials: the consumer Secrets of each database role
// ---------------------------------------------------------------------------

/// Where an application holds the password of a database role (or the Dragonfly password).
#[derive(Debug, Clone)]
struct Consumer {
    cluster: String,
    namespace: String,
    secret: String,
    /// How to read the password out of the live Secret.
    key: PasswordKey,
    external_secret: String,
}

#[derive(Debug, Clone)]
enum PasswordKey {
    Plain(String),
    /// A connection URI (`postgres://user:pass@host:port/db`) in this key.
    Uri(String),
}

impl Consumer {
    fn describe(&self) -> String {
        format!("Secret {}/{} (cluster {}, from {})", self.namespace, self.secret, self.cluster, self.external_secret)
    }

    async fn password(&self, ctx: &CheckContext) -> Result<String, Outcome> {
        let client = client_of(ctx, &self.cluster)?;
        let data = secret_data(client, &self.cluster, &self.namespace, &self.secret).await?;
        match &self.key {
            PasswordKey::Plain(k) => take(&data, k, &self.describe()),
            PasswordKey::Uri(k) => {
                let uri = take(&data, k, &self.describe())?;
                uri_password(&uri).ok_or_else(|| Outcome::fail(format!("{} key {k}", self.describe()), "a connection URI with a password", "no password in it"))
            }
        }
    }
}

fn uri_password(uri: &str) -> Option<String> {
    let rest = uri.split_once("://")?.1;
    let userinfo = rest.split('@').next().filter(|_| rest.contains('@'))?;
    let pass = userinfo.split_once(':')?.1;
    Some(percent_decode(pass))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The consumers (ExternalSecrets outside `owner_ns`, on every cluster) that read the same
/// secret-store item as the ExternalSecret producing `owner_secret`, apps-first by `prefer`.
fn consumers(repo: &GitopsRepo, owner: &Rendered, owner_ns: Option<&str>, owner_secret: &str, prefer: &str) -> Result<Vec<Consumer>, Outcome> {
    let es = secret_from_external_secret(owner, owner_ns, owner_secret, owner_secret).map_err(|f| Outcome::Fail { findings: vec![f] })?;
    let keys = remote_keys(es);
    let reference = regex::Regex::new(r"\{\{\s*\.([A-Za-z0-9_]+)").expect("static regex");
    let mut out = vec![];
    for (cluster, r) in renders(repo)? {
        for o in objects(&r, ES_GROUP, "ExternalSecret") {
            if (cluster == owner.cluster && o.namespace() == owner_ns) || remote_keys(o).is_disjoint(&keys) {
                continue;
            }
            // The secretKey that carries the item's value.
            let Some(secret_key) = o.get("/spec/data").and_then(Value::as_array).into_iter().flatten().find_map(|d| {
                d.pointer("/remoteRef/key").and_then(Value::as_str).filter(|k| keys.contains(*k)).and(d.get("secretKey").and_then(Value::as_str))
            }) else {
                continue;
            };
            let template: Option<&serde_json::Map<String, Value>> = o.get("/spec/target/template/data").and_then(Value::as_object);
            let key = match template {
                None => Some(PasswordKey::Plain(secret_key.to_string())),
                Some(t) => {
                    let refers = |text: &str| reference.captures_iter(text).any(|c| &c[1] == secret_key);
                    let plain = t.iter().find(|(_, v)| v.as_str().is_some_and(|s| s.trim().trim_matches('"').starts_with("{{") && s.trim().ends_with("}}") && refers(s)));
                    let uri = t.iter().find(|(_, v)| v.as_str().is_some_and(|s| s.contains("://") && refers(s)));
                    plain.map(|(k, _)| PasswordKey::Plain(k.clone())).or_else(|| uri.map(|(k, _)| PasswordKey::Uri(k.clone())))
                }
            };
            if let Some(key) = key {
                out.push(Consumer {
                    cluster: cluster.clone(),
                    namespace: o.namespace().unwrap_or("default").to_string(),
                    secret: o.str("/spec/target/name").unwrap_or(o.name()).to_string(),
                    key,
                    external_secret: format!("ExternalSecret {}/{}", o.namespace().unwrap_or(""), o.name()),
                });
            }
        }
    }
    out.sort_by_key(|c| (c.cluster != prefer, c.namespace.clone(), c.secret.clone()));
    Ok(out)
}

// ---------------------------------------------------------------------------
// 7.2 and 7.3: the applications' databases
// ---------------------------------------------------------------------------

/// One application database: role, database name, the CNPG Cluster's rw service, and consumers.
struct AppDatabase {
    database: String,
    role: String,
    service: String,
    namespace: String,
    consumers: Vec<Consumer>,
}

/// The listed databases (criterion 7.3.1) with their roles and consumers, apps-first for `prefer`.
fn app_databases(repo: &GitopsRepo, prefer: &str) -> Result<(Vec<AppDatabase>, Vec<Finding>), Outcome> {
    let (_, r, clusters) = home_of(repo, CNPG_GROUP, "Cluster")?;
    let mut out = vec![];
    let mut findings = vec![];
    for db in listed_databases() {
        let found = clusters.iter().find_map(|c| cnpg_database(&r, c.namespace().unwrap_or(""), c.name(), db).map(|d| (c, d)));
        let Some((c, d)) = found else {
            findings.push(Finding::new(format!("database {db:?}"), "a CNPG Database on a rendered Cluster", "not declared"));
            continue;
        };
        let role = d.str("/spec/owner").unwrap_or(db).to_string();
        let Some(secret) = managed_roles(c).into_iter().find(|(n, _)| *n == role).and_then(|(_, s)| s) else {
            findings.push(Finding::new(format!("{} role {role:?}", c.describe()), "a managed role with a passwordSecret", "none"));
            continue;
        };
        let consumers = consumers(repo, &r, c.namespace(), &secret, prefer)?;
        out.push(AppDatabase {
            database: d.str("/spec/name").unwrap_or(db).to_string(),
            role,
            service: format!("{}-rw", c.name()),
            namespace: c.namespace().unwrap_or("default").to_string(),
            consumers,
        });
    }
    Ok((out, findings))
}

/// Connects to every listed database through the ClusterMesh name, as its application does:
/// with the credentials in the application's Secret (on the apps cluster when the application
/// runs there, else where it runs).
pub(super) async fn databases_connect_from_apps(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = ctx.repo()?;
    let (dbs, mut findings) = app_databases(repo, &ctx.cluster)?;
    let mut evidence = vec![];
    for db in &dbs {
        let Some(consumer) = db.consumers.first() else {
            findings.push(Finding::new(format!("database {:?} (role {})", db.database, db.role), "an application Secret holding the role's password (same secret-store item)", "none rendered"));
            continue;
        };
        match connect_as(&ctx, db, consumer, None).await {
            Ok(ev) => evidence.push(ev),
            Err(Outcome::Fail { findings: f }) => findings.extend(f),
            Err(o) => return Err(o),
        }
    }
    Ok(Outcome::from_findings(findings, evidence.join("; ")))
}

/// Privileges an application needs on its own database (read only: no object is created).
const PRIVILEGES_SQL: &str = "SELECT concat_ws(',', \
     CASE WHEN has_database_privilege(current_database(), 'CONNECT') THEN NULL ELSE 'CONNECT' END, \
     CASE WHEN has_database_privilege(current_database(), 'CREATE') THEN NULL ELSE 'CREATE' END, \
     CASE WHEN has_database_privilege(current_database(), 'TEMP') THEN NULL ELSE 'TEMP' END, \
     CASE WHEN has_schema_privilege('public', 'USAGE') THEN NULL ELSE 'USAGE ON SCHEMA public' END, \
     CASE WHEN has_schema_privilege('public', 'CREATE') THEN NULL ELSE 'CREATE ON SCHEMA public' END)";

/// The applications on this cluster reach their databases through the ClusterMesh name with
/// their own Secrets, and may use them (connect, create objects, temp tables).
pub(super) async fn apps_use_their_databases(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = ctx.repo()?;
    let (dbs, findings) = app_databases(repo, &ctx.cluster)?;
    let mut findings = findings;
    let mut evidence = vec![];
    for db in &dbs {
        for consumer in db.consumers.iter().filter(|c| c.cluster == ctx.cluster) {
            match connect_as(&ctx, db, consumer, Some(PRIVILEGES_SQL)).await {
                Ok(ev) => evidence.push(ev),
                Err(Outcome::Fail { findings: f }) => findings.extend(f),
                Err(o) => return Err(o),
            }
        }
    }
    if evidence.is_empty() && findings.is_empty() {
        return Ok(Outcome::fail(format!("cluster {}", ctx.cluster), "applications with database credentials (ExternalSecrets of the roles' items)", "none rendered"));
    }
    Ok(Outcome::from_findings(findings, evidence.join("; ")))
}

async fn connect_as(ctx: &CheckContext, db: &AppDatabase, consumer: &Consumer, probe: Option<&str>) -> Result<String, Outcome> {
    let password = consumer.password(ctx).await?;
    let host = service_host(&db.service, &db.namespace, true);
    let addr = ctx.resolve(&host, PG_PORT).await?;
    let object = format!("{host}:{PG_PORT} as {} to {} (credentials of {})", db.role, db.database, consumer.describe());
    let probed = pg_probe(addr, &db.role, &password, &db.database, probe).await;
    if probed.is_ok() {
        ctx.reached(addr);
    }
    match probed {
        Ok((u, d, missing)) if missing.is_empty() => Ok(format!("{d}: connected as {u} via {host} with {}", consumer.describe())),
        Ok((_, _, missing)) => Err(Outcome::fail(object, "CONNECT, CREATE, TEMP on its database and USAGE, CREATE on schema public", format!("missing {missing}"))),
        Err(e) => Err(ctx.exchange_failed(addr, object, "connection and SELECT 1", e)),
    }
}

/// The shared Cluster's primary answers on its ClusterMesh name from the apps cluster, with an
/// application's credentials from this (apps) cluster.
pub(super) async fn postgres_reachable_from_apps(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = ctx.repo()?;
    let (dbs, _) = app_databases(repo, &ctx.cluster)?;
    let pick = dbs.iter().find_map(|d| d.consumers.iter().find(|c| c.cluster == ctx.cluster).map(|c| (d, c)));
    let Some((db, consumer)) = pick else {
        return Ok(Outcome::fail(format!("cluster {}", ctx.cluster), "an application Secret with database credentials on this cluster", "none rendered"));
    };
    connect_as(&ctx, db, consumer, None).await.map(Outcome::pass)
}

// ---------------------------------------------------------------------------
// 7.4 Dragonfly
// ---------------------------------------------------------------------------

/// The Dragonfly instance of the repository: (service, namespace, password Secret, key).
fn dragonfly_of(repo: &GitopsRepo) -> Result<(String, Arc<Rendered>, RenderedObject), Outcome> {
    let (cluster, r, ds) = home_of(repo, "dragonflydb.io", "Dragonfly")?;
    Ok((cluster, r, ds[0].clone()))
}

async fn redis_ping(addr: SocketAddr, password: &str) -> Result<String, Failure> {
    let mut conn = redis_conn(addr, password).await?;
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.map_err(|e| Failure::redis(&e).redacted(password))?;
    Ok(pong)
}

/// From the apps cluster: the ClusterMesh name answers PING with the password an application
/// on the apps cluster holds.
pub(super) async fn dragonfly_reachable_from_apps(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = ctx.repo()?;
    let (_, r, d) = dragonfly_of(repo)?;
    let secret = d.str("/spec/authentication/passwordFromSecret/name").unwrap_or("");
    let ns = d.namespace().unwrap_or("default");
    let svc = d.str("/spec/serviceSpec/name").unwrap_or(d.name());
    let host = service_host(svc, ns, true);
    let addr = ctx.resolve(&host, REDIS_PORT).await?;
    let (object, password) = if secret.is_empty() {
        (format!("{host}:{REDIS_PORT} (no authentication configured)"), String::new())
    } else {
        let found = consumers(repo, &r, Some(ns), secret, &ctx.cluster)?;
        let Some(c) = found.into_iter().find(|c| c.cluster == ctx.cluster) else {
            return Ok(Outcome::fail(format!("cluster {}", ctx.cluster), format!("an application Secret with the Dragonfly password (item of {secret})"), "none rendered"));
        };
        (format!("{host}:{REDIS_PORT} (password from {})", c.describe()), c.password(&ctx).await?)
    };
    let pinged = redis_ping(addr, &password).await;
    if pinged.is_ok() {
        ctx.reached(addr);
    }
    Ok(match pinged {
        Ok(p) if p == "PONG" => Outcome::pass(format!("{object}: AUTH + PING -> PONG")),
        Ok(p) => Outcome::fail(object, "PING -> PONG", p),
        Err(e) => ctx.exchange_failed(addr, object, "AUTH + PING -> PONG", e),
    })
}

/// SET / GET / DEL on a unique key `platform-acceptance:<random>` with a 60 s expiry: the only
/// write, disposable by construction (deleted at once, expires on its own otherwise).
pub(super) async fn dragonfly_redis_commands(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let r = rendered(&ctx)?;
    let Some(d) = objects(&r, "dragonflydb.io", "Dragonfly").into_iter().next().cloned() else {
        return Ok(Outcome::fail(format!("cluster {}", ctx.cluster), "a Dragonfly rendered", "none"));
    };
    let ns = d.namespace().unwrap_or("default").to_string();
    let live = objects::require(client, &DRAGONFLY, Some(&ns), d.name()).await?;
    let svc = live.str("/spec/serviceSpec/name").unwrap_or(d.name()).to_string();
    let host = service_host(&svc, &ns, false);
    let (auth, password) = match (live.str("/spec/authentication/passwordFromSecret/name"), live.str("/spec/authentication/passwordFromSecret/key")) {
        (Some(name), key) => {
            let object = format!("Secret {ns}/{name} (cluster {})", ctx.cluster);
            let data = secret_data(client, &ctx.cluster, &ns, name).await?;
            (format!("password from {object}"), take(&data, key.unwrap_or("password"), &object)?)
        }
        _ => ("no authentication configured".to_string(), String::new()),
    };
    let addr = ctx.resolve(&host, REDIS_PORT).await?;
    let object = format!("{host}:{REDIS_PORT} ({auth})");
    let key = format!("platform-acceptance:{}", crate::random::token(16));
    let value = crate::random::token(24);
    let pw = password.as_str();
    let command = |name: &'static str| {
        move |e: redis::RedisError| {
            let f = Failure::redis(&e);
            Failure { line: format!("{name}: {}", f.line), ..f }.redacted(pw)
        }
    };
    let result: Result<(), Failure> = async {
        let mut conn = redis_conn(addr, &password).await?;
        let ok: String = redis::cmd("SET").arg(&key).arg(&value).arg("EX").arg(60).query_async(&mut conn).await.map_err(command("SET"))?;
        let got: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut conn).await.map_err(command("GET"))?;
        let deleted: i64 = redis::cmd("DEL").arg(&key).query_async(&mut conn).await.map_err(command("DEL"))?;
        if ok != "OK" || got.as_deref() != Some(value.as_str()) || deleted != 1 {
            return Err(Failure::answer(format!("SET -> {ok}, GET -> {}, DEL -> {deleted}", if got.as_deref() == Some(value.as_str()) { "the value set" } else { "another value" })));
        }
        Ok(())
    }
    .await;
    if result.is_ok() {
        ctx.reached(addr);
    }
    Ok(match result {
        Ok(()) => Outcome::pass(format!("{object}: SET {key} EX 60 -> OK, GET -> the value, DEL -> 1")),
        Err(e) => ctx.exchange_failed(addr, object, "AUTH, SET/GET/DEL of a unique key", e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_come_out_of_connection_uris() {
        assert_eq!(uri_password("postgres://mattermost:a%2Fb%3Dc@h:5432/db?x=1").as_deref(), Some("a/b=c"));
        assert_eq!(uri_password("postgres://h:5432/db"), None);
    }

    /// A Redis server that answers every command (AUTH, HELLO, CLIENT SETINFO, PING) after
    /// `delay`, as one reached through a relay that is still dialling does.
    async fn slow_redis(delay: Duration) -> SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            while let Ok(n @ 1..) = s.read(&mut buf).await {
                tokio::time::sleep(delay).await;
                let text = String::from_utf8_lossy(&buf[..n]).to_ascii_uppercase();
                let commands = text.matches("*").count().max(1);
                let reply = if text.contains("PING") { "+PONG\r\n" } else { "+OK\r\n" };
                for _ in 0..commands {
                    if s.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_slow_first_answer_within_the_timeout_is_an_answer() {
        let addr = slow_redis(Duration::from_millis(1500)).await;
        assert_eq!(redis_ping(addr, "secret").await.map_err(|e| e.line).as_deref(), Ok("PONG"));
    }

    #[tokio::test]
    async fn silence_beyond_the_timeout_is_no_answer() {
        let addr = slow_redis(TIMEOUT + Duration::from_secs(2)).await;
        let e = redis_ping(addr, "secret").await.unwrap_err();
        assert!(e.unreachable && e.silent, "{}", e.line);
    }
}
