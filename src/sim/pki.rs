//! The simulation's PKI, made with rcgen: one CA per simulation state directory (`$STATE/pki/ca.*`),
//! one service-account signing key (`sa.key`/`sa.pub`, ECDSA P-256, shared by both
//! clusters' API servers and controller-managers), and per cluster
//! (`$STATE/pki/<cluster>/`): the API server's serving certificate and client
//! certificates for the admin (`O=system:masters`), the controller-manager
//! (`CN=system:kube-controller-manager`), the scheduler (`CN=system:kube-scheduler`) and
//! the front proxy (`CN=front-proxy-client`).
//! All keys are ECDSA P-256 PKCS#8. Files are made once and reused while the state
//! directory lives (made anew, all together, when any is missing).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use super::cluster::ClusterSpec;
use super::write_private;

pub struct Pki {
    pub dir: PathBuf,
}

/// Paths of one certificate and its key.
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn at(state_dir: &Path) -> Self {
        Pki { dir: state_dir.join("pki") }
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn sa_key(&self) -> PathBuf {
        self.dir.join("sa.key")
    }
    pub fn sa_pub(&self) -> PathBuf {
        self.dir.join("sa.pub")
    }
    /// `apiserver`, `admin`, `kcm`, `scheduler` or `front-proxy-client` of a cluster.
    pub fn cert(&self, cluster: &str, name: &str) -> CertFiles {
        let d = self.dir.join(cluster);
        CertFiles { cert: d.join(format!("{name}.crt")), key: d.join(format!("{name}.key")) }
    }
    /// The signing CA of a stand-in CA ClusterIssuer (`$STATE/pki/<cluster>/issuer-<name>.*`):
    /// a self-signed ECDSA P-256 CA (`CN=<name> (platform-acceptance sim stand-in)`),
    /// made on first use and reused while the state directory lives.
    /// Returns (certificate PEM, PKCS#8 key PEM).
    pub fn issuer_ca(&self, cluster: &str, issuer: &str) -> anyhow::Result<(String, String)> {
        let files = self.cert(cluster, &format!("issuer-{issuer}"));
        if let (Ok(cert), Ok(key)) = (std::fs::read_to_string(&files.cert), std::fs::read_to_string(&files.key)) {
            return Ok((cert, key));
        }
        std::fs::create_dir_all(self.dir.join(cluster)).with_context(|| format!("create {}", self.dir.display()))?;
        let key = KeyPair::generate()?;
        let cert = ca_params(&format!("{issuer} (platform-acceptance sim stand-in, {cluster})"))?.self_signed(&key)?;
        let (cert, key) = (cert.pem(), key.serialize_pem());
        write_private(&files.key, key.as_bytes())?;
        std::fs::write(&files.cert, &cert)?;
        Ok((cert, key))
    }
    /// A serving certificate for `hosts`, signed by the simulation's CA (which the real
    /// controllers that dial these hosts trust through `SSL_CERT_FILE`), made anew on
    /// each call. Returns (certificate PEM, PKCS#8 key PEM).
    pub fn serving_cert(&self, name: &str, hosts: &[String]) -> anyhow::Result<(String, String)> {
        let ca_pem = std::fs::read_to_string(self.ca_key()).with_context(|| format!("reading {}", self.ca_key().display()))?;
        let ca_key = KeyPair::from_pem(&ca_pem)?;
        let ca_params = ca_params(CA_NAME)?;
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let sans = hosts.iter().map(|h| Ok(SanType::DnsName(h.as_str().try_into()?))).collect::<anyhow::Result<_>>()?;
        signed_leaf(dn(&format!("{name} (platform-acceptance sim stand-in)"), None), sans, ExtendedKeyUsagePurpose::ServerAuth, &issuer)
    }

    fn marker(&self) -> PathBuf {
        self.dir.join(".complete")
    }

    /// Layout version and cluster names (a new version remakes the PKI).
    fn marker_text(clusters: &[ClusterSpec]) -> String {
        format!("v2 {}", clusters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(","))
    }

    /// True if the PKI was made for exactly these clusters.
    pub fn is_complete(&self, clusters: &[ClusterSpec]) -> bool {
        let want = Self::marker_text(clusters);
        std::fs::read_to_string(self.marker()).is_ok_and(|m| m == want)
    }

    /// Makes every file that is missing: the CA and the SA key once, then each
    /// cluster's certificates. Reuses what exists (running components keep trusting it).
    pub fn ensure(&self, clusters: &[ClusterSpec]) -> anyhow::Result<()> {
        let want = Self::marker_text(clusters);
        if self.is_complete(clusters) {
            return Ok(());
        }
        // (Re)make everything: a partial PKI is not trusted.
        std::fs::remove_dir_all(&self.dir).ok();
        std::fs::create_dir_all(&self.dir).with_context(|| format!("create {}", self.dir.display()))?;
        let ca_key = KeyPair::generate()?;
        let ca_params = ca_params(CA_NAME)?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        write_private(&self.ca_key(), ca_key.serialize_pem().as_bytes())?;
        std::fs::write(self.ca_cert(), ca_cert.pem())?;
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let sa = KeyPair::generate()?;
        write_private(&self.sa_key(), sa.serialize_pem().as_bytes())?;
        std::fs::write(self.sa_pub(), sa.public_key_pem())?;
        for c in clusters {
            std::fs::create_dir_all(self.dir.join(&c.name))?;
            let mut sans: Vec<SanType> =
                vec![SanType::IpAddress(IpAddr::from([127, 0, 0, 1])), SanType::IpAddress(c.service_ip)];
            for d in [
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ] {
                sans.push(SanType::DnsName(d.try_into()?));
            }
            self.leaf(c, "apiserver", dn("kube-apiserver", None), sans, ExtendedKeyUsagePurpose::ServerAuth, &issuer)?;
            let admin = format!("{}-admin", c.name);
            self.leaf(
                c,
                "admin",
                dn(&admin, Some("system:masters")),
                vec![],
                ExtendedKeyUsagePurpose::ClientAuth,
                &issuer,
            )?;
            self.leaf(
                c,
                "kcm",
                dn("system:kube-controller-manager", None),
                vec![],
                ExtendedKeyUsagePurpose::ClientAuth,
                &issuer,
            )?;
            self.leaf(
                c,
                "scheduler",
                dn("system:kube-scheduler", None),
                vec![],
                ExtendedKeyUsagePurpose::ClientAuth,
                &issuer,
            )?;
            // The API server's identity towards aggregated API servers (and the
            // requestheader CA that fills kube-system/extension-apiserver-authentication).
            self.leaf(
                c,
                "front-proxy-client",
                dn("front-proxy-client", None),
                vec![],
                ExtendedKeyUsagePurpose::ClientAuth,
                &issuer,
            )?;
        }
        std::fs::write(self.marker(), want)?;
        Ok(())
    }

    fn leaf(
        &self,
        c: &ClusterSpec,
        name: &str,
        subject: DistinguishedName,
        sans: Vec<SanType>,
        usage: ExtendedKeyUsagePurpose,
        issuer: &Issuer<'_, &KeyPair>,
    ) -> anyhow::Result<()> {
        let files = self.cert(&c.name, name);
        let (cert, key) = signed_leaf(subject, sans, usage, issuer)?;
        write_private(&files.key, key.as_bytes())?;
        std::fs::write(&files.cert, cert)?;
        Ok(())
    }
}

/// Subject of the simulation's CA (what every leaf it signs names as issuer).
const CA_NAME: &str = "platform-acceptance-sim-ca";

/// A leaf certificate for `subject` and `sans`, signed by `issuer`: (certificate PEM,
/// PKCS#8 key PEM).
fn signed_leaf(subject: DistinguishedName, sans: Vec<SanType>, usage: ExtendedKeyUsagePurpose, issuer: &Issuer<'_, &KeyPair>) -> anyhow::Result<(String, String)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = subject;
    params.subject_alt_names = sans;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params);
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A self-signed CA's parameters with common name `cn`.
fn ca_params(cn: &str) -> anyhow::Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name = dn(cn, None);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    validity(&mut p);
    Ok(p)
}

fn dn(cn: &str, org: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    if let Some(o) = org {
        dn.push(DnType::OrganizationName, o);
    }
    dn.push(DnType::CommonName, cn);
    dn
}

fn validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
}
