//! How many connections the server holds open at once: what the settings
//! ask, but never so many that accepting one more fails for want of a file
//! descriptor (the pool, mail relays, artifacts and logs need theirs).

use crate::config::HttpLimits;

/// Descriptors kept back from client connections.
const RESERVED_DESCRIPTORS: u64 = 256;

/// The process's soft limit on open files, when it has one.
fn descriptor_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given and reads nothing else.
    let status = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (status == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// The connections each of `workers` HTTP workers may hold (actix counts
/// per worker): the configured total, lowered to fit the descriptor limit.
pub fn per_worker(limits: &HttpLimits, workers: usize) -> usize {
    let mut total = limits.max_connections;
    if let Some(descriptors) = descriptor_limit() {
        let room = descriptors.saturating_sub(RESERVED_DESCRIPTORS).max(1) as usize;
        if room < total {
            tracing::warn!(
                configured = total,
                descriptors,
                lowered_to = room,
                "CLEARANCE_MAX_CONNECTIONS is above what the open-file limit allows; raise the limit (ulimit -n, LimitNOFILE) to accept more"
            );
            total = room;
        }
    }
    (total / workers.max(1)).max(1)
}
