//! Settings from an optional `clearance.toml` and the environment
//! (`CLEARANCE_*`, `DATABASE_URL`), parsed once into typed values and checked
//! at start, so that a mistake is one clear line and exit status 2 rather than
//! a failure on the first request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::auth::jwks_url::JwksUrl;
use crate::export::csaf::{Publisher, PublisherCategory};
use crate::mail::smtp_url::SmtpUrl;

/// The raw, untyped settings as they arrive from file and environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
struct RawSettings {
    database_url: String,
    database_read_url: Option<String>,
    bind: String,
    public_url: Option<String>,
    data_dir: Option<String>,
    jwt_secret: Option<String>,
    link_secret: Option<String>,
    audit_key: Option<String>,
    audit_checkpoint_secs: u64,
    audit_checkpoint_file: Option<String>,
    jwt_jwks: Option<String>,
    jwt_jwks_allow_http: bool,
    jwt_roles_claim: Option<String>,
    jwt_issuer: String,
    jwt_audience: String,
    smtp_url: Option<String>,
    mail_dir: String,
    mail_from: String,
    worker: bool,
    public_lookup: bool,
    max_artifact_bytes: u64,
    worker_lease_secs: u64,
    worker_batch: i64,
    worker_concurrency: usize,
    worker_poll_ms: u64,
    worker_retry_base_secs: u64,
    worker_max_attempts: i32,
    worker_throttle_pause_secs: u64,
    digest_hour: u32,
    max_json_bytes: usize,
    db_pool_size: u32,
    http_workers: Option<usize>,
    log_format: String,
    lookup_refresh_ms: u64,
    csaf_publisher_name: String,
    csaf_publisher_namespace: Option<String>,
    csaf_publisher_category: String,
    contact: Option<String>,
    trusted_proxies: String,
    rate_exempt: String,
    rate_lookup_per_minute: u32,
    rate_lookup_burst: u32,
    rate_subscribe_per_minute: u32,
    rate_subscribe_burst: u32,
    rate_link_pages_per_minute: u32,
    rate_link_pages_burst: u32,
    mail_per_address_per_day: u32,
    header_timeout_secs: u64,
    body_timeout_secs: u64,
    keep_alive_secs: u64,
    max_connections: usize,
    db_timeout_ms: u64,
}

impl Default for RawSettings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://clearance.db".into(),
            database_read_url: None,
            bind: "127.0.0.1:8080".into(),
            public_url: None,
            data_dir: None,
            jwt_secret: None,
            link_secret: None,
            audit_key: None,
            audit_checkpoint_secs: 3600,
            audit_checkpoint_file: None,
            jwt_jwks: None,
            jwt_jwks_allow_http: false,
            jwt_roles_claim: None,
            jwt_issuer: "clearance".into(),
            jwt_audience: "clearance".into(),
            smtp_url: None,
            mail_dir: "./mail".into(),
            mail_from: "advisories@clearance.invalid".into(),
            worker: true,
            public_lookup: true,
            max_artifact_bytes: 26_214_400,
            worker_lease_secs: 60,
            worker_batch: 200,
            worker_concurrency: 8,
            worker_poll_ms: 1000,
            // Eight attempts with doubling delays from 11 minutes span ~24 h.
            worker_retry_base_secs: 660,
            worker_max_attempts: 8,
            worker_throttle_pause_secs: 30,
            digest_hour: 7,
            max_json_bytes: 256 * 1024,
            db_pool_size: 8,
            http_workers: None,
            log_format: "human".into(),
            lookup_refresh_ms: 1000,
            csaf_publisher_name: "Clearance".into(),
            csaf_publisher_namespace: None,
            // The office coordinates what personnel may use between makers,
            // testers and users; `CLEARANCE_CSAF_PUBLISHER_CATEGORY` changes it.
            csaf_publisher_category: "coordinator".into(),
            contact: None,
            trusted_proxies: String::new(),
            rate_exempt: String::new(),
            // A person never looks up 20 phones a second; a script does.
            rate_lookup_per_minute: 1200,
            rate_lookup_burst: 100,
            rate_subscribe_per_minute: 10,
            rate_subscribe_burst: 10,
            rate_link_pages_per_minute: 300,
            rate_link_pages_burst: 60,
            mail_per_address_per_day: 3,
            header_timeout_secs: 5,
            body_timeout_secs: 30,
            keep_alive_secs: 5,
            max_connections: 10_000,
            db_timeout_ms: 5000,
        }
    }
}

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file path (`sqlite://PATH`).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL, kept verbatim.
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::parse_setting("DATABASE_URL", raw)
    }

    /// [`Self::parse`], with errors naming `setting`.
    fn parse_setting(setting: &str, raw: &str) -> Result<Self, String> {
        if let Some(path) = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(format!(
                    "{setting} sqlite:// needs a file path, e.g. sqlite://clearance.db"
                ));
            }
            Ok(Self::Sqlite(PathBuf::from(path)))
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Url::parse(raw).map_err(|e| format!("{setting} is not a valid postgres URL: {e}"))?;
            Ok(Self::Postgres(raw.to_owned()))
        } else {
            let scheme = raw.split(':').next().unwrap_or_default();
            Err(format!(
                "{setting} has an unknown scheme `{scheme}`: use sqlite://PATH or postgres://…"
            ))
        }
    }

    /// The string diesel's connection expects.
    pub fn connection_string(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres(url) => url.clone(),
        }
    }
}

/// Where the identity provider's public keys come from
/// (`CLEARANCE_JWT_JWKS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A JWK Set file, read once at start.
    File(PathBuf),
    /// A JWK Set URL, fetched at start and kept fresh (see
    /// [`crate::auth::jwks_url`]).
    Url(JwksUrl),
}

impl JwksSource {
    /// A value with a URL scheme is a URL; anything else is a file path.
    /// `allow_http` is `CLEARANCE_JWT_JWKS_ALLOW_HTTP`.
    pub fn parse(raw: &str, allow_http: bool) -> Result<Self, String> {
        if raw.contains("://") {
            JwksUrl::parse(raw, allow_http).map(Self::Url)
        } else if raw.is_empty() {
            Err("CLEARANCE_JWT_JWKS is empty: name a JWK Set file or an https:// URL".into())
        } else {
            Ok(Self::File(PathBuf::from(raw)))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// How the delivery worker paces itself.
#[derive(Debug, Clone)]
pub struct WorkerTuning {
    /// Rows claimed at a time.
    pub batch: i64,
    /// Messages in flight at once: one transport connection each.
    pub concurrency: usize,
    /// How long an idle worker waits before looking again.
    pub poll: Duration,
    /// The first retry delay; each further one doubles.
    pub retry_base: Duration,
    /// Attempts before a mail is given up as failed.
    pub max_attempts: i32,
    /// How long to leave a relay alone that said "slow down" (421/45x).
    pub throttle_pause: Duration,
    /// The hour of the day (UTC) from which daily digests go out.
    pub digest_hour: u32,
}

/// How many requests one client may make of one kind: `per_minute` on
/// average, `burst` at once (a token bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_minute: NonZeroU32,
    pub burst: NonZeroU32,
}

/// Per-client rate limits (`CLEARANCE_RATE_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// `GET /api/v1/lookup` and the lookup page.
    pub lookup: Rate,
    /// `POST /api/v1/subscriptions` and the subscribe form.
    pub subscribe: Rate,
    /// The pages links in mail open: confirm, unsubscribe, manage, acknowledge.
    pub link_pages: Rate,
    /// Clients never limited (`CLEARANCE_RATE_EXEMPT`).
    pub exempt: Vec<IpNet>,
}

/// How long a client may take, and how many may be connected at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// To send a request's headers.
    pub header_timeout: Duration,
    /// To send a request's whole body, from the end of its headers.
    pub body_timeout: Duration,
    /// How long an idle connection is kept open for a next request.
    pub keep_alive: Duration,
    /// Open connections at once, across the HTTP workers (lowered at start
    /// to fit the process's file descriptor limit).
    pub max_connections: usize,
}

/// Validated settings, as the rest of the program sees them.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseUrl,
    /// A read replica for lookups and lists (`DATABASE_READ_URL`); `None`
    /// reads from `database`.
    pub database_read: Option<DatabaseUrl>,
    pub bind: SocketAddr,
    pub public_url: Url,
    /// Where generated secrets and evidence artifacts are kept.
    pub data_dir: PathBuf,
    pub jwt_secret: Option<SecretString>,
    /// The key of the tokens in mailed links; separate from the JWT secret.
    pub link_secret: Option<SecretString>,
    /// The key of the audit chain's hashes and head; generated into the
    /// data directory when unset.
    pub audit_key: Option<SecretString>,
    /// How often the audit chain's head is exported as a checkpoint (log
    /// line, metric, and `audit_checkpoint_file` when set).
    pub audit_checkpoint: Duration,
    pub audit_checkpoint_file: Option<PathBuf>,
    pub jwt_jwks: Option<JwksSource>,
    /// Where in a token's claims the roles are (`CLEARANCE_JWT_ROLES_CLAIM`,
    /// e.g. `realm_access.roles`); `None` reads the top-level `roles`.
    pub jwt_roles_claim: Option<String>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    /// The relay to send mail through; `None` writes `.eml` files to
    /// `mail_dir` instead.
    pub smtp_url: Option<SmtpUrl>,
    pub mail_dir: PathBuf,
    /// Who the mails are from (`CLEARANCE_MAIL_FROM`), named "Clearance".
    pub mail_from: lettre::message::Mailbox,
    pub worker: bool,
    pub public_lookup: bool,
    pub max_artifact_bytes: u64,
    pub worker_lease: Duration,
    pub worker_tuning: WorkerTuning,
    pub max_json_bytes: usize,
    pub db_pool_size: u32,
    pub http_workers: Option<usize>,
    pub log_format: LogFormat,
    /// How often a server checks whether another process changed the
    /// registry, so its in-memory lookup index follows.
    pub lookup_refresh: Duration,
    /// Who CSAF documents name as their publisher: `CLEARANCE_CSAF_PUBLISHER_NAME`
    /// (default `Clearance`), `_NAMESPACE` (default the public URL) and
    /// `_CATEGORY` (default `coordinator`).
    pub csaf_publisher: Publisher,
    /// Who to ask (`CLEARANCE_CONTACT`, free text such as "Security office,
    /// ext. 4242, security@example.org"), shown on every public page and in
    /// mail; `None` shows no contact line.
    pub contact: Option<String>,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` name the client
    /// (`CLEARANCE_TRUSTED_PROXIES`); from anyone else those headers are
    /// ignored.
    pub trusted_proxies: Vec<IpNet>,
    pub rate_limits: RateLimits,
    /// Confirmation and manage mails one address may be sent a day.
    pub mail_per_address_per_day: u32,
    pub http_limits: HttpLimits,
    /// The longest a database statement may run or wait for a lock
    /// (PostgreSQL `statement_timeout`, SQLite `busy_timeout`).
    pub db_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Reads `clearance.toml` (or the file named by `CLEARANCE_CONFIG`) when it
    /// exists, then the environment, which wins.
    pub fn load() -> Result<Self, ConfigError> {
        let file = std::env::var("CLEARANCE_CONFIG").unwrap_or_else(|_| "clearance.toml".into());
        unknown_file_key(&file)?;
        let figment = Figment::from(Serialized::defaults(RawSettings::default()))
            .merge(Toml::file(&file))
            .merge(Env::prefixed("CLEARANCE_").ignore(&["CONFIG"]))
            .merge(Env::raw().only(&["DATABASE_URL", "DATABASE_READ_URL"]));
        let raw: RawSettings = figment
            .extract()
            .map_err(|e| ConfigError(e.to_string().replace('\n', " ")))?;
        Self::from_raw(raw)
    }

    /// Settings for tests and tools: the defaults with a given database.
    pub fn for_database(database: DatabaseUrl, data_dir: &Path) -> Self {
        let raw = RawSettings {
            data_dir: Some(data_dir.display().to_string()),
            ..RawSettings::default()
        };
        let mut settings = Self::from_raw(raw).expect("the defaults are valid");
        settings.database = database;
        settings
    }

    fn from_raw(raw: RawSettings) -> Result<Self, ConfigError> {
        let fail = |msg: String| ConfigError(msg);
        let database = DatabaseUrl::parse(&raw.database_url).map_err(fail)?;
        let bind = raw.bind.parse::<SocketAddr>().map_err(|e| {
            fail(format!(
                "CLEARANCE_BIND `{}` is not a socket address like 127.0.0.1:8080: {e}",
                raw.bind
            ))
        })?;
        let public_url = match raw.public_url.as_deref().filter(|url| !url.is_empty()) {
            Some(url) => Url::parse(url)
                .map_err(|e| fail(format!("CLEARANCE_PUBLIC_URL `{url}` is not a URL: {e}")))?,
            None => url_of(bind),
        };
        let data_dir = match (&raw.data_dir, &database) {
            (Some(dir), _) => PathBuf::from(dir),
            (None, DatabaseUrl::Sqlite(path)) => path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
            (None, DatabaseUrl::Postgres(_)) => PathBuf::from("."),
        };
        if let Some(secret) = &raw.jwt_secret
            && secret.len() < 32
        {
            return Err(fail(
                "CLEARANCE_JWT_SECRET must be at least 32 characters".into(),
            ));
        }
        for (setting, secret) in [
            ("CLEARANCE_LINK_SECRET", &raw.link_secret),
            ("CLEARANCE_AUDIT_KEY", &raw.audit_key),
        ] {
            if secret.as_ref().is_some_and(|s| s.len() < 32) {
                return Err(fail(format!("{setting} must be at least 32 characters")));
            }
        }
        distinct_secrets(&raw).map_err(fail)?;
        if raw.audit_checkpoint_secs == 0 {
            return Err(fail(
                "CLEARANCE_AUDIT_CHECKPOINT_SECS must be positive (seconds between checkpoints)"
                    .into(),
            ));
        }
        let jwt_jwks = raw
            .jwt_jwks
            .as_deref()
            .map(|jwks| JwksSource::parse(jwks, raw.jwt_jwks_allow_http))
            .transpose()
            .map_err(fail)?;
        let jwt_roles_claim = raw
            .jwt_roles_claim
            .as_deref()
            .map(roles_claim)
            .transpose()
            .map_err(fail)?;
        let database_read = raw
            .database_read_url
            .as_deref()
            .filter(|url| !url.is_empty())
            .map(|url| read_replica(url, &database))
            .transpose()
            .map_err(fail)?;
        let smtp_url = raw
            .smtp_url
            .as_deref()
            .filter(|url| !url.is_empty())
            .map(SmtpUrl::parse)
            .transpose()
            .map_err(|e| fail(format!("CLEARANCE_SMTP_URL {e}")))?;
        if raw.digest_hour > 23 {
            return Err(fail(format!(
                "CLEARANCE_DIGEST_HOUR `{}` is not an hour of the day (0 to 23, UTC)",
                raw.digest_hour
            )));
        }
        if raw.worker_batch <= 0 || raw.worker_concurrency == 0 || raw.worker_max_attempts <= 0 {
            return Err(fail(
                "CLEARANCE_WORKER_BATCH, CLEARANCE_WORKER_CONCURRENCY and CLEARANCE_WORKER_MAX_ATTEMPTS must be positive"
                    .into(),
            ));
        }
        if raw.max_json_bytes == 0 || raw.db_pool_size == 0 || raw.worker_lease_secs == 0 {
            return Err(fail(
                "CLEARANCE_MAX_JSON_BYTES, CLEARANCE_DB_POOL_SIZE and CLEARANCE_WORKER_LEASE_SECS must be positive"
                    .into(),
            ));
        }
        let log_format = match raw.log_format.as_str() {
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            other => {
                return Err(fail(format!(
                    "CLEARANCE_LOG_FORMAT `{other}` is not one of: human, json"
                )));
            }
        };
        let csaf_publisher = csaf_publisher(&raw, &public_url).map_err(fail)?;
        let mail_from: lettre::Address = raw.mail_from.parse().map_err(|e| {
            fail(format!(
                "CLEARANCE_MAIL_FROM `{}` is not an email address: {e}",
                raw.mail_from
            ))
        })?;
        let trusted_proxies =
            networks("CLEARANCE_TRUSTED_PROXIES", &raw.trusted_proxies).map_err(fail)?;
        let rate_limits = rate_limits(&raw).map_err(fail)?;
        let http_limits = http_limits(&raw).map_err(fail)?;
        if raw.mail_per_address_per_day == 0 || raw.db_timeout_ms == 0 {
            return Err(fail(
                "CLEARANCE_MAIL_PER_ADDRESS_PER_DAY and CLEARANCE_DB_TIMEOUT_MS must be positive"
                    .into(),
            ));
        }
        Ok(Self {
            csaf_publisher,
            database,
            bind,
            public_url,
            data_dir,
            jwt_secret: raw.jwt_secret.map(SecretString::from),
            link_secret: raw.link_secret.map(SecretString::from),
            audit_key: raw.audit_key.map(SecretString::from),
            audit_checkpoint: Duration::from_secs(raw.audit_checkpoint_secs),
            audit_checkpoint_file: raw
                .audit_checkpoint_file
                .filter(|f| !f.is_empty())
                .map(PathBuf::from),
            database_read,
            jwt_jwks,
            jwt_roles_claim,
            jwt_issuer: raw.jwt_issuer,
            jwt_audience: raw.jwt_audience,
            smtp_url,
            mail_dir: PathBuf::from(raw.mail_dir),
            mail_from: lettre::message::Mailbox::new(Some("Clearance".into()), mail_from),
            worker: raw.worker,
            public_lookup: raw.public_lookup,
            max_artifact_bytes: raw.max_artifact_bytes,
            worker_lease: Duration::from_secs(raw.worker_lease_secs),
            worker_tuning: WorkerTuning {
                batch: raw.worker_batch,
                concurrency: raw.worker_concurrency,
                poll: Duration::from_millis(raw.worker_poll_ms),
                retry_base: Duration::from_secs(raw.worker_retry_base_secs),
                max_attempts: raw.worker_max_attempts,
                throttle_pause: Duration::from_secs(raw.worker_throttle_pause_secs),
                digest_hour: raw.digest_hour,
            },
            max_json_bytes: raw.max_json_bytes,
            db_pool_size: raw.db_pool_size,
            http_workers: raw.http_workers,
            log_format,
            lookup_refresh: Duration::from_millis(raw.lookup_refresh_ms.max(50)),
            contact: raw
                .contact
                .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|c| !c.is_empty()),
            trusted_proxies,
            rate_limits,
            mail_per_address_per_day: raw.mail_per_address_per_day,
            http_limits,
            db_timeout: Duration::from_millis(raw.db_timeout_ms),
        })
    }
}

/// A key in the settings file that names no setting: a misspelt setting
/// would otherwise be silently left at its default. (Unknown `CLEARANCE_*`
/// variables are left alone: the environment is shared with other tools.)
fn unknown_file_key(file: &str) -> Result<(), ConfigError> {
    let keys: std::collections::BTreeMap<String, figment::value::Value> =
        Figment::from(Toml::file(file))
            .extract()
            .map_err(|e| ConfigError(format!("{file}: {}", e.to_string().replace('\n', " "))))?;
    let known = serde_json::to_value(RawSettings::default()).unwrap_or_default();
    match keys.keys().find(|key| known.get(key.as_str()).is_none()) {
        Some(key) => Err(ConfigError(format!(
            "{file} has an unknown setting `{key}`: correct or remove it (deploy/clearance.toml lists every setting)"
        ))),
        None => Ok(()),
    }
}

/// Each secret keys one thing: a link token must never pass for a bearer
/// token, and whoever holds the JWT secret must not be able to rewrite the
/// audit chain.
fn distinct_secrets(raw: &RawSettings) -> Result<(), String> {
    let secrets = [
        ("CLEARANCE_JWT_SECRET", &raw.jwt_secret),
        ("CLEARANCE_LINK_SECRET", &raw.link_secret),
        ("CLEARANCE_AUDIT_KEY", &raw.audit_key),
    ];
    for (i, (first, a)) in secrets.iter().enumerate() {
        for (second, b) in &secrets[i + 1..] {
            if a.is_some() && a == b {
                return Err(format!(
                    "{second} is the same as {first}: give each its own value (e.g. openssl rand -hex 32)"
                ));
            }
        }
    }
    Ok(())
}

/// The public URL when none is set: the service where it listens, so that
/// a demo on another port prints and mails links that open. A wildcard
/// address (`0.0.0.0`, `::`) is reached on this machine as loopback.
fn url_of(bind: SocketAddr) -> Url {
    let ip = match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Url::parse(&format!("http://{}", SocketAddr::new(ip, bind.port())))
        .expect("http:// and a socket address is a URL")
}

/// A comma-separated list of addresses and networks (`10.0.0.0/8`,
/// `192.0.2.7`, `2001:db8::/32`); empty is none.
fn networks(setting: &str, raw: &str) -> Result<Vec<IpNet>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("{setting}: `{item}` is not an address or a network such as 10.0.0.0/8")
                })
        })
        .collect()
}

fn rate_limits(raw: &RawSettings) -> Result<RateLimits, String> {
    let rate = |kind: &str, per_minute: u32, burst: u32| match (
        NonZeroU32::new(per_minute),
        NonZeroU32::new(burst),
    ) {
        (Some(per_minute), Some(burst)) => Ok(Rate { per_minute, burst }),
        _ => Err(format!(
            "CLEARANCE_RATE_{kind}_PER_MINUTE and CLEARANCE_RATE_{kind}_BURST must be positive \
                 (exempt clients with CLEARANCE_RATE_EXEMPT instead)"
        )),
    };
    Ok(RateLimits {
        lookup: rate("LOOKUP", raw.rate_lookup_per_minute, raw.rate_lookup_burst)?,
        subscribe: rate(
            "SUBSCRIBE",
            raw.rate_subscribe_per_minute,
            raw.rate_subscribe_burst,
        )?,
        link_pages: rate(
            "LINK_PAGES",
            raw.rate_link_pages_per_minute,
            raw.rate_link_pages_burst,
        )?,
        exempt: networks("CLEARANCE_RATE_EXEMPT", &raw.rate_exempt)?,
    })
}

fn http_limits(raw: &RawSettings) -> Result<HttpLimits, String> {
    if raw.header_timeout_secs == 0
        || raw.body_timeout_secs == 0
        || raw.keep_alive_secs == 0
        || raw.max_connections == 0
    {
        return Err(
            "CLEARANCE_HEADER_TIMEOUT_SECS, CLEARANCE_BODY_TIMEOUT_SECS, \
             CLEARANCE_KEEP_ALIVE_SECS and CLEARANCE_MAX_CONNECTIONS must be positive"
                .into(),
        );
    }
    Ok(HttpLimits {
        header_timeout: Duration::from_secs(raw.header_timeout_secs),
        body_timeout: Duration::from_secs(raw.body_timeout_secs),
        keep_alive: Duration::from_secs(raw.keep_alive_secs),
        max_connections: raw.max_connections,
    })
}

/// `CLEARANCE_JWT_ROLES_CLAIM`: a claim name, or a dotted path into nested
/// claims (`realm_access.roles`), without empty parts.
fn roles_claim(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.split('.').any(str::is_empty) {
        return Err(format!(
            "CLEARANCE_JWT_ROLES_CLAIM `{raw}` is not a claim name or a dotted path such as realm_access.roles"
        ));
    }
    Ok(raw.to_owned())
}

/// `DATABASE_READ_URL`: a PostgreSQL URL, and only beside a PostgreSQL
/// primary (SQLite has no replicas; one file serves every read).
fn read_replica(raw: &str, primary: &DatabaseUrl) -> Result<DatabaseUrl, String> {
    let replica = DatabaseUrl::parse_setting("DATABASE_READ_URL", raw)?;
    match (primary, &replica) {
        (DatabaseUrl::Postgres(_), DatabaseUrl::Postgres(_)) => Ok(replica),
        _ => Err(
            "DATABASE_READ_URL is for a PostgreSQL read replica beside a PostgreSQL DATABASE_URL; leave it unset with SQLite"
                .into(),
        ),
    }
}

/// The CSAF publisher the settings name; its namespace must be an absolute URL.
fn csaf_publisher(raw: &RawSettings, public_url: &Url) -> Result<Publisher, String> {
    let namespace = match &raw.csaf_publisher_namespace {
        Some(namespace) => Url::parse(namespace).map_err(|e| {
            format!("CLEARANCE_CSAF_PUBLISHER_NAMESPACE `{namespace}` is not a URL: {e}")
        })?,
        None => public_url.clone(),
    };
    let name = raw.csaf_publisher_name.trim();
    if name.is_empty() {
        return Err("CLEARANCE_CSAF_PUBLISHER_NAME must not be empty".into());
    }
    let category = raw
        .csaf_publisher_category
        .parse::<PublisherCategory>()
        .map_err(|e| format!("CLEARANCE_CSAF_PUBLISHER_CATEGORY {e}"))?;
    Ok(Publisher {
        category,
        name: name.to_owned(),
        namespace: namespace.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_told_apart_by_scheme() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/c.db").unwrap(),
            DatabaseUrl::Sqlite(PathBuf::from("data/c.db"))
        );
        assert!(matches!(
            DatabaseUrl::parse("postgres://postgres@127.0.0.1/x").unwrap(),
            DatabaseUrl::Postgres(_)
        ));
        let err = DatabaseUrl::parse("mysql://root@localhost/x").unwrap_err();
        assert!(err.contains("unknown scheme `mysql`"), "{err}");
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn a_bad_bind_address_is_refused_with_its_name() {
        let raw = RawSettings {
            bind: "localhost:eighty".into(),
            ..RawSettings::default()
        };
        let err = Settings::from_raw(raw).unwrap_err().to_string();
        assert!(err.contains("CLEARANCE_BIND"), "{err}");
    }

    /// A sender no relay would take is refused at start, not found out
    /// one failed mail at a time.
    #[test]
    fn the_sender_address_is_parsed_at_start() {
        let from = |address: &str| {
            Settings::from_raw(RawSettings {
                mail_from: address.into(),
                ..RawSettings::default()
            })
        };
        let settings = from("security-office@example.org").unwrap();
        assert_eq!(
            settings.mail_from.to_string(),
            "Clearance <security-office@example.org>"
        );
        for bad in ["", "security office", "office@", "a@b@example.org"] {
            let error = from(bad).unwrap_err().to_string();
            assert!(error.contains("CLEARANCE_MAIL_FROM"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn the_public_url_defaults_to_where_the_service_listens() {
        let raw = |bind: &str, public_url: Option<&str>| RawSettings {
            bind: bind.into(),
            public_url: public_url.map(Into::into),
            ..RawSettings::default()
        };
        let url = |raw| Settings::from_raw(raw).unwrap().public_url.to_string();
        assert_eq!(url(RawSettings::default()), "http://127.0.0.1:8080/");
        assert_eq!(url(raw("127.0.0.1:9090", None)), "http://127.0.0.1:9090/");
        assert_eq!(url(raw("[::1]:9090", None)), "http://[::1]:9090/");
        // Links must open on this machine, where 0.0.0.0 is not an address.
        assert_eq!(url(raw("0.0.0.0:9090", None)), "http://127.0.0.1:9090/");
        assert_eq!(url(raw("[::]:9090", None)), "http://[::1]:9090/");
        // A setting wins; an empty one (`CLEARANCE_PUBLIC_URL=`) is unset.
        assert_eq!(
            url(raw("0.0.0.0:9090", Some("https://clearance.example.org"))),
            "https://clearance.example.org/"
        );
        assert_eq!(
            url(raw("127.0.0.1:9090", Some(""))),
            "http://127.0.0.1:9090/"
        );
        let settings = Settings::from_raw(raw("127.0.0.1:9090", None)).unwrap();
        assert_eq!(settings.csaf_publisher.namespace, "http://127.0.0.1:9090/");
        let error = Settings::from_raw(raw("127.0.0.1:9090", Some("clearance")))
            .unwrap_err()
            .to_string();
        assert!(error.contains("CLEARANCE_PUBLIC_URL"), "{error}");
    }

    #[test]
    fn a_short_jwt_secret_is_refused() {
        let raw = RawSettings {
            jwt_secret: Some("short".into()),
            ..RawSettings::default()
        };
        assert!(Settings::from_raw(raw).is_err());
    }

    #[test]
    fn a_short_link_secret_is_refused_by_name() {
        let raw = RawSettings {
            link_secret: Some("short".into()),
            ..RawSettings::default()
        };
        let err = Settings::from_raw(raw).unwrap_err().to_string();
        assert!(err.contains("CLEARANCE_LINK_SECRET"), "{err}");
    }

    #[test]
    fn the_secrets_must_differ_from_each_other() {
        let same = "the-same-secret-of-at-least-32-characters".to_owned();
        let raw = RawSettings {
            jwt_secret: Some(same.clone()),
            link_secret: Some(same.clone()),
            ..RawSettings::default()
        };
        let err = Settings::from_raw(raw).unwrap_err().to_string();
        assert!(
            err.contains("CLEARANCE_LINK_SECRET is the same as CLEARANCE_JWT_SECRET"),
            "{err}"
        );
        let raw = RawSettings {
            link_secret: Some(same.clone()),
            audit_key: Some(same),
            ..RawSettings::default()
        };
        let err = Settings::from_raw(raw).unwrap_err().to_string();
        assert!(
            err.contains("CLEARANCE_AUDIT_KEY is the same as CLEARANCE_LINK_SECRET"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_smtp_url_is_one_line_naming_the_setting() {
        let raw = RawSettings {
            smtp_url: Some("smtp://relay.example?tls=always".into()),
            ..RawSettings::default()
        };
        let err = Settings::from_raw(raw).unwrap_err().to_string();
        assert_eq!(
            err,
            "configuration: CLEARANCE_SMTP_URL has tls=`always`: use tls=required, tls=opportunistic or tls=none"
        );
        let raw = RawSettings {
            smtp_url: Some(String::new()),
            ..RawSettings::default()
        };
        assert!(Settings::from_raw(raw).unwrap().smtp_url.is_none());
    }

    #[test]
    fn the_csaf_publisher_defaults_to_the_public_url_and_is_checked() {
        let settings = Settings::from_raw(RawSettings::default()).unwrap();
        assert_eq!(settings.csaf_publisher.name, "Clearance");
        assert_eq!(settings.csaf_publisher.namespace, "http://127.0.0.1:8080/");
        assert_eq!(
            settings.csaf_publisher.category,
            PublisherCategory::Coordinator
        );
        let raw = RawSettings {
            csaf_publisher_category: "aggregator".into(),
            ..RawSettings::default()
        };
        let err = Settings::from_raw(raw).unwrap_err().to_string();
        assert!(err.contains("CLEARANCE_CSAF_PUBLISHER_CATEGORY"), "{err}");
    }

    #[test]
    fn the_jwks_is_a_file_or_a_url_and_plain_http_needs_consent() {
        let raw = |jwks: &str, allow_http: bool| RawSettings {
            jwt_jwks: Some(jwks.into()),
            jwt_jwks_allow_http: allow_http,
            ..RawSettings::default()
        };
        let settings = Settings::from_raw(raw("/etc/clearance/jwks.json", false)).unwrap();
        assert_eq!(
            settings.jwt_jwks,
            Some(JwksSource::File("/etc/clearance/jwks.json".into()))
        );
        let settings = Settings::from_raw(raw("https://idp.example.org/certs", false)).unwrap();
        assert!(matches!(settings.jwt_jwks, Some(JwksSource::Url(_))));
        let error = Settings::from_raw(raw("http://127.0.0.1:9000/certs", false))
            .unwrap_err()
            .to_string();
        assert!(error.contains("CLEARANCE_JWT_JWKS_ALLOW_HTTP"), "{error}");
        assert!(Settings::from_raw(raw("http://127.0.0.1:9000/certs", true)).is_ok());
        let error = Settings::from_raw(raw("http://idp.example.org/certs", true))
            .unwrap_err()
            .to_string();
        assert!(error.contains("loopback"), "{error}");
    }

    #[test]
    fn the_roles_claim_is_a_name_or_a_dotted_path() {
        let raw = |claim: &str| RawSettings {
            jwt_roles_claim: Some(claim.into()),
            ..RawSettings::default()
        };
        let settings = Settings::from_raw(raw("realm_access.roles")).unwrap();
        assert_eq!(
            settings.jwt_roles_claim.as_deref(),
            Some("realm_access.roles")
        );
        for bad in ["", "realm_access..roles", ".roles"] {
            let error = Settings::from_raw(raw(bad)).unwrap_err().to_string();
            assert!(
                error.contains("CLEARANCE_JWT_ROLES_CLAIM"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn a_read_replica_is_postgresql_beside_postgresql() {
        let raw = |primary: &str, replica: &str| RawSettings {
            database_url: primary.into(),
            database_read_url: Some(replica.into()),
            ..RawSettings::default()
        };
        let settings = Settings::from_raw(raw("postgres://db/c", "postgres://replica/c")).unwrap();
        assert_eq!(
            settings.database_read,
            Some(DatabaseUrl::Postgres("postgres://replica/c".into()))
        );
        let error = Settings::from_raw(raw("sqlite://c.db", "postgres://replica/c"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("DATABASE_READ_URL"), "{error}");
        let error = Settings::from_raw(raw("postgres://db/c", "mysql://replica/c"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("DATABASE_READ_URL has an unknown scheme"),
            "{error}"
        );
        // Empty means unset, as in an env file with `DATABASE_READ_URL=`.
        let settings = Settings::from_raw(raw("postgres://db/c", "")).unwrap();
        assert_eq!(settings.database_read, None);
    }

    /// Every setting's name, as the file spells it.
    fn setting_keys() -> std::collections::BTreeSet<String> {
        let defaults = serde_json::to_value(RawSettings::default()).unwrap();
        defaults.as_object().unwrap().keys().cloned().collect()
    }

    /// The environment variable of a file key.
    fn variable(key: &str) -> String {
        if key.starts_with("database_") {
            key.to_uppercase()
        } else {
            format!("CLEARANCE_{}", key.to_uppercase())
        }
    }

    #[test]
    fn the_sample_file_lists_every_setting_with_its_default() {
        const SAMPLE: &str = include_str!("../deploy/clearance.toml");
        let listed: std::collections::BTreeSet<String> = SAMPLE
            .lines()
            .filter_map(|line| {
                let (key, _) = line.trim_start_matches(['#', ' ']).split_once(" = ")?;
                key.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_')
                    .then(|| key.to_owned())
            })
            .collect();
        assert_eq!(
            listed,
            setting_keys(),
            "deploy/clearance.toml and RawSettings"
        );
        // What it sets is exactly the defaults.
        let sample: RawSettings = Figment::from(Toml::string(SAMPLE)).extract().unwrap();
        assert_eq!(
            serde_json::to_value(sample).unwrap(),
            serde_json::to_value(RawSettings::default()).unwrap()
        );
    }

    #[test]
    fn every_setting_is_named_in_the_image_and_the_readme() {
        const DOCKERFILE: &str = include_str!("../deploy/Dockerfile");
        const README: &str = include_str!("../README.md");
        for key in setting_keys() {
            let variable = variable(&key);
            assert!(
                DOCKERFILE.contains(&variable),
                "deploy/Dockerfile lacks {variable}"
            );
            assert!(README.contains(&variable), "README.md lacks {variable}");
        }
    }

    #[test]
    fn trusted_proxies_and_exempt_clients_are_addresses_or_networks() {
        let raw = RawSettings {
            trusted_proxies: "10.0.0.0/8, 192.0.2.7,2001:db8::/32".into(),
            rate_exempt: " ".into(),
            ..RawSettings::default()
        };
        let settings = Settings::from_raw(raw).unwrap();
        let proxies: Vec<String> = settings
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(proxies, ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]);
        assert!(settings.rate_limits.exempt.is_empty());
        let raw = RawSettings {
            rate_exempt: "10.0.0.0/33".into(),
            ..RawSettings::default()
        };
        let error = Settings::from_raw(raw).unwrap_err().to_string();
        assert!(
            error.contains("CLEARANCE_RATE_EXEMPT: `10.0.0.0/33`"),
            "{error}"
        );
        let raw = RawSettings {
            rate_lookup_burst: 0,
            ..RawSettings::default()
        };
        let error = Settings::from_raw(raw).unwrap_err().to_string();
        assert!(error.contains("CLEARANCE_RATE_LOOKUP_BURST"), "{error}");
    }

    #[test]
    fn the_data_dir_defaults_to_the_sqlite_files_folder() {
        let raw = RawSettings {
            database_url: "sqlite:///var/lib/clearance/c.db".into(),
            ..RawSettings::default()
        };
        let settings = Settings::from_raw(raw).unwrap();
        assert_eq!(settings.data_dir, PathBuf::from("/var/lib/clearance"));
        let settings = Settings::from_raw(RawSettings::default()).unwrap();
        assert_eq!(settings.data_dir, PathBuf::from("."));
    }
}
