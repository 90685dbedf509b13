//! MinIO, the S3 store the platform reaches at `${MINIO_ENDPOINT}`: the server on
//! loopback with the vault's root credentials, the buckets the Flux variables name, the
//! users the platform's consumers log in as, and the S3 client used to reach it.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};

use super::supervise::{SCOPE, running, wait_ready};
use super::{DataPlan, LOOPBACK, MINIO_PORT, Vault, shared_dir};
use crate::sim::{SimConfig, process};

/// An S3 client for the sim's MinIO (path-style, region us-east-1).
pub fn s3_client(endpoint: SocketAddr, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    let creds = aws_sdk_s3::config::Credentials::new(access_key, secret_key, None, None, "platform-acceptance-sim");
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(format!("http://{endpoint}"))
        .credentials_provider(creds)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Where MinIO listens inside the simulation's network: the first `MINIO_ENDPOINT` that
/// names an IPv4 address and port (`http://10.25.11.3:9000` in the fixture), so the
/// repository's URL works unchanged for every process inside; else `127.0.0.1:19000`.
pub fn minio_address(plan: &DataPlan) -> SocketAddr {
    plan.minio_endpoints
        .iter()
        .find_map(|(h, p)| h.parse::<std::net::Ipv4Addr>().ok().map(|ip| SocketAddr::new(ip.into(), *p)))
        .unwrap_or(SocketAddr::new(LOOPBACK, MINIO_PORT))
}

pub(super) async fn start_minio(cfg: &SimConfig, plan: &DataPlan, vault: &Vault) -> Result<()> {
    let (user, pass) = vault.minio_root()?;
    let rec = match running(cfg, "minio") {
        Some(rec) => rec,
        None => {
            let exe = cfg.cache_dir.join("bin").join("minio");
            if !exe.is_file() {
                bail!("MinIO binary not found at {} (build it: sim/build.sh)", exe.display());
            }
            let data = shared_dir(cfg).join("minio");
            std::fs::create_dir_all(&data)?;
            let mut cmd = Command::new(exe);
            cmd.args(["server", "--quiet", "--address"])
                .arg(minio_address(plan).to_string())
                .arg("--console-address")
                .arg(format!("127.0.0.1:{}", MINIO_PORT + 1))
                .arg(&data)
                .env("MINIO_ROOT_USER", user)
                .env("MINIO_ROOT_PASSWORD", pass)
                .env("MINIO_BROWSER", "off")
                .env("MINIO_UPDATE", "off")
                .env("HOME", &data)
                .current_dir(&data);
            process::spawn_detached(&cfg.state_dir, SCOPE, "minio", &mut cmd, &[minio_address(plan).port(), MINIO_PORT + 1])?
        }
    };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(3)).build()?;
    let url = format!("http://127.0.0.1:{MINIO_PORT}/minio/health/live");
    wait_ready(cfg, &rec, Duration::from_secs(60), || {
        let http = http.clone();
        let url = url.clone();
        async move {
            let r = http.get(&url).send().await?;
            if r.status().is_success() { Ok(()) } else { bail!("health answered {}", r.status()) }
        }
    })
    .await?;
    let s3 = s3_client(SocketAddr::new(LOOPBACK, MINIO_PORT), user, pass);
    let existing: Vec<String> = s3
        .list_buckets()
        .send()
        .await
        .map_err(|e| anyhow!("{}", crate::errline::s3("ListBuckets", &format!("MinIO {LOOPBACK}:{MINIO_PORT}"), &e)))?
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_string))
        .collect();
    for b in &plan.buckets {
        if !existing.contains(b) {
            s3.create_bucket()
                .bucket(b)
                .send()
                .await
                .map_err(|e| anyhow!("{}", crate::errline::s3("CreateBucket", &format!("MinIO {LOOPBACK}:{MINIO_PORT}/{b}"), &e)))?;
        }
    }
    Ok(())
}

/// Creates (or updates) in MinIO every user of the vault's MinIO items, with MinIO's
/// canned `readwrite` policy, through its admin API (`sim/go/minio-admin`). Consumers are
/// users, not root, so their IAM policies bind them as on a real MinIO (which applies
/// bucket policies to anonymous requests only). Returns how many users there are.
pub async fn ensure_users(cfg: &SimConfig, vault: &Vault) -> Result<usize> {
    let users = vault.minio_users();
    if users.is_empty() {
        return Ok(0);
    }
    let input: String = users.iter().map(|(_, ak, sk)| format!("{ak} {sk} readwrite\n")).collect();
    admin(cfg, vault, &["users"], &input).await?;
    Ok(users.len())
}

/// Creates or replaces the canned IAM policy `name` in MinIO (`document`: an IAM policy JSON).
pub async fn set_policy(cfg: &SimConfig, name: &str, document: &str) -> Result<()> {
    let vault = Vault::load_or_create(cfg, &DataPlan::from_repo(&cfg.repo)?)?;
    admin(cfg, &vault, &["policy", name], document).await
}

/// Gives the MinIO user of vault item `item` (`velero-minio-infra`) exactly `policies`
/// (`["readwrite", "deny-writes"]`); the `healthy` scenario gives every user `readwrite` again.
pub async fn set_user_policies(cfg: &SimConfig, item: &str, policies: &[&str]) -> Result<()> {
    let vault = Vault::load_or_create(cfg, &DataPlan::from_repo(&cfg.repo)?)?;
    let (_, ak, sk) = vault.minio_users().into_iter().find(|(name, _, _)| name == item).ok_or_else(|| anyhow!("no MinIO item {item} in the vault"))?;
    admin(cfg, &vault, &["users"], &format!("{ak} {sk} {}\n", policies.join(","))).await
}

/// Runs `minio-admin 127.0.0.1:<MinIO port> ARGS` with the root credentials in its
/// environment and `input` on its standard input (nothing secret on the command line).
async fn admin(cfg: &SimConfig, vault: &Vault, args: &[&str], input: &str) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let exe = cfg.cache_dir.join("bin").join("minio-admin");
    if !exe.is_file() {
        bail!("minio-admin not found at {} (build it: sim/build.sh)", exe.display());
    }
    let (root, root_secret) = vault.minio_root()?;
    let mut child = tokio::process::Command::new(&exe)
        .arg(format!("{LOOPBACK}:{MINIO_PORT}"))
        .args(args)
        .env("MINIO_ROOT_USER", root)
        .env("MINIO_ROOT_PASSWORD", root_secret)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| anyhow!("starting {}: {e}", exe.display()))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(input.as_bytes()).await?;
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .map_err(|_| anyhow!("minio-admin {} did not finish within 60 s", args[0]))??;
    if !out.status.success() {
        bail!("minio-admin {}: {}", args[0], vault.redact(String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}
