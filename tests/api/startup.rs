//! Start-up mistakes, through the built binary: each ends the process with
//! exit status 2 and one line on stderr naming what is wrong and what to
//! do, without creating anything on the way.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Far above the few seconds any of these takes: only a hang fails it.
const GENEROUS: Duration = Duration::from_secs(60);

/// Runs `clearance args…` in `dir` with only the environment given (and no
/// configuration file unless `dir` holds `clearance.toml`); returns the
/// exit status and stderr.
fn clearance(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clearance"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("CLEARANCE_BIND", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let started = Instant::now();
    while child.try_wait().expect("the child").is_none() {
        if started.elapsed() > GENEROUS {
            child.kill().ok();
            panic!("clearance {args:?} did not give up within {GENEROUS:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("its output");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Asserts exit status 2 and exactly one line on stderr holding every one
/// of `words`.
fn refused(outcome: (Option<i32>, String), words: &[&str]) {
    let (code, stderr) = outcome;
    assert_eq!(code, Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    for word in words {
        assert!(lines[0].contains(word), "`{word}` in {stderr}");
    }
}

#[test]
fn an_unreachable_postgresql_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    refused(
        clearance(
            dir.path(),
            &["serve"],
            &[(
                "DATABASE_URL",
                "postgres://clearance:secret@127.0.0.1:1/clearance",
            )],
        ),
        &[
            "cannot connect to PostgreSQL",
            "127.0.0.1:1",
            "DATABASE_URL",
        ],
    );
}

#[test]
fn a_sqlite_file_in_a_missing_folder_is_refused_and_the_folder_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nonexistent/dir");
    let url = format!("sqlite://{}/x.db", missing.display());
    refused(
        clearance(dir.path(), &["serve"], &[("DATABASE_URL", &url)]),
        &["does not exist", &missing.display().to_string()],
    );
    assert!(!dir.path().join("nonexistent").exists());
}

#[test]
fn a_sqlite_folder_that_cannot_be_written_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // Not even root may create files in /proc.
    refused(
        clearance(
            dir.path(),
            &["migrate"],
            &[("DATABASE_URL", "sqlite:///proc/clearance.db")],
        ),
        &["/proc/clearance.db", "writable"],
    );
}

#[test]
fn an_unknown_key_in_the_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("clearance.toml"),
        "public_lookup = true\npublic_lokup = false\n",
    )
    .unwrap();
    refused(
        clearance(dir.path(), &["serve"], &[]),
        &["public_lokup", "clearance.toml"],
    );
}

#[test]
fn a_mail_folder_that_cannot_be_written_is_seen_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let mail_dir = file.join("mail");
    let url = format!("sqlite://{}/c.db", dir.path().display());
    for command in ["serve", "worker"] {
        refused(
            clearance(
                dir.path(),
                &[command],
                &[
                    ("DATABASE_URL", &url),
                    ("CLEARANCE_MAIL_DIR", &mail_dir.display().to_string()),
                ],
            ),
            &["CLEARANCE_MAIL_DIR", &mail_dir.display().to_string()],
        );
    }
}

/// A port already in use ends the start at once, before the database is
/// opened or a worker claims any mail.
#[test]
fn a_port_in_use_is_one_line_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let db = dir.path().join("c.db");
    let url = format!("sqlite://{}", db.display());
    refused(
        clearance(
            dir.path(),
            &["serve"],
            &[("DATABASE_URL", &url), ("CLEARANCE_BIND", &address)],
        ),
        &["cannot listen on", &address, "CLEARANCE_BIND"],
    );
    assert!(!db.exists(), "the database was not even opened");
}

#[test]
fn the_link_secret_may_not_be_the_jwt_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "one-secret-of-at-least-thirty-two-characters";
    refused(
        clearance(
            dir.path(),
            &["serve"],
            &[
                ("CLEARANCE_JWT_SECRET", secret),
                ("CLEARANCE_LINK_SECRET", secret),
            ],
        ),
        &["CLEARANCE_LINK_SECRET", "CLEARANCE_JWT_SECRET"],
    );
}

#[test]
fn token_never_creates_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/c.db", dir.path().display());
    let args = [
        "token",
        "--role",
        "admin",
        "--sub",
        "me",
        "--email",
        "me@example.org",
    ];
    let secret_file = dir.path().join("jwt-secret");
    refused(
        clearance(dir.path(), &args, &[("DATABASE_URL", &url)]),
        &["CLEARANCE_JWT_SECRET", &secret_file.display().to_string()],
    );
    assert!(!secret_file.exists(), "no secret was made up");
    // With the server's secret where the server keeps it, a token.
    std::fs::write(&secret_file, "the-servers-secret-of-at-least-32-characters").unwrap();
    let (code, stderr) = clearance(dir.path(), &args, &[("DATABASE_URL", &url)]);
    assert_eq!(code, Some(0), "{stderr}");
}
