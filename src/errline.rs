//! Library errors as one readable line before they reach a report: what failed, the
//! status and code the server gave, the endpoint, and the cause chain. Never a Debug dump
//! (an SDK's Debug carries headers, bodies and request extensions), never credentials:
//! URLs lose their user info and query string (a presigned URL's signature lives there).
//!
//! ```
//! use platform_acceptance::errline::{chain, strip_url_secrets};
//! let e = std::io::Error::other("connect to https://user:pw@s3.example.org/b?X-Amz-Signature=abc failed\n  retrying");
//! assert_eq!(chain(&e), "connect to https://s3.example.org/b failed retrying");
//! assert_eq!(strip_url_secrets("http://10.0.0.1:9000/x?token=1"), "http://10.0.0.1:9000/x");
//! ```

use std::error::Error;
use std::sync::LazyLock;

use regex::Regex;

/// Longest line [`chain`] returns; longer text is cut with "…".
pub const MAX_LINE: usize = 400;

static URL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"(?i)\b([a-z][a-z0-9+.-]*://)(?:[^/@\s"'<>]*@)?([^\s"'<>?#)]*)(?:[?#][^\s"'<>)]*)?"#).expect("static regex"));

/// `text` with every URL's user info and query string removed.
pub fn strip_url_secrets(text: &str) -> String {
    URL.replace_all(text, "$1$2").into_owned()
}

/// One line, at most [`MAX_LINE`] bytes (cut on a character boundary).
fn one_line(text: &str) -> String {
    let mut line = strip_url_secrets(&text.split_whitespace().collect::<Vec<_>>().join(" "));
    if line.len() > MAX_LINE {
        let mut cut = MAX_LINE;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push('…');
    }
    line
}

/// The error and its sources joined with ": ", a source left out when the text before it
/// already says it; whitespace collapsed, URL secrets removed, bounded.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![];
    let mut next: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        // rustls ends some messages with a link to its manual: not part of what happened.
        let text = text.split(": https://docs.rs/").next().unwrap_or_default().trim();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(text)) {
            parts.push(text.to_string());
        }
        next = err.source();
    }
    one_line(&parts.join(": "))
}

/// A Kubernetes client error: `403 Forbidden: <message>` for an API status, else the cause chain.
pub fn kube(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => {
            let reason = if s.reason.is_empty() { String::new() } else { format!(" {}", s.reason) };
            one_line(&format!("{}{reason}: {}", s.code, s.message))
        }
        other => chain(other),
    }
}

/// An S3 operation's error: `S3 GetObject on http://127.0.0.1:9000/bucket: 404 NoSuchKey (message)`.
/// `endpoint` names where it went (endpoint URL and bucket); headers and bodies stay out.
pub fn s3<E>(operation: &str, endpoint: &str, e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + Error + 'static,
{
    use aws_sdk_s3::error::{ProvideErrorMetadata as _, SdkError};
    let what = match e {
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            let code = e.code().unwrap_or("no error code");
            let message = e.message().filter(|m| !m.is_empty()).map(|m| format!(" ({m})")).unwrap_or_default();
            format!("{status} {code}{message}")
        }
        SdkError::TimeoutError(_) => "timed out".to_string(),
        SdkError::DispatchFailure(d) => {
            let kind = match d.as_connector_error() {
                Some(c) if c.is_timeout() => "timed out",
                Some(c) if c.is_io() => "connection failed",
                _ => "request not sent",
            };
            match e.source() {
                Some(cause) => format!("{kind}: {}", chain(cause)),
                None => kind.to_string(),
            }
        }
        SdkError::ResponseError(r) => format!("unreadable response (HTTP {})", r.raw().status().as_u16()),
        SdkError::ConstructionFailure(_) => "request could not be built".to_string(),
        other => chain(other),
    };
    one_line(&format!("S3 {operation} on {endpoint}: {what}"))
}

/// A PostgreSQL client error: `SQLSTATE message` from the server, else the cause chain.
pub fn postgres(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => one_line(&format!("{} {}", d.code().code(), d.message())),
        None => chain(e),
    }
}

/// A Redis client error: kind, server code and text, one line.
pub fn redis(e: &redis::RedisError) -> String {
    chain(e)
}

/// An HTTP client error: what failed (connect, timeout, status) and where, without the query string.
pub fn http(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_status() {
        "error status"
    } else {
        "request failed"
    };
    let at = e.url().map(|u| format!(" {}://{}{}", u.scheme(), u.host_str().unwrap_or(""), u.port().map(|p| format!(":{p}")).unwrap_or_default())).unwrap_or_default();
    let status = e.status().map(|s| format!(" {}", s.as_u16())).unwrap_or_default();
    let cause = e.source().map(|c| format!(": {}", chain(c))).unwrap_or_default();
    one_line(&format!("HTTP {what}{status}{at}{cause}"))
}

/// A failed exchange with a service, as one line, and whether the service was **not
/// reached** (connection refused, reset or dropped, no answer in time) rather than
/// answering with an error (a status, an SQLSTATE, a Redis error reply). A check turns
/// the first into an Error (nothing was evaluated) and the second into a Fail. `silent`:
/// not reached because nothing answered in time (what costs a run its time).
///
/// ```
/// use platform_acceptance::errline::Failure;
/// let f = Failure::no_answer("connect timed out");
/// assert!(f.unreachable && f.silent);
/// assert!(!Failure::unreachable("connection refused").silent);
/// assert!(!Failure::answer("28P01 password authentication failed").unreachable);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub line: String,
    pub unreachable: bool,
    pub silent: bool,
}

impl Failure {
    /// The service answered, with an error.
    pub fn answer(line: impl Into<String>) -> Failure {
        Failure { line: line.into(), unreachable: false, silent: false }
    }

    /// The service was not reached: refused, reset, dropped.
    pub fn unreachable(line: impl Into<String>) -> Failure {
        Failure { line: line.into(), unreachable: true, silent: false }
    }

    /// Nothing answered in time.
    pub fn no_answer(line: impl Into<String>) -> Failure {
        Failure { line: line.into(), unreachable: true, silent: true }
    }

    /// The same failure with `secret` replaced by `***` in its line.
    pub fn redacted(mut self, secret: &str) -> Failure {
        if !secret.is_empty() {
            self.line = self.line.replace(secret, "***");
        }
        self
    }

    /// An S3 SDK error ([`s3`]'s line): a timeout, a request that never got an answer or
    /// an unreadable one is unreachable; a status with an error code is an answer.
    pub fn s3<E>(operation: &str, endpoint: &str, e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Failure
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + Error + 'static,
    {
        use aws_sdk_s3::error::SdkError;
        let unreachable = matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_));
        let silent = match e {
            SdkError::TimeoutError(_) => true,
            SdkError::DispatchFailure(d) => d.as_connector_error().is_some_and(|c| c.is_timeout()),
            _ => false,
        };
        Failure { line: s3(operation, endpoint, e), unreachable, silent }
    }

    /// A PostgreSQL client error: the server's SQLSTATE is an answer; a connection that
    /// could not be made or was closed is unreachable.
    pub fn postgres(e: &tokio_postgres::Error) -> Failure {
        let io = std::iter::successors(e.source(), |c| (*c).source()).find_map(|c| c.downcast_ref::<std::io::Error>());
        let silent = io.is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
        Failure { line: postgres(e), unreachable: e.as_db_error().is_none() && (io.is_some() || e.is_closed()), silent }
    }

    /// An HTTP client error ([`http`]'s line): no response at all is unreachable (a
    /// timeout silent); an error status is an answer.
    pub fn http(e: &reqwest::Error) -> Failure {
        Failure { line: http(e), unreachable: !e.is_status(), silent: e.is_timeout() }
    }

    /// A Redis client error: refused, dropped, timed out or any I/O error is unreachable.
    pub fn redis(e: &redis::RedisError) -> Failure {
        let unreachable = e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() || e.is_timeout();
        Failure { line: redis(e), unreachable, silent: e.is_timeout() }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An S3 endpoint on 127.0.0.1 answering every request with `status` and `body` (and a header holding a secret).
    async fn fake_s3(status: u16, body: &'static str) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    let mut seen = vec![];
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/xml\r\nx-amz-request-id: SECRET-HEADER-VALUE\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        format!("http://{addr}")
    }

    fn client(endpoint: &str) -> aws_sdk_s3::Client {
        let creds = aws_sdk_s3::config::Credentials::new("AKIDPLANTED", "planted-secret-key", None, None, "test");
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(creds)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    fn assert_clean(line: &str) {
        assert!(!line.contains('\n'), "{line}");
        assert!(line.len() <= MAX_LINE + 4, "{} bytes: {line}", line.len());
        for secret in ["SECRET-HEADER-VALUE", "AKIDPLANTED", "planted-secret-key", "X-Amz", "Signature", "{ ", "Some("] {
            assert!(!line.contains(secret), "{secret:?} in {line}");
        }
    }

    #[tokio::test]
    async fn an_s3_service_error_is_status_code_and_endpoint() {
        let body = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><RequestId>SECRET-HEADER-VALUE</RequestId></Error>";
        let url = fake_s3(404, body).await;
        let e = client(&url).get_object().bucket("velero").key("backups/x").send().await.unwrap_err();
        let line = s3("GetObject", &format!("{url}/velero"), &e);
        assert_eq!(line, format!("S3 GetObject on {url}/velero: 404 NoSuchKey (The specified key does not exist.)"));
        assert_clean(&line);
        // What the report used to carry: the SDK's Debug, kilobytes with the response headers.
        assert!(format!("{e:?}").contains("SECRET-HEADER-VALUE"));
    }

    #[tokio::test]
    async fn an_s3_error_without_a_body_keeps_the_status() {
        let url = fake_s3(403, "").await;
        let e = client(&url).list_objects_v2().bucket("cnpg").send().await.unwrap_err();
        let line = s3("ListObjectsV2", &format!("{url}/cnpg"), &e);
        assert!(line.starts_with(&format!("S3 ListObjectsV2 on {url}/cnpg: 403 ")), "{line}");
        assert_clean(&line);
    }

    #[tokio::test]
    async fn an_unreachable_s3_endpoint_is_a_connection_failure() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        let e = client(&url).list_objects_v2().bucket("b").send().await.unwrap_err();
        let line = s3("ListObjectsV2", &format!("{url}/b"), &e);
        assert!(line.starts_with(&format!("S3 ListObjectsV2 on {url}/b: connection failed: ")), "{line}");
        assert!(line.to_lowercase().contains("refused"), "{line}");
        assert_clean(&line);
    }

    #[tokio::test]
    async fn an_answer_is_a_finding_and_no_answer_is_not() {
        // S3: a status with a code is an answer; a refused connection is not; silence is a timeout.
        let url = fake_s3(403, "").await;
        let e = client(&url).list_objects_v2().bucket("cnpg").send().await.unwrap_err();
        assert!(!Failure::s3("ListObjectsV2", &url, &e).unreachable);
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let e = client(&format!("http://{closed}")).list_objects_v2().bucket("b").send().await.unwrap_err();
        let f = Failure::s3("ListObjectsV2", "b", &e);
        assert!(f.unreachable && !f.silent, "{f:?}");
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let quick = aws_sdk_s3::config::timeout::TimeoutConfig::builder().operation_timeout(std::time::Duration::from_millis(300)).build();
        let conf = client(&format!("http://{}", silent.local_addr().unwrap())).config().to_builder().timeout_config(quick).build();
        let e = aws_sdk_s3::Client::from_conf(conf).list_objects_v2().bucket("b").send().await.unwrap_err();
        let f = Failure::s3("ListObjectsV2", "b", &e);
        assert!(f.unreachable && f.silent, "{f:?}");
        assert!(f.line.ends_with("timed out"), "{f:?}");

        // PostgreSQL and Redis: nothing listening is unreachable, not silent.
        let mut pg = tokio_postgres::Config::new();
        pg.host("127.0.0.1").port(closed.port()).user("u").dbname("d");
        let Err(e) = pg.connect(tokio_postgres::NoTls).await else { panic!("nothing listens on {closed}") };
        let f = Failure::postgres(&e);
        assert!(f.unreachable && !f.silent, "{f:?}");
        let e = redis::Client::open(format!("redis://{closed}")).unwrap().get_multiplexed_async_connection().await.unwrap_err();
        let f = Failure::redis(&e).redacted("pw");
        assert!(f.unreachable && !f.silent, "{f:?}");
        assert!(!Failure::answer("WRONGPASS invalid username-password pair").unreachable);
    }

    #[tokio::test]
    async fn kube_and_http_errors_are_one_line_without_queries() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let client = kube::Client::try_from(kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap())).unwrap();
        let e = client.apiserver_version().await.unwrap_err();
        let line = kube(&e);
        assert!(line.contains("Connection refused") || line.contains("connection refused"), "{line}");
        assert_clean(&line);
        let status = kube::Error::Api(kube::core::Status::failure("nodes is forbidden: User \"x\" cannot list", "Forbidden").with_code(403).boxed());
        assert_eq!(kube(&status), "403 Forbidden: nodes is forbidden: User \"x\" cannot list");

        let e = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/api/v1/query?query=up&token=planted-secret-key")).send().await.unwrap_err();
        let line = http(&e);
        assert!(line.starts_with(&format!("HTTP connection failed http://127.0.0.1:{port}: ")), "{line}");
        assert_clean(&line);
    }

    #[test]
    fn chains_drop_repeats_and_are_bounded() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "request failed: {}", self.0)
            }
        }
        impl Error for Outer {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        assert_eq!(chain(&Outer(std::io::Error::other("reset"))), "request failed: reset");
        let tls = std::io::Error::other("peer closed connection without sending TLS close_notify: https://docs.rs/rustls/latest/rustls/manual/_03_howto/index.html");
        assert_eq!(chain(&Outer(tls)), "request failed: peer closed connection without sending TLS close_notify");
        let long = chain(&std::io::Error::other("é".repeat(1000)));
        assert!(long.len() <= MAX_LINE + '…'.len_utf8() && long.ends_with('…'));
        assert_eq!(strip_url_secrets("see https://a:b@h:1/p?x=1#f and http://h/q"), "see https://h:1/p and http://h/q");
    }
}
