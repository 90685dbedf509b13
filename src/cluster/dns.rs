//! Cluster service names, and one DNS question over any byte stream: how the relay asks a
//! cluster's own DNS (through a port-forward) and the simulation asks its CoreDNS (through a
//! host forward) the same way.
//!
//! ```
//! use platform_acceptance::cluster::dns::cluster_name;
//! assert_eq!(cluster_name("pg-rw.databases.svc.clusterset.local.").as_deref(), Some("pg-rw.databases.svc.clusterset.local"));
//! assert_eq!(cluster_name("pg-rw.databases.svc").as_deref(), Some("pg-rw.databases.svc.cluster.local"));
//! assert_eq!(cluster_name("10.25.11.3"), None);
//! ```

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::resolve::LookupError;

/// The fully qualified cluster name of `host`, if it is one: `…svc.cluster.local` and
/// `…svc.clusterset.local` as written, `<svc>.<ns>.svc` completed with `cluster.local`
/// (a pod's search path). Case and a trailing dot are normalised.
pub fn cluster_name(host: &str) -> Option<String> {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if h.ends_with(".svc.cluster.local") || h.ends_with(".svc.clusterset.local") {
        Some(h)
    } else if h.ends_with(".svc") && h.matches('.').count() == 2 {
        Some(format!("{h}.cluster.local"))
    } else {
        None
    }
}

/// Why a DNS question got no addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    /// The server answered with this response code (`NXDOMAIN`, `Server Failure`, …).
    Code(String),
    /// No answer: the exchange itself failed (one line).
    Transport(String),
}

impl DnsError {
    /// The same error, a failed exchange naming the server it was with.
    pub fn at(self, server: impl std::fmt::Display) -> DnsError {
        match self {
            DnsError::Transport(t) => DnsError::Transport(format!("DNS server {server}: {t}")),
            code => code,
        }
    }

    /// One line: the response code, or the failed exchange naming the server.
    pub fn into_line(self, server: impl std::fmt::Display) -> String {
        match self.at(server) {
            DnsError::Code(line) | DnsError::Transport(line) => line,
        }
    }
}

/// One A query for `name` over `stream`, a connection to a DNS server's TCP port (RFC 1035
/// §4.2.2 framing). `Ok(addresses)` (empty for NODATA), or why not. No timeout: the
/// caller bounds it.
pub async fn query_over<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, name: &str) -> Result<Vec<IpAddr>, DnsError> {
    let qname = Name::from_ascii(format!("{name}.")).map_err(|e| DnsError::Transport(format!("{name}: not a DNS name ({e})")))?;
    let mut msg = Message::new();
    // One query per connection: the id only has to differ from the last one.
    static NEXT_ID: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(1);
    msg.set_id(NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(qname, RecordType::A));
    let bytes = msg.to_vec().map_err(|e| DnsError::Transport(format!("encoding the query: {e}")))?;
    let exchange = async {
        stream.write_all(&(bytes.len() as u16).to_be_bytes()).await?;
        stream.write_all(&bytes).await?;
        stream.flush().await?;
        let len = stream.read_u16().await?;
        let mut buf = vec![0; usize::from(len)];
        stream.read_exact(&mut buf).await?;
        std::io::Result::Ok(buf)
    };
    let buf = exchange.await.map_err(|e| {
        DnsError::Transport(if e.kind() == std::io::ErrorKind::UnexpectedEof { "closed the connection without an answer".to_string() } else { e.to_string() })
    })?;
    let answer = Message::from_vec(&buf).map_err(|e| DnsError::Transport(format!("unreadable answer ({e})")))?;
    match answer.response_code() {
        ResponseCode::NoError => Ok(answer
            .answers()
            .iter()
            .filter_map(|r| match r.data() {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                _ => None,
            })
            .collect()),
        ResponseCode::NXDomain => Err(DnsError::Code("NXDOMAIN".into())),
        code => Err(DnsError::Code(code.to_string())),
    }
}

/// Why a name its cluster's DNS gave no address, the same whichever way the DNS was
/// reached: `answer` is what [`query_over`] returned. A response code (NXDOMAIN, SERVFAIL)
/// is an answer about the name; a failed exchange ([`DnsError::Transport`]) is not.
pub fn unresolved(name: &str, cluster: &str, dns_ip: IpAddr, answer: &Result<Vec<IpAddr>, DnsError>) -> Option<LookupError> {
    match answer {
        Ok(ips) if !ips.is_empty() => None,
        Ok(_) => Some(LookupError::answered(format!("{name}: no address on cluster {cluster} (its DNS at {dns_ip} has the name but no A record)"))),
        Err(DnsError::Code(c)) if c == "NXDOMAIN" => Some(LookupError::answered(format!(
            "{name} does not resolve on cluster {cluster} (NXDOMAIN from its DNS at {dns_ip}: no such Service{})",
            if name.ends_with(".svc.clusterset.local") { "Import" } else { "" }
        ))),
        Err(DnsError::Code(other)) => Some(LookupError::answered(format!("{name}: the DNS of cluster {cluster} at {dns_ip} answered {other}"))),
        Err(DnsError::Transport(t)) => Some(LookupError::not_asked(format!("{name}: no answer from the DNS of cluster {cluster}: {t}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_service_names_are_cluster_names() {
        assert_eq!(cluster_name("A.B.svc.Cluster.Local").as_deref(), Some("a.b.svc.cluster.local"));
        assert_eq!(cluster_name("minio.example.com"), None);
        assert_eq!(cluster_name("infra-k8s.example.com"), None);
        assert_eq!(cluster_name("a.svc"), None);
    }

    #[test]
    fn unresolved_names_the_cluster_its_dns_and_the_missing_object() {
        let ip: IpAddr = "10.247.0.10".parse().unwrap();
        let nx = Err(DnsError::Code("NXDOMAIN".into()));
        assert_eq!(
            unresolved("pg.db.svc.clusterset.local", "apps", ip, &nx).unwrap(),
            LookupError::answered("pg.db.svc.clusterset.local does not resolve on cluster apps (NXDOMAIN from its DNS at 10.247.0.10: no such ServiceImport)")
        );
        assert!(unresolved("pg.db.svc.cluster.local", "apps", ip, &nx).unwrap().line.ends_with("no such Service)"));
        assert!(unresolved("pg.db.svc.cluster.local", "apps", ip, &Ok(vec![])).unwrap().line.contains("no A record"));
        assert_eq!(unresolved("pg.db.svc.cluster.local", "apps", ip, &Ok(vec![ip])), None);
        // No answer at all says nothing about the name.
        let hung_up = Err(DnsError::Transport("DNS server 10.247.0.10:53: closed the connection without an answer".into()));
        let e = unresolved("pg.db.svc.cluster.local", "apps", ip, &hung_up).unwrap();
        assert!(e.not_asked, "{e}");
        assert_eq!(e.line, "pg.db.svc.cluster.local: no answer from the DNS of cluster apps: DNS server 10.247.0.10:53: closed the connection without an answer");
    }

    #[tokio::test]
    async fn a_dns_server_that_hangs_up_is_a_transport_error() {
        let (mut client, mut server) = tokio::io::duplex(512);
        // Reads the question, then hangs up without answering.
        tokio::spawn(async move {
            let len = server.read_u16().await.unwrap();
            let mut q = vec![0; usize::from(len)];
            server.read_exact(&mut q).await.unwrap();
        });
        let err = query_over(&mut client, "a.b.svc.cluster.local").await.unwrap_err();
        assert_eq!(err, DnsError::Transport("closed the connection without an answer".into()));
        assert_eq!(err.into_line("10.0.0.10:53"), "DNS server 10.0.0.10:53: closed the connection without an answer");
    }
}
