//! What a client can make tollgate hold (SPEC section 12), on every listener.
//!
//! * [`head`]: where a request head ends (pure).
//! * [`conn`]: the connection guard in front of each listener's app: head size
//!   (431 over [`MAX_HEAD`]) and time (`header_timeout`), idle keep-alive
//!   (`idle_timeout`), open connections (`max_connections`).
//!
//! * [`budget`]: per-client budgets of store writes (429 with `Retry-After`),
//!   IPv6 counted per /64, in a table a flood cannot flush.
//!
//! Request bodies of tollgate's own endpoints are capped where they are read (413).

pub mod budget;
pub mod conn;
pub mod head;

use std::time::Duration;

/// The largest request head tollgate reads: 64 KiB (431 beyond).
pub const MAX_HEAD: usize = 64 * 1024;

/// The connection limits of one listener (`[server]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A head must be complete this long after its first byte (or, on a new
    /// connection, after the connection opened).
    pub header_timeout: Duration,
    /// A kept-alive connection with no new request for this long is closed.
    pub idle_timeout: Duration,
    /// Most connections open at once on the listener.
    pub max_connections: usize,
}
