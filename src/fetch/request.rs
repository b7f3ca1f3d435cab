//! What a fetch is asked to do ([`Request`]) and what it returns ([`Outcome`]):
//! plain data, no IO.

use super::FetchError;

/// One HTTP request to make (and to repeat with a receipt).
#[derive(Debug, Clone)]
pub struct Request {
    /// The method (default GET).
    pub method: reqwest::Method,
    /// The URL.
    pub url: reqwest::Url,
    /// Extra headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
}

impl Request {
    /// A GET of `url`; a URL that is not absolute http(s) is a usage error.
    pub fn get(url: &str) -> Result<Request, FetchError> {
        let url: reqwest::Url = url
            .parse()
            .map_err(|e| FetchError::Usage(format!("{url:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(FetchError::Usage(format!("{url} is not an http(s) URL")));
        }
        Ok(Request {
            method: reqwest::Method::GET,
            url,
            headers: Vec::new(),
            body: None,
        })
    }
}

/// Redirects followed at most in one request.
pub const MAX_REDIRECTS: usize = 10;

/// Whether a redirect from `from` to `to` may be followed after `followed` others:
/// never from https down to http (a receipt in `Authorization` would cross the
/// network in clear; on a redirect to another host reqwest drops it anyway), and
/// at most [`MAX_REDIRECTS`].
pub fn may_follow(from: &reqwest::Url, to: &reqwest::Url, followed: usize) -> bool {
    followed < MAX_REDIRECTS && !(from.scheme() == "https" && to.scheme() != "https")
}

/// How the resource was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// No 402: nothing to pay.
    Free,
    /// A stored receipt opened it; nothing was paid.
    Replayed,
    /// Paid now.
    Paid,
    /// A payment begun by an earlier, interrupted run was completed.
    Resumed,
}

impl How {
    /// Lowercase name (`--json`'s `how`).
    pub fn as_str(self) -> &'static str {
        match self {
            How::Free => "free",
            How::Replayed => "replayed",
            How::Paid => "paid",
            How::Resumed => "resumed",
        }
    }
}

/// The payment a fetch made or completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentSummary {
    /// The payment id.
    pub payment_id: String,
    /// The contract hash it paid.
    pub contract_hash: String,
    /// Decimal 0xBTC.
    pub amount: String,
    /// Base units.
    pub amount_base_units: String,
    /// Where it went.
    pub address: String,
    /// The transfer, when this client sent one.
    pub tx_hash: Option<String>,
}

/// The receipt a fetch used (never the receipt itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptSummary {
    /// Its contract hash.
    pub contract_hash: String,
    /// What it unlocks.
    pub scope: String,
    /// When it expires (UNIX seconds).
    pub expires_at: u64,
}

/// The result of a fetch: the final response (any status but 402) and how it came.
#[derive(Debug)]
pub struct Outcome {
    /// The final response; its body is not read yet.
    pub response: reqwest::Response,
    /// How it was obtained.
    pub how: How,
    /// The payment made or resumed, if any.
    pub payment: Option<PaymentSummary>,
    /// The receipt presented, if any.
    pub receipt: Option<ReceiptSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    // Rules out a receipt sent in clear: a site (or a man in the middle of its
    // redirect) sending an https request on to http.
    #[test]
    fn redirects_never_leave_https_and_are_bounded() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(may_follow(&u("https://a/x"), &u("https://a/y"), 0));
        assert!(may_follow(&u("http://a/x"), &u("https://a/y"), 0));
        assert!(may_follow(&u("http://a/x"), &u("http://b/y"), 0));
        assert!(!may_follow(&u("https://a/x"), &u("http://a/x"), 0));
        assert!(!may_follow(
            &u("https://a/x"),
            &u("https://a/y"),
            MAX_REDIRECTS
        ));
    }
}
