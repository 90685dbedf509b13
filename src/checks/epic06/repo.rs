//! EPIC-6 repository layer: the VictoriaMetrics stack, VictoriaLogs with vmauth and
//! Fluent Bit as the repository defines them (base HelmReleases, workload configs,
//! enabled components, storage, tenants, Grafana datasource, log forwarding).

use serde_json::Value;

use super::{FLUENT_BIT_CHARTS, LOGS_CHARTS, LOGS_DATASOURCE_TYPE, VMAUTH_CHARTS, VM_STACK_CHARTS};
use crate::check::{CheckResult, Ctx, Finding, Outcome};
use crate::checks::kit::prelude::*;
use crate::repo::{str_at, GitopsRepo, Rendered, RenderedObject};

/// Story 6.2 "Victoria Logs Configuration": "Retention: From `OBSERVABILITY_LOGS_RETENTION` variable (14d)".
const LOGS_RETENTION: &str = "14d";
/// Chart defaults (docs/reference/components.md §11.4, §12; vmauth 8427, VictoriaLogs 9428).
const VMAUTH_DEFAULT_PORT: u64 = 8427;
const LOGS_DEFAULT_PORT: u64 = 9428;

// ---- 6.1 VictoriaMetrics stack ----

pub(super) async fn vm_stack_base(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(file_has_helmrelease(repo(&ctx)?, "kubernetes/bases/victoria-metrics-stack/helmrelease.yaml", VM_STACK_CHARTS))
}

pub(super) async fn vm_stack_config(ctx: Ctx) -> CheckResult<Outcome> {
    config_renders_base(
        &ctx,
        "kubernetes/workloads/platform/observability/victoria-metrics/kustomization.yaml",
        "kubernetes/bases/victoria-metrics-stack",
        "HelmRelease",
    )
}

/// The stack's values enable VMCluster (and disable VMSingle: the chart allows one), VMAgent,
/// VMAlert and Grafana (chart defaults: only vmcluster is off), or the CR is rendered itself.
pub(super) async fn vm_stack_components(ctx: Ctx) -> CheckResult<Outcome> {
    let rendered = rendered(&ctx)?;
    let hr = rendered_helmrelease(&rendered, VM_STACK_CHARTS)?;
    let values = hr.get("/spec/values").cloned().unwrap_or(Value::Null);
    let mut findings = vec![];
    let mut evidence = vec![];
    for (kind, key, default) in [("VMCluster", "vmcluster", false), ("VMAgent", "vmagent", true), ("VMAlert", "vmalert", true), ("Grafana", "grafana", true)] {
        let explicit = values.pointer(&format!("/{key}/enabled")).and_then(Value::as_bool);
        let cr = rendered.of_kind(kind).find(|o| o.api_version().starts_with("operator.victoriametrics.com/"));
        match (explicit.unwrap_or(default), cr) {
            (_, Some(cr)) => evidence.push(format!("{kind}: {} {}", cr.api_version(), cr.describe())),
            (true, None) => evidence.push(format!(
                "{kind}: {key}.enabled {}",
                if explicit.is_some() { "true" } else { "true (chart default)" }
            )),
            (false, None) => findings.push(Finding::new(
                format!("{} spec.values.{key}.enabled", hr.describe()),
                format!("true (or a {kind} rendered)"),
                explicit.map(|b| b.to_string()).unwrap_or_else(|| "not set (chart default false)".into()),
            )),
        }
    }
    let vmcluster_on = values.pointer("/vmcluster/enabled").and_then(Value::as_bool) == Some(true);
    let vmsingle = values.pointer("/vmsingle/enabled").and_then(Value::as_bool);
    if vmcluster_on && vmsingle != Some(false) {
        findings.push(Finding::new(
            format!("{} spec.values.vmsingle.enabled", hr.describe()),
            "false (the chart accepts only one of vmsingle/vmcluster)",
            vmsingle.map(|b| b.to_string()).unwrap_or_else(|| "not set (chart default true)".into()),
        ));
    }
    evidence.insert(0, format!("{} {} chart {}", hr.api_version(), hr.describe(), VM_STACK_CHARTS[0]));
    Ok(if findings.is_empty() { Outcome::Pass { evidence } } else { Outcome::Fail { findings } })
}

/// Every volume of the stack (vmstorage and Grafana at least, plus any other `storageClassName`
/// in its values) is on the Rook Ceph RBD class `rook-ceph-block` rendered for the cluster.
pub(super) async fn vm_stack_storage(ctx: Ctx) -> CheckResult<Outcome> {
    let rendered = rendered(&ctx)?;
    let hr = rendered_helmrelease(&rendered, VM_STACK_CHARTS)?;
    let values = hr.get("/spec/values").cloned().unwrap_or(Value::Null);
    let obj = hr.describe();
    let mut findings = vec![];
    let required = ["/vmcluster/spec/vmstorage/storage/volumeClaimTemplate/spec/storageClassName", "/grafana/persistence/storageClassName"];
    let mut classes = vec![];
    storage_class_names(&values, "", &mut classes);
    for path in required {
        if !classes.iter().any(|(p, _)| p == path) {
            findings.push(Finding::new(format!("{obj} spec.values{}", dotted(path)), "a storageClassName (persistent volume)", "not set"));
        }
    }
    if values.pointer("/grafana/persistence/enabled").and_then(Value::as_bool) != Some(true) {
        findings.push(Finding::new(format!("{obj} spec.values.grafana.persistence.enabled"), "true", opt_value(values.pointer("/grafana/persistence/enabled"))));
    }
    for (path, class) in &classes {
        findings.extend(not_rook_block_class(&rendered, &format!("{obj} spec.values{}", dotted(path)), Some(class)));
    }
    let evidence = classes.iter().map(|(p, c)| format!("{obj} spec.values{}: {c}", dotted(p))).collect::<Vec<_>>().join("; ");
    Ok(Outcome::from_findings(findings, evidence))
}

/// Every `storageClassName` below `v`, as (JSON pointer, value).
fn storage_class_names(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let path = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (k.as_str(), child) {
                    ("storageClassName", Value::String(s)) => out.push((path, s.clone())),
                    _ => storage_class_names(child, &path, out),
                }
            }
        }
        Value::Array(a) => a.iter().enumerate().for_each(|(i, c)| storage_class_names(c, &format!("{at}/{i}"), out)),
        _ => {}
    }
}

fn dotted(pointer: &str) -> String {
    pointer.replace('/', ".").replace("~1", "/").replace("~0", "~")
}

// ---- 6.2 VictoriaLogs ----

pub(super) async fn logs_base(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(file_has_helmrelease(repo(&ctx)?, "kubernetes/bases/victoria-logs/helmrelease.yaml", LOGS_CHARTS))
}

pub(super) async fn logs_config(ctx: Ctx) -> CheckResult<Outcome> {
    config_renders_base(
        &ctx,
        "kubernetes/workloads/platform/observability/victoria-logs/kustomization.yaml",
        "kubernetes/bases/victoria-logs",
        "HelmRelease",
    )
}

/// VictoriaLogs keeps its data on a persistent volume of Rook Ceph block storage, with the
/// retention the story gives (story 6.2 "Victoria Logs Configuration").
pub(super) async fn logs_storage(ctx: Ctx) -> CheckResult<Outcome> {
    let rendered = rendered(&ctx)?;
    let vars = variables(&ctx)?;
    let hr = rendered_helmrelease(&rendered, LOGS_CHARTS)?;
    let obj = hr.describe();
    let server = hr.get("/spec/values/server").cloned().unwrap_or(Value::Null);
    let mut findings = vec![];
    let pv = server.get("persistentVolume").cloned().unwrap_or(Value::Null);
    if pv.get("enabled").and_then(Value::as_bool) != Some(true) {
        findings.push(Finding::new(format!("{obj} spec.values.server.persistentVolume.enabled"), "true", opt_value(pv.get("enabled"))));
    }
    let class = str_at(&pv, "/storageClassName");
    findings.extend(not_rook_block_class(&rendered, &format!("{obj} spec.values.server.persistentVolume.storageClassName"), class));
    let retention = server.get("retentionPeriod").map(crate::repo::scalar_text).unwrap_or_default();
    let var = vars.get("OBSERVABILITY_LOGS_RETENTION");
    if retention != LOGS_RETENTION || var != Some(LOGS_RETENTION) {
        findings.push(Finding::new(
            format!("{obj} spec.values.server.retentionPeriod"),
            format!("{LOGS_RETENTION:?} from OBSERVABILITY_LOGS_RETENTION"),
            format!("{retention:?} (OBSERVABILITY_LOGS_RETENTION = {})", var.map(|v| format!("{v:?}")).unwrap_or_else(|| "not defined".into())),
        ));
    }
    Ok(Outcome::from_findings(
        findings,
        format!("{obj}: persistent volume on {}, size {}, retention {retention}", class.unwrap_or(""), str_at(&pv, "/size").unwrap_or("?")),
    ))
}

/// vmauth fronts VictoriaLogs with one user per log tenant: every cluster's
/// `OBSERVABILITY_LOG_TENANT` is a vmauth user pinned to its own `AccountID`.
pub(super) async fn vmauth_tenants(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let rendered = rendered(&ctx)?;
    let hr = rendered_helmrelease(&rendered, VMAUTH_CHARTS)?;
    let obj = hr.describe();
    let (source, config) = vmauth_config(&rendered, hr)?;
    let users: Vec<&Value> = config.get("users").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
    let usernames: Vec<&str> = users.iter().filter_map(|u| str_at(u, "/username")).collect();
    let mut findings = vec![];
    let mut evidence = vec![format!("{} {obj}, routing from {source}", hr.api_version())];
    let mut accounts: Vec<(String, String)> = vec![];
    for cluster in repo.clusters() {
        let vars = repo.variables(cluster).map_err(Outcome::error)?;
        let Some(tenant) = vars.get("OBSERVABILITY_LOG_TENANT") else {
            findings.push(Finding::new(vars.object("OBSERVABILITY_LOG_TENANT"), "defined (the cluster's log tenant)", "not defined"));
            continue;
        };
        let Some(user) = users.iter().find(|u| str_at(u, "/username") == Some(tenant)) else {
            findings.push(Finding::new(
                format!("{obj} users ({source})"),
                format!("a user {tenant:?} (OBSERVABILITY_LOG_TENANT of cluster {cluster})"),
                format!("users {usernames:?}"),
            ));
            continue;
        };
        let mut headers: Vec<&str> = vec![];
        collect_headers(user, &mut headers);
        let account = headers.iter().find_map(|h| h.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case("AccountID")).map(|(_, v)| v.trim()));
        match account {
            None => findings.push(Finding::new(
                format!("{obj} user {tenant:?} ({source})"),
                "an \"AccountID: N\" header pinning the tenant",
                format!("headers {headers:?}"),
            )),
            Some(id) => {
                if let Some((other, _)) = accounts.iter().find(|(t, a)| a == id && t != tenant) {
                    findings.push(Finding::new(
                        format!("{obj} users {other:?} and {tenant:?} ({source})"),
                        "a distinct AccountID per tenant",
                        format!("both AccountID {id}"),
                    ));
                }
                accounts.push((tenant.to_string(), id.to_string()));
                evidence.push(format!("cluster {cluster}: tenant {tenant} -> AccountID {id}"));
            }
        }
    }
    Ok(if findings.is_empty() { Outcome::Pass { evidence } } else { Outcome::Fail { findings } })
}

/// vmauth's routing config: inline `values.config`, or the Secret `values.secretName` rendered by an
/// ExternalSecret template (it holds the passwords). Returns (where it was found, parsed config).
pub(super) fn vmauth_config(rendered: &Rendered, hr: &RenderedObject) -> CheckResult<(String, Value)> {
    if let Some(cfg) = hr.get("/spec/values/config").filter(|c| c.get("users").is_some()) {
        return Ok((format!("{} spec.values.config", hr.describe()), cfg.clone()));
    }
    let secret = hr.str("/spec/values/secretName").unwrap_or("");
    let from_template = rendered.of_kind("ExternalSecret").filter(|es| es.str("/spec/target/name") == Some(secret) && !secret.is_empty()).find_map(|es| {
        es.get("/spec/target/template/data").and_then(Value::as_object).and_then(|data| {
            data.iter().find_map(|(key, text)| {
                let parsed: Value = serde_yaml_ng::from_str(text.as_str()?).ok()?;
                parsed.get("users").is_some().then(|| (format!("{} template {key}", es.describe()), parsed))
            })
        })
    });
    from_template.ok_or_else(|| {
        Outcome::fail(
            hr.describe(),
            "a vmauth config with users (spec.values.config, or the Secret spec.values.secretName rendered by an ExternalSecret template)",
            if secret.is_empty() { "neither values.config nor values.secretName".to_string() } else { format!("secretName {secret:?}: no ExternalSecret template renders its users") },
        )
    })
}

/// Header strings (`"AccountID: 1"`) of a vmauth user: its own `headers` and those of its `url_map`.
pub(super) fn collect_headers<'a>(user: &'a Value, out: &mut Vec<&'a str>) {
    out.extend(user.get("headers").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str));
    for route in user.get("url_map").and_then(Value::as_array).into_iter().flatten() {
        out.extend(route.get("headers").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str));
    }
}

/// Grafana (of the VM stack) has a VictoriaLogs datasource pointing at the VictoriaLogs service
/// (in its values, or in a ConfigMap its datasource sidecar picks up) and the plugin for that type.
pub(super) async fn grafana_logs_datasource(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let rendered = rendered(&ctx)?;
    let hr = rendered_helmrelease(&rendered, VM_STACK_CHARTS)?;
    let grafana = hr.get("/spec/values/grafana").cloned().unwrap_or(Value::Null);
    let obj = hr.describe();
    let targets: Vec<String> = logs_endpoints(repo)?.into_iter().filter(|e| e.cluster == ctx.cluster).map(|e| e.name).collect();
    // Datasources in the chart values, then in ConfigMaps/Secrets carrying the sidecar label.
    let mut candidates: Vec<(String, Value)> = vec![];
    collect_datasources(&grafana, &obj, &mut candidates);
    let sidecar = grafana.pointer("/sidecar/datasources").cloned().unwrap_or(Value::Null);
    if sidecar.get("enabled").and_then(Value::as_bool) == Some(true) {
        let label = str_at(&sidecar, "/label").unwrap_or("grafana_datasource");
        let label_value = sidecar.get("labelValue").map(crate::repo::scalar_text).unwrap_or_else(|| "1".into());
        for o in rendered.objects.iter().filter(|o| matches!(o.kind(), "ConfigMap" | "Secret")) {
            if o.str(&format!("/metadata/labels/{}", label.replace('/', "~1"))) != Some(label_value.as_str()) {
                continue;
            }
            for text in o.get("/data").and_then(Value::as_object).into_iter().flat_map(|m| m.values()).filter_map(Value::as_str) {
                if let Ok(parsed) = serde_yaml_ng::from_str::<Value>(text) {
                    collect_datasources(&parsed, &o.describe(), &mut candidates);
                }
            }
        }
    }
    let mut findings = vec![];
    let logs: Vec<&(String, Value)> = candidates.iter().filter(|(_, d)| str_at(d, "/type") == Some(LOGS_DATASOURCE_TYPE)).collect();
    let good: Vec<String> = logs
        .iter()
        .filter(|(_, d)| {
            let url = str_at(d, "/url").unwrap_or("");
            targets.iter().any(|t| url.split("://").nth(1).unwrap_or(url).starts_with(&format!("{t}.")))
        })
        .map(|(from, d)| format!("{} -> {} ({from})", str_at(d, "/name").unwrap_or("?"), str_at(d, "/url").unwrap_or("")))
        .collect();
    if good.is_empty() {
        let seen: Vec<String> = candidates
            .iter()
            .map(|(from, d)| format!("{} type {} url {} ({from})", str_at(d, "/name").unwrap_or("?"), str_at(d, "/type").unwrap_or("?"), str_at(d, "/url").unwrap_or("")))
            .collect();
        findings.push(Finding::new(
            format!("Grafana datasources of {obj} on cluster {}", ctx.cluster),
            format!("a {LOGS_DATASOURCE_TYPE} datasource with url at a VictoriaLogs Service (chart {}) of cluster {}: {targets:?}", LOGS_CHARTS.join(" or "), ctx.cluster),
            if seen.is_empty() { "no datasources".to_string() } else { format!("[{}]", seen.join("; ")) },
        ));
    }
    let plugins: Vec<&str> = grafana.get("plugins").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    if !plugins.iter().any(|p| p.split('@').next() == Some(LOGS_DATASOURCE_TYPE)) {
        findings.push(Finding::new(format!("{obj} spec.values.grafana.plugins"), format!("the plugin {LOGS_DATASOURCE_TYPE}"), format!("{plugins:?}")));
    }
    Ok(Outcome::from_findings(findings, format!("{}; plugin {LOGS_DATASOURCE_TYPE}", good.join("; "))))
}

/// Every entry of a `datasources:` list below `v` (Grafana provisioning format, chart values).
fn collect_datasources(v: &Value, from: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                match (k.as_str(), child) {
                    ("datasources" | "additionalDataSources", Value::Array(list)) => {
                        out.extend(list.iter().filter(|d| d.get("type").is_some()).map(|d| (from.to_string(), d.clone())))
                    }
                    (_, Value::String(s)) if s.contains("datasources:") => {
                        if let Ok(parsed) = serde_yaml_ng::from_str::<Value>(s) {
                            collect_datasources(&parsed, from, out);
                        }
                    }
                    _ => collect_datasources(child, from, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|c| collect_datasources(c, from, out)),
        _ => {}
    }
}

/// A Service through which VictoriaLogs takes logs: vmauth in front of it, or the server itself.
#[derive(Debug, Clone)]
pub(super) struct LogsEndpoint {
    pub(super) cluster: String,
    pub(super) name: String,
    pub(super) namespace: String,
    pub(super) port: u64,
    /// Exported to the other clusters (ServiceExport, or a Cilium global service).
    pub(super) global: bool,
}

/// The VictoriaLogs endpoints of every cluster that renders VictoriaLogs.
pub(super) fn logs_endpoints(repo: &GitopsRepo) -> CheckResult<Vec<LogsEndpoint>> {
    let mut out = vec![];
    for cluster in repo.clusters() {
        let rendered = repo.render(cluster).map_err(Outcome::error)?;
        let logs: Vec<&RenderedObject> = rendered_helmreleases(&rendered, LOGS_CHARTS).collect();
        if logs.is_empty() {
            continue;
        }
        let releases = logs.iter().map(|hr| (*hr, "-server", "/spec/values/server/service/servicePort", LOGS_DEFAULT_PORT));
        let vmauths = rendered_helmreleases(&rendered, VMAUTH_CHARTS).map(|hr| (hr, "", "/spec/values/service/servicePort", VMAUTH_DEFAULT_PORT));
        for (hr, suffix, port_at, default_port) in releases.chain(vmauths) {
            let name = format!("{}{suffix}", hr.str("/spec/values/fullnameOverride").unwrap_or(hr.name()));
            let namespace = hr.str("/spec/targetNamespace").or(hr.namespace()).unwrap_or("default").to_string();
            let exported = rendered.of_kind("ServiceExport").any(|e| e.name() == name && e.namespace() == Some(namespace.as_str()));
            let annotated = GLOBAL_ANNOTATIONS
                .iter()
                .any(|a| hr.get("/spec/values/service/annotations").and_then(|m| m.get(*a)).map(crate::repo::scalar_text).as_deref() == Some("true"));
            out.push(LogsEndpoint {
                cluster: cluster.clone(),
                name,
                namespace,
                port: hr.get(port_at).and_then(Value::as_u64).unwrap_or(default_port),
                global: exported || annotated,
            });
        }
    }
    Ok(out)
}

// ---- 6.3 Fluent Bit ----

pub(super) async fn fluent_bit_base(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(file_has_helmrelease(repo(&ctx)?, "kubernetes/bases/fluent-bit/helmrelease.yaml", FLUENT_BIT_CHARTS))
}

pub(super) async fn fluent_bit_config(ctx: Ctx) -> CheckResult<Outcome> {
    config_renders_base(
        &ctx,
        "kubernetes/workloads/platform/observability/fluent-bit/kustomization.yaml",
        "kubernetes/bases/fluent-bit",
        "HelmRelease",
    )
}

/// One `[OUTPUT]` section: (lower-case key, value) in order.
type OutputSection = Vec<(String, String)>;

/// `[OUTPUT]` sections of a fluent-bit HelmRelease's classic config (`values.config.outputs`),
/// as (lower-case key, value) pairs.
fn fluent_bit_outputs(hr: &RenderedObject) -> Vec<OutputSection> {
    let text = hr.str("/spec/values/config/outputs").unwrap_or("");
    let mut sections: Vec<OutputSection> = vec![];
    let mut in_output = false;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if line.starts_with('[') {
            in_output = line.eq_ignore_ascii_case("[OUTPUT]");
            if in_output {
                sections.push(vec![]);
            }
            continue;
        }
        if let (true, Some(section)) = (in_output, sections.last_mut()) {
            let (k, v) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            section.push((k.to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    sections
}

fn field<'a>(section: &'a [(String, String)], key: &str) -> &'a str {
    section.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("")
}

/// The fluent-bit HelmRelease and its `http` outputs, or a Fail.
fn http_outputs(rendered: &Rendered) -> CheckResult<(&RenderedObject, Vec<OutputSection>)> {
    let hr = rendered_helmrelease(rendered, FLUENT_BIT_CHARTS)?;
    let all = fluent_bit_outputs(hr);
    let http: Vec<_> = all.iter().filter(|s| field(s, "name").eq_ignore_ascii_case("http")).cloned().collect();
    if http.is_empty() {
        let names: Vec<&str> = all.iter().map(|s| field(s, "name")).collect();
        return Err(Outcome::fail(
            format!("{} spec.values.config.outputs", hr.describe()),
            "an [OUTPUT] with Name http (VictoriaLogs JSON-lines ingestion)",
            format!("outputs {names:?}"),
        ));
    }
    Ok((hr, http))
}

/// An http output of fluent-bit reaches a VictoriaLogs endpoint: its Service (cluster-local on
/// the cluster running VictoriaLogs, `svc.clusterset.local` and exported from there otherwise),
/// its port, and an `/insert/` ingestion URI.
pub(super) async fn fluent_bit_forwards(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let rendered = rendered(&ctx)?;
    let (hr, outputs) = http_outputs(&rendered)?;
    let endpoints = logs_endpoints(repo)?;
    if endpoints.is_empty() {
        return Ok(Outcome::fail(
            format!("HelmRelease of chart {}", LOGS_CHARTS.join(" or ")),
            format!("rendered for some cluster of {}", repo.clusters().join(", ")),
            "rendered for none",
        ));
    }
    let own_ns = hr.namespace().unwrap_or("default");
    let reaches = |host: &str, port: &str| -> Option<&LogsEndpoint> {
        let mut parts = host.splitn(3, '.');
        let (svc, ns, domain) = (parts.next().unwrap_or(""), parts.next().unwrap_or(own_ns), parts.next().unwrap_or(""));
        endpoints.iter().find(|e| {
            let local = e.cluster == ctx.cluster && matches!(domain, "" | "svc" | "svc.cluster.local");
            let mesh = domain == "svc.clusterset.local" && e.global;
            e.name == svc && e.namespace == ns && (local || mesh) && port.parse::<u64>().ok() == Some(e.port)
        })
    };
    for out in &outputs {
        let (host, port, uri) = (field(out, "host"), field(out, "port"), field(out, "uri"));
        if let Some(e) = reaches(host, port).filter(|_| uri.starts_with("/insert/")) {
            return Ok(Outcome::pass(format!(
                "{} [OUTPUT] http Host {host} Port {port} URI {uri} -> {}/{} on {}",
                hr.describe(),
                e.namespace,
                e.name,
                e.cluster
            )));
        }
    }
    let expected: Vec<String> = endpoints
        .iter()
        .filter(|e| e.cluster == ctx.cluster || e.global)
        .map(|e| {
            if e.cluster == ctx.cluster {
                format!("{}.{}.svc[.cluster.local]:{}", e.name, e.namespace, e.port)
            } else {
                format!("{}.{}.svc.clusterset.local:{} (exported from {})", e.name, e.namespace, e.port, e.cluster)
            }
        })
        .collect();
    let findings = outputs
        .iter()
        .map(|out| {
            Finding::new(
                format!("{} spec.values.config.outputs [OUTPUT] http", hr.describe()),
                format!("Host:Port one of [{}] and URI /insert/...", expected.join(", ")),
                format!("Host {} Port {} URI {}", field(out, "host"), field(out, "port"), field(out, "uri")),
            )
        })
        .collect();
    Ok(Outcome::Fail { findings })
}

/// The cluster's fluent-bit sends its own tenant (`OBSERVABILITY_LOG_TENANT`) in a header of its
/// VictoriaLogs output, and no other cluster's fluent-bit sends the same value in that header.
pub(super) async fn fluent_bit_tenant_header(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let vars = variables(&ctx)?;
    let tenant = vars.require("OBSERVABILITY_LOG_TENANT")?.to_string();
    let rendered = rendered(&ctx)?;
    let (hr, outputs) = http_outputs(&rendered)?;
    let headers = output_headers(&outputs);
    let Some((header, _)) = headers.iter().find(|(_, v)| *v == tenant) else {
        let seen: Vec<String> = headers.iter().map(|(n, v)| format!("{n} {v}")).collect();
        return Ok(Outcome::fail(
            format!("{} spec.values.config.outputs [OUTPUT] http Header", hr.describe()),
            format!("a tenant header with value {tenant:?} (OBSERVABILITY_LOG_TENANT of cluster {})", ctx.cluster),
            format!("headers [{}]", seen.join(", ")),
        ));
    };
    let mut findings = vec![];
    let mut evidence = vec![format!("{} Header {header} {tenant} on {}", hr.describe(), ctx.cluster)];
    for other in repo.clusters().iter().filter(|c| **c != ctx.cluster) {
        let rendered = repo.render(other).map_err(Outcome::error)?;
        let Some(other_hr) = rendered_helmreleases(&rendered, FLUENT_BIT_CHARTS).next() else { continue };
        let values: Vec<String> = output_headers(&http_outputs(&rendered).map(|(_, o)| o).unwrap_or_default())
            .into_iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(header))
            .map(|(_, v)| v)
            .collect();
        if values.contains(&tenant) {
            findings.push(Finding::new(
                format!("{} on cluster {other}: Header {header}", other_hr.describe()),
                format!("a tenant other than {tenant:?} (the tenant of cluster {})", ctx.cluster),
                format!("{values:?}"),
            ));
        } else {
            evidence.push(format!("cluster {other}: Header {header} {values:?}"));
        }
    }
    Ok(if findings.is_empty() { Outcome::Pass { evidence } } else { Outcome::Fail { findings } })
}

/// `Header NAME VALUE` lines of the outputs, as (name, value).
fn output_headers(outputs: &[OutputSection]) -> Vec<(String, String)> {
    outputs
        .iter()
        .flatten()
        .filter(|(k, _)| k == "header")
        .map(|(_, v)| {
            let (n, val) = v.split_once(char::is_whitespace).unwrap_or((v.as_str(), ""));
            (n.to_string(), val.trim().to_string())
        })
        .collect()
}

fn opt_value(v: Option<&Value>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "not set".into())
}
