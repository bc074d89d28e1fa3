//! The command line: parse, load settings, call into the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use clearance::app::{Application, StartupError, auth_keys, minting_keys, open_database};
use clearance::auth::Role;
use clearance::config::Settings;

/// mimalloc rather than glibc's allocator: the lookup index is rebuilt
/// while requests run on other threads, and glibc's per-thread arenas kept
/// the freed memory (see bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How this process asks for memory, set first thing. Each write replaces
/// the lookup index's overlay (and the old one is freed): with the
/// allocators' defaults, 1,000 writes at 100,000 models left the RSS 52 %
/// higher than before them (bench/README.md).
fn tune_memory() {
    // Transparent huge pages off. mimalloc asks for them on its arenas; the
    // kernel then backs each touched 2 MiB range whole, and khugepaged
    // fills in sparse ones.
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes no pointers; it sets a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    // SQLite allocates with the C library's malloc, from whichever thread
    // holds the connection at the time: one arena for all of them, not one
    // more (with its own free space) per thread.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes no pointers.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// From now on mimalloc gives freed memory back to the system at once, not
/// a second later: while writes come, each freeing the overlay the one
/// before built, that second kept being pushed back and the freed overlays
/// piled up. Called once the index is built: during the build, whose large
/// arrays are freed and allocated again, purging at once cost a quarter more
/// CPU at 1,000,000 models. An operator's MIMALLOC_PURGE_DELAY still wins.
fn return_freed_memory_at_once() {
    const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15; // `mi_option_purge_delay`, v2 and v3
    unsafe extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
        fn mi_collect(force: bool);
    }
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: both take no pointers. What the build freed is returned
        // first: with no delay, mimalloc no longer looks at what waits.
        unsafe {
            mi_collect(true);
            mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
    }
}

#[derive(Parser)]
#[command(name = "clearance", version, about = "Device advisory service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (migrating the database first).
    Serve,
    /// Deliver queued mail, without the HTTP API, until SIGTERM or Ctrl-C.
    Worker,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print a signed JWT for development and automation.
    Token {
        #[arg(long)]
        role: Role,
        #[arg(long)]
        sub: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Lifetime such as 30m, 1h, 7d.
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: chrono::Duration,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Copy the SQLite database to a new FILE while the service runs (for
    /// PostgreSQL use pg_dump). Artifacts and secrets in the data directory
    /// are copied separately: see deploy/README.md.
    Backup {
        /// Where the copy goes; an existing file is never overwritten.
        file: std::path::PathBuf,
    },
    /// Load the demo data set, print tokens to try it with, and serve.
    Demo,
}

fn parse_ttl(raw: &str) -> Result<chrono::Duration, String> {
    let (number, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: i64 = number
        .parse()
        .map_err(|_| format!("`{raw}` is not a duration like 30m, 1h or 7d"))?;
    let duration = match unit {
        "s" => chrono::Duration::seconds(n),
        "m" => chrono::Duration::minutes(n),
        "h" | "" => chrono::Duration::hours(n),
        "d" => chrono::Duration::days(n),
        _ => return Err(format!("`{raw}`: the unit must be s, m, h or d")),
    };
    if n <= 0 {
        return Err("the lifetime must be positive".into());
    }
    Ok(duration)
}

fn main() -> ExitCode {
    tune_memory();
    let cli = Cli::parse();
    if let Command::Openapi = cli.command {
        print!("{}", clearance::openapi::to_json());
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("clearance: {error}");
            return ExitCode::from(2);
        }
    };
    clearance::telemetry::init(settings.log_format);
    if let Command::Backup { file } = &cli.command {
        return backup(&settings, file);
    }
    match run(cli.command, settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => match error.downcast_ref::<StartupError>() {
            Some(mistake) => {
                eprintln!("clearance: {mistake}");
                ExitCode::from(2)
            }
            None => {
                eprintln!("clearance: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Openapi => unreachable!("handled before settings are loaded"),
        Command::Backup { .. } => unreachable!("handled before run, for its exit status"),
        Command::Migrate => {
            open_database(&settings)?;
            eprintln!("clearance: migrations applied");
            Ok(())
        }
        Command::Token {
            role,
            sub,
            email,
            name,
            ttl,
        } => {
            let keys = minting_keys(&settings)?;
            println!("{}", keys.mint(&sub, &email, &name, &[role], ttl));
            Ok(())
        }
        Command::Serve => serve(settings, false),
        Command::Worker => work(settings),
        Command::Demo => serve(settings, true),
    }
}

/// Exit status 2 for PostgreSQL (the wrong tool: use pg_dump), 1 when the
/// copy fails or the file exists.
fn backup(settings: &Settings, file: &std::path::Path) -> ExitCode {
    use clearance::db::backup::{BackupError, backup};
    match backup(&settings.database, file) {
        Ok(bytes) => {
            eprintln!(
                "clearance: database copied to {} ({bytes} bytes); copy {} too (artifacts and secrets)",
                file.display(),
                settings.data_dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(error @ BackupError::Postgres) => {
            eprintln!("clearance: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("clearance: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Serves; with `demo`, first loads the demo data set through the running
/// service's use cases and prints what to try.
fn serve(settings: Settings, demo: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let bind = settings.bind;
        let instructions = if demo {
            let keys = auth_keys(&settings)?;
            Some(clearance::demo::instructions(&settings, &keys))
        } else {
            None
        };
        let app = Application::build(settings).await?;
        return_freed_memory_at_once();
        if let Some(instructions) = instructions {
            clearance::demo::load(app.workflow()).await?;
            println!("{instructions}");
        }
        tracing::info!(%bind, port = app.port(), "serving");
        app.run_until_stopped().await?;
        Ok(())
    })
}

fn work(mut settings: Settings) -> anyhow::Result<()> {
    // The worker reads what it has just claimed: never from a lagging replica.
    settings.database_read = None;
    clearance::mail::check_destination(&settings)?;
    // One thread: a lane composes a message in tens of microseconds and then
    // waits (on the relay, or on the recorder), so waking tasks across
    // threads cost more than a second thread gave (bench/README.md: 11-25 %
    // more mail a second, a fifth less CPU). More cores: more worker
    // processes. Database calls still run on tokio's blocking threads.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let settings = std::sync::Arc::new(settings);
        let db = {
            let settings = settings.clone();
            tokio::task::spawn_blocking(move || open_database(&settings)).await??
        };
        let registry = prometheus::Registry::new();
        let worker = clearance::mail::spawn_worker(db, settings, &registry)?;
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        // Said once SIGTERM is handled: from here on it stops cleanly.
        tracing::info!("delivering mail");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("stopping: finishing the batch in hand");
        worker.stop().await;
        Ok(())
    })
}
