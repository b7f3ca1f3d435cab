//! Prometheus metrics (SPEC section 11), served as `GET /metrics` on the admin
//! listener in the Prometheus text format.
//!
//! The request path only touches pre-created atomic counters and one histogram:
//! no lock, no label lookup, no allocation per request. What the store knows
//! (payments by state, revenue, the postback backlog) is read when Prometheus
//! scrapes, so it is the shared truth, not a per-process tally.
//!
//! | series | meaning |
//! | --- | --- |
//! | `tollgate_requests_total{outcome}` | public-listener requests by [`Outcome`] |
//! | `tollgate_request_duration_seconds` | their time from head to last byte |
//! | `tollgate_payments{state}` | payments in the store by state |
//! | `tollgate_revenue_base_units_total` | base units received by `paid`/`paid_late` payments |
//! | `tollgate_chain_head_lag_blocks` | highest reported head minus the last scanned block |
//! | `tollgate_rpc_errors_total` | failed RPC endpoints and abandoned views |
//! | `tollgate_postback_backlog` | postbacks not yet delivered and still retried |
//! | `tollgate_cache_entries` | entries of the contract-hash cache |

use std::sync::LazyLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::limits::conn::Closed;
use crate::payments::service::PaymentService;
use crate::payments::state::PaymentState;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Most postback deliveries read per scrape for the backlog.
const BACKLOG_SCAN: usize = 100_000;

/// What happened to a request on the public listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Free or unpriced: proxied to the origin.
    Forwarded,
    /// Priced and opened by a receipt: proxied.
    Unlocked,
    /// Answered with a 402 challenge.
    Challenged,
    /// Would have been challenged, served free (dry run).
    DryRun,
    /// Refused by tollgate (400, 503, …) or failed before a decision.
    Refused,
    /// One of tollgate's own endpoints under `pay_prefix`.
    Endpoint,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Outcome; 6] = [
        Outcome::Forwarded,
        Outcome::Unlocked,
        Outcome::Challenged,
        Outcome::DryRun,
        Outcome::Refused,
        Outcome::Endpoint,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Forwarded => "forwarded",
            Outcome::Unlocked => "unlocked",
            Outcome::Challenged => "challenged",
            Outcome::DryRun => "dry_run",
            Outcome::Refused => "refused",
            Outcome::Endpoint => "endpoint",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Every reason the limits close a connection, in label order.
const CLOSED: [Closed; 3] = [Closed::Full, Closed::SlowHead, Closed::LargeHead];

fn closed_label(c: Closed) -> &'static str {
    match c {
        Closed::Full => "full",
        Closed::SlowHead => "slow_head",
        Closed::LargeHead => "large_head",
    }
}

/// Counts a connection the limits closed (lock-free).
pub fn connection_closed(c: Closed) {
    if let Some(m) = global() {
        if let Some(i) = CLOSED.iter().position(|x| *x == c) {
            m.closed[i].inc();
        }
    }
}

/// Every payment state, in label order.
const STATES: [PaymentState; 8] = [
    PaymentState::New,
    PaymentState::Seen,
    PaymentState::Confirming,
    PaymentState::Paid,
    PaymentState::Expired,
    PaymentState::PaidLate,
    PaymentState::Underpaid,
    PaymentState::Refunded,
];

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    requests: [IntCounter; 6],
    duration: Histogram,
    payments: [IntGauge; 8],
    revenue: IntGauge,
    head_lag: IntGauge,
    rpc_errors: IntCounter,
    postback_backlog: IntGauge,
    cache_entries: IntGauge,
    closed: [IntCounter; 3],
}

static GLOBAL: LazyLock<Option<Metrics>> = LazyLock::new(|| match Metrics::new() {
    Ok(m) => Some(m),
    Err(e) => {
        tracing::error!(error = %e, "metrics could not be set up; /metrics is off");
        None
    }
});

/// The process-wide metrics (`None` only if they could not be registered).
pub fn global() -> Option<&'static Metrics> {
    GLOBAL.as_ref()
}

impl Metrics {
    /// A fresh set of series in its own registry.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let requests_vec = IntCounterVec::new(
            Opts::new(
                "tollgate_requests_total",
                "Requests on the public listener by outcome.",
            ),
            &["outcome"],
        )?;
        let requests = Outcome::ALL.map(|o| requests_vec.with_label_values(&[o.as_str()]));
        registry.register(Box::new(requests_vec))?;
        let duration = Histogram::with_opts(HistogramOpts::new(
            "tollgate_request_duration_seconds",
            "Time from request head to the last byte of the answer, public listener.",
        ))?;
        registry.register(Box::new(duration.clone()))?;
        let payments_vec = IntGaugeVec::new(
            Opts::new("tollgate_payments", "Payments in the store by state."),
            &["state"],
        )?;
        let payments = STATES.map(|s| payments_vec.with_label_values(&[s.as_str()]));
        registry.register(Box::new(payments_vec))?;
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let revenue = gauge(
            "tollgate_revenue_base_units_total",
            "Base units received by paid and paid_late payments (read from the store; a reorg or refund can lower it).",
        )?;
        let head_lag = gauge(
            "tollgate_chain_head_lag_blocks",
            "Highest head reported by the RPC endpoints minus the last block the watcher scanned.",
        )?;
        let postback_backlog = gauge(
            "tollgate_postback_backlog",
            "Postback deliveries not yet delivered and still being retried.",
        )?;
        let cache_entries = gauge(
            "tollgate_cache_entries",
            "Entries in the contract-hash cache of this instance.",
        )?;
        let rpc_errors = IntCounter::new(
            "tollgate_rpc_errors_total",
            "RPC endpoint failures seen by the chain watcher (failed heads and abandoned views).",
        )?;
        registry.register(Box::new(rpc_errors.clone()))?;
        let closed_vec = IntCounterVec::new(
            Opts::new(
                "tollgate_connections_closed_total",
                "Connections the limits closed, by reason (full: max_connections open; slow_head: head not complete within header_timeout; large_head: head over 64 KiB, answered 431).",
            ),
            &["reason"],
        )?;
        let closed = CLOSED.map(|c| closed_vec.with_label_values(&[closed_label(c)]));
        registry.register(Box::new(closed_vec))?;
        Ok(Metrics {
            registry,
            requests,
            duration,
            payments,
            revenue,
            head_lag,
            rpc_errors,
            postback_backlog,
            cache_entries,
            closed,
        })
    }

    /// Counts one finished public request (lock-free, no allocation).
    pub fn observe_request(&self, outcome: Outcome, seconds: f64) {
        if let Some(c) = self.requests.get(outcome.index()) {
            c.inc();
        }
        self.duration.observe(seconds);
    }

    /// Counts `n` RPC failures.
    pub fn rpc_errors(&self, n: u64) {
        self.rpc_errors.inc_by(n);
    }

    /// Sets how far the watcher's last scanned block is behind the chain head.
    pub fn set_head_lag(&self, blocks: u64) {
        self.head_lag.set(i64::try_from(blocks).unwrap_or(i64::MAX));
    }

    /// Reads the store-backed gauges and renders every series in the text format.
    /// A store failure is reported, never a stale number.
    pub async fn scrape(&self, payments: Option<&PaymentService>) -> Result<String, String> {
        if let Some(p) = payments {
            let totals = p.store.payment_totals().await.map_err(|e| e.to_string())?;
            let mut counts = [0i64; 8];
            let mut revenue: u128 = 0;
            for t in &totals {
                if let Some(i) = STATES.iter().position(|s| *s == t.state) {
                    counts[i] = i64::try_from(t.count).unwrap_or(i64::MAX);
                }
                if matches!(t.state, PaymentState::Paid | PaymentState::PaidLate) {
                    revenue = revenue.saturating_add(t.received.0);
                }
            }
            for (g, n) in self.payments.iter().zip(counts) {
                g.set(n);
            }
            self.revenue.set(i64::try_from(revenue).unwrap_or(i64::MAX));
            let deliveries = p
                .store
                .deliveries(BACKLOG_SCAN)
                .await
                .map_err(|e| e.to_string())?;
            let backlog = deliveries
                .iter()
                .filter(|d| d.delivered_at.is_none() && d.next_attempt_at.is_some())
                .count();
            self.postback_backlog
                .set(i64::try_from(backlog).unwrap_or(i64::MAX));
            self.cache_entries
                .set(i64::try_from(p.cache_entries()).unwrap_or(i64::MAX));
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .map_err(|e| e.to_string())?;
        String::from_utf8(out).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_exposed_with_its_labels() {
        let m = Metrics::new().unwrap();
        m.observe_request(Outcome::Challenged, 0.002);
        m.observe_request(Outcome::Challenged, 0.003);
        m.observe_request(Outcome::Forwarded, 0.5);
        m.rpc_errors(2);
        m.set_head_lag(3);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let text = rt.block_on(m.scrape(None)).unwrap();
        for line in [
            "tollgate_requests_total{outcome=\"challenged\"} 2",
            "tollgate_requests_total{outcome=\"forwarded\"} 1",
            "tollgate_requests_total{outcome=\"dry_run\"} 0",
            "tollgate_requests_total{outcome=\"endpoint\"} 0",
            "tollgate_request_duration_seconds_count 3",
            "tollgate_payments{state=\"paid\"} 0",
            "tollgate_payments{state=\"paid_late\"} 0",
            "tollgate_revenue_base_units_total 0",
            "tollgate_chain_head_lag_blocks 3",
            "tollgate_rpc_errors_total 2",
            "tollgate_postback_backlog 0",
            "tollgate_cache_entries 0",
            "# TYPE tollgate_request_duration_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
    }
}
