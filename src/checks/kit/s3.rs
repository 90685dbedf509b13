//! The object store as a check reaches it: endpoint URLs, an S3 client through the
//! target's resolver, listing keys, and AWS shared-credentials files. Credentials are
//! used, never shown.

use std::time::Duration;

use super::live::Live;
use crate::check::{CheckContext, Outcome};

/// An S3 endpoint URL split into scheme, host and port (`http://10.25.11.3:9000`).
pub fn endpoint_parts(url: &str) -> Option<(String, String, u16)> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let hostport = rest.split('/').next()?;
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().ok()?),
        None => (hostport.to_string(), if scheme == "http" { 80 } else { 443 }),
    };
    Some((scheme.to_string(), host, port))
}

/// An object store as a check reaches it: the client, where it is reached (for evidence)
/// and the address the connections go to.
pub struct Store {
    pub client: aws_sdk_s3::Client,
    /// `http://host:port (via addr)`.
    pub via: String,
    pub addr: std::net::SocketAddr,
}

/// An S3 client for an object store reached through `ctx.resolve` (the simulation's
/// endpoint map or DNS), path-style as MinIO wants. Credentials are used, never shown.
pub async fn s3_client(ctx: &CheckContext, endpoint_url: &str, region: &str, access_key: &str, secret_key: &str) -> Live<Store> {
    let (scheme, host, port) = endpoint_parts(endpoint_url).ok_or_else(|| Outcome::fail("S3 endpoint", "a URL like http://host:port", format!("{endpoint_url:?}")))?;
    let addr = ctx.resolve(&host, port).await?;
    let creds = aws_sdk_s3::config::Credentials::new(access_key, secret_key, None, None, "platform-acceptance");
    // TLS needs the name; plain HTTP may dial the resolved address directly.
    let url = if scheme == "https" { format!("https://{host}:{port}") } else { format!("http://{addr}") };
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(region.to_string()))
        .endpoint_url(url)
        .credentials_provider(creds)
        .force_path_style(true)
        .timeout_config(aws_sdk_s3::config::timeout::TimeoutConfig::builder().operation_timeout(Duration::from_secs(10)).build())
        .build();
    Ok(Store { client: aws_sdk_s3::Client::from_conf(conf), via: format!("{scheme}://{host}:{port} (via {addr})"), addr })
}

/// Keys and last-modified times under `prefix` (at most `max` keys). A store that refuses
/// the listing is a Fail naming `object` and `expected`; one that cannot be reached an
/// Error (see [`CheckContext::exchange_failed`]).
pub async fn list_keys(ctx: &CheckContext, store: &Store, bucket: &str, prefix: &str, max: i32, object: &str, expected: &str) -> Live<Vec<(String, i64)>> {
    let listed = store.client.list_objects_v2().bucket(bucket).prefix(prefix).max_keys(max).send().await;
    match listed {
        Ok(out) => {
            ctx.reached(store.addr);
            Ok(out.contents().iter().map(|o| (o.key().unwrap_or("").to_string(), o.last_modified().map(|t| t.secs()).unwrap_or(0))).collect())
        }
        Err(e) => Err(ctx.exchange_failed(store.addr, object, expected, crate::errline::Failure::s3("ListObjectsV2", &format!("s3://{bucket}/{prefix}"), &e))),
    }
}

/// `[default]` access keys of an AWS shared-credentials file (Velero's `cloud` key).
pub fn aws_ini_keys(text: &str) -> Option<(String, String)> {
    let mut section = String::new();
    let (mut id, mut secret) = (None, None);
    for line in text.lines().map(str::trim) {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().to_string();
            continue;
        }
        if section != "default" && !section.is_empty() {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "aws_access_key_id" => id = Some(v.trim().to_string()),
                "aws_secret_access_key" => secret = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    Some((id?, secret?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_and_endpoints_parse() {
        assert_eq!(aws_ini_keys("[default]\naws_access_key_id=A\naws_secret_access_key = B\n"), Some(("A".into(), "B".into())));
        assert_eq!(aws_ini_keys("[other]\naws_access_key_id=A\n"), None);
        assert_eq!(endpoint_parts("http://10.25.11.3:9000"), Some(("http".into(), "10.25.11.3".into(), 9000)));
        assert_eq!(endpoint_parts("https://s3.example.org/x"), Some(("https".into(), "s3.example.org".into(), 443)));
    }
}
