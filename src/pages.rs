//! The HTML pages tollgate serves itself, from templates in `assets/` (askama:
//! compiled and checked at build time, every value HTML-escaped unless a template
//! says otherwise; values placed in scripts go through the `json` filter).
//!
//! Owns the page data types and rendering; callers decide *which* page and status.
//! It does no IO.

use askama::Template;
use serde::Serialize;
use time::macros::format_description;
use time::OffsetDateTime;

use crate::challenge::ChallengeUrls;
use crate::contract::Terms;

/// The 402 paywall, or (with `offer_page`) the offer page, for one contract.
#[derive(Template)]
#[template(path = "paywall.html")]
pub struct Paywall<'a> {
    /// True for the offer page (a fresh contract, "Continue to …").
    pub offer_page: bool,
    /// A revisited fulfillment URL: the script runs `executePayment` at once.
    pub revisit: bool,
    /// Where `tollgate.js` is served.
    pub library_url: &'a str,
    /// The terms.
    pub terms: &'a Terms,
    /// Where the contract, pay and offer live.
    pub urls: &'a ChallengeUrls,
    /// The contract hash, lowercase hex.
    pub hash: &'a str,
    /// The contract token.
    pub token: &'a str,
    /// The pay deadline, RFC 3339.
    pub deadline_iso: String,
    /// The pay deadline for people.
    pub deadline_human: String,
    /// The Web Monetization wallet address, when this route also takes Web Monetization
    /// (`wm_price`): the page's head starts with `<link rel="monetization" href="…">`.
    pub monetization_link: Option<&'a str>,
}

/// A link on a [`Message`] page.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    /// Where it goes.
    pub href: String,
    /// What it says.
    pub text: String,
    /// Shown as a button.
    pub button: bool,
}

/// A page that says one thing: a heading, paragraphs, links (errors for browsers,
/// "not paid yet", "already claimed", "confirming").
#[derive(Template)]
#[template(path = "message.html")]
pub struct Message {
    /// `<title>`.
    pub title: String,
    /// `<h1>`.
    pub heading: String,
    /// Plain-text paragraphs.
    pub paragraphs: Vec<String>,
    /// Links below them.
    pub links: Vec<Link>,
    /// Reload the page after this many seconds.
    pub refresh_secs: Option<u32>,
}

impl Message {
    /// A page with `heading` (also the title) and one paragraph.
    pub fn new(heading: &str, paragraph: &str) -> Message {
        Message {
            title: heading.to_string(),
            heading: heading.to_string(),
            paragraphs: vec![paragraph.to_string()],
            links: Vec::new(),
            refresh_secs: None,
        }
    }

    /// Adds a link (`button`: shown as a button).
    pub fn link(mut self, href: &str, text: &str, button: bool) -> Message {
        self.links.push(Link {
            href: href.to_string(),
            text: text.to_string(),
            button,
        });
        self
    }

    /// Adds a paragraph.
    pub fn paragraph(mut self, text: &str) -> Message {
        self.paragraphs.push(text.to_string());
        self
    }

    /// Reloads every `secs` seconds.
    pub fn refresh(mut self, secs: u32) -> Message {
        self.refresh_secs = Some(secs);
        self
    }
}

/// The answer to a form `POST /pay`: manual payment instructions and the unlock form.
#[derive(Template)]
#[template(path = "instructions.html")]
pub struct Instructions<'a> {
    /// `{public_url}{pay_prefix}`.
    pub base: &'a str,
    /// The payment id.
    pub payment_id: &'a str,
    /// Amount, decimal 0xBTC.
    pub amount: &'a str,
    /// Receiving address.
    pub address: &'a str,
    /// Token contract.
    pub token: &'a str,
    /// Chain id.
    pub chain_id: u64,
    /// The EIP-681 URI.
    pub eip681: &'a str,
    /// The claimer's secret, for the unlock form.
    pub claim_token: &'a str,
}

/// `GET /{id}/status`: the payment's state, refreshing while it can still change.
#[derive(Template)]
#[template(path = "status.html")]
pub struct Status<'a> {
    /// `{public_url}{pay_prefix}`.
    pub base: &'a str,
    /// The payment id.
    pub payment_id: &'a str,
    /// State name.
    pub state: &'a str,
    /// Received so far, decimal.
    pub received: &'a str,
    /// Amount due, decimal.
    pub amount: &'a str,
    /// Receiving address.
    pub address: &'a str,
    /// Confirmations of the completing transfer.
    pub confirmations: u64,
    /// Confirmations required.
    pub required_confirmations: u64,
    /// Still changing: refresh.
    pub waiting: bool,
    /// Paid: offer the unlock form (the claim cookie proves the claimer).
    pub unlocks: bool,
    /// The resource a paid contract payment opens.
    pub resource: &'a str,
}

/// Renders a page; a template error (not expected: templates are checked at build
/// time) becomes a plain message rather than a panic.
pub fn render(page: &impl Template) -> String {
    page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "page template failed");
        "<!doctype html><title>Error</title><p>This page could not be shown.</p>".to_string()
    })
}

/// `YYYY-MM-DDTHH:MM:SSZ` for UNIX seconds (UTC); the epoch for out-of-range input.
pub fn iso_utc(secs: u64) -> String {
    format_utc(
        secs,
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"),
    )
}

/// `YYYY-MM-DD HH:MM:SS UTC` for UNIX seconds.
pub fn human_utc(secs: u64) -> String {
    format_utc(
        secs,
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC"),
    )
}

fn format_utc(secs: u64, fmt: &[time::format_description::BorrowedFormatItem<'_>]) -> String {
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(fmt).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso_utc(1_795_926_816), "2026-11-29T04:33:36Z");
        assert_eq!(iso_utc(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(human_utc(1_795_926_816), "2026-11-29 04:33:36 UTC");
        assert_eq!(iso_utc(u64::MAX), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn values_are_escaped() {
        let page =
            render(&Message::new("<b>x</b>", "a & \"b\"").link("/x?a=1&b=\"2\"", "<go>", true));
        assert!(page.contains("<h1>&#60;b&#62;x&#60;/b&#62;</h1>"), "{page}");
        assert!(page.contains("<p>a &#38; &#34;b&#34;</p>"), "{page}");
        assert!(
            page.contains("href=\"/x?a=1&#38;b=&#34;2&#34;\">&#60;go&#62;</a>"),
            "{page}"
        );
    }
}
