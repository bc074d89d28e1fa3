//! Time of one free-text lookup in the index alone (no HTTP): builds the
//! lookup index from a database, as `serve` does, then runs each query
//! many times and prints the mean per search. Run by hand against
//! `bench/seed.py`'s register:
//!
//!     cargo run --release --example search_bench -- sqlite:///tmp/bench.db 'phone 042424' px-04242
//!     ROUNDS=2000 cargo run --release --example search_bench -- sqlite:///tmp/bench.db maker

use std::time::{Duration, Instant};

use clearance::config::DatabaseUrl;
use clearance::db::Db;
use clearance::lookup::Lookup;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "sqlite:///tmp/bench.db".into());
    let url = DatabaseUrl::parse(&url).map_err(|e| anyhow::anyhow!("the database URL {e}"))?;
    let queries: Vec<String> = args.collect();
    let db = Db::connect(&url, 2, Duration::from_secs(30))?;
    let lookup = Lookup::load(db).await?;
    let index = lookup.snapshot();
    let rounds: u32 = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200_000);
    for query in &queries {
        let mut found = 0;
        let began = Instant::now();
        for _ in 0..rounds {
            found += index.search(query, 10).len();
        }
        let each = began.elapsed() / rounds;
        println!(
            "{query:>16}: {each:?} a search, {} matches",
            found / rounds as usize
        );
    }
    Ok(())
}
