//! Address arithmetic the criteria need: CIDR overlap, address ranges written the
//! way the planning document writes them (`10.25.11.150-199`), and CIDR variables
//! in either Flux form (`10.246.0.0/16` or `'["10.246.0.0/16"]'`).
//!
//! ```
//! use platform_acceptance::net::{range_in_text, cidrs_of};
//! let r = range_in_text("LoadBalancer IP pool variables set (10.25.11.150-199)").unwrap();
//! assert_eq!((r.start.to_string(), r.end.to_string()), ("10.25.11.150".into(), "10.25.11.199".into()));
//! assert_eq!(cidrs_of(r#"["10.246.0.0/16"]"#).unwrap()[0].to_string(), "10.246.0.0/16");
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::sync::LazyLock;

use ipnet::IpNet;
use regex::Regex;

/// Two prefixes overlap exactly when one contains the other.
///
/// ```
/// use platform_acceptance::net::overlaps;
/// let pods: ipnet::IpNet = "10.244.0.0/16".parse().unwrap();
/// assert!(overlaps(&pods, &"10.244.3.0/24".parse().unwrap()));
/// assert!(!overlaps(&pods, &"10.245.0.0/16".parse().unwrap()));
/// ```
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Most addresses [`Ipv4Range::addresses`] lists: a /16.
pub const MAX_RANGE_ADDRESSES: u32 = 65_536;

/// An inclusive IPv4 range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Range {
    pub start: Ipv4Addr,
    pub end: Ipv4Addr,
}

impl Ipv4Range {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.start <= ip && ip <= self.end
    }
    pub fn overlaps(&self, other: &Ipv4Range) -> bool {
        self.start <= other.end && other.start <= self.end
    }
    /// Number of addresses in the range (up to 2^32).
    pub fn size(&self) -> u64 {
        u64::from(u32::from(self.end)).saturating_sub(u64::from(u32::from(self.start))) + 1
    }
    /// Every address of the range, or `None` for a range of more than
    /// [`MAX_RANGE_ADDRESSES`] (text such as `0.0.0.0-255.255.255.255` would otherwise
    /// ask for 4 billion addresses).
    pub fn addresses(&self) -> Option<Vec<IpAddr>> {
        (self.size() <= u64::from(MAX_RANGE_ADDRESSES)).then(|| (u32::from(self.start)..=u32::from(self.end)).map(|n| IpAddr::V4(Ipv4Addr::from(n))).collect())
    }
}

impl std::fmt::Display for Ipv4Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

static RANGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\d+)\.(\d+)\.(\d+)\.(\d+)\s*-\s*(?:(\d+)\.(\d+)\.(\d+)\.)?(\d+)").expect("static regex"));

/// The first address range written in a text: `10.25.11.11-13` or `10.25.11.11-10.25.11.13`.
pub fn range_in_text(text: &str) -> Option<Ipv4Range> {
    let c = RANGE.captures(text)?;
    let octet = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u8>().ok());
    let start = Ipv4Addr::new(octet(1)?, octet(2)?, octet(3)?, octet(4)?);
    let end = match (octet(5), octet(6), octet(7)) {
        (Some(a), Some(b), Some(d)) => Ipv4Addr::new(a, b, d, octet(8)?),
        _ => Ipv4Addr::new(octet(1)?, octet(2)?, octet(3)?, octet(8)?),
    };
    (start <= end).then_some(Ipv4Range { start, end })
}

/// CIDRs of a variable value: plain, comma-separated, or a JSON list string.
pub fn cidrs_of(value: &str) -> Result<Vec<IpNet>, String> {
    let v = value.trim();
    let items: Vec<String> = if v.starts_with('[') {
        serde_json::from_str::<Vec<String>>(v).map_err(|e| format!("{v:?} is not a JSON list of CIDRs: {e}"))?
    } else {
        v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
    };
    if items.is_empty() {
        return Err(format!("{v:?} holds no CIDR"));
    }
    items.iter().map(|s| s.parse::<IpNet>().map_err(|_| format!("{s:?} is not a CIDR"))).collect()
}

/// `10.25.11.150-199` or `10.25.11.150-10.25.11.199` → (start, end); the whole text is the range.
///
/// ```
/// use std::net::Ipv4Addr;
/// use platform_acceptance::net::parse_ip_range;
/// assert_eq!(parse_ip_range("10.25.11.150-199"), Ok((Ipv4Addr::new(10, 25, 11, 150), Ipv4Addr::new(10, 25, 11, 199))));
/// assert!(parse_ip_range("10.25.11.150").is_err());
/// ```
pub fn parse_ip_range(text: &str) -> Result<(Ipv4Addr, Ipv4Addr), String> {
    let (a, b) = text.trim().split_once('-').ok_or_else(|| format!("{text:?} is not a range"))?;
    let start: Ipv4Addr = a.trim().parse().map_err(|e| format!("{a:?}: {e}"))?;
    let end: Ipv4Addr = if b.contains('.') {
        b.trim().parse().map_err(|e| format!("{b:?}: {e}"))?
    } else {
        let last: u8 = b.trim().parse().map_err(|e| format!("{b:?}: {e}"))?;
        let o = start.octets();
        Ipv4Addr::new(o[0], o[1], o[2], last)
    };
    Ok((start, end))
}

/// `ip` lies in the inclusive range `(start, end)`.
pub fn in_range(ip: Ipv4Addr, (s, e): (Ipv4Addr, Ipv4Addr)) -> bool {
    (u32::from(s)..=u32::from(e)).contains(&u32::from(ip))
}

/// Values equal as written, or as the same set of CIDRs (JSON-list and plain forms).
///
/// ```
/// use platform_acceptance::net::same_value;
/// assert!(same_value(r#"["10.246.0.0/16"]"#, "10.246.0.0/16"));
/// assert!(!same_value("10.246.0.0/16", "10.247.0.0/16"));
/// ```
pub fn same_value(a: &str, b: &str) -> bool {
    a.trim() == b.trim() || matches!((cidrs_of(a), cidrs_of(b)), (Ok(x), Ok(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_in_document_forms() {
        let r = range_in_text("Infra cluster deployed (10.25.11.11-13)").unwrap();
        assert_eq!(r.addresses().unwrap().len(), 3);
        assert_eq!(range_in_text("0.0.0.0-255.255.255.255").unwrap().addresses(), None);
        assert!(range_in_text("no range here").is_none());
        let full = range_in_text("10.0.0.1 - 10.0.0.9").unwrap();
        assert_eq!(full.end, Ipv4Addr::new(10, 0, 0, 9));
        assert!(Ipv4Range { start: Ipv4Addr::new(10, 0, 0, 5), end: Ipv4Addr::new(10, 0, 0, 9) }.overlaps(&full));
    }

    #[test]
    fn cidr_forms_and_errors() {
        assert_eq!(cidrs_of("10.0.0.0/8, 10.1.0.0/16").unwrap().len(), 2);
        assert!(cidrs_of("not-a-cidr").is_err());
        assert!(cidrs_of("").is_err());
        assert!(overlaps(&"10.244.0.0/16".parse().unwrap(), &"10.244.3.0/24".parse().unwrap()));
        assert!(!overlaps(&"10.244.0.0/16".parse().unwrap(), &"10.246.0.0/16".parse().unwrap()));
    }
}
