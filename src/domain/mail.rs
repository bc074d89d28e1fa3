//! What the service mails and where each mail stands.

crate::text_enum! {
    /// Why a mail is sent.
    pub enum MailKind {
        /// An advisory was published (its first revision).
        Published,
        /// A later revision of an advisory was published.
        Amended,
        /// An advisory was withdrawn.
        Withdrawn,
        /// A reminder to acknowledge an advisory.
        Reminder,
        /// Please confirm your subscription (double opt-in).
        Confirm,
        /// Someone subscribed an address that already is: a link to manage it.
        Manage,
        /// The daily digest of a subscriber.
        Digest,
    }
}

crate::text_enum! {
    /// Where one mail stands.
    pub enum DeliveryState {
        Queued,
        Sending,
        Sent,
        Retrying,
        Failed,
        /// Not sent: the address unsubscribed after the mail was queued.
        Suppressed,
    }
}

impl DeliveryState {
    /// How a stored row reads. A claim leaves the stored state alone, so a
    /// queued or retrying row held under a claim token is being sent; no
    /// row is stored as sending.
    pub fn shown(stored: Self, held: bool) -> Self {
        match stored {
            Self::Queued | Self::Retrying if held => Self::Sending,
            stored => stored,
        }
    }

    /// The rows that read as `self`: the stored states they may have, and
    /// whether they must be held under a claim (`None`: either way).
    /// [`DeliveryState::shown`] turned round, for finding them with a query.
    pub fn stored_as(self) -> (&'static [Self], Option<bool>) {
        match self {
            Self::Sending => (&[Self::Queued, Self::Retrying], Some(true)),
            Self::Queued => (&[Self::Queued], Some(false)),
            Self::Retrying => (&[Self::Retrying], Some(false)),
            Self::Sent => (&[Self::Sent], None),
            Self::Failed => (&[Self::Failed], None),
            Self::Suppressed => (&[Self::Suppressed], None),
        }
    }

    /// Whether the mail is still to go out (or going).
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Queued | Self::Retrying | Self::Sending)
    }
}

crate::text_enum! {
    /// Why an address receives a mail.
    pub enum Recipient {
        /// In the personnel directory: mandatory mail.
        Personnel,
        /// An opt-in subscriber.
        Subscriber,
    }
}

/// The key an address is unique under, and counted under against the
/// daily cap: trimmed, lower-cased, its domain in the ASCII form mail is
/// routed by (IDNA), so that `ｅxample.org` in full-width letters, a
/// decomposed `ä` and `xn--` spellings are one domain, not each a new cap.
pub fn email_key(email: &str) -> String {
    let email = email.trim();
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let domain = idna::domain_to_ascii(domain).unwrap_or_else(|_| domain.to_lowercase());
            format!("{}@{domain}", local.to_lowercase())
        }
        None => email.to_lowercase(),
    }
}

/// When to try again after `attempts` failed ones: exponential from `base`,
/// with ±25 % jitter (`jitter` in [0, 1)) so that many rows failing together
/// do not all come back together. With the default base of 11 minutes,
/// eight attempts span about a day.
pub fn retry_delay(base: std::time::Duration, attempts: u32, jitter: f64) -> std::time::Duration {
    let exponent = attempts.saturating_sub(1).min(16);
    let delay = base.as_secs_f64() * f64::from(1u32 << exponent);
    std::time::Duration::from_secs_f64(delay * (0.75 + 0.5 * jitter.clamp(0.0, 1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_address_share_its_key() {
        for same in [
            " Victim@Example.org ",
            "victim@EXAMPLE.ORG",
            "victim@\u{ff45}xample.org",
        ] {
            assert_eq!(email_key(same), "victim@example.org", "{same:?}");
        }
        for same in [
            "victim@ex\u{e4}mple.org",
            "victim@exa\u{308}mple.org",
            "victim@xn--exmple-cua.org",
        ] {
            assert_eq!(email_key(same), "victim@xn--exmple-cua.org", "{same:?}");
        }
        assert_ne!(
            email_key("Victim@example.org"),
            email_key("victim@example.com")
        );
    }

    #[test]
    fn a_state_finds_exactly_the_rows_that_read_as_it() {
        let stored = DeliveryState::ALL
            .iter()
            .filter(|s| **s != DeliveryState::Sending);
        for &state in stored {
            for held in [false, true] {
                let shown = DeliveryState::shown(state, held);
                for &wanted in DeliveryState::ALL {
                    let (states, must_be_held) = wanted.stored_as();
                    let found = states.contains(&state) && must_be_held.is_none_or(|h| h == held);
                    assert_eq!(
                        found,
                        shown == wanted,
                        "a row stored {state}, held {held}, reads {shown}; asked for {wanted}"
                    );
                }
            }
        }
    }
    use std::time::Duration;

    #[test]
    fn retries_back_off_exponentially_within_the_jitter() {
        let base = Duration::from_secs(660);
        assert_eq!(retry_delay(base, 1, 0.5), base);
        assert_eq!(retry_delay(base, 3, 0.5), base * 4);
        assert!(retry_delay(base, 2, 0.0) >= base * 2 * 3 / 4);
        assert!(retry_delay(base, 2, 0.999) <= base * 2 * 5 / 4);
        let day: Duration = (1..8).map(|n| retry_delay(base, n, 0.5)).sum();
        assert!(day > Duration::from_secs(20 * 3600) && day < Duration::from_secs(28 * 3600));
    }

    #[test]
    fn addresses_compare_without_case() {
        assert_eq!(email_key(" Officer@Example.ORG "), "officer@example.org");
    }
}
