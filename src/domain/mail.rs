//! What the service mails and where each mail stands.

crate::text_enum! {
    /// Why a mail is sent.
    pub enum MailKind {
        /// An advisory was published (its first revision).
        Published = "published",
        /// A later revision of an advisory was published.
        Amended = "amended",
        /// An advisory was withdrawn.
        Withdrawn = "withdrawn",
        /// A reminder to acknowledge an advisory.
        Reminder = "reminder",
        /// Please confirm your subscription (double opt-in).
        Confirm = "confirm",
        /// Someone subscribed an address that already is: a link to manage it.
        Manage = "manage",
        /// The daily digest of a subscriber.
        Digest = "digest",
    }
}

crate::text_enum! {
    /// Where one mail stands.
    pub enum DeliveryState {
        Queued = "queued",
        Sending = "sending",
        Sent = "sent",
        Retrying = "retrying",
        Failed = "failed",
        /// Not sent: the address unsubscribed after the mail was queued.
        Suppressed = "suppressed",
    }
}

crate::text_enum! {
    /// Why an address receives a mail.
    pub enum Recipient {
        /// In the personnel directory: mandatory mail.
        Personnel = "personnel",
        /// An opt-in subscriber.
        Subscriber = "subscriber",
    }
}

/// The key an address is unique under: trimmed and lower-cased.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}
