//! One way to start the real service for a test: a fresh database (a temp
//! SQLite file, or a throw-away PostgreSQL database dropped afterwards), a
//! random port, and request helpers that speak HTTP to it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clearance::app::Application;
use clearance::auth::{AuthKeys, Role};
use clearance::clock::Clock;
use clearance::config::{DatabaseUrl, JwksSource, Settings};
use clearance::links::LinkTokens;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};
use reqwest::{Method, Response};
use secrecy::SecretString;
use serde_json::{Value, json};

pub const JWT_SECRET: &str = "integration-test-secret-of-at-least-32-characters";
pub const LINK_SECRET: &str = "integration-test-link-secret-not-the-jwt-one";
/// The audit key of every test service: a restored backup verifies on
/// another data directory only with the key it was written with.
pub const AUDIT_KEY: &str = "integration-test-audit-key-neither-of-the-others";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Declares each listed test function as two tests, one per backend:
/// `sqlite::name` and `postgres::name`.
///
/// - `backend_tests!(a, b)`: `async fn a(app: TestApp)` gets a fresh app with
///   the default [`SpawnOptions`];
/// - `backend_tests!(with OPTIONS => a, b)`: the same, started with OPTIONS;
/// - `backend_tests!(each backend => a, b)`: `async fn a(backend: Backend)`
///   starts what it needs itself (a relay first, say).
///
/// A file that needs more than one form wraps the others in a module.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $crate::backend_tests!(with $crate::helpers::SpawnOptions::default() => $($name),*);
    };
    (with $options:expr => $($name:ident),* $(,)?) => {
        $crate::backend_tests!(@both |backend| async move {
            $crate::helpers::TestApp::spawn_with(backend, $options).await
        } => $($name),*);
    };
    (each backend => $($name:ident),* $(,)?) => {
        $crate::backend_tests!(@both |backend| async move { backend } => $($name),*);
    };
    (@both $given:expr => $($name:ident),*) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    #[allow(unused_imports)]
                    use super::*;
                    super::$name(($given)($crate::helpers::Backend::Sqlite).await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    #[allow(unused_imports)]
                    use super::*;
                    super::$name(($given)($crate::helpers::Backend::Postgres).await).await
                }
            )*
        }
    };
}

/// What a check that [`wait_for`] repeats answers: done, with what it
/// found, or not yet, with what it saw (for the failure message).
pub trait Checked {
    type Found;
    fn found(self) -> Result<Self::Found, String>;
}

impl Checked for bool {
    type Found = ();
    fn found(self) -> Result<(), String> {
        if self { Ok(()) } else { Err("not yet".into()) }
    }
}

impl<T> Checked for Option<T> {
    type Found = T;
    fn found(self) -> Result<T, String> {
        self.ok_or_else(|| "not yet".into())
    }
}

impl<T, E: std::fmt::Display> Checked for Result<T, E> {
    type Found = T;
    fn found(self) -> Result<T, String> {
        self.map_err(|seen| seen.to_string())
    }
}

/// Asks `check` until it is done, at first often and then less so, and
/// returns what it found; fails the test after `limit`, naming `what` it
/// waited for and what the last check saw. The one way tests wait for
/// something the service does in the background.
pub async fn wait_for<C: Checked>(
    what: &str,
    limit: std::time::Duration,
    mut check: impl AsyncFnMut() -> C,
) -> C::Found {
    let deadline = std::time::Instant::now() + limit;
    let mut pause = std::time::Duration::from_millis(20);
    loop {
        let seen = match check().await.found() {
            Ok(found) => return found,
            Err(seen) => seen,
        };
        assert!(
            std::time::Instant::now() < deadline,
            "waited {limit:?} for {what}; last saw: {seen}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 3 / 2).min(std::time::Duration::from_millis(500));
    }
}

/// The base URL of the PostgreSQL server tests create databases on.
fn postgres_server() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// The URL of database `name` on that server, without TLS: the test process
/// exits while the service's threads may still be winding down, and
/// threads that used OpenSSL (libpq's TLS) then race OpenSSL's exit-time
/// cleanup — a rare double free after a busy test.
fn postgres_url(name: &str) -> String {
    format!("{}/{name}?sslmode=disable", postgres_server())
}

fn admin() -> PgConnection {
    PgConnection::establish(&postgres_url("postgres"))
        .expect("the PostgreSQL server at TEST_POSTGRES_URL (default 127.0.0.1:5432) answers")
}

/// The migrated database every PostgreSQL test database is a copy of:
/// cloning it is much faster than migrating each one. Its name carries a
/// digest of the migrations, so a changed migration makes a new one; the
/// first test process to need it makes it while the others wait.
fn migrated_template() -> &'static str {
    static TEMPLATE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let name = format!("clearance_template_{}", migrations_digest());
        let mut admin = admin();
        admin
            .batch_execute("SELECT pg_advisory_lock(727276)")
            .expect("the template lock");
        #[derive(QueryableByName)]
        struct Found {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            count: i64,
        }
        let ready: Found = diesel::sql_query(
            "SELECT count(*) AS count FROM pg_database WHERE datname = $1 AND datistemplate",
        )
        .bind::<diesel::sql_types::Text, _>(&name)
        .get_result(&mut admin)
        .expect("the template looked up");
        if ready.count == 0 {
            // Left half made by a process that died making it.
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                .expect("a stale template dropped");
            admin
                .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                .expect("the template created");
            let url = DatabaseUrl::Postgres(postgres_url(&name));
            clearance::db::Db::connect(&url, 1, std::time::Duration::from_secs(5))
                .and_then(|db| db.migrate())
                .expect("the template migrated");
            admin
                .batch_execute(&format!(
                    "ALTER DATABASE \"{name}\" WITH is_template = true"
                ))
                .expect("the template marked");
        }
        admin
            .batch_execute("SELECT pg_advisory_unlock(727276)")
            .expect("the template lock released");
        name
    })
}

/// A digest of the PostgreSQL migrations, as the binary embeds them.
fn migrations_digest() -> String {
    use sha2::{Digest, Sha256};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("the migrations folder")
        .flat_map(|dir| std::fs::read_dir(dir.expect("a migration").path()).expect("a migration"))
        .map(|file| file.expect("a migration file").path())
        .collect();
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        let relative = file.strip_prefix(&root).unwrap_or(&file);
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update(std::fs::read(&file).expect("a migration file"));
    }
    hex::encode(&hasher.finalize()[..8])
}

/// Lets [`READ_ONLY_ROLE`] read every table the service will create in
/// database `name` (and nothing more).
fn grant_reads(name: &str) {
    let mut admin = PgConnection::establish(&postgres_url("postgres")).unwrap();
    // The role is the server's, shared by every test: create it once.
    let created = admin.batch_execute(&format!("CREATE ROLE {READ_ONLY_ROLE} LOGIN"));
    if let Err(error) = created
        && !error.to_string().contains("already exists")
    {
        panic!("the read-only role: {error}");
    }
    let mut conn = PgConnection::establish(&postgres_url(name)).unwrap();
    // The tables the template made, and any a later migration makes.
    conn.batch_execute(&format!(
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {READ_ONLY_ROLE}; \
         ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {READ_ONLY_ROLE}"
    ))
    .expect("privileges for the read-only role");
}

/// Database `name` as [`READ_ONLY_ROLE`] sees it.
fn read_only_url(name: &str) -> String {
    let server = postgres_server();
    let host = server
        .split_once('@')
        .map_or(server.trim_start_matches("postgres://"), |(_, host)| host);
    format!(
        "postgres://{READ_ONLY_ROLE}@{host}/{name}?sslmode=disable&application_name=clearance-read"
    )
}

/// A test's own database, and a data directory beside it: a temporary
/// SQLite file (not created yet) or a new PostgreSQL database — empty
/// ([`EmptyDatabase::create`], for restoring a backup into) or already
/// migrated ([`EmptyDatabase::migrated`]) — dropped when the last user is
/// done.
pub struct EmptyDatabase {
    db: TestDb,
    dir: tempfile::TempDir,
}

impl EmptyDatabase {
    pub fn create(backend: Backend) -> Self {
        Self::copy_of(backend, None)
    }

    /// A database already migrated, as the service would leave it on its
    /// first start: on PostgreSQL a copy of [`migrated_template`], much
    /// faster than migrating each test's database.
    pub fn migrated(backend: Backend) -> Self {
        Self::copy_of(backend, Some(migrated_template))
    }

    fn copy_of(backend: Backend, template: Option<fn() -> &'static str>) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let db = match backend {
            // An SQLite file is migrated in milliseconds when the service starts.
            Backend::Sqlite => TestDb::Sqlite {
                path: dir.path().join("clearance.db"),
            },
            Backend::Postgres => {
                let name = format!("clearance_test_{}", uuid::Uuid::new_v4().simple());
                let from = template.map_or(String::new(), |t| format!(" TEMPLATE \"{}\"", t()));
                diesel::sql_query(format!("CREATE DATABASE \"{name}\"{from}"))
                    .execute(&mut admin())
                    .expect("a test database can be created");
                TestDb::Postgres { name }
            }
        };
        Self { db, dir }
    }

    /// `DATABASE_URL` for it.
    pub fn database_url(&self) -> String {
        self.db.url()
    }

    /// Its data directory (artifacts go to `artifacts/` here).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// PostgreSQL only: a second URL to it, as [`READ_ONLY_ROLE`], which may
    /// read every table the service will create and change nothing.
    pub fn read_only_url(&self) -> String {
        self.db.read_only_url()
    }
}

enum TestDb {
    Sqlite { path: PathBuf },
    Postgres { name: String },
}

impl TestDb {
    fn url(&self) -> String {
        match self {
            Self::Sqlite { path } => format!("sqlite://{}", path.display()),
            Self::Postgres { name } => postgres_url(name),
        }
    }

    /// PostgreSQL only: a second URL to it, as [`READ_ONLY_ROLE`], which may
    /// read every table the service will create and change nothing.
    fn read_only_url(&self) -> String {
        let Self::Postgres { name } = self else {
            panic!("a read-only URL needs PostgreSQL");
        };
        grant_reads(name);
        read_only_url(name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Self::Postgres { name } = self
            && let Ok(mut conn) = PgConnection::establish(&postgres_url("postgres"))
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut conn);
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub keys: AuthKeys,
    /// Issues link tokens the service accepts (its link secret).
    pub links: LinkTokens,
    /// The clock the service runs by (see [`SpawnOptions::clock`]).
    pub clock: Clock,
    /// Shared by every server of one database (see [`TestApp::spawn_beside`]
    /// and [`TestApp::replica`]); dropped with the last of them.
    db: Arc<TestDb>,
    dir: Arc<tempfile::TempDir>,
}

pub struct SpawnOptions {
    pub public_lookup: bool,
    /// The artifact size limit; `None` keeps the configured default.
    pub max_artifact_bytes: Option<u64>,
    /// Run the delivery worker in the server (off unless a test mails).
    pub worker: bool,
    /// The relay; without one, mail is written to `data_dir()/mail`.
    pub smtp_url: Option<String>,
    /// The identity provider's keys: the fixture file unless a test
    /// serves them at a URL.
    pub jwt_jwks: JwksSource,
    pub jwt_roles_claim: Option<String>,
    /// PostgreSQL only: read through `DATABASE_READ_URL`, a second URL to
    /// the test database as [`READ_ONLY_ROLE`], which may only `SELECT`.
    pub read_replica: bool,
    /// The shipped rate limits and per-address mail limit. Off by default:
    /// tests send many requests from loopback, which is then exempt, and
    /// mail one address often.
    pub production_limits: bool,
    /// `CLEARANCE_TRUSTED_PROXIES`, e.g. `["127.0.0.1/32"]`.
    pub trusted_proxies: Vec<&'static str>,
    /// `CLEARANCE_BODY_TIMEOUT_SECS`, `CLEARANCE_DB_TIMEOUT_MS` and
    /// `CLEARANCE_MAX_CONNECTIONS`; `None` keeps the default.
    pub body_timeout: Option<std::time::Duration>,
    pub db_timeout: Option<std::time::Duration>,
    pub max_connections: Option<usize>,
    /// The clock the service runs by: the system's, unless a test holds
    /// one it moves itself.
    pub clock: Clock,
    /// `CLEARANCE_CONTACT`, whom the pages name; `None` leaves it unset.
    pub contact: Option<&'static str>,
}

/// The role a `read_replica` test app reads as.
pub const READ_ONLY_ROLE: &str = "clearance_test_reader";

impl Default for SpawnOptions {
    fn default() -> Self {
        Self {
            public_lookup: true,
            max_artifact_bytes: None,
            worker: false,
            smtp_url: None,
            jwt_jwks: JwksSource::File(fixture("jwks.json")),
            jwt_roles_claim: None,
            read_replica: false,
            production_limits: false,
            trusted_proxies: Vec::new(),
            body_timeout: None,
            db_timeout: None,
            max_connections: None,
            clock: Clock::system(),
            contact: None,
        }
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, SpawnOptions::default()).await
    }

    pub async fn spawn_with(backend: Backend, options: SpawnOptions) -> Self {
        Self::spawn_on(EmptyDatabase::migrated(backend), options).await
    }

    /// Starts the service on a database (and data directory) that a test
    /// prepared, e.g. by restoring a backup into it.
    pub async fn spawn_on(empty: EmptyDatabase, options: SpawnOptions) -> Self {
        let EmptyDatabase { db, dir } = empty;
        Self::start(Arc::new(db), Arc::new(dir), options).await
    }

    /// A second server process on this one's database, as another replica
    /// would run (with the default options).
    pub async fn spawn_beside(&self) -> Self {
        self.spawn_beside_with(SpawnOptions::default()).await
    }

    /// [`TestApp::spawn_beside`] with `options`.
    pub async fn spawn_beside_with(&self, options: SpawnOptions) -> Self {
        Self::start(self.db.clone(), self.dir.clone(), options).await
    }

    async fn start(db: Arc<TestDb>, dir: Arc<tempfile::TempDir>, options: SpawnOptions) -> Self {
        let database = DatabaseUrl::parse(&db.url()).expect("a database URL");
        let database_read = options
            .read_replica
            .then(|| DatabaseUrl::parse(&db.read_only_url()).expect("a PostgreSQL URL"));
        let mut settings = Settings::for_database(database, dir.path());
        settings.bind = "127.0.0.1:0".parse().unwrap();
        settings.jwt_secret = Some(SecretString::from(JWT_SECRET));
        settings.link_secret = Some(SecretString::from(LINK_SECRET));
        settings.audit_key = Some(SecretString::from(AUDIT_KEY));
        settings.jwt_jwks = Some(options.jwt_jwks);
        settings.jwt_roles_claim = options.jwt_roles_claim;
        settings.database_read = database_read;
        settings.http_workers = Some(1);
        settings.db_pool_size = 4;
        settings.public_lookup = options.public_lookup;
        if let Some(limit) = options.max_artifact_bytes {
            settings.max_artifact_bytes = limit;
        }
        settings.worker = options.worker;
        settings.mail_dir = dir.path().join("mail");
        settings.smtp_url = options
            .smtp_url
            .map(|url| clearance::mail::smtp_url::SmtpUrl::parse(&url).expect("a valid SMTP URL"));
        // Tests wait for mail in seconds, not in the production's minutes.
        settings.worker_tuning.poll = std::time::Duration::from_millis(100);
        settings.worker_tuning.retry_base = std::time::Duration::from_millis(500);
        settings.worker_tuning.throttle_pause = std::time::Duration::from_millis(500);
        settings.worker_tuning.digest_hour = 0;
        if !options.production_limits {
            settings.rate_limits.exempt = vec!["127.0.0.0/8".parse().unwrap()];
            settings.mail_per_address_per_day = 1000;
        }
        settings.trusted_proxies = options
            .trusted_proxies
            .iter()
            .map(|net| net.parse().expect("an address or network"))
            .collect();
        if let Some(timeout) = options.body_timeout {
            settings.http_limits.body_timeout = timeout;
        }
        if let Some(timeout) = options.db_timeout {
            settings.db_timeout = timeout;
        }
        if let Some(connections) = options.max_connections {
            settings.http_limits.max_connections = connections;
        }
        settings.contact = options.contact.map(str::to_owned);
        let app = Application::build_with(settings, options.clock.clone())
            .await
            .expect("the application starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Self {
            clock: options.clock,
            ..Self::attached(db, dir, &address)
        }
    }

    /// The service another process runs at `address` on `database`, with
    /// this suite's secrets (`JWT_SECRET`, `LINK_SECRET`) and issuer.
    pub fn attach(database: EmptyDatabase, address: &str) -> Self {
        let EmptyDatabase { db, dir } = database;
        Self::attached(Arc::new(db), Arc::new(dir), address)
    }

    fn attached(db: Arc<TestDb>, dir: Arc<tempfile::TempDir>, address: &str) -> Self {
        Self {
            address: address.to_owned(),
            client: reqwest::Client::new(),
            keys: AuthKeys::new(JWT_SECRET.as_bytes(), "clearance", "clearance"),
            links: LinkTokens::new(LINK_SECRET.as_bytes()),
            clock: Clock::system(),
            db,
            dir,
        }
    }

    /// Another replica of this service, at `address`, on the same database.
    pub fn replica(&self, address: &str) -> Self {
        Self {
            address: address.to_owned(),
            client: self.client.clone(),
            keys: self.keys.clone(),
            links: self.links.clone(),
            clock: self.clock.clone(),
            db: self.db.clone(),
            dir: self.dir.clone(),
        }
    }

    /// The value of the sample `name` (with its labels) in `/metrics`.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let text = self.get("/metrics", None).await.text().await.unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    /// The service's data directory (artifacts live in `artifacts/` here).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn token(&self, role: Role) -> String {
        let sub = format!("{}-1", role.as_str());
        self.token_for(role, &sub)
    }

    pub fn token_for(&self, role: Role, sub: &str) -> String {
        self.keys.mint(
            sub,
            &format!("{sub}@example.org"),
            sub,
            &[role],
            chrono::Duration::hours(1),
        )
    }

    pub fn request(
        &self,
        method: Method,
        path: &str,
        role: Option<Role>,
    ) -> reqwest::RequestBuilder {
        let builder = self
            .client
            .request(method, format!("{}{path}", self.address));
        match role {
            Some(role) => builder.bearer_auth(self.token(role)),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str, role: Option<Role>) -> Response {
        self.request(Method::GET, path, role)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post(&self, path: &str, role: Option<Role>, body: &Value) -> Response {
        self.request(Method::POST, path, role)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn patch(
        &self,
        path: &str,
        role: Option<Role>,
        body: &Value,
        if_match: Option<&str>,
    ) -> Response {
        let mut request = self.request(Method::PATCH, path, role).json(body);
        if let Some(etag) = if_match {
            request = request.header("If-Match", etag);
        }
        request.send().await.expect("request sent")
    }

    /// Registers a manufacturer as an analyst and returns its id.
    pub async fn manufacturer(&self, name: &str) -> String {
        let response = self
            .post(
                "/api/v1/manufacturers",
                Some(Role::Analyst),
                &json!({"name": name, "country": "CN", "aliases": []}),
            )
            .await;
        assert_eq!(response.status(), 201, "creating manufacturer {name}");
        body(response).await["id"].as_str().unwrap().to_owned()
    }

    /// Registers a model as an analyst and returns its JSON.
    pub async fn model(&self, manufacturer_id: &str, name: &str, tacs: &[&str]) -> Value {
        let response = self
            .post(
                "/api/v1/models",
                Some(Role::Analyst),
                &json!({"manufacturer_id": manufacturer_id, "name": name, "category": "phone", "tacs": tacs}),
            )
            .await;
        assert_eq!(response.status(), 201, "creating model {name}");
        body(response).await
    }

    /// How many items a list endpoint holds, walking every page.
    pub async fn count(&self, path: &str) -> usize {
        let mut count = 0;
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}?limit=500&cursor={c}"),
                None => format!("{path}?limit=500"),
            };
            let page = body(self.get(&url, Some(Role::Reader)).await).await;
            count += page["items"].as_array().expect("a list").len();
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return count,
            }
        }
    }

    /// Runs SQL straight against this test's database, behind the service's
    /// back; the error is the database's message.
    pub fn execute_sql(&self, sql: &str) -> Result<(), String> {
        let result = match &*self.db {
            TestDb::Sqlite { path } => {
                let mut conn = SqliteConnection::establish(&path.display().to_string())
                    .map_err(|e| e.to_string())?;
                conn.batch_execute(&format!("PRAGMA busy_timeout = 10000; {sql}"))
            }
            TestDb::Postgres { name } => {
                let mut conn =
                    PgConnection::establish(&postgres_url(name)).map_err(|e| e.to_string())?;
                conn.batch_execute(sql)
            }
        };
        result.map_err(|e| e.to_string())
    }

    /// The first column, as text, of every row `sql` selects; write the
    /// column as `CAST(… AS TEXT) AS v` so that both backends read alike.
    pub fn query_texts(&self, sql: &str) -> Vec<String> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            v: String,
        }
        let rows: Vec<Row> = match &*self.db {
            TestDb::Sqlite { path } => {
                let mut conn = SqliteConnection::establish(&path.display().to_string()).unwrap();
                conn.batch_execute("PRAGMA busy_timeout = 10000").unwrap();
                diesel::sql_query(sql).load(&mut conn)
            }
            TestDb::Postgres { name } => {
                let mut conn = PgConnection::establish(&postgres_url(name)).unwrap();
                diesel::sql_query(sql).load(&mut conn)
            }
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter().map(|r| r.v).collect()
    }

    /// How many rows `sql` (a `SELECT COUNT(*) …`) counts.
    pub fn query_count(&self, sql: &str) -> usize {
        let sql = sql.replacen("COUNT(*)", "CAST(COUNT(*) AS TEXT) AS v", 1);
        self.query_texts(&sql)[0].parse().unwrap()
    }

    /// How many mails of `kind` (`confirm`, `manage`…) the outbox holds.
    pub fn outbox_count(&self, kind: &str) -> usize {
        self.query_count(&format!(
            "SELECT COUNT(*) FROM outbox WHERE kind = '{kind}'"
        ))
    }

    /// The test database's URL, for another process (a `clearance worker`).
    pub fn database_url(&self) -> String {
        self.db.url()
    }

    pub fn backend(&self) -> Backend {
        match *self.db {
            TestDb::Sqlite { .. } => Backend::Sqlite,
            TestDb::Postgres { .. } => Backend::Postgres,
        }
    }

    /// Takes the database's write lock from another connection, as a long
    /// transaction elsewhere would, until the guard is dropped: PostgreSQL
    /// locks `table`, SQLite the whole file.
    pub fn hold_write_lock(&self, table: &str) -> WriteLock {
        match &*self.db {
            TestDb::Sqlite { path } => {
                let mut conn = SqliteConnection::establish(&path.display().to_string()).unwrap();
                conn.batch_execute("PRAGMA busy_timeout = 10000; BEGIN IMMEDIATE")
                    .unwrap();
                WriteLock {
                    _connection: Box::new(conn),
                }
            }
            TestDb::Postgres { name } => {
                let mut conn = PgConnection::establish(&postgres_url(name)).unwrap();
                conn.batch_execute(&format!(
                    "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
                ))
                .unwrap();
                WriteLock {
                    _connection: Box::new(conn),
                }
            }
        }
    }

    /// Drops the database out from under the running service.
    pub fn lose_database(&mut self) {
        if let TestDb::Postgres { name } = &*self.db {
            let mut conn = PgConnection::establish(&postgres_url("postgres")).unwrap();
            diesel::sql_query(format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
                .execute(&mut conn)
                .unwrap();
        }
    }
}

/// A page's status, headers and HTML.
pub async fn page_parts(response: Response) -> (u16, reqwest::header::HeaderMap, String) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("a body"))
}

/// The Content-Security-Policy of every public page: their one
/// stylesheet, no inline style or script, forms posting only back.
pub const PAGE_POLICY: &str =
    "default-src 'none'; style-src 'self'; form-action 'self'; img-src 'self'";

/// The page at `path` with `query` (encoded here), asked for as a browser
/// asks (`Accept: text/html`), anonymously: its status, headers and HTML.
pub async fn page(
    app: &TestApp,
    path: &str,
    query: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let response = app
        .request(Method::GET, path, None)
        .query(query)
        .header("Accept", "text/html")
        .send()
        .await
        .expect("request sent");
    page_parts(response).await
}

/// A connection holding a write lock; closing it (on drop) rolls back.
pub struct WriteLock {
    _connection: Box<dyn std::any::Any + Send>,
}

pub async fn body(response: Response) -> Value {
    let status = response.status();
    let text = response.text().await.expect("a body");
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: not JSON ({e}): {text}"))
}

/// Asserts a problem+json answer with this status, and returns it.
pub async fn problem(response: Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let problem = body(response).await;
    assert_eq!(problem["status"], status);
    assert!(
        problem["title"].is_string()
            && problem["detail"].is_string()
            && problem["type"].is_string()
    );
    problem
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}
