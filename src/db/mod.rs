//! Storage: one connection type over SQLite and PostgreSQL, a pool, embedded
//! migrations per backend, and one file per aggregate with its queries.
//! Nothing here knows about HTTP.

pub mod acknowledgements;
pub mod address_mail;
pub mod advisories;
pub mod audit;
pub mod backup;
pub mod changes;
pub mod clearance;
pub mod digests;
pub mod evidence;
pub mod idempotency;
pub mod lookup_source;
pub mod manufacturers;
pub mod model_import;
pub mod models;
pub mod outbox;
pub mod personnel;
pub mod reviews;
pub mod schema;
pub mod subscriptions;
pub mod types;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection};
use diesel::result::DatabaseErrorKind;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::DatabaseUrl;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to whichever database the deployment uses; every query in
/// this module is written once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    /// A write clashes with what is stored (a name taken, a TAC claimed).
    #[error("{0}")]
    Conflict(String),
    /// An optimistic-concurrency check failed: the row changed meanwhile.
    #[error("stale version")]
    Stale,
    #[error("database unavailable: {0}")]
    Unavailable(anyhow::Error),
    #[error(transparent)]
    Other(anyhow::Error),
}

impl From<diesel::result::Error> for DbError {
    fn from(error: diesel::result::Error) -> Self {
        match error {
            diesel::result::Error::NotFound => Self::NotFound,
            diesel::result::Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                Self::Unavailable(anyhow::anyhow!("{}", info.message()))
            }
            // The statement ran into the timeout (PostgreSQL) or waited
            // for a lock that long (SQLite): the database is busy, not broken.
            diesel::result::Error::DatabaseError(_, info)
                if info.message().contains("statement timeout")
                    || info.message().contains("database is locked") =>
            {
                Self::Unavailable(anyhow::anyhow!("{}", info.message()))
            }
            other => Self::Other(other.into()),
        }
    }
}

impl From<r2d2::PoolError> for DbError {
    fn from(error: r2d2::PoolError) -> Self {
        Self::Unavailable(error.into())
    }
}

pub fn is_unique_violation(error: &diesel::result::Error) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Locks the rows of `$table` whose ids `$ids` yields (in any order,
/// repeats allowed) until the transaction ends, in id order (so that two
/// lockers never wait on each other), on PostgreSQL. SQLite runs one write
/// transaction at a time and needs no row locks: there `$ids` is not read.
macro_rules! lock_rows {
    ($conn:expr, $table:ident, $ids:expr) => {{
        if let $crate::db::DbConnection::Postgres(pg) = $conn {
            let ids: Vec<$crate::db::types::DbId> =
                $ids.into_iter().map($crate::db::types::DbId).collect();
            $table::table
                .filter($table::id.eq_any(&ids))
                .select($table::id)
                .order($table::id)
                .for_update()
                .load::<$crate::db::types::DbId>(pg)?;
        }
    }};
}
pub(crate) use lock_rows;

/// The outcome of a write, with a unique-constraint violation read as the
/// conflict `taken` names (a name, an address, a TAC already in use).
pub fn or_taken<T>(
    outcome: diesel::QueryResult<T>,
    taken: impl FnOnce() -> DbError,
) -> Result<T, DbError> {
    match outcome {
        Err(e) if is_unique_violation(&e) => Err(taken()),
        other => Ok(other?),
    }
}

/// Opens connections of the kind the URL names (never guessing by trying
/// backends in turn) and applies the per-connection settings: how long a
/// statement may run or wait for a lock (`timeout`), and SQLite's modes.
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    url: DatabaseUrl,
    timeout: Duration,
}

impl ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match &self.url {
            DatabaseUrl::Postgres(url) => {
                let mut conn =
                    diesel::PgConnection::establish(url).map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(&statement_timeout(self.timeout))
                    .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Postgres(conn))
            }
            DatabaseUrl::Sqlite(path) => {
                let mut conn = diesel::SqliteConnection::establish(&path.display().to_string())
                    .map_err(r2d2::Error::ConnectionError)?;
                // WAL lets readers proceed while one writer writes; the busy
                // timeout makes a second process wait, for a while, instead
                // of failing at once.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON;",
                    self.timeout.as_millis()
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// The database handle the application shares: a pool, optionally a second
/// pool on a read replica for [`Db::read`], and for SQLite a process-wide
/// write lock (SQLite has one writer; taking turns in the process avoids
/// lock-upgrade failures between pooled connections).
#[derive(Clone)]
pub struct Db {
    pool: Pool<ConnectionManager>,
    /// How the pool opens connections, for [`Db::open_connection`].
    manager: ConnectionManager,
    read_pool: Option<Pool<ConnectionManager>>,
    write_lock: Option<Arc<Mutex<()>>>,
    /// How long a statement may run or wait for a lock.
    timeout: Duration,
    /// Write transactions begun (`clearance_db_write_transactions_total`):
    /// an idle process should begin none.
    writes: prometheus::IntCounter,
}

/// PostgreSQL's setting for a statement `timeout` (0: none).
fn statement_timeout(timeout: Duration) -> String {
    format!("SET statement_timeout = {}", timeout.as_millis())
}

impl Db {
    /// A pool of `pool_size` connections to `url`, whose statements fail
    /// after `timeout` rather than wait longer (for a lock, say).
    pub fn connect(url: &DatabaseUrl, pool_size: u32, timeout: Duration) -> Result<Self, DbError> {
        let manager = ConnectionManager {
            url: url.clone(),
            timeout,
        };
        let pool = pool(&manager, pool_size, "the database")?;
        let write_lock = matches!(url, DatabaseUrl::Sqlite(_)).then(|| Arc::new(Mutex::new(())));
        let writes = prometheus::IntCounter::new(
            "clearance_db_write_transactions_total",
            "Write transactions begun by this process",
        )
        .map_err(|e| DbError::Other(e.into()))?;
        Ok(Self {
            pool,
            manager,
            read_pool: None,
            write_lock,
            timeout,
            writes,
        })
    }

    /// Adds this handle's metrics to `registry` (the one `/metrics` serves).
    pub fn register_metrics(&self, registry: &prometheus::Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.writes.clone()))
    }

    /// Sends [`Db::read`] work to a read replica of the same database
    /// (`DATABASE_READ_URL`); writes stay on the primary. A replica lags
    /// behind its primary, so a read may not see a write made just before.
    pub fn with_read_replica(self, url: &DatabaseUrl, pool_size: u32) -> Result<Self, DbError> {
        Ok(Self {
            read_pool: Some(pool(
                &ConnectionManager {
                    url: url.clone(),
                    timeout: self.timeout,
                },
                pool_size,
                "the read replica (DATABASE_READ_URL)",
            )?),
            ..self
        })
    }

    /// This handle with every read on the primary: for work that reads
    /// what it has just written, like the delivery worker.
    pub fn primary_only(&self) -> Self {
        Self {
            read_pool: None,
            ..self.clone()
        }
    }

    fn conn(&self) -> Result<PooledConnection<ConnectionManager>, DbError> {
        Ok(self.pool.get()?)
    }

    /// Runs blocking database work off the async executor, on the read
    /// replica when there is one.
    pub async fn read<T, F>(&self, work: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.read_pool.as_ref().unwrap_or(&self.pool).clone();
        tokio::task::spawn_blocking(move || work(&mut *pool.get()?))
            .await
            .map_err(|e| DbError::Other(e.into()))?
    }

    /// Runs `work` in one transaction, off the async executor: everything it
    /// writes commits together or not at all. `work` may fail with any error
    /// the store's can become (a use case's, say).
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.write_blocking(work))
            .await
            .map_err(|e| E::from(DbError::Other(e.into())))?
    }

    /// The same as [`Db::write`], for callers already on a blocking thread
    /// (the command line).
    pub fn write_blocking<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E>,
        E: From<DbError> + From<diesel::result::Error>,
    {
        let mut pooled = self.conn()?;
        let conn: &mut DbConnection = &mut pooled;
        self.writes.inc();
        let _turn = self.write_turn();
        conn.transaction(work)
    }

    /// Runs `statement`, a single statement (which the database applies
    /// whole or not at all, so it needs no transaction around it), on a
    /// connection the caller keeps: one round trip where [`Db::write`]
    /// takes four (the pool's check, BEGIN, the statement, COMMIT).
    pub fn write_statement<T>(
        &self,
        conn: &mut DbConnection,
        statement: impl FnOnce(&mut DbConnection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.writes.inc();
        let _turn = self.write_turn();
        statement(conn)
    }

    /// A connection of its own, outside the pool, set up as the pool's
    /// are: for a task that writes often, alone, with
    /// [`Db::write_statement`].
    pub fn open_connection(&self) -> Result<DbConnection, DbError> {
        self.manager
            .connect()
            .map_err(|e| DbError::Unavailable(e.into()))
    }

    /// Whether the database is SQLite (in this process) rather than a server.
    pub fn is_sqlite(&self) -> bool {
        matches!(self.manager.url, DatabaseUrl::Sqlite(_))
    }

    /// This process's turn to write, on SQLite (one writer at a time).
    fn write_turn(&self) -> Option<std::sync::MutexGuard<'_, ()>> {
        self.write_lock
            .as_ref()
            .map(|lock| lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    pub fn migrate(&self) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        run_migrations(&mut conn, self.timeout)
    }

    /// Whether the database (and the read replica, if any) answers and has
    /// every embedded migration applied.
    pub async fn readiness(&self) -> Result<(), String> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            schema_ready(&db.pool)?;
            match &db.read_pool {
                Some(replica) => replica_ready(replica),
                None => Ok(()),
            }
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// One connection attempt, with a short timeout, before a pool starts
/// retrying: what is wrong, in one sentence that says what to do. Never
/// creates a folder: a SQLite file in a folder that does not exist is a
/// mistyped path far more often than a wish.
pub fn probe(url: &DatabaseUrl) -> Result<(), String> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            let folder = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            if !folder.is_dir() {
                return Err(format!(
                    "the folder {} of DATABASE_URL does not exist: create it, or point DATABASE_URL at a file in an existing folder",
                    folder.display()
                ));
            }
            ConnectionManager { url: url.clone(), timeout: Duration::from_secs(3) }
                .connect()
                .map(drop)
                .map_err(|e| {
                    format!(
                        "cannot open the SQLite database {} ({}): the file and its folder {} must be writable by this user",
                        path.display(),
                        first_line(&e.to_string()),
                        folder.display()
                    )
                })
        }
        DatabaseUrl::Postgres(raw) => {
            let mut probe = url::Url::parse(raw).map_err(|e| format!("DATABASE_URL: {e}"))?;
            if !probe.query_pairs().any(|(k, _)| k == "connect_timeout") {
                probe.query_pairs_mut().append_pair("connect_timeout", "3");
            }
            diesel::PgConnection::establish(probe.as_str())
                .map(drop)
                .map_err(|e| {
                    format!(
                        "cannot connect to PostgreSQL at {}:{}{} ({}): check DATABASE_URL and that the server runs and accepts this user",
                        probe.host_str().unwrap_or("localhost"),
                        probe.port().unwrap_or(5432),
                        probe.path(),
                        first_line(&e.to_string())
                    )
                })
        }
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default().trim()
}

fn pool(
    manager: &ConnectionManager,
    size: u32,
    what: &str,
) -> Result<Pool<ConnectionManager>, DbError> {
    Pool::builder()
        .max_size(size)
        .connection_timeout(Duration::from_secs(5))
        .build(manager.clone())
        .map_err(|e| DbError::Unavailable(anyhow::anyhow!("cannot connect to {what}: {e}")))
}

/// The primary's part of [`Db::readiness`].
fn schema_ready(pool: &Pool<ConnectionManager>) -> Result<(), String> {
    let mut conn = pool
        .get_timeout(Duration::from_secs(2))
        .map_err(|e| format!("database unreachable: {e}"))?;
    conn.batch_execute("SELECT 1")
        .map_err(|e| format!("database unreachable: {e}"))?;
    let pending = match &mut *conn {
        DbConnection::Postgres(c) => c.has_pending_migration(POSTGRES_MIGRATIONS),
        DbConnection::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS),
    }
    .map_err(|e| format!("cannot read the migration table: {e}"))?;
    if pending {
        Err("migrations are pending".to_owned())
    } else {
        Ok(())
    }
}

/// The read replica's part of [`Db::readiness`]: it answers and has every
/// migration (it may lag behind a schema change). Read-only, unlike diesel's
/// own check, which creates its table when missing.
fn replica_ready(pool: &Pool<ConnectionManager>) -> Result<(), String> {
    #[derive(QueryableByName)]
    struct Applied {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    let mut conn = pool
        .get_timeout(Duration::from_secs(2))
        .map_err(|e| format!("read replica unreachable: {e}"))?;
    let DbConnection::Postgres(conn) = &mut *conn else {
        return Err("the read replica is not PostgreSQL".into());
    };
    let applied: Vec<Applied> = diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
        .load(conn)
        .map_err(|e| format!("cannot read the migration table of the read replica: {e}"))?;
    let applied: std::collections::HashSet<String> =
        applied.into_iter().map(|row| row.version).collect();
    let expected =
        diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&POSTGRES_MIGRATIONS)
            .map_err(|e| format!("cannot list the embedded migrations: {e}"))?;
    match expected
        .iter()
        .map(|migration| migration.name().version().to_string())
        .find(|version| !applied.contains(version))
    {
        Some(missing) => Err(format!(
            "the read replica lacks migration {missing}: it lags behind, or is another database"
        )),
        None => Ok(()),
    }
}

/// Migrations may take long (and wait for another replica's), so they run
/// without the statement timeout, which is restored afterwards.
fn run_migrations(conn: &mut DbConnection, timeout: Duration) -> Result<(), DbError> {
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| {
        DbError::Other(anyhow::anyhow!("migration failed: {e}"))
    };
    match conn {
        DbConnection::Postgres(c) => {
            // Replicas starting together must not race each other through
            // the same migrations.
            c.batch_execute(&statement_timeout(Duration::ZERO))?;
            c.batch_execute("SELECT pg_advisory_lock(727274)")?;
            let result = c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|_| ())
                .map_err(failed);
            c.batch_execute("SELECT pg_advisory_unlock(727274)")?;
            c.batch_execute(&statement_timeout(timeout))?;
            result
        }
        DbConnection::Sqlite(c) => c
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|_| ())
            .map_err(failed),
    }
}

/// Which of `ids` are rows of `$table` (a table with a UUID `id`).
macro_rules! existing_ids {
    ($conn:expr, $table:ident, $ids:expr) => {{
        let wanted: Vec<$crate::db::types::DbId> =
            $ids.iter().copied().map($crate::db::types::DbId).collect();
        let found: Vec<$crate::db::types::DbId> = $crate::db::schema::$table::table
            .filter($crate::db::schema::$table::id.eq_any(&wanted))
            .select($crate::db::schema::$table::id)
            .load($conn)?;
        Ok::<std::collections::HashSet<uuid::Uuid>, $crate::db::DbError>(
            found.into_iter().map(|id| id.0).collect(),
        )
    }};
}
pub(crate) use existing_ids;

/// Updates row `$id` of `$table` only while it is still at `$version`,
/// setting `$change…` and moving its version and `updated_at` on: the one
/// way a versioned row changes, so that a concurrent edit makes this match
/// no row (see [`one_row_changed`]) instead of being overwritten.
macro_rules! update_versioned {
    ($conn:expr, $table:ident, $id:expr, $version:expr, $now:expr, ($($change:expr),* $(,)?)) => {
        diesel::update(
            $table::table
                .filter($table::id.eq($crate::db::types::DbId($id)))
                .filter($table::version.eq($version)),
        )
        .set((
            $($change,)*
            $table::version.eq($version + 1),
            $table::updated_at.eq($crate::db::types::DbTime($now)),
        ))
        .execute($conn)
    };
}
pub(crate) use update_versioned;

/// The version of row `$id` of `$table` that an update may replace: the
/// stored one, which must be `$expected` when the request names one (an
/// `If-Match`), else [`DbError::Stale`].
macro_rules! version_to_replace {
    ($conn:expr, $table:ident, $id:expr, $expected:expr) => {{
        let stored: i64 = $table::table
            .find($crate::db::types::DbId($id))
            .select($table::version)
            .first($conn)?;
        match $expected {
            Some(expected) if expected != stored => Err($crate::db::DbError::Stale),
            _ => Ok(stored),
        }
    }};
}
pub(crate) use version_to_replace;

/// What an [`update_versioned!`] of `what` matched: no row means it changed
/// since it was read. That breaks the request's `If-Match` when it sent one
/// (`expected`); otherwise it is a conflict the caller may retry.
pub fn one_row_changed(rows: usize, what: &str, expected: Option<i64>) -> Result<(), DbError> {
    match (rows, expected) {
        (0, Some(_)) => Err(DbError::Stale),
        (0, None) => Err(DbError::Conflict(format!(
            "the {what} changed while this request ran; read it again and retry"
        ))),
        _ => Ok(()),
    }
}

/// One page of `$table` in `id` order (or of any source in `$key` order):
/// at most `$limit` rows of `$select` after the key `$after` (an `Option`),
/// boxed so that the caller can filter it further.
macro_rules! page_after {
    ($table:ident, $select:expr, $after:expr, $limit:expr) => {
        $crate::db::page_after!($table::table, $table::id, $select, $after, $limit)
    };
    ($source:expr, $key:expr, $select:expr, $after:expr, $limit:expr) => {{
        let mut query = $source
            .select($select)
            .order($key)
            .limit($limit)
            .into_boxed();
        if let Some(after) = $after {
            query = query.filter($key.gt(after));
        }
        query
    }};
}
pub(crate) use page_after;

/// Escapes `%`, `_` and `\` so user text matches literally inside LIKE.
pub fn like_contains(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Groups `(key, value)` rows, kept in their order, by key.
pub fn group<K: std::hash::Hash + Eq, V>(
    rows: Vec<(K, V)>,
) -> std::collections::HashMap<K, Vec<V>> {
    let mut grouped: std::collections::HashMap<K, Vec<V>> = std::collections::HashMap::new();
    for (key, value) in rows {
        grouped.entry(key).or_default().push(value);
    }
    grouped
}

/// Runs `$body` with `$c` bound to the backend's own connection, so raw SQL
/// and its binds are written once for both backends.
macro_rules! on_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Postgres($c) => $body,
            $crate::db::DbConnection::Sqlite($c) => $body,
        }
    };
}
pub(crate) use on_backend;

/// How the backend reads text parameter `$n` as a value of `pg_type` (a
/// timestamp, a UUID): PostgreSQL casts it, SQLite keeps text.
pub fn param(conn: &DbConnection, n: u8, pg_type: &str) -> String {
    match conn {
        DbConnection::Postgres(_) => format!("CAST(${n} AS {pg_type})"),
        DbConnection::Sqlite(_) => format!("${n}"),
    }
}

/// A JSON array bound as text parameter `$n`, read as a table `v` with
/// `columns` (name, PostgreSQL type): a batch of rows is then one parameter
/// and one statement on either backend, whatever its size.
pub fn json_rows(conn: &DbConnection, n: u8, columns: &[(&str, &str)]) -> String {
    match conn {
        DbConnection::Postgres(_) => {
            let typed: Vec<String> = columns
                .iter()
                .map(|(name, sql_type)| format!("{name} {sql_type}"))
                .collect();
            format!(
                "jsonb_to_recordset(CAST(${n} AS jsonb)) AS v({})",
                typed.join(", ")
            )
        }
        DbConnection::Sqlite(_) => {
            let read: Vec<String> = columns
                .iter()
                .map(|(name, _)| format!("json_extract(value, '$.{name}') AS {name}"))
                .collect();
            format!("(SELECT {} FROM json_each(${n})) AS v", read.join(", "))
        }
    }
}

/// A JSON array of text bound as parameter `$n`, read as a set of values
/// (for `IN (…)`).
pub fn json_values(conn: &DbConnection, n: u8) -> String {
    match conn {
        DbConnection::Postgres(_) => {
            format!("SELECT jsonb_array_elements_text(CAST(${n} AS jsonb))")
        }
        DbConnection::Sqlite(_) => format!("SELECT value FROM json_each(${n})"),
    }
}

/// Rows as the JSON text [`json_rows`] reads.
pub fn json_param(rows: &impl serde::Serialize) -> Result<String, DbError> {
    serde_json::to_string(rows).map_err(|e| DbError::Other(e.into()))
}

/// Raw SQL with `$n` parameters as the backend binds them. SQLite numbers
/// `$n` parameters by where they first appear, not by `n`; `?n` keeps `n`.
pub fn numbered(conn: &DbConnection, query: &str) -> String {
    match conn {
        DbConnection::Postgres(_) => query.to_owned(),
        DbConnection::Sqlite(_) => {
            let mut out = String::with_capacity(query.len());
            let mut chars = query.chars().peekable();
            while let Some(c) = chars.next() {
                let numbered = c == '$' && chars.peek().is_some_and(char::is_ascii_digit);
                out.push(if numbered { '?' } else { c });
            }
            out
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::Db;
    use crate::config::DatabaseUrl;

    /// A migrated SQLite database in a folder of its own, for the store's
    /// unit tests (the API tests cover PostgreSQL).
    pub fn database() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(
            &DatabaseUrl::Sqlite(dir.path().join("store.db")),
            1,
            std::time::Duration::from_secs(5),
        )
        .unwrap();
        db.migrate().unwrap();
        (dir, db)
    }

    /// An update made against a version someone else has moved on from
    /// changes nothing, and says so as the request asked: a broken
    /// `If-Match` when it sent one, else a conflict to retry.
    #[test]
    fn an_update_of_a_version_moved_on_changes_nothing() {
        use super::schema::personnel;
        use super::{DbError, one_row_changed, personnel as people};
        use diesel::prelude::*;

        let (_dir, db) = database();
        let now = chrono::Utc::now();
        let new = serde_json::from_value(serde_json::json!({
            "email": "ada@example.org", "name": "Ada"
        }))
        .unwrap();
        let outcome = db.write_blocking(|conn| {
            let person = people::insert(conn, &new, now)?;
            let read_at = person.version;
            let first = update_versioned!(
                conn,
                personnel,
                person.id,
                read_at,
                now,
                (personnel::name.eq("Ada Lovelace"),)
            )?;
            let second = update_versioned!(
                conn,
                personnel,
                person.id,
                read_at,
                now,
                (personnel::name.eq("Ada King"),)
            )?;
            let stored = people::get(conn, person.id)?;
            Ok::<_, DbError>((first, second, stored))
        });
        let (first, second, stored) = outcome.unwrap();
        assert_eq!((first, second), (1, 0));
        assert_eq!((stored.name.as_str(), stored.version), ("Ada Lovelace", 2));
        assert!(one_row_changed(first, "person", None).is_ok());
        assert!(matches!(
            one_row_changed(second, "person", Some(1)),
            Err(DbError::Stale)
        ));
        let Err(DbError::Conflict(message)) = one_row_changed(second, "person", None) else {
            panic!("no If-Match: a conflict");
        };
        assert!(message.contains("person changed"), "{message}");
    }
}
