//! MinIO, the S3 store the platform reaches at `${MINIO_ENDPOINT}`: the server on
//! loopback with the vault's root credentials, the buckets the Flux variables name,
//! and the S3 client used to reach it.

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
