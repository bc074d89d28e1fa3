//! What keeps one client from taking the service from everyone else: who a
//! request comes from ([`client`]), per-client rate limits ([`rate`]) and a
//! deadline on request bodies ([`body`]). The per-address mail limit lives
//! with the subscriptions (`crate::workflow::subscriptions`), and the
//! connection cap and database timeouts with the server and the pool.

pub mod body;
pub mod client;
pub mod connections;
pub mod rate;
