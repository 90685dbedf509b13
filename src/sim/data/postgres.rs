//! PostgreSQL, the stand-in for the CNPG cluster: `initdb` once (superuser password
//! from the vault, never on a command line), the server on loopback as the
//! `postgres` system user, then the roles and databases CNPG's `managed.roles` and
//! `Database` reconcilers would leave.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use super::supervise::{SCOPE, running, wait_ready};
use super::{DataPlan, INSTALL_HINT, POSTGRES_PORT, Vault, shared_dir};
use crate::sim::{SimConfig, process, write_private};

/// Highest `/usr/lib/postgresql/<ver>/bin` holding `postgres` and `initdb`.
pub fn postgres_bin_dir() -> Result<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let v: u32 = e.file_name().to_str()?.parse().ok()?;
                    let bin = e.path().join("bin");
                    (bin.join("postgres").is_file() && bin.join("initdb").is_file()).then_some((v, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().map(|(_, p)| p).ok_or_else(|| anyhow!("postgresql not installed: {INSTALL_HINT}"))
}

/// uid/gid of the `postgres` system user, created if missing (PostgreSQL refuses root).
fn postgres_user() -> Result<(u32, u32)> {
    let lookup = || -> Option<(u32, u32)> {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        let line = passwd.lines().find(|l| l.starts_with("postgres:"))?;
        let f: Vec<&str> = line.split(':').collect();
        Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
    };
    if let Some(ids) = lookup() {
        return Ok(ids);
    }
    let st = Command::new("useradd")
        .args(["--system", "--user-group", "--home-dir", "/var/lib/postgresql", "--shell", "/bin/false", "postgres"])
        .status()
        .context("useradd postgres")?;
    if !st.success() {
        bail!("could not create the postgres system user (useradd exited {st})");
    }
    lookup().ok_or_else(|| anyhow!("postgres user missing after useradd"))
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).with_context(|| format!("chown {}", path.display()))
}

/// PostgreSQL's user must be able to traverse to the data directory.
fn make_traversable(dir: &Path) -> Result<()> {
    let mut p = dir.to_path_buf();
    loop {
        if let Ok(meta) = std::fs::metadata(&p) {
            let mode = meta.permissions().mode();
            if mode & 0o001 == 0 {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode | 0o011))
                    .with_context(|| format!("chmod o+x {}", p.display()))?;
            }
        }
        if !p.pop() || p.as_os_str().is_empty() {
            break;
        }
    }
    Ok(())
}

async fn pg_connect(user: &str, password: &str, db: &str) -> Result<tokio_postgres::Client> {
    let mut c = tokio_postgres::Config::new();
    c.host("127.0.0.1").port(POSTGRES_PORT).user(user).password(password).dbname(db);
    c.connect_timeout(Duration::from_secs(3));
    let (client, conn) = c.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

pub(super) async fn start_postgres(cfg: &SimConfig, plan: &DataPlan, vault: &Vault) -> Result<()> {
    let bin = postgres_bin_dir()?;
    let (uid, gid) = postgres_user()?;
    let data = shared_dir(cfg).join("postgres");
    let superpw = vault.postgres_superuser_password()?.to_string();
    let rec = match running(cfg, "postgres") {
        Some(rec) => rec,
        None => {
            make_traversable(&shared_dir(cfg))?;
            std::fs::create_dir_all(&data)?;
            chown(&data, uid, gid)?;
            std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))?;
            if !data.join("PG_VERSION").exists() {
                let pwfile = shared_dir(cfg).join(".pg-initdb-pw");
                write_private(&pwfile, superpw.as_bytes())?;
                chown(&pwfile, uid, gid)?;
                let out = Command::new(bin.join("initdb"))
                    .arg("-D")
                    .arg(&data)
                    .args(["-U", "postgres", "--auth=scram-sha-256", "-E", "UTF8", "--locale=C"])
                    .arg(format!("--pwfile={}", pwfile.display()))
                    .uid(uid)
                    .gid(gid)
                    .env("HOME", &data)
                    .current_dir(&data)
                    .output()
                    .context("running initdb")?;
                let _ = std::fs::remove_file(&pwfile);
                if !out.status.success() {
                    bail!(
                        "initdb failed ({}):\n{}",
                        out.status,
                        vault.redact(&String::from_utf8_lossy(&out.stderr))
                    );
                }
            }
            let mut cmd = Command::new(bin.join("postgres"));
            cmd.arg("-D").arg(&data);
            for setting in [
                "listen_addresses=127.0.0.1".to_string(),
                format!("port={POSTGRES_PORT}"),
                "unix_socket_directories=".into(),
                "password_encryption=scram-sha-256".into(),
                // never echo a failing statement (it may carry a password)
                "log_min_error_statement=panic".into(),
                "max_connections=100".into(),
                "shared_buffers=16MB".into(),
                // a simulation: durability is not the point
                "fsync=off".into(),
                "synchronous_commit=off".into(),
                "full_page_writes=off".into(),
            ] {
                cmd.arg("-c").arg(setting);
            }
            cmd.uid(uid).gid(gid).env("HOME", &data).current_dir(&data);
            process::spawn_detached(&cfg.state_dir, SCOPE, "postgres", &mut cmd, &[POSTGRES_PORT])?
        }
    };
    wait_ready(cfg, &rec, Duration::from_secs(60), || async {
        pg_connect("postgres", &superpw, "postgres").await.map(|_| ())
    })
    .await?;
    provision_postgres(plan, vault, &superpw).await
}

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Roles with their passwords and databases with their owners, as CNPG's
/// `managed.roles` and `Database` reconcilers would leave them.
async fn provision_postgres(plan: &DataPlan, vault: &Vault, superpw: &str) -> Result<()> {
    let admin = pg_connect("postgres", superpw, "postgres").await.context("postgres admin connection")?;
    for role in plan.all_roles() {
        let pw = vault.role_password(&role)?;
        let exists = !admin.query("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role]).await?.is_empty();
        let verb = if exists { "ALTER" } else { "CREATE" };
        admin
            .batch_execute(&format!("{verb} ROLE {} WITH LOGIN PASSWORD {}", ident(&role), literal(pw)))
            .await
            .map_err(|e| anyhow!("{verb} ROLE {role} failed: {}", vault.redact(&e.to_string())))?;
    }
    for (db, owner) in plan.all_databases() {
        let exists = !admin.query("SELECT 1 FROM pg_database WHERE datname = $1", &[&db]).await?.is_empty();
        if !exists {
            // Database spec in the fixture: encoding UTF8, locale C, template0.
            admin
                .batch_execute(&format!(
                    "CREATE DATABASE {} OWNER {} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0",
                    ident(&db),
                    ident(&owner)
                ))
                .await
                .with_context(|| format!("CREATE DATABASE {db}"))?;
        } else {
            admin.batch_execute(&format!("ALTER DATABASE {} OWNER TO {}", ident(&db), ident(&owner))).await?;
        }
    }
    Ok(())
}
