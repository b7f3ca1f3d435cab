//! The paid-fact listener of a fleet instance (PostgreSQL store): a Pingora
//! background service that keeps a dedicated connection `LISTEN`ing on the
//! channel the store's triggers notify ([`crate::store::postgres::listen`]) and
//! drops each notified contract hash from this instance's cache, so a reorg
//! revert, a refresh or a refund committed by any instance reaches every cache.
//!
//! Without that connection a change would go unseen, so the cache is emptied and
//! bypassed ([`PaymentService::bypass_cache`]) from the moment it is lost (and from
//! start) until `LISTEN` succeeds again, when it is emptied once more and used
//! ([`PaymentService::use_cache`]): a stale "paid" is never served from it.
//! Reconnects back off from [`RETRY_MIN`] to [`RETRY_MAX`]; a round trip every
//! [`PING_EVERY`] notices a connection that died without a word.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::config::StoreBackend;
use crate::payments::service::PaymentService;
use crate::store::postgres::config_of;
use crate::store::postgres::listen::{self, Notice, LISTEN_APPLICATION};

/// The first wait before reconnecting after a failed attempt.
pub const RETRY_MIN: Duration = Duration::from_millis(100);
/// The longest wait between reconnection attempts.
pub const RETRY_MAX: Duration = Duration::from_secs(2);
/// How often the listening connection is checked with a round trip (and how
/// long the round trip may take).
pub const PING_EVERY: Duration = Duration::from_secs(5);

/// The listener service.
pub struct PaidFactListener {
    payments: Arc<PaymentService>,
    config: tokio_postgres::Config,
}

impl PaidFactListener {
    /// The listener for a PostgreSQL store; `None` for SQLite (one instance per
    /// file: its own changes reach its cache directly). A URL that does not parse
    /// (the store opened with it, so it does) leaves the cache bypassed.
    pub fn for_store(
        backend: &StoreBackend,
        payments: Arc<PaymentService>,
    ) -> Option<PaidFactListener> {
        let StoreBackend::Postgres(url) = backend else {
            return None;
        };
        match config_of(url) {
            Ok(c) => Some(PaidFactListener {
                payments,
                config: listen::dedicated(&c, LISTEN_APPLICATION),
            }),
            Err(e) => {
                tracing::error!(error = %e, "paid-fact listener: not started; the paid cache stays bypassed");
                None
            }
        }
    }

    /// Listens until the connection is lost (returns why) or `shutdown` (`None`).
    async fn serve(
        &self,
        mut conn: listen::Listening,
        shutdown: &mut ShutdownWatch,
    ) -> Option<String> {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        loop {
            tokio::select! {
                notice = conn.next() => match notice {
                    Notice::Changed(hash) => self.payments.forget(&[hash]),
                    Notice::Unreadable(payload) => {
                        tracing::warn!(%payload, "paid-fact listener: a notification that is not a contract hash; emptying the paid cache");
                        self.payments.forget_all();
                    }
                    Notice::Lost(why) => return Some(why),
                },
                _ = ping.tick() => {
                    match tokio::time::timeout(PING_EVERY, conn.ping()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return Some(e.to_string()),
                        Err(_) => return Some(format!("no answer within {PING_EVERY:?}")),
                    }
                }
                _ = shutdown.changed() => return None,
            }
        }
    }
}

#[async_trait]
impl BackgroundService for PaidFactListener {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut retry = RETRY_MIN;
        loop {
            let attempt = tokio::select! {
                a = listen::listen(&self.config) => a,
                _ = shutdown.changed() => return,
            };
            match attempt {
                Ok(conn) => {
                    self.payments.use_cache();
                    tracing::info!("paid-fact listener: listening (paid cache in use)");
                    retry = RETRY_MIN;
                    let Some(why) = self.serve(conn, &mut shutdown).await else {
                        return;
                    };
                    self.payments.bypass_cache();
                    tracing::warn!(
                        error = %why,
                        "paid-fact listener lost: cache emptied and bypassed until it reconnects"
                    );
                }
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        retry_in_ms = retry.as_millis() as u64,
                        "paid-fact listener: cannot listen; the paid cache stays bypassed"
                    );
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(retry) => {}
                _ = shutdown.changed() => return,
            }
            retry = retry.saturating_mul(2).min(RETRY_MAX);
        }
    }
}
