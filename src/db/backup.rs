//! `clearance backup FILE`: a consistent copy of a SQLite database, taken
//! while the service runs. PostgreSQL has its own tools (`pg_dump`); the
//! artifacts and generated secrets in the data directory are copied
//! separately (see `deploy/README.md`).

use std::path::{Path, PathBuf};

use diesel::connection::SimpleConnection;
use diesel::sql_types::Text;
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};

use crate::config::DatabaseUrl;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "DATABASE_URL is PostgreSQL: back it up with `pg_dump --format=custom` and restore with `pg_restore` (see deploy/README.md)"
    )]
    Postgres,
    #[error("{} already exists: choose a new file name (a backup never overwrites)", .0.display())]
    Exists(PathBuf),
    #[error("the backup failed: {0}")]
    Failed(String),
}

/// Copies the SQLite database at `database` to the new file `target` with
/// `VACUUM INTO`: one read transaction, so the copy is consistent however
/// many writers are busy, and compact. Returns the copy's size in bytes.
pub fn backup(database: &DatabaseUrl, target: &Path) -> Result<u64, BackupError> {
    let DatabaseUrl::Sqlite(source) = database else {
        return Err(BackupError::Postgres);
    };
    if target.exists() {
        return Err(BackupError::Exists(target.to_owned()));
    }
    if !source.exists() {
        return Err(BackupError::Failed(format!(
            "there is no database at {}",
            source.display()
        )));
    }
    let failed = |e: &dyn std::fmt::Display| BackupError::Failed(e.to_string());
    let mut conn =
        SqliteConnection::establish(&source.display().to_string()).map_err(|e| failed(&e))?;
    conn.batch_execute("PRAGMA busy_timeout = 10000")
        .map_err(|e| failed(&e))?;
    let target_name = target
        .to_str()
        .ok_or_else(|| BackupError::Failed("the file name is not UTF-8".into()))?;
    // SQLite itself refuses a target that exists and is not empty.
    diesel::sql_query("VACUUM INTO ?")
        .bind::<Text, _>(target_name)
        .execute(&mut conn)
        .map_err(|e| failed(&e))?;
    check(target)?;
    let size = std::fs::metadata(target).map_err(|e| failed(&e))?.len();
    Ok(size)
}

/// Reads the copy back: a backup that cannot be opened is no backup.
fn check(copy: &Path) -> Result<(), BackupError> {
    #[derive(QueryableByName)]
    struct Verdict {
        #[diesel(sql_type = Text)]
        quick_check: String,
    }
    let failed = |e: &dyn std::fmt::Display| {
        BackupError::Failed(format!(
            "the copy {} does not check out: {e}",
            copy.display()
        ))
    };
    let mut conn =
        SqliteConnection::establish(&copy.display().to_string()).map_err(|e| failed(&e))?;
    let verdict: Vec<Verdict> = diesel::sql_query("PRAGMA quick_check")
        .load(&mut conn)
        .map_err(|e| failed(&e))?;
    match verdict.first() {
        Some(v) if v.quick_check == "ok" => Ok(()),
        Some(v) => Err(failed(&v.quick_check)),
        None => Err(failed(&"no answer to PRAGMA quick_check")),
    }
}
