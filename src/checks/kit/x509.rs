//! Verifying an issued certificate the way a TLS client would, with `x509-parser`
//! (signatures checked with `ring`): the leaf names the requested DNS name, is valid
//! now, every link of the chain is signed by the next, the last one by the trust
//! anchor when one is known, and the private key matches the leaf's public key.
//! Works on PEM bytes only; never prints key material.
//!
//! ```
//! use platform_acceptance::checks::kit::x509::{verify_issued, Issued};
//! use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
//!
//! let ca_key = KeyPair::generate().unwrap();
//! let mut ca = CertificateParams::new(vec![]).unwrap();
//! ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
//! let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
//! let leaf_key = KeyPair::generate().unwrap();
//! let leaf = CertificateParams::new(vec!["t.example.org".into()]).unwrap()
//!     .signed_by(&leaf_key, &Issuer::from_params(&ca, &ca_key)).unwrap();
//! let (leaf_pem, key_pem) = (leaf.pem(), leaf_key.serialize_pem());
//! let issued = Issued { tls_crt: leaf_pem.as_bytes(), tls_key: key_pem.as_bytes(), anchor: Some(ca_pem.as_bytes()) };
//! let facts = verify_issued(&issued, "t.example.org", time::OffsetDateTime::now_utc()).unwrap();
//! assert!(facts.anchored);
//! ```

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;

/// The PEM inputs: the Secret's `tls.crt` (leaf first, then intermediates) and
/// `tls.key`, and the issuer's CA certificate when the issuer has one.
pub struct Issued<'a> {
    pub tls_crt: &'a [u8],
    pub tls_key: &'a [u8],
    pub anchor: Option<&'a [u8]>,
}

/// What was verified, for the evidence line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub subject: String,
    pub issuer: String,
    pub not_after: String,
    /// Certificates in `tls.crt`.
    pub chain_len: usize,
    /// The chain ends in a signature by the given anchor (false: verified link by link only).
    pub anchored: bool,
}

/// Why the certificate does not hold: which property, expected and observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defect {
    pub property: &'static str,
    pub expected: String,
    pub observed: String,
}

fn defect(property: &'static str, expected: impl Into<String>, observed: impl Into<String>) -> Defect {
    Defect { property, expected: expected.into(), observed: observed.into() }
}

fn pems(bytes: &[u8], label: &'static str) -> Result<Vec<Pem>, Defect> {
    let pems: Vec<Pem> = Pem::iter_from_buffer(bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| defect(label, "PEM certificates", format!("unreadable PEM ({e})")))?;
    if pems.is_empty() {
        return Err(defect(label, "at least one PEM certificate", "none"));
    }
    Ok(pems)
}

fn parse<'a>(pem: &'a Pem, label: &'static str) -> Result<X509Certificate<'a>, Defect> {
    X509Certificate::from_der(&pem.contents).map(|(_, c)| c).map_err(|e| defect(label, "a DER X.509 certificate", format!("unparsable ({e})")))
}

fn dns_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else { return vec![] };
    san.value.general_names.iter().filter_map(|n| if let GeneralName::DNSName(d) = n { Some(d.to_string()) } else { None }).collect()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// Verifies `issued` for `dns_name` at `now`.
pub fn verify_issued(issued: &Issued<'_>, dns_name: &str, now: OffsetDateTime) -> Result<Verified, Defect> {
    let chain_pems = pems(issued.tls_crt, "tls.crt")?;
    let chain = chain_pems.iter().map(|p| parse(p, "tls.crt")).collect::<Result<Vec<_>, _>>()?;
    let leaf = &chain[0];

    let names = dns_names(leaf);
    if !names.iter().any(|n| n.eq_ignore_ascii_case(dns_name)) {
        return Err(defect("subjectAltName", format!("DNS name {dns_name}"), if names.is_empty() { "no DNS names".into() } else { names.join(", ") }));
    }
    let (from, until) = (leaf.validity().not_before.to_datetime(), leaf.validity().not_after.to_datetime());
    if now < from || now > until {
        return Err(defect("validity", format!("{} within notBefore..notAfter", rfc3339(now)), format!("{} .. {}", rfc3339(from), rfc3339(until))));
    }
    for (i, pair) in chain.windows(2).enumerate() {
        pair[0].verify_signature(Some(pair[1].public_key())).map_err(|e| {
            defect("chain", format!("certificate {} of tls.crt signed by certificate {} ({})", i + 1, i + 2, pair[1].subject()), format!("signature does not verify ({e})"))
        })?;
    }
    let last = chain.last().expect("non-empty chain");
    let anchored = match issued.anchor {
        Some(anchor) => {
            let anchor_pems = pems(anchor, "issuer CA")?;
            let ca = parse(&anchor_pems[0], "issuer CA")?;
            if last.as_raw() != ca.as_raw() {
                last.verify_signature(Some(ca.public_key()))
                    .map_err(|e| defect("chain", format!("signed by the issuer's CA ({})", ca.subject()), format!("issued by {}; signature does not verify ({e})", last.issuer())))?;
            }
            true
        }
        None if last.subject() == last.issuer() => {
            last.verify_signature(None).map_err(|e| defect("chain", "a valid self-signature", format!("does not verify ({e})")))?;
            true
        }
        None => false,
    };

    let key_pem = std::str::from_utf8(issued.tls_key).map_err(|_| defect("tls.key", "a PEM private key", "not UTF-8"))?;
    let key = rcgen::KeyPair::from_pem(key_pem).map_err(|e| defect("tls.key", "a PKCS#8 PEM private key", format!("unreadable ({e})")))?;
    use rcgen::PublicKeyData;
    if key.subject_public_key_info() != leaf.public_key().raw {
        return Err(defect("tls.key", "the private key of the certificate's public key", "a different key"));
    }
    Ok(Verified {
        subject: leaf.subject().to_string(),
        issuer: leaf.issuer().to_string(),
        not_after: rfc3339(until),
        chain_len: chain.len(),
        anchored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair};

    struct Ca {
        params: CertificateParams,
        key: KeyPair,
        pem: String,
    }

    fn ca(cn: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![]).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    fn leaf(ca: &Ca, name: &str, days: (i64, i64)) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
        let now = OffsetDateTime::now_utc();
        p.not_before = now + time::Duration::days(days.0);
        p.not_after = now + time::Duration::days(days.1);
        let cert = p.signed_by(&key, &Issuer::from_params(&ca.params, &ca.key)).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn check(crt: &str, key: &str, anchor: Option<&str>, name: &str) -> Result<Verified, Defect> {
        let issued = Issued { tls_crt: crt.as_bytes(), tls_key: key.as_bytes(), anchor: anchor.map(str::as_bytes) };
        verify_issued(&issued, name, OffsetDateTime::now_utc())
    }

    #[test]
    fn a_certificate_of_the_issuers_ca_for_the_name_verifies() {
        let ca = ca("issuer-ca");
        let (crt, key) = leaf(&ca, "pa-x.example.org", (-1, 30));
        let v = check(&crt, &key, Some(&ca.pem), "pa-x.example.org").unwrap();
        assert!(v.anchored);
        assert_eq!(v.chain_len, 1);
        assert!(v.issuer.contains("issuer-ca"), "{}", v.issuer);
        // a chain that carries the CA itself verifies as well
        assert!(check(&format!("{crt}{}", ca.pem), &key, Some(&ca.pem), "pa-x.example.org").unwrap().anchored);
        // without an anchor the link-by-link verification holds, unanchored
        assert!(!check(&crt, &key, None, "pa-x.example.org").unwrap().anchored);
    }

    #[test]
    fn each_broken_property_is_named() {
        let (ca, other) = (ca("issuer-ca"), ca("someone-else"));
        let (crt, key) = leaf(&ca, "pa-x.example.org", (-1, 30));
        let d = check(&crt, &key, Some(&ca.pem), "other.example.org").unwrap_err();
        assert_eq!((d.property, d.observed.as_str()), ("subjectAltName", "pa-x.example.org"));
        let d = check(&crt, &key, Some(&other.pem), "pa-x.example.org").unwrap_err();
        assert_eq!(d.property, "chain");
        assert!(d.expected.contains("someone-else") && d.observed.contains("issued by CN=issuer-ca"), "{d:?}");
        let (_, stranger_key) = leaf(&ca, "pa-x.example.org", (-1, 30));
        assert_eq!(check(&crt, &stranger_key, Some(&ca.pem), "pa-x.example.org").unwrap_err().property, "tls.key");
        let (expired, key2) = leaf(&ca, "pa-x.example.org", (-30, -1));
        assert_eq!(check(&expired, &key2, Some(&ca.pem), "pa-x.example.org").unwrap_err().property, "validity");
        assert_eq!(check("not pem", &key, None, "pa-x.example.org").unwrap_err().property, "tls.crt");
    }
}
