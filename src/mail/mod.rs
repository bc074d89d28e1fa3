//! Outgoing mail: how one built message leaves the service, and what the
//! receiving side said about it.

pub mod file; // the .eml folder used when no SMTP relay is configured
pub mod header_text; // user data made safe for a header field
pub mod smtp; // one long-lived SMTP connection per sender task
pub mod smtp_url; // CLEARANCE_SMTP_URL, parsed at start
mod tls; // implicit TLS over our own (TCP_NODELAY) socket
pub mod transport; // the outcome of one send, and the choice of transport
