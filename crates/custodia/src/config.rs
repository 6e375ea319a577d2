//! `custodia.toml`: every key can be overridden by an environment variable named
//! `CUSTODIA_<KEY IN UPPER CASE>` (e.g. `CUSTODIA_DATABASE_URL`), and command-line flags
//! override both.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `sqlite:///abs/path/custodia.db` or `postgres://user@host/db`.
    pub database_url: Option<String>,
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    pub listen: Option<String>,
    /// PEM certificate chain and private key; both set means HTTPS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address (behind a TLS-terminating proxy).
    pub insecure_http: Option<bool>,
    pub body_limit_bytes: Option<usize>,
    pub request_timeout_secs: Option<u64>,
    /// Log filter (`info`, `warn`, `custodia=debug` …).
    pub log: Option<String>,
    /// Directory of the operator's Cedar policy pack (default: the built-in pack).
    pub policy_dir: Option<PathBuf>,
    /// SQLite audit appender: µs a small group commit waits, only while the CPU is
    /// saturated, to gather more events (0 = never; default 200).
    pub audit_commit_delay_us: Option<u64>,
    /// Sign-in, sessions, back-off, MFA roles (`[auth]`).
    pub auth: Option<custodia_server::auth::AuthConfig>,
    /// Bulk-harvest limits per role (`[quotas.default]`, `[quotas.roles.<role>]`).
    pub quotas: Option<custodia_policy::quota::QuotaConfig>,
}

/// `[auth]` keys that `CUSTODIA_AUTH_<KEY>` overrides.
pub const AUTH_KEYS: &[&str] = &[
    "session_idle_secs",
    "session_absolute_secs",
    "lockout_user_after",
    "lockout_addr_after",
    "lockout_base_secs",
    "lockout_max_secs",
    "totp_skew_steps",
];

pub const KEYS: &[&str] = &[
    "database_url",
    "listen",
    "tls_cert",
    "tls_key",
    "insecure_http",
    "body_limit_bytes",
    "request_timeout_secs",
    "log",
    "policy_dir",
    "audit_commit_delay_us",
];

impl Config {
    pub fn load(path: Option<&Path>) -> Result<Config, String> {
        let mut table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read config {}: {e}", p.display()))?;
                text.parse::<toml::Table>()
                    .map_err(|e| format!("config {}: {e}", p.display()))?
            }
            None => toml::Table::new(),
        };
        for key in KEYS {
            let var = format!("CUSTODIA_{}", key.to_uppercase());
            if let Ok(v) = std::env::var(&var) {
                let value = match *key {
                    "insecure_http" => {
                        toml::Value::Boolean(matches!(v.as_str(), "1" | "true" | "yes" | "on"))
                    }
                    "body_limit_bytes" | "request_timeout_secs" | "audit_commit_delay_us" => {
                        toml::Value::Integer(
                            v.parse()
                                .map_err(|_| format!("{var} must be a whole number"))?,
                        )
                    }
                    _ => toml::Value::String(v),
                };
                table.insert(key.to_string(), value);
            }
        }
        for key in AUTH_KEYS {
            let var = format!("CUSTODIA_AUTH_{}", key.to_uppercase());
            if let Ok(v) = std::env::var(&var) {
                let n: i64 = v
                    .parse()
                    .map_err(|_| format!("{var} must be a whole number"))?;
                let auth = table
                    .entry("auth")
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(t) = auth {
                    t.insert(key.to_string(), toml::Value::Integer(n));
                }
            }
        }
        let mut cfg: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| format!("config: {e}"))?;
        let max_delay = custodia_server::audit::MAX_COMMIT_DELAY.as_micros() as u64;
        if cfg.audit_commit_delay_us.is_some_and(|us| us > max_delay) {
            return Err(format!(
                "config: audit_commit_delay_us (CUSTODIA_AUDIT_COMMIT_DELAY_US) must be at most {max_delay}"
            ));
        }
        // Relative paths in a config file are relative to the file, not to the caller.
        if let Some(dir) = path.and_then(Path::parent) {
            for p in [&mut cfg.tls_cert, &mut cfg.tls_key, &mut cfg.policy_dir]
                .into_iter()
                .flatten()
            {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            }
            if let Some(url) = &cfg.database_url {
                if let Some(rest) = url.strip_prefix("sqlite://") {
                    if !rest.starts_with('/') && !rest.starts_with(':') {
                        cfg.database_url = Some(format!("sqlite://{}", dir.join(rest).display()));
                    }
                }
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_and_paths_resolve_next_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("custodia.toml");
        std::fs::write(
            &path,
            "database_url = \"sqlite://data/c.db\"\nlisten = \"127.0.0.1:1\"\ntls_cert = \"cert.pem\"\n",
        )
        .unwrap();
        // Only this test sets these variables.
        std::env::set_var("CUSTODIA_REQUEST_TIMEOUT_SECS", "7");
        std::env::set_var("CUSTODIA_AUDIT_COMMIT_DELAY_US", "0");
        let cfg = Config::load(Some(&path)).unwrap();
        std::env::set_var("CUSTODIA_AUDIT_COMMIT_DELAY_US", "10001");
        let too_long = Config::load(Some(&path)).unwrap_err();
        std::env::set_var("CUSTODIA_AUDIT_COMMIT_DELAY_US", "10000");
        let longest = Config::load(Some(&path)).unwrap().audit_commit_delay_us;
        std::env::set_var("CUSTODIA_AUDIT_COMMIT_DELAY_US", "soon");
        let bad = Config::load(Some(&path)).unwrap_err();
        std::env::remove_var("CUSTODIA_REQUEST_TIMEOUT_SECS");
        std::env::remove_var("CUSTODIA_AUDIT_COMMIT_DELAY_US");
        assert_eq!(cfg.request_timeout_secs, Some(7));
        assert_eq!(cfg.audit_commit_delay_us, Some(0));
        assert!(bad.contains("CUSTODIA_AUDIT_COMMIT_DELAY_US"), "{bad}");
        assert!(too_long.contains("at most 10000"), "{too_long}");
        assert_eq!(longest, Some(10_000));
        assert_eq!(
            cfg.database_url.unwrap(),
            format!("sqlite://{}", dir.path().join("data/c.db").display())
        );
        assert_eq!(cfg.tls_cert.unwrap(), dir.path().join("cert.pem"));
        std::fs::write(&path, "listen = 5\n").unwrap();
        assert!(Config::load(Some(&path)).is_err());
        std::fs::write(&path, "colour = \"red\"\n").unwrap();
        assert!(Config::load(Some(&path)).unwrap_err().contains("colour"));
    }
}
