//! Property-based fuzzing (proptest, stable Rust) of the parsers that read untrusted text:
//! the planning document (catalog parser with emoji repair), Flux `postBuild` envsubst,
//! kustomize path resolution, CIDR and address-range parsing, `--only`/`--skip` selectors,
//! Kubernetes label selectors (the run's read cache).
//!
//! Every target asserts "no panic, and each input handled within a bound", plus a real
//! property where one is cheap (round trips, identities). `cargo test --test fuzz` runs
//! each target briefly (a smoke run); `make fuzz FUZZ_SECONDS=120` runs each for that long.
//! A failing input is shrunk, reported, and saved under `fuzz/regressions/<target>.txt`
//! (committed), where every later run replays it first. Inputs found that way are also
//! pinned as named regression tests at the end of this file.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use platform_acceptance::catalog::{mojibake, Catalog};
use platform_acceptance::net;
use platform_acceptance::plan::Selector;
use platform_acceptance::repo::envsubst;
use platform_acceptance::repo::{normalize_path, GitopsRepo};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed, TestCaseError, TestRunner};

/// Time per target: `FUZZ_SECONDS` (a smoke run of 0.3 s by default).
fn budget() -> Duration {
    let secs = std::env::var("FUZZ_SECONDS").ok().and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.3);
    Duration::from_secs_f64(secs.max(0.0))
}

/// A single input must be handled within this (a quadratic blow-up or a hang fails the target).
const PER_CASE: Duration = Duration::from_secs(2);

/// Runs `test` on inputs from `strategy` in batches until the time budget is spent.
fn fuzz<S>(target: &'static str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let regressions: &'static str = Box::leak(format!("fuzz/regressions/{target}.txt").into_boxed_str());
    let start = Instant::now();
    let deadline = start + budget();
    let mut cases = 0u64;
    let timed = |v: S::Value| {
        let t = Instant::now();
        test(v)?;
        prop_assert!(t.elapsed() < PER_CASE, "one input took {:?}", t.elapsed());
        Ok(())
    };
    loop {
        let config = Config {
            cases: 64,
            failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
            source_file: Some(file!()),
            rng_seed: RngSeed::Random,
            max_shrink_time: 60_000,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        if let Err(e) = runner.run(&strategy, timed) {
            panic!("fuzz target {target} failed after {cases} cases: {e}");
        }
        cases += 64;
        if Instant::now() >= deadline {
            break;
        }
    }
    eprintln!("fuzz {target}: {cases} cases in {:.1} s", start.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------
// Input generators: raw text, and text assembled from the tokens the parsers look for.

static DOC: LazyLock<String> = LazyLock::new(|| std::fs::read_to_string("fixtures/multi-cluster-epics.md").unwrap());

/// Arbitrary Unicode text, including control characters.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), proptest::collection::vec(any::<u8>(), 0..200).prop_map(|b| String::from_utf8_lossy(&b).into_owned())]
}

/// Text made of the given tokens and arbitrary characters.
fn token_text(tokens: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![4 => proptest::sample::select(tokens).prop_map(String::from), 1 => any::<char>().prop_map(String::from), 1 => "[0-9]{1,3}"];
    proptest::collection::vec(piece, 0..max).prop_map(|v| v.concat())
}

const DOC_TOKENS: &[&str] = &[
    "\n", "\r\n", "\n\n", " ", "## EPIC-", "## EPIC-1: Bootstrap", "### Story ", "### Story 1.1: Prepare", "1.", ".", ":", "- [ ] ", "- [x] ",
    "- [X] ", "  - [ ] ", "**Priority:** High | **Status:** ", "**Acceptance Criteria:**", "✅", "âœ…", "ðŸ”„", "ğŸ”²", "âŒ", "âš ï¸", "â†’", "\u{9d}",
    "é", "Ã", "```mermaid\n", "```\n", "graph TD\n", "S1.1 --> S1.2", "S1.1[1.1: Prepare âœ…]", " --> ", "## Definition of Done\n", "`code`", "|",
    "---\n", "# ", "<!-- ", " -->", "10.25.11.150-199", "*", "[", "]", "(", ")", "\\", "\t",
];

/// The real document with random damage: truncated, a range cut out, a token spliced in, a block duplicated.
fn damaged_doc() -> impl Strategy<Value = String> {
    let len = DOC.len();
    let edit = prop_oneof![
        (0..len).prop_map(Edit::Truncate),
        (0..len, 0..4000usize).prop_map(|(at, n)| Edit::Cut(at, n)),
        (0..len, token_text(DOC_TOKENS, 12)).prop_map(|(at, s)| Edit::Insert(at, s)),
        (0..len, 0..3000usize, 0..len).prop_map(|(at, n, to)| Edit::Copy(at, n, to)),
        (0..len, any::<u8>()).prop_map(|(at, b)| Edit::Byte(at, b)),
    ];
    proptest::collection::vec(edit, 1..6).prop_map(|edits| {
        let mut bytes = DOC.as_bytes().to_vec();
        for e in edits {
            e.apply(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

#[derive(Debug, Clone)]
enum Edit {
    Truncate(usize),
    Cut(usize, usize),
    Insert(usize, String),
    Copy(usize, usize, usize),
    Byte(usize, u8),
}

impl Edit {
    fn apply(self, b: &mut Vec<u8>) {
        let clamp = |i: usize, b: &Vec<u8>| i.min(b.len());
        match self {
            Edit::Truncate(at) => b.truncate(at),
            Edit::Cut(at, n) => {
                let at = clamp(at, b);
                let end = clamp(at + n, b);
                b.drain(at..end);
            }
            Edit::Insert(at, s) => {
                let at = clamp(at, b);
                b.splice(at..at, s.into_bytes());
            }
            Edit::Copy(at, n, to) => {
                let at = clamp(at, b);
                let chunk = b[at..clamp(at + n, b)].to_vec();
                let to = clamp(to, b);
                b.splice(to..to, chunk);
            }
            Edit::Byte(at, byte) if at < b.len() => b[at] = byte,
            Edit::Byte(..) => {}
        }
    }
}

// ---------------------------------------------------------------------------
// Targets

/// The catalog parser: no panic; ids unique; every item's story exists; a parsed item's
/// text has no line break; emoji repair leaves ASCII text alone.
fn catalog_properties(text: String) -> Result<(), TestCaseError> {
    let c = Catalog::parse(&text, Path::new("fuzz.md"));
    let mut ids: Vec<&str> = c.items.iter().map(|i| i.id.as_str()).collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    prop_assert_eq!(before, ids.len(), "duplicate item ids");
    for item in &c.items {
        prop_assert!(item.story == "dod" || c.story(&item.story).is_some(), "item {} of unknown story {}", item.id, item.story);
        prop_assert!(!item.text.contains('\n'), "item {} text spans lines: {:?}", item.id, item.text);
    }
    let _ = c.prerequisites("1.1");
    let _ = platform_acceptance::catalog::normalize(&text);
    let repaired = mojibake::repair(&text);
    if text.is_ascii() {
        prop_assert_eq!(repaired, text);
    }
    Ok(())
}

#[test]
fn fuzz_catalog() {
    fuzz("catalog", prop_oneof![1 => any_text(), 3 => token_text(DOC_TOKENS, 80), 3 => damaged_doc()], catalog_properties);
}

/// Emoji repair: the double encoding of a status marker repairs to the marker, whatever surrounds it.
#[test]
fn fuzz_mojibake() {
    const MARKERS: &[&str] = &["✅", "🔄", "❌", "🔲", "⚠️", "→"];
    let strategy = (proptest::sample::select(MARKERS), "[ -~]{0,20}", "[ -~]{0,20}", any_text());
    fuzz("mojibake", strategy, |(marker, pre, post, noise)| {
        let (cp1252, _, _) = encoding_rs::WINDOWS_1252.decode(marker.as_bytes());
        let broken: String = cp1252.chars().filter(|c| !matches!(*c as u32, 0x81 | 0x8D | 0x8F | 0x90 | 0x9D)).collect();
        let repaired = mojibake::repair(&format!("{pre}{broken}{post}"));
        prop_assert_eq!(repaired, format!("{pre}{marker}{post}"));
        let _ = mojibake::repair(&noise);
        Ok(())
    });
}

const ENV_TOKENS: &[&str] =
    &["$", "$$", "${", "}", "{", "CLUSTER", "ZONE", "_X1", ":=", ":-", "=", "-", ":", "a", " ", "\n", "${CLUSTER}", "$${CLUSTER}", "${ZONE:=z}", "${X-}", "é", "\\"];

/// envsubst: no panic; text without `$` is unchanged; with every referenced variable
/// defined nothing is unresolved; the references found are exactly the unresolved names when none is defined.
#[test]
fn fuzz_envsubst() {
    let vars = proptest::collection::btree_map("[A-Z_]{1,6}", "[ -~]{0,8}", 0..4);
    fuzz("envsubst", (prop_oneof![any_text(), token_text(ENV_TOKENS, 40)], vars), |(text, mut vars)| {
        vars.insert("CLUSTER".into(), "infra".into());
        let out = envsubst::substitute(&text, &vars);
        if !text.contains('$') {
            prop_assert_eq!(&out.text, &text);
            prop_assert!(out.unresolved.is_empty());
        }
        let refs = envsubst::references(&text);
        let all: BTreeMap<String, String> = refs.iter().map(|r| (r.name.clone(), "v".to_string())).collect();
        prop_assert!(envsubst::substitute(&text, &all).unresolved.is_empty());
        let mut without: Vec<String> = refs.iter().filter(|r| !r.has_default).map(|r| r.name.clone()).collect();
        let mut unresolved = envsubst::substitute(&text, &BTreeMap::new()).unresolved;
        without.sort();
        without.dedup();
        unresolved.sort();
        unresolved.dedup();
        prop_assert_eq!(without, unresolved);
        Ok(())
    });
}

static FIXTURE_REPO: LazyLock<GitopsRepo> = LazyLock::new(|| GitopsRepo::load("fixtures/gitops").unwrap());

const PATH_TOKENS: &[&str] = &["/", "..", ".", "./", "../", "kubernetes", "bases", "cilium", "clusters", "infra", "talos", "etc", "~", "\0", "//", "a", "é", " "];

/// Kustomize paths: normalisation is idempotent and leaves no `.` and no `..` after a name;
/// a path as the planning document writes it never resolves outside the repository.
#[test]
fn fuzz_kustomize_paths() {
    let root = std::fs::canonicalize(&FIXTURE_REPO.root).unwrap();
    fuzz("kustomize-paths", prop_oneof![any_text(), token_text(PATH_TOKENS, 12)], |text| {
        let n = normalize_path(Path::new(&text));
        prop_assert_eq!(normalize_path(&n), n.clone());
        let parts: Vec<_> = n.components().collect();
        prop_assert!(!parts.iter().any(|c| matches!(c, std::path::Component::CurDir)));
        for w in parts.windows(2) {
            prop_assert!(!(matches!(w[0], std::path::Component::Normal(_)) && matches!(w[1], std::path::Component::ParentDir)), "{:?}", n);
        }
        if let Some(p) = FIXTURE_REPO.resolve(&text) {
            let full: PathBuf = std::fs::canonicalize(FIXTURE_REPO.root.join(&p)).unwrap_or_else(|_| FIXTURE_REPO.root.join(&p));
            prop_assert!(full.starts_with(&root), "{:?} resolved to {:?}, outside the repository", text, full);
        }
        let _ = FIXTURE_REPO.documents_in(&text);
        Ok(())
    });
}

const NET_TOKENS: &[&str] = &["10.25.11.150", "-", "199", ".", "/", "/16", "/33", "[", "]", "\"", ",", " ", "::", "fd00::/8", "255", "0", "256", "-10.25.11.1"];

/// CIDRs and ranges: no panic on any text; a CIDR's display parses back to itself (plain,
/// comma-separated and JSON-list forms); a range's display parses back to itself in both
/// readers; a range found in text lists exactly its addresses.
#[test]
fn fuzz_net() {
    let addr = any::<u32>().prop_map(Ipv4Addr::from);
    let net4 = (addr.clone(), 0u8..=32).prop_map(|(a, p)| ipnet::IpNet::V4(ipnet::Ipv4Net::new(a, p).unwrap()));
    let net6 = (any::<u128>(), 0u8..=128).prop_map(|(a, p)| ipnet::IpNet::V6(ipnet::Ipv6Net::new(a.into(), p).unwrap()));
    let nets = proptest::collection::vec(prop_oneof![net4, net6], 1..4);
    let text = prop_oneof![any_text(), token_text(NET_TOKENS, 16)];
    fuzz("net", (text, nets, addr.clone(), addr), |(text, nets, a, b)| {
        let _ = net::cidrs_of(&text);
        let _ = net::parse_ip_range(&text);
        let _ = net::same_value(&text, "10.0.0.0/8");
        if let Some(r) = net::range_in_text(&text) {
            let size = u64::from(u32::from(r.end)) - u64::from(u32::from(r.start)) + 1;
            prop_assert_eq!(r.addresses().map(|v| v.len() as u64), (size <= net::MAX_RANGE_ADDRESSES as u64).then_some(size));
        }
        let plain: Vec<String> = nets.iter().map(ToString::to_string).collect();
        prop_assert_eq!(&net::cidrs_of(&plain.join(", ")).unwrap(), &nets);
        prop_assert_eq!(&net::cidrs_of(&serde_json::to_string(&plain).unwrap()).unwrap(), &nets);
        for n in &nets {
            prop_assert_eq!(net::cidrs_of(&n.to_string()).unwrap(), vec![*n]);
            prop_assert!(net::overlaps(n, n));
        }
        let (start, end) = (a.min(b), a.max(b));
        let r = net::Ipv4Range { start, end };
        prop_assert_eq!(net::parse_ip_range(&r.to_string()), Ok((start, end)));
        prop_assert_eq!(net::range_in_text(&format!("pool ({r})")), Some(r));
        prop_assert!(net::in_range(start, (start, end)) && net::in_range(end, (start, end)));
        Ok(())
    });
}

static FIXTURE_CATALOG: LazyLock<Catalog> = LazyLock::new(|| Catalog::load("fixtures/multi-cluster-epics.md").unwrap());

const SELECTOR_TOKENS: &[&str] = &["7", "7.2", "7.2.3", ".", "dod", "dod.", "layer=", "repo", "cluster=", "apps", "data-plane", ",", " ", "4294967296", "-1", "+1", "0"];

/// Selectors: no panic; a parsed selector is re-parsed to itself from its canonical text;
/// `validate` only accepts what the catalog and clusters have.
#[test]
fn fuzz_selectors() {
    let clusters = vec!["apps".to_string(), "infra".to_string()];
    fuzz("selectors", prop_oneof![any_text(), token_text(SELECTOR_TOKENS, 8)], move |text| {
        let Ok(sel) = Selector::parse(&text) else { return Ok(()) };
        let canonical = match &sel {
            Selector::Epic(e) => e.to_string(),
            Selector::Story(s) | Selector::Criterion(s) => s.clone(),
            Selector::Layer(l) => format!("layer={}", l.as_str()),
            Selector::Cluster(c) => format!("cluster={c}"),
        };
        prop_assert_eq!(Selector::parse(&canonical), Ok(sel.clone()));
        if sel.validate(&FIXTURE_CATALOG, &clusters).is_ok() {
            match &sel {
                Selector::Story(s) if s != "dod" => prop_assert!(FIXTURE_CATALOG.story(s).is_some()),
                Selector::Criterion(c) => prop_assert!(FIXTURE_CATALOG.item(c).is_some()),
                _ => {}
            }
        }
        Ok(())
    });
}

const LABEL_TOKENS: &[&str] = &["app", "k8s-app", "app.kubernetes.io/name", "=", "==", "!=", "!", ",", " in ", " notin ", "(", ")", " ", "velero", "a", "b", ""];

/// Label selectors (the read cache answers LISTs by them): no panic; a selector that parses
/// matches labels exactly as its equality terms say, and an equality selector rendered from
/// labels matches them.
#[test]
fn fuzz_label_selectors() {
    use platform_acceptance::cluster::cache::Selector as Labels;
    let labels = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>();
    fuzz("label-selectors", prop_oneof![any_text(), token_text(LABEL_TOKENS, 10)], move |text| {
        let Some(sel) = Labels::parse(&text) else { return Ok(()) };
        let _ = sel.matches(&labels(&[("app", "velero"), ("k8s-app", "a")]));
        Ok(())
    });
    fuzz("label-selectors-render", proptest::collection::btree_map("[a-z][a-z0-9.-]{0,8}", "[a-z0-9]{0,6}", 0..5), move |m| {
        let text = m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        let sel = Labels::parse(&text).ok_or_else(|| TestCaseError::fail(format!("{text:?} did not parse")))?;
        prop_assert!(sel.matches(&m), "{} does not match its own labels", text);
        let mut other = m.clone();
        if let Some((_, v)) = other.iter_mut().next() {
            v.push('x');
            prop_assert!(!sel.matches(&other), "{} matches a changed value", text);
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// Regressions: what the targets (and the bad-input table) found, pinned in words.

/// kustomize-paths found `/..` resolving to `/`: a path the document writes never leaves the repository.
#[test]
fn regression_a_document_path_never_resolves_outside_the_repository() {
    for p in ["/..", "/etc", "//etc", "../", "../../etc/passwd", "kubernetes/../..", "bases/../../..", "./../fixtures"] {
        assert_eq!(FIXTURE_REPO.resolve(p), None, "{p}");
    }
    assert_eq!(FIXTURE_REPO.resolve("bases/cilium/"), Some(PathBuf::from("kubernetes/bases/cilium")));
    assert_eq!(FIXTURE_REPO.resolve("./kubernetes/bases/../bases/cilium"), Some(PathBuf::from("kubernetes/bases/cilium")));
}

/// envsubst: a variable left unresolved twice is reported once (the property was wrong, not the code).
#[test]
fn regression_an_unresolved_variable_used_twice_is_listed_once() {
    assert_eq!(envsubst::substitute("${CLUSTER}${CLUSTER}", &BTreeMap::new()).unresolved, vec!["CLUSTER".to_string()]);
}

/// A range over the whole address space is not listed address by address (4 billion entries).
#[test]
fn regression_a_huge_range_is_not_enumerated() {
    let r = net::range_in_text("pool 0.0.0.0-255.255.255.255").unwrap();
    assert_eq!(r.size(), 1 << 32);
    assert_eq!(r.addresses(), None);
    assert_eq!(net::range_in_text("10.0.0.0-10.0.255.255").unwrap().addresses().map(|a| a.len()), Some(65_536));
}

/// Emoji repair of a long accented run is linear (a 64 Ki-character criterion took 7 s, 256 Ki about 2 min).
#[test]
fn regression_emoji_repair_of_a_long_accented_run_is_fast() {
    let text = format!("- [ ] {} âŒ", "é".repeat(256 * 1024));
    let t = Instant::now();
    let repaired = mojibake::repair(&text);
    assert!(t.elapsed() < PER_CASE, "{:?}", t.elapsed());
    assert!(repaired.ends_with(" ❌") && repaired.starts_with("- [ ] éé"));
}
