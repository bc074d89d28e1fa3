//! Throughput of `SmtpSender`: N messages of about 2 KB over C senders,
//! each with its own connection, as the delivery worker runs them. Prints
//! messages per second. Run by `bench/smtp.sh` against Postfix's smtp-sink.
//!
//!     cargo run --release --example smtp_bench -- smtp://127.0.0.1:2525 20000 20

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use clearance::mail::smtp::SmtpSender;
use clearance::mail::smtp_url::SmtpUrl;
use clearance::mail::transport::Outcome;
use lettre::Message;
use lettre::transport::smtp::extension::ClientId;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "smtp://127.0.0.1:2525".into());
    let total: usize = args.next().map_or(Ok(20_000), |n| n.parse())?;
    let senders: usize = args.next().map_or(Ok(20), |n| n.parse())?;
    let url = SmtpUrl::parse(&url).map_err(|e| anyhow::anyhow!("the SMTP URL {e}"))?;

    let message = Message::builder()
        .from("advisories@clearance.invalid".parse()?)
        .to("officer@example.org".parse()?)
        .subject("[CLR-2026-0001] Prohibited: Xiaomi Redmi 1S")
        .body("Refrain from using the Redmi 1S. ".repeat(55))?;
    let bytes = Arc::new(message.formatted());
    let envelope = Arc::new(message.envelope().clone());
    println!(
        "{total} messages of {} bytes over {senders} connections",
        bytes.len()
    );

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..senders {
        let (url, bytes, envelope, next) =
            (url.clone(), bytes.clone(), envelope.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut sender = SmtpSender::new(url, ClientId::Domain("localhost".into()));
            let mut failed = 0usize;
            while next.fetch_add(1, Ordering::Relaxed) < total {
                if !matches!(
                    sender.send(&envelope, &bytes, async {}).await,
                    Outcome::Sent { .. }
                ) {
                    failed += 1;
                }
            }
            failed
        }));
    }
    let mut failed = 0;
    for task in tasks {
        failed += task.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{:.0} msg/s ({total} in {elapsed:.2} s, {failed} not sent)",
        total as f64 / elapsed
    );
    anyhow::ensure!(failed == 0, "{failed} messages were not sent");
    Ok(())
}
