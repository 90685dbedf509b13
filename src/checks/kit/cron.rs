//! Schedules and ages: cron expressions as runs per week, timestamps, readable ages.

use std::collections::BTreeSet;

use serde_json::Value;

/// How often a cron schedule fires, per week, when that is well defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frequency {
    PerWeek(u64),
    /// Not a whole number of runs per week (day-of-month or month restricted).
    Calendar(String),
}

/// Expected runs per week for a frequency word of the planning document.
///
/// ```
/// use platform_acceptance::checks::kit::cron::runs_per_week;
/// assert_eq!(runs_per_week("Daily"), Some(7));
/// assert_eq!(runs_per_week("hourly"), Some(168));
/// assert_eq!(runs_per_week("monthly"), None);
/// ```
pub fn runs_per_week(word: &str) -> Option<u64> {
    match word.to_ascii_lowercase().as_str() {
        "hourly" => Some(168),
        "daily" | "nightly" => Some(7),
        "weekly" => Some(1),
        _ => None,
    }
}

/// Parses a 5-field cron expression (6 fields: seconds first), `@weekly`-style macros and `@every <dur>`.
///
/// ```
/// use platform_acceptance::checks::kit::cron::{cron_frequency, Frequency};
/// assert_eq!(cron_frequency("0 2 * * *"), Ok(Frequency::PerWeek(7)));
/// assert_eq!(cron_frequency("30 */6 * * 1-5"), Ok(Frequency::PerWeek(20)));
/// assert_eq!(cron_frequency("@weekly"), Ok(Frequency::PerWeek(1)));
/// assert_eq!(cron_frequency("@every 12h"), Ok(Frequency::PerWeek(14)));
/// assert!(matches!(cron_frequency("0 3 1 * *"), Ok(Frequency::Calendar(_))));
/// assert!(cron_frequency("0 2 * *").is_err());
/// ```
pub fn cron_frequency(expr: &str) -> Result<Frequency, String> {
    let e = expr.trim();
    let macro_expr = match e {
        "@yearly" | "@annually" => Some("0 0 1 1 *"),
        "@monthly" => Some("0 0 1 * *"),
        "@weekly" => Some("0 0 * * 0"),
        "@daily" | "@midnight" => Some("0 0 * * *"),
        "@hourly" => Some("0 * * * *"),
        _ => None,
    };
    if let Some(m) = macro_expr {
        return cron_frequency(m);
    }
    if let Some(d) = e.strip_prefix("@every ") {
        let hours = every_hours(d.trim()).ok_or_else(|| format!("unparsable duration {d:?}"))?;
        return if hours > 0.0 && (168.0 / hours).fract() == 0.0 {
            Ok(Frequency::PerWeek((168.0 / hours) as u64))
        } else {
            Ok(Frequency::Calendar(format!("every {d}")))
        };
    }
    let fields: Vec<&str> = e.split_whitespace().collect();
    let (sec, rest) = match fields.len() {
        5 => (1, &fields[..]),
        6 => (field(fields[0], 0, 59, &[])?.len() as u64, &fields[1..]),
        n => return Err(format!("{n} fields (expected 5)")),
    };
    let min = field(rest[0], 0, 59, &[])?.len() as u64;
    let hour = field(rest[1], 0, 23, &[])?.len() as u64;
    let dom = rest[2];
    let month = rest[3];
    const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    let dow: BTreeSet<u32> = field(rest[4], 0, 7, &DAYS)?.into_iter().map(|d| d % 7).collect();
    field(dom, 1, 31, &[])?;
    const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
    field(month, 1, 12, &MONTHS)?;
    if month != "*" || (dom != "*" && dom != "?") {
        return Ok(Frequency::Calendar(format!("on day-of-month {dom:?}, month {month:?}")));
    }
    Ok(Frequency::PerWeek(sec * min * hour * dow.len() as u64))
}

fn every_hours(d: &str) -> Option<f64> {
    let (num, unit) = d.split_at(d.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = num.parse().ok()?;
    match unit {
        "h" => Some(n),
        "m" => Some(n / 60.0),
        "s" => Some(n / 3600.0),
        _ => None,
    }
}

fn field(f: &str, lo: u32, hi: u32, names: &[&str]) -> Result<BTreeSet<u32>, String> {
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u32 + if names.len() == 12 { 1 } else { 0 });
        }
        let v: u32 = s.parse().map_err(|_| format!("bad value {s:?} in {f:?}"))?;
        if v < lo || v > hi { Err(format!("{v} out of range {lo}-{hi} in {f:?}")) } else { Ok(v) }
    };
    let mut out = BTreeSet::new();
    for part in f.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().map_err(|_| format!("bad step in {f:?}"))?),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("zero step in {f:?}"));
        }
        let (a, b) = match range {
            "*" | "?" => (lo, hi),
            r => match r.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if part.contains('/') => (value(r)?, hi),
                None => (value(r)?, value(r)?),
            },
        };
        let mut v = a;
        while v <= b {
            out.insert(v);
            v += step;
        }
    }
    Ok(out)
}

impl std::fmt::Display for Frequency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Frequency::PerWeek(1) => write!(f, "runs once a week"),
            Frequency::PerWeek(n) => write!(f, "runs {n} times a week"),
            Frequency::Calendar(s) => write!(f, "runs {s}"),
        }
    }
}

// ---------------------------------------------------------------------------
// "manifests created" / "base HelmRelease created" / "config created"
// ---------------------------------------------------------------------------

/// Seconds since the Unix epoch of an RFC 3339 timestamp (Kubernetes `metav1.Time`).
///
/// ```
/// use platform_acceptance::checks::kit::cron::epoch_seconds;
/// assert_eq!(epoch_seconds("1970-01-02T00:00:00Z"), Some(86_400));
/// assert_eq!(epoch_seconds("yesterday"), None);
/// ```
pub fn epoch_seconds(ts: &str) -> Option<i64> {
    let t: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time = serde_json::from_value(Value::String(ts.to_string())).ok()?;
    Some(t.0.as_second())
}

pub fn now_seconds() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `3h12m` style age.
///
/// ```
/// use platform_acceptance::checks::kit::cron::age_text;
/// assert_eq!(age_text(45), "45s");
/// assert_eq!(age_text(11_520), "3h12m");
/// assert_eq!(age_text(3 * 86_400 + 7200), "3d2h");
/// ```
pub fn age_text(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Interval between runs of a cron schedule, in seconds, when it runs a whole number of times a week.
///
/// ```
/// use platform_acceptance::checks::kit::cron::cron_interval;
/// assert_eq!(cron_interval("0 2 * * *"), Some(86_400));
/// assert_eq!(cron_interval("0 3 1 * *"), None);
/// ```
pub fn cron_interval(expr: &str) -> Option<i64> {
    match cron_frequency(expr).ok()? {
        Frequency::PerWeek(n) if n > 0 => Some(7 * 86_400 / n as i64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_timestamps() {
        assert_eq!(cron_interval("0 */6 * * *"), Some(6 * 3600));
        assert_eq!(cron_interval("0 2 * * 0"), Some(7 * 86_400));
        assert_eq!(epoch_seconds("1970-01-02T00:00:00Z"), Some(86_400));
    }

    #[test]
    fn cron_frequencies() {
        assert_eq!(cron_frequency("0 2 * * 0").unwrap(), Frequency::PerWeek(1));
        assert_eq!(cron_frequency("0 2 * * SUN").unwrap(), Frequency::PerWeek(1));
        assert_eq!(cron_frequency("0 2 * * 0,7").unwrap(), Frequency::PerWeek(1));
        assert_eq!(cron_frequency("@weekly").unwrap(), Frequency::PerWeek(1));
        assert_eq!(cron_frequency("@every 168h").unwrap(), Frequency::PerWeek(1));
        assert_eq!(cron_frequency("0 2 * * *").unwrap(), Frequency::PerWeek(7));
        assert_eq!(cron_frequency("0 */6 * * *").unwrap(), Frequency::PerWeek(28));
        assert_eq!(cron_frequency("0 2 * * 1-5").unwrap(), Frequency::PerWeek(5));
        assert!(matches!(cron_frequency("0 2 1 * *").unwrap(), Frequency::Calendar(_)));
        assert!(cron_frequency("0 2 * *").is_err());
        assert!(cron_frequency("0 25 * * 0").is_err());
    }
}
