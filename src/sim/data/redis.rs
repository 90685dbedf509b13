//! Redis, the stand-in for Dragonfly (same protocol): `redis-server` on loopback with
//! the vault's password (in a 0600 config file), and the client used to reach it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};

use super::supervise::{SCOPE, running, wait_ready};
use super::{INSTALL_HINT, LOOPBACK, REDIS_PORT, Vault, shared_dir};
use crate::sim::{SimConfig, process, write_private};

/// A connection to the Redis at `addr`, authenticated with `password` (default user). Its
/// connect and each answer are bounded by 3 s (redis-rs' own defaults, 1 s and 500 ms, are
/// shorter than a loaded machine's pauses).
pub async fn redis_connection(addr: SocketAddr, password: &str) -> Result<redis::aio::MultiplexedConnection> {
    use redis::IntoConnectionInfo;
    let info = redis::ConnectionAddr::Tcp(addr.ip().to_string(), addr.port())
        .into_connection_info()?
        .set_redis_settings(redis::RedisConnectionInfo::default().set_password(password));
    let bound = Some(Duration::from_secs(3));
    let config = redis::AsyncConnectionConfig::new().set_connection_timeout(bound).set_response_timeout(bound);
    Ok(redis::Client::open(info)?.get_multiplexed_async_connection_with_config(&config).await?)
}

async fn redis_ping(password: &str) -> Result<()> {
    let mut conn = redis_connection(SocketAddr::new(LOOPBACK, REDIS_PORT), password).await?;
    let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
    if pong != "PONG" {
        bail!("PING answered {pong:?}");
    }
    Ok(())
}

pub(super) async fn start_redis(cfg: &SimConfig, vault: &Vault) -> Result<()> {
    let password = vault.redis_password()?.to_string();
    let rec = match running(cfg, "redis") {
        Some(rec) => rec,
        None => {
            let exe = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
                .into_iter()
                .find(|p| Path::new(p).is_file())
                .ok_or_else(|| anyhow!("redis-server not installed: {INSTALL_HINT}"))?;
            let dir = shared_dir(cfg).join("redis");
            std::fs::create_dir_all(&dir)?;
            let conf = dir.join("redis.conf");
            // the password goes in a 0600 file, not on the command line
            write_private(
                &conf,
                format!(
                    "bind 127.0.0.1\nport {REDIS_PORT}\nprotected-mode yes\ndaemonize no\nsave \"\"\nappendonly no\n\
                     dir {}\nrequirepass {password}\nloglevel notice\n",
                    dir.display()
                )
                .as_bytes(),
            )?;
            let mut cmd = Command::new(exe);
            cmd.arg(&conf).current_dir(&dir);
            process::spawn_detached(&cfg.state_dir, SCOPE, "redis", &mut cmd, &[REDIS_PORT])?
        }
    };
    wait_ready(cfg, &rec, Duration::from_secs(30), || redis_ping(&password)).await
}
