//! EPIC-10, repository layer: VolSync and Velero as the GitOps repository declares them:
//! bases and configs, MinIO as the destination, a test ReplicationSource, a weekly Schedule.

use serde_json::Value;

use super::{VELERO_BASE, VELERO_CONFIG, VOLSYNC_BASE, VOLSYNC_CONFIG, WEEKLY};
use crate::check::{CheckResult, Ctx, Finding, Outcome};
use crate::checks::kit::prelude::*;
use crate::repo::{Rendered, RenderedObject};

pub(super) async fn volsync_base_helmrelease(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(base_helmrelease(repo(&ctx)?, &ctx.cluster, VOLSYNC_BASE, "volsync"))
}

pub(super) async fn volsync_config(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(component_config(repo(&ctx)?, &ctx.cluster, VOLSYNC_CONFIG, Provides::Base("bases/volsync")))
}

pub(super) async fn velero_base_helmrelease(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(base_helmrelease(repo(&ctx)?, &ctx.cluster, VELERO_BASE, "velero"))
}

pub(super) async fn velero_config(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(component_config(repo(&ctx)?, &ctx.cluster, VELERO_CONFIG, Provides::Base("bases/velero")))
}

/// Restic repository Secrets: those ReplicationSources use, and every ExternalSecret templating RESTIC_REPOSITORY.
fn restic_repositories(r: &Rendered) -> Vec<(&RenderedObject, Option<&str>)> {
    let mut out: Vec<(&RenderedObject, Option<&str>)> =
        objects(r, ES_GROUP, "ExternalSecret").into_iter().filter_map(|es| template_value(es, "RESTIC_REPOSITORY").map(|v| (es, Some(v)))).collect();
    for rs in objects(r, "volsync.backube", "ReplicationSource") {
        let used = rs.str("/spec/restic/repository").and_then(|secret| external_secret_for(r, rs.namespace(), secret));
        if let Some(es) = used.filter(|es| !out.iter().any(|(e, _)| std::ptr::eq(*e, *es))) {
            out.push((es, template_value(es, "RESTIC_REPOSITORY")));
        }
    }
    out
}

pub(super) async fn volsync_minio_bucket(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let r = rendered(&ctx)?;
    let minio = minio_endpoint(repo, &ctx.cluster)?;
    let repos = restic_repositories(&r);
    if repos.is_empty() {
        return Ok(Outcome::fail(format!("cluster {}", ctx.cluster), "a restic repository Secret (ExternalSecret templating RESTIC_REPOSITORY) for VolSync", "none"));
    }
    Ok(Outcome::all(repos.into_iter().map(|(es, value)| {
        let object = format!("{} RESTIC_REPOSITORY", es.describe());
        let Some(value) = value else {
            return Outcome::fail(object, "s3:<MinIO endpoint>/<bucket>/<path>", "not templated");
        };
        let url = value.strip_prefix("s3:").unwrap_or("");
        let rest = normalize_url(url).strip_prefix(&format!("{minio}/")).map(String::from);
        match rest.as_deref().map(|r| r.split('/').next().unwrap_or("")) {
            Some(bucket) if !bucket.is_empty() => Outcome::pass(format!("{object} = {value} (MinIO {minio}, bucket {bucket})")),
            _ => Outcome::fail(object, format!("s3:{minio}/<bucket>/... (MINIO_ENDPOINT)"), format!("{value:?}")),
        }
    })))
}

pub(super) async fn volsync_test_replication_source(ctx: Ctx) -> CheckResult<Outcome> {
    let r = rendered(&ctx)?;
    let sources = objects(&r, "volsync.backube", "ReplicationSource");
    if sources.is_empty() {
        return Ok(Outcome::fail(format!("cluster {}", ctx.cluster), "a ReplicationSource (volsync.backube) rendered", "none"));
    }
    Ok(Outcome::all(sources.iter().map(|rs| {
        let mut findings = vec![];
        let pvc = rs.str("/spec/sourcePVC").unwrap_or("");
        if find(&r, "", "PersistentVolumeClaim", pvc, rs.namespace()).is_none() {
            findings.push(Finding::new(format!("{} spec.sourcePVC", rs.describe()), "a PersistentVolumeClaim rendered in the same namespace", format!("{pvc:?} not found")));
        }
        let schedule = rs.str("/spec/trigger/schedule");
        let manual = rs.str("/spec/trigger/manual");
        match (schedule, manual) {
            (Some(s), _) => {
                if let Err(e) = cron_frequency(s) {
                    findings.push(Finding::new(format!("{} spec.trigger.schedule", rs.describe()), "a cron schedule", format!("{s:?}: {e}")));
                }
            }
            (None, Some(_)) => {}
            (None, None) => findings.push(Finding::new(format!("{} spec.trigger", rs.describe()), "a schedule or manual trigger", "none")),
        }
        let mover = ["restic", "rclone", "rsync", "rsyncTLS", "syncthing"].iter().find(|m| rs.get(&format!("/spec/{m}")).is_some());
        match mover {
            Some(&"restic") => {
                let secret = rs.str("/spec/restic/repository").unwrap_or("");
                if let Err(f) = secret_from_external_secret(&r, rs.namespace(), secret, &format!("{} spec.restic.repository", rs.describe())) {
                    findings.push(f);
                }
            }
            Some(_) => {}
            None => findings.push(Finding::new(format!("{} spec", rs.describe()), "a mover (restic, rclone, rsync...)", "none")),
        }
        Outcome::from_findings(findings, format!("{} source {pvc}, schedule {:?}, mover {}", rs.describe(), schedule.unwrap_or("manual"), mover.unwrap_or(&"?")))
    })))
}

/// Velero BackupStorageLocations: the chart's `configuration.backupStorageLocation` and rendered objects.
fn storage_locations(r: &Rendered) -> Vec<(String, Value)> {
    let mut out = vec![];
    for hr in objects(r, HELM_GROUP, "HelmRelease").into_iter().filter(|h| squash(&chart_name(h)) == "velero") {
        let v = helm_values(r, hr);
        match v.pointer("/configuration/backupStorageLocation") {
            Some(Value::Array(list)) => {
                for (i, b) in list.iter().enumerate() {
                    out.push((format!("{} configuration.backupStorageLocation[{i}]", hr.describe()), b.clone()));
                }
            }
            Some(b @ Value::Object(_)) => out.push((format!("{} configuration.backupStorageLocation", hr.describe()), b.clone())),
            _ => {}
        }
    }
    for bsl in objects(r, "velero.io", "BackupStorageLocation") {
        let mut v = bsl.get("/spec").cloned().unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("name".into(), Value::String(bsl.name().into()));
            if let Some(b) = bsl.get("/spec/objectStorage/bucket") {
                m.insert("bucket".into(), b.clone());
            }
        }
        out.push((bsl.describe(), v));
    }
    out
}

pub(super) async fn velero_minio_destination(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let r = rendered(&ctx)?;
    let minio = minio_endpoint(repo, &ctx.cluster)?;
    let bsls = storage_locations(&r);
    if bsls.is_empty() {
        return Ok(Outcome::fail(format!("cluster {}", ctx.cluster), "a Velero BackupStorageLocation (chart values or velero.io object)", "none"));
    }
    let mut outcomes: Vec<Outcome> = bsls
        .iter()
        .map(|(object, b)| {
            let mut findings = vec![];
            let url = b.pointer("/config/s3Url").and_then(Value::as_str).unwrap_or("");
            if normalize_url(url) != minio {
                findings.push(Finding::new(format!("{object} config.s3Url"), format!("the MinIO endpoint {minio:?} (MINIO_ENDPOINT)"), format!("{url:?}")));
            }
            let provider = b.get("provider").and_then(Value::as_str).unwrap_or("");
            if !provider.contains("aws") {
                findings.push(Finding::new(format!("{object} provider"), "an S3 provider (aws plugin) for MinIO", format!("{provider:?}")));
            }
            let bucket = b.get("bucket").and_then(Value::as_str).unwrap_or("");
            if bucket.is_empty() {
                findings.push(Finding::new(format!("{object} bucket"), "a bucket", "not set"));
            }
            Outcome::from_findings(findings, format!("{object}: {url} (MinIO) bucket {bucket}"))
        })
        .collect();
    // Credentials for the plugin: the chart's existingSecret, from an ExternalSecret.
    for hr in objects(&r, HELM_GROUP, "HelmRelease").into_iter().filter(|h| squash(&chart_name(h)) == "velero") {
        let v = helm_values(&r, hr);
        if let Some(secret) = v.pointer("/credentials/existingSecret").and_then(Value::as_str) {
            outcomes.push(match secret_from_external_secret(&r, hr.namespace(), secret, &format!("{} credentials.existingSecret", hr.describe())) {
                Ok(es) => Outcome::pass(format!("credentials from {}", es.describe())),
                Err(f) => Outcome::Fail { findings: vec![f] },
            });
        }
    }
    Ok(Outcome::all(outcomes))
}

pub(super) async fn velero_weekly_schedule(ctx: Ctx) -> CheckResult<Outcome> {
    let r = rendered(&ctx)?;
    let word = WEEKLY.split_whitespace().find_map(|w| runs_per_week(w).map(|n| (w, n)));
    let (word, want) = word.ok_or_else(|| Outcome::error(format!("no frequency word in {WEEKLY:?}")))?;
    let schedules = objects(&r, "velero.io", "Schedule");
    if schedules.is_empty() {
        return Ok(Outcome::fail(format!("cluster {}", ctx.cluster), "a Velero Schedule (velero.io) rendered", "none"));
    }
    let locations: Vec<String> = storage_locations(&r).iter().filter_map(|(_, b)| b.get("name").and_then(Value::as_str).map(String::from)).collect();
    let mut seen = vec![];
    for s in &schedules {
        let cron = s.str("/spec/schedule").unwrap_or("");
        let freq = match cron_frequency(cron) {
            Ok(f) => f,
            Err(e) => {
                seen.push(format!("{} {cron:?}: {e}", s.describe()));
                continue;
            }
        };
        if freq != Frequency::PerWeek(want) {
            seen.push(format!("{} {cron:?} {freq}", s.describe()));
            continue;
        }
        let location = s.str("/spec/template/storageLocation").unwrap_or("default");
        if !locations.iter().any(|l| l == location) {
            return Ok(Outcome::fail(
                format!("{} spec.template.storageLocation", s.describe()),
                format!("a BackupStorageLocation rendered on cluster {} ([{}])", ctx.cluster, locations.join(", ")),
                format!("{location:?}"),
            ));
        }
        let ttl = s.str("/spec/template/ttl").unwrap_or("default 720h");
        return Ok(Outcome::pass(format!("{} schedule {cron:?} {freq} ({word}), location {location}, ttl {ttl}", s.describe())));
    }
    Ok(Outcome::fail("Velero Schedules", format!("a schedule that runs {word} ({want} run(s) a week)"), seen.join("; ")))
}
