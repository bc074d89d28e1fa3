//! The command line: parse, load settings, call into the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use clearance::app::{Application, auth_keys, open_database};
use clearance::auth::Role;
use clearance::config::Settings;

/// mimalloc rather than glibc's allocator: the lookup index is rebuilt
/// while requests run on other threads, and glibc's per-thread arenas kept
/// the freed memory (see bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    match run(cli.command, settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("clearance: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Openapi => unreachable!("handled before settings are loaded"),
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
            let keys = auth_keys(&settings)?;
            println!("{}", keys.mint(&sub, &email, &name, &[role], ttl));
            Ok(())
        }
        Command::Serve => serve(settings),
        Command::Worker => work(settings),
        Command::Demo => {
            let db = open_database(&settings)?;
            clearance::demo::load(&db)?;
            let keys = auth_keys(&settings)?;
            println!("{}", clearance::demo::instructions(&settings, &keys));
            serve(settings)
        }
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let bind = settings.bind;
        let app = Application::build(settings).await?;
        tracing::info!(%bind, port = app.port(), "serving");
        app.run_until_stopped().await?;
        Ok(())
    })
}

fn work(settings: Settings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let settings = std::sync::Arc::new(settings);
        let db = {
            let settings = settings.clone();
            tokio::task::spawn_blocking(move || open_database(&settings)).await??
        };
        let registry = prometheus::Registry::new();
        let worker = clearance::mail::spawn_worker(db, settings, &registry)?;
        tracing::info!("delivering mail");
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("stopping: finishing the batch in hand");
        worker.stop().await;
        Ok(())
    })
}
