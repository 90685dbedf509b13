//! [`Vault`]: the 1Password stand-in. Item → property → value, as the
//! ClusterSecretStore `onepassword` would serve them to external-secrets; also the
//! data services' own credentials. Kept in `$STATE/shared/vault.json` (mode 0600);
//! values are generated once and never printed (redacting `Debug`, [`Vault::redact`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};

use super::{DataPlan, shared_dir};
use crate::sim::{SimConfig, write_private};

/// Item -> property -> value: what 1Password would hold for the ClusterSecretStore
/// `onepassword`. Item names are the fixture's `remoteRef.key` / `extract.key`.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Vault {
    items: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(skip)]
    dirty: bool,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape: BTreeMap<&str, Vec<&str>> =
            self.items.iter().map(|(k, v)| (k.as_str(), v.keys().map(String::as_str).collect())).collect();
        f.debug_struct("Vault").field("items (values redacted)", &shape).finish()
    }
}

/// Internal item names (not referenced by the fixture).
const ITEM_PG_SUPERUSER: &str = "sim-postgres-superuser";
const ITEM_MINIO_ROOT: &str = "sim-minio-root";
/// The access token 1Password Connect accepts (what `op connect token create` hands out;
/// the bootstrap puts it into the clusters' token Secret).
const ITEM_CONNECT: &str = "sim-onepassword-connect";
/// Items whose name starts with this are the simulation's own, not the platform's vault's.
const INTERNAL: &str = "sim-";

impl Vault {
    pub fn path(cfg: &SimConfig) -> PathBuf {
        shared_dir(cfg).join("vault.json")
    }

    /// Loads the vault, creating it (mode 0600) with the data services' credentials.
    pub fn load_or_create(cfg: &SimConfig, plan: &DataPlan) -> Result<Vault> {
        let path = Self::path(cfg);
        let mut vault = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vault::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        vault.ensure(ITEM_PG_SUPERUSER, "password", || random_token(32));
        for role in plan.all_roles() {
            vault.ensure(&format!("postgres-{role}"), "password", || random_token(32));
        }
        vault.ensure("dragonfly", "password", || random_token(32));
        vault.ensure(ITEM_MINIO_ROOT, "access_key_id", || format!("sim{}", random_token(13).to_lowercase()));
        vault.ensure(ITEM_MINIO_ROOT, "secret_access_key", || random_token(40));
        vault.ensure(ITEM_CONNECT, "token", || random_token(64));
        // A vault of an older simulation gave MinIO items the root credentials: they get users.
        let root = vault.items.get(ITEM_MINIO_ROOT).and_then(|m| m.get("access_key_id")).cloned();
        vault.items.retain(|name, m| name == ITEM_MINIO_ROOT || m.get("access_key_id") != root.as_ref());
        vault.save(cfg)?;
        Ok(vault)
    }

    /// Reads the vault written by [`super::start`].
    pub fn load(cfg: &SimConfig) -> Result<Vault> {
        let path = Self::path(cfg);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("reading {} (run the data services first: sim up)", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    fn ensure(&mut self, item: &str, prop: &str, make: impl FnOnce() -> String) {
        let entry = self.items.entry(item.to_string()).or_default();
        if !entry.contains_key(prop) {
            entry.insert(prop.to_string(), make());
            self.dirty = true;
        }
    }

    /// Writes the vault if anything was generated since it was loaded.
    pub fn save(&mut self, cfg: &SimConfig) -> Result<()> {
        let path = Self::path(cfg);
        if !self.dirty && path.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(shared_dir(cfg))?;
        write_private(&path, &serde_json::to_vec_pretty(self)?)?;
        self.dirty = false;
        Ok(())
    }

    /// One property of an item, as ESO's 1Password provider returns it.
    /// MinIO items (`*minio*`) are the credentials of a MinIO user of their own (an access
    /// key `u<random>`; [`Vault::minio_users`] lists them, and `sim` creates them in MinIO
    /// with the `readwrite` policy), never the root user's, which bucket policies do not
    /// bind. Any other unknown property is generated once and kept, so every Secret the
    /// fixture declares gets a stable value.
    pub fn property(&mut self, item: &str, prop: &str) -> String {
        if let Some(v) = self.items.get(item).and_then(|m| m.get(prop)) {
            return v.clone();
        }
        let value = if item.contains("minio") && prop == "access_key_id" {
            format!("u{}", random_token(15).to_lowercase())
        } else if item.contains("minio") && prop == "secret_access_key" {
            random_token(40)
        } else if item.starts_with("postgres-") && prop == "username" {
            item.trim_start_matches("postgres-").to_string()
        } else {
            random_token(32)
        };
        self.items.entry(item.into()).or_default().insert(prop.into(), value.clone());
        self.dirty = true;
        value
    }

    /// Every property of an item (`dataFrom.extract`); `wanted` adds properties the
    /// caller knows the template needs.
    pub fn extract(&mut self, item: &str, wanted: &[String]) -> BTreeMap<String, String> {
        for w in wanted {
            self.property(item, w);
        }
        self.items.get(item).cloned().unwrap_or_default()
    }

    pub fn postgres_superuser_password(&self) -> Result<&str> {
        self.get(ITEM_PG_SUPERUSER, "password")
    }
    pub fn role_password(&self, role: &str) -> Result<&str> {
        self.get(&format!("postgres-{role}"), "password")
    }
    pub fn redis_password(&self) -> Result<&str> {
        self.get("dragonfly", "password")
    }
    /// `(item, access key, secret key)` of every MinIO item handed out so far: the MinIO
    /// users the simulation creates.
    pub fn minio_users(&self) -> Vec<(String, String, String)> {
        self.items
            .iter()
            .filter(|(name, _)| name.contains("minio") && name.as_str() != ITEM_MINIO_ROOT)
            .filter_map(|(name, m)| Some((name.clone(), m.get("access_key_id")?.clone(), m.get("secret_access_key")?.clone())))
            .collect()
    }

    /// The token 1Password Connect accepts.
    pub fn connect_token(&self) -> Result<&str> {
        self.get(ITEM_CONNECT, "token")
    }

    /// Revokes the Connect token the clusters hold: Connect accepts a new one from now on,
    /// which only a new bootstrap hands to the clusters.
    pub fn revoke_connect_token(&mut self) {
        self.items.entry(ITEM_CONNECT.into()).or_default().insert("token".into(), random_token(64));
        self.dirty = true;
    }

    /// The platform's items (item -> field label -> value), as 1Password holds them.
    pub fn platform_items(&self) -> impl Iterator<Item = (&str, &BTreeMap<String, String>)> {
        self.items.iter().filter(|(name, _)| !name.starts_with(INTERNAL)).map(|(n, m)| (n.as_str(), m))
    }

    /// Field `prop` of item `item`, if the vault holds it.
    pub fn value(&self, item: &str, prop: &str) -> Option<&str> {
        self.items.get(item).and_then(|m| m.get(prop)).map(String::as_str)
    }

    /// Sets field `prop` of item `item` (as editing it in 1Password would).
    pub fn set(&mut self, item: &str, prop: &str, value: &str) {
        self.items.entry(item.into()).or_default().insert(prop.into(), value.into());
        self.dirty = true;
    }

    /// Removes item `item` (as deleting it in 1Password would); whether it was there.
    pub fn remove_item(&mut self, item: &str) -> bool {
        let removed = self.items.remove(item).is_some();
        self.dirty |= removed;
        removed
    }

    /// (access key, secret key) of MinIO's root user.
    pub fn minio_root(&self) -> Result<(&str, &str)> {
        Ok((self.get(ITEM_MINIO_ROOT, "access_key_id")?, self.get(ITEM_MINIO_ROOT, "secret_access_key")?))
    }

    fn get(&self, item: &str, prop: &str) -> Result<&str> {
        self.items
            .get(item)
            .and_then(|m| m.get(prop))
            .map(String::as_str)
            .ok_or_else(|| anyhow!("vault has no {item}/{prop} (data services not initialised?)"))
    }

    /// Replaces every secret value in `text` with `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        let mut values: Vec<&String> = self.items.values().flat_map(|m| m.values()).filter(|v| v.len() >= 6).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        for v in values {
            out = out.replace(v.as_str(), "***");
        }
        out
    }
}

pub use crate::random::token as random_token;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_alphanumeric_and_distinct() {
        let a = random_token(32);
        let b = random_token(32);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn vault_debug_and_redact_hide_values() {
        let mut v = Vault::default();
        v.ensure("dragonfly", "password", || "s3cr3tValue42".into());
        assert!(!format!("{v:?}").contains("s3cr3tValue42"));
        assert_eq!(v.redact("auth s3cr3tValue42 failed"), "auth *** failed");
    }
}
