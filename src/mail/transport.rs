//! What a sender task calls: one already-built message in, one classified
//! outcome out. The classification is what the outbox needs to choose the
//! next state of a row (sent, retry later, give up), so it is made here,
//! once, and not by each caller reading SMTP codes.

use lettre::address::Envelope;
use lettre::transport::smtp::extension::ClientId;
use url::{Host, Url};

use crate::config::Settings;
use crate::mail::file::FileSender;
use crate::mail::smtp::SmtpSender;

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted: `reply` is the server's final reply
    /// (`250 2.0.0 Ok: queued as …`), or where the file was written.
    Sent { reply: String },
    /// Try again later: a 4xx reply, a refused or broken connection, a
    /// timeout, or any refusal while opening the connection (a bad login, a
    /// 554 greeting: about the relay, not this message). `throttled` is set for the replies that mean "too much, slow
    /// down" (421, 450, 451, 452), so the caller backs off the whole
    /// transport instead of burning this row's attempts.
    Transient {
        error: String,
        reply: Option<String>,
        throttled: bool,
    },
    /// Give up on this message: a 5xx reply to its envelope or data, or a
    /// message the server cannot take at all (non-ASCII without the
    /// extension for it), where no reply exists.
    Permanent {
        error: String,
        reply: Option<String>,
    },
}

/// The transport the settings choose: SMTP when `CLEARANCE_SMTP_URL` is set,
/// else `.eml` files in `CLEARANCE_MAIL_DIR`.
#[derive(Debug)]
pub enum Transport {
    Smtp(SmtpSender),
    File(FileSender),
}

impl Transport {
    /// One per sender task: an SMTP transport is one connection, opened on
    /// the first send and kept.
    pub fn from_settings(settings: &Settings) -> Self {
        match &settings.smtp_url {
            Some(url) => Self::Smtp(SmtpSender::new(
                url.clone(),
                hello_name(&settings.public_url),
            )),
            None => Self::File(FileSender::new(settings.mail_dir.clone())),
        }
    }

    /// Sends `message` (the formatted bytes) to the envelope's recipients.
    /// `id` is stable per message (e.g. per outbox row): the file transport
    /// names its file after it, so a resend overwrites instead of adding.
    /// `commit` is awaited just before the step that hands the message
    /// over (SMTP's final data, the file's write): what may run ahead of it
    /// (the envelope's round trips) cannot deliver anything.
    pub async fn send(
        &mut self,
        id: &str,
        envelope: &Envelope,
        message: &[u8],
        commit: impl Future<Output = ()>,
    ) -> Outcome {
        match self {
            Self::Smtp(sender) => sender.send(envelope, message, commit).await,
            Self::File(sender) => {
                commit.await;
                sender.send(id, message).await
            }
        }
    }
}

/// The name we greet the relay with: the host of our public URL, which is
/// the name the service is known by, or `localhost` when it has none.
pub fn hello_name(public_url: &Url) -> ClientId {
    match public_url.host() {
        Some(Host::Domain(name)) if !name.is_empty() => ClientId::Domain(name.to_owned()),
        Some(Host::Ipv4(ip)) => ClientId::Ipv4(ip),
        Some(Host::Ipv6(ip)) => ClientId::Ipv6(ip),
        _ => ClientId::Domain("localhost".into()),
    }
}

/// Whether a reply code asks us to slow down rather than saying
/// something about the message.
pub(crate) fn is_throttling(code: u16) -> bool {
    matches!(code, 421 | 450 | 451 | 452)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hello_name_is_the_public_host() {
        let name = |url: &str| hello_name(&Url::parse(url).unwrap()).to_string();
        assert_eq!(
            name("https://clearance.example.org/x"),
            "clearance.example.org"
        );
        assert_eq!(name("http://127.0.0.1:8080"), "[127.0.0.1]");
        assert_eq!(name("http://[::1]:8080"), "[IPv6:::1]");
        assert_eq!(name("data:text/plain,x"), "localhost");
    }

    #[test]
    fn throttling_codes() {
        for code in [421, 450, 451, 452] {
            assert!(is_throttling(code));
        }
        for code in [250, 454, 550, 552] {
            assert!(!is_throttling(code));
        }
    }
}
