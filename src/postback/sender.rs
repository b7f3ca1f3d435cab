//! The delivery loop: a Pingora background service that sends due postbacks from
//! the durable outbox, at least once, with exponential backoff and jitter.
//!
//! Each attempt re-checks the URL (the address it resolves to now must still be
//! allowed) and connects to exactly the address it checked; redirects are not
//! followed. 2xx is delivered; errors, timeouts and other statuses retry until
//! `[postback] retry_for` after the payment became paid.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use super::{parse_url, resolve_checked, signature};
use crate::app::App;
use crate::payments::service::PaymentService;
use crate::store::{AttemptOutcome, Delivery};

/// How often the outbox is polled.
pub const TICK: Duration = Duration::from_millis(200);

/// The delay in milliseconds before retry number `attempts` (1-based): `base_ms`
/// doubling per attempt, capped at one hour, with ±20 % jitter so many failing
/// receivers do not retry in lockstep.
pub fn backoff_ms(attempts: u32, base_ms: u64, jitter_permille: u32) -> u64 {
    let d = base_ms
        .saturating_mul(1u64 << attempts.saturating_sub(1).min(30))
        .min(3_600_000);
    // jitter_permille in 0..=1000 maps to a factor of 0.8..=1.2, in integers.
    d * (800 + u64::from(jitter_permille.min(1000)) * 400 / 1000) / 1000
}

/// The sender service.
pub struct Sender {
    app: Arc<App>,
    payments: Arc<PaymentService>,
    key: Vec<u8>,
}

impl Sender {
    /// A sender for `app`, signing with its postback key.
    pub fn new(app: Arc<App>, payments: Arc<PaymentService>) -> Option<Sender> {
        let key = app.cfg().secrets.postback_key.as_ref()?.0.clone();
        Some(Sender { app, payments, key })
    }

    /// Sends every due delivery once. Returns how many were attempted.
    pub async fn run_once(&self) -> usize {
        // Only the instance that leads (see `Store::lead`) delivers.
        if !matches!(self.payments.store.lead().await, Ok(true)) {
            return 0;
        }
        let now = self.app.clock.now_secs();
        let due = match self.payments.store.due_deliveries(now, 32).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "postback outbox unavailable");
                return 0;
            }
        };
        let n = due.len();
        for d in due {
            let outcome = self.attempt(&d).await;
            let outcome = match outcome {
                Ok(()) => AttemptOutcome::Delivered,
                Err(error) => {
                    let now = self.app.clock.now_secs();
                    let deadline = d
                        .created_at
                        .saturating_add(self.app.cfg().postback.retry_for_secs);
                    let delay = backoff_ms(
                        d.attempts + 1,
                        self.app.cfg().postback.retry_base_ms,
                        jitter(),
                    );
                    let next = now + delay / 1000;
                    tracing::info!(delivery = %d.id, attempt = d.attempts + 1, %error, "postback failed");
                    AttemptOutcome::Failed {
                        error,
                        retry_at: (next <= deadline).then_some(next),
                    }
                }
            };
            if let Err(e) = self
                .payments
                .store
                .record_attempt(&d.id, self.app.clock.now_secs(), outcome)
                .await
            {
                tracing::warn!(error = %e, delivery = %d.id, "could not record postback attempt");
            }
        }
        n
    }

    async fn attempt(&self, d: &Delivery) -> Result<(), String> {
        // Only a payment that is still paid is announced (a reorg may have taken it back).
        match self.payments.store.payment(&d.payment_id).await {
            Ok(Some(p)) if p.state.unlocks() => {}
            Ok(_) => return Err("payment is no longer paid (chain reorganisation); waiting".into()),
            Err(e) => return Err(format!("store: {e}")),
        }
        let target = parse_url(&d.url).map_err(|e| format!("postback_url {e}"))?;
        let addr = resolve_checked(&target, &self.app.cfg().postback.allow_networks)
            .await
            .map_err(|e| format!("postback_url {e}"))?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(self.app.cfg().postback.timeout_secs))
            .resolve(&target.host, addr)
            .no_proxy()
            .build()
            .map_err(|e| format!("client: {e}"))?;
        let t = self.app.clock.now_secs();
        let resp = client
            .post(&d.url)
            .header("Content-Type", "application/json")
            .header(
                "User-Agent",
                concat!("tollgate/", env!("CARGO_PKG_VERSION")),
            )
            .header("X-Tollgate-Delivery", &d.id)
            .header("X-Tollgate-Signature", signature(&self.key, t, &d.body))
            .body(d.body.clone())
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "timed out".to_string()
                } else {
                    format!("connection failed: {}", without_url(&e))
                }
            })?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", status.as_u16()))
        }
    }
}

/// A reqwest error's message without the URL (it may carry a shop's secret path).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "<postback_url>");
    }
    s
}

fn jitter() -> u32 {
    let mut b = [0u8; 2];
    if getrandom::getrandom(&mut b).is_err() {
        return 500;
    }
    u32::from(u16::from_le_bytes(b)) % 1001
}

#[async_trait]
impl BackgroundService for Sender {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            self.run_once().await;
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        assert_eq!(backoff_ms(1, 5000, 500), 5000);
        assert_eq!(backoff_ms(2, 5000, 500), 10_000);
        assert_eq!(backoff_ms(3, 5000, 500), 20_000);
        assert_eq!(backoff_ms(1, 5000, 0), 4000);
        assert_eq!(backoff_ms(1, 5000, 1000), 6000);
        assert_eq!(backoff_ms(30, 5000, 500), 3_600_000);
        assert_eq!(backoff_ms(60, 5000, 1000), 4_320_000);
    }
}
