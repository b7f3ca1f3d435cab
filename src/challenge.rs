//! The 402 challenge and the offer page (SPEC section 5 and `GET /offer`).
//!
//! Turns an [`Offer`] into the response a client sees: the four `X-Taler-*`
//! headers as absolute URLs, `Cache-Control: no-store`, and a JSON body for
//! programs or an HTML paywall for people. It writes nothing anywhere.

use serde::Serialize;

use crate::config::Config;
use crate::contract::{Offer, Terms};
use crate::reply::{html_escape, query_escape, Reply};

const PAGE: &str = include_str!("../assets/paywall.html");

/// The absolute URLs a challenge points at.
#[derive(Debug, Clone, Serialize)]
pub struct ChallengeUrls {
    /// `GET` returns the terms.
    pub contract_url: String,
    /// `POST {"contract": token}` claims.
    pub pay_url: String,
    /// The human offer page for the resource.
    pub offer_url: String,
}

impl ChallengeUrls {
    /// The URLs for `offer` under `cfg`'s `public_url` and `pay_prefix`.
    pub fn new(cfg: &Config, offer: &Offer) -> ChallengeUrls {
        let base = format!("{}{}", cfg.server.public_url, cfg.server.pay_prefix);
        ChallengeUrls {
            contract_url: format!("{base}/contract/{}", offer.token),
            pay_url: format!("{base}/pay"),
            offer_url: offer_url(cfg, &offer.params.resource),
        }
    }
}

/// The absolute URL of the human offer page for `resource` (a fresh contract).
pub fn offer_url(cfg: &Config, resource: &str) -> String {
    format!(
        "{}{}/offer?resource={}",
        cfg.server.public_url,
        cfg.server.pay_prefix,
        query_escape(resource)
    )
}

#[derive(Serialize)]
struct ChallengeBody<'a> {
    code: &'static str,
    message: String,
    contract_hash: String,
    contract_token: &'a str,
    #[serde(flatten)]
    urls: &'a ChallengeUrls,
    contract: &'a Terms,
}

/// The `402 Payment Required` for `offer`; JSON when `json` is true, else the paywall.
pub fn payment_required(cfg: &Config, offer: &Offer, json: bool) -> Reply {
    let urls = ChallengeUrls::new(cfg, offer);
    let hash = offer.hash.to_string();
    let reply = if json {
        Reply::json(
            402,
            &ChallengeBody {
                code: "payment_required",
                message: format!(
                    "{} costs {} 0xBTC: POST {{\"contract\": contract_token}} to pay_url to get payment instructions",
                    offer.params.resource, offer.terms.amount
                ),
                contract_hash: hash.clone(),
                contract_token: &offer.token,
                urls: &urls,
                contract: &offer.terms,
            },
        )
    } else {
        Reply::html(402, render_page(offer, &urls, &hash, PageKind::Paywall))
    };
    reply
        .with_header("X-Taler-Contract-Url", urls.contract_url)
        .with_header("X-Taler-Contract-Hash", hash)
        .with_header("X-Taler-Pay-Url", urls.pay_url)
        .with_header("X-Taler-Offer-Url", urls.offer_url)
        .with_header("Vary", "Accept".into())
}

/// The 402 for a revisited contract whose payment is on chain but not yet deep
/// enough: the same contract, `Retry-After`, and a body that says so, never a
/// fresh contract that would invite paying twice.
pub fn confirming(cfg: &Config, offer: &Offer, p: &crate::store::Payment, json: bool) -> Reply {
    let mut reply = payment_required(cfg, offer, json);
    let base = format!("{}{}", cfg.server.public_url, cfg.server.pay_prefix);
    let msg = format!(
        "payment {} is {} ({} of {} confirmations); do not pay again: retry shortly",
        p.id,
        p.state.as_str(),
        p.confirmations,
        p.required_confirmations
    );
    reply.body = if json {
        bytes::Bytes::from(
            serde_json::to_vec(&serde_json::json!({
                "code": "payment_confirming",
                "message": msg,
                "payment_id": p.id,
                "state": p.state.as_str(),
                "status_url": format!("{base}/{}/status.json", p.id),
                "contract_hash": offer.hash.to_string(),
                "offer_url": offer_url(cfg, &offer.params.resource),
            }))
            .unwrap_or_default(),
        )
    } else {
        bytes::Bytes::from(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\">\
             <title>Payment confirming</title></head><body><h1>Your payment is confirming</h1><p>{}</p>\
             <p><a href=\"{}/{}/status\">Payment status</a></p>\
             <p>Not your purchase (a shared link)? <a href=\"{}\">Buy your own on the offer page</a>.</p></body></html>",
            html_escape(&msg),
            html_escape(&base),
            html_escape(&p.id),
            html_escape(&offer_url(cfg, &offer.params.resource))
        ))
    };
    reply.with_header("Retry-After", "5".into())
}

/// The human offer page (200) for a fresh `offer`.
pub fn offer_page(cfg: &Config, offer: &Offer) -> Reply {
    let urls = ChallengeUrls::new(cfg, offer);
    let hash = offer.hash.to_string();
    Reply::html(200, render_page(offer, &urls, &hash, PageKind::Offer))
        .with_header("X-Taler-Contract-Url", urls.contract_url)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PageKind {
    Paywall,
    Offer,
}

fn render_page(offer: &Offer, urls: &ChallengeUrls, hash: &str, kind: PageKind) -> String {
    let t = &offer.terms;
    let (title, heading) = match kind {
        PageKind::Paywall => ("Payment required", "This content is for sale"),
        PageKind::Offer => ("Offer", "Offer"),
    };
    let instructions = format!(
        "<p>Pay <strong>{amount} 0xBTC</strong> (ERC-20 token <span class=\"mono\">{token}</span> on chain {chain}) \
         to a receiving address made for this purchase. The button below gets it, with the exact amount and \
         an EIP-681 QR code; after enough confirmations this page unlocks. Wallets can do the same with \
         <code>POST {pay}</code> <code>{{\"contract\": \"&lt;token&gt;\"}}</code>.</p>",
        amount = html_escape(&t.amount),
        token = html_escape(&t.token),
        chain = t.chain_id,
        pay = html_escape(&urls.pay_url),
    );
    let links = match kind {
        PageKind::Paywall => format!(
            "<a href=\"{}\">Open the offer page</a> · shared this link? Buy your own copy there.",
            html_escape(&urls.offer_url)
        ),
        PageKind::Offer => format!(
            "<a class=\"button\" href=\"{}\">Continue to {}</a>",
            html_escape(&t.fulfillment_url),
            html_escape(&t.resource)
        ),
    };
    render(
        PAGE,
        &[
            ("title", title),
            ("heading", heading),
            ("summary", &html_escape(&t.summary)),
            ("amount", &html_escape(&t.amount)),
            ("resource", &html_escape(&t.resource)),
            ("contract_url", &html_escape(&urls.contract_url)),
            ("contract_hash", hash),
            ("deadline_iso", &iso_utc(t.pay_deadline)),
            (
                "deadline_human",
                &iso_utc(t.pay_deadline)
                    .replace('T', " ")
                    .replace('Z', " UTC"),
            ),
            ("resource_js", &js_string(&t.resource)),
            ("instructions", &instructions),
            ("links", &links),
            ("pay_url", &html_escape(&urls.pay_url)),
            ("contract_token", &html_escape(&offer.token)),
            ("fulfillment_path", &js_string(&fulfillment_path(t))),
        ],
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` for UNIX seconds (proleptic Gregorian, UTC).
pub fn iso_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (H. Hinnant): days since 1970-01-01 to year/month/day.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The fulfillment URL relative to the site (path and query), for same-origin navigation.
fn fulfillment_path(t: &Terms) -> String {
    t.fulfillment_url
        .strip_prefix(&t.merchant)
        .unwrap_or(&t.resource)
        .to_string()
}

/// Escapes text for a single-quoted JavaScript string inside an HTML script.
fn js_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '\'' | '"' | '<' | '>' | '&' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Single-pass `{{name}}` substitution: values are inserted verbatim (callers
/// escape them) and never re-scanned, so a value cannot inject a placeholder.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 1024);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = &after[..end];
                match values.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push_str("{{");
                        out.push_str(name);
                        out.push_str("}}");
                    }
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso_utc(1_795_926_816), "2026-11-29T04:33:36Z");
        assert_eq!(iso_utc(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn placeholders_are_single_pass() {
        assert_eq!(
            render("a{{x}}b{{y}}", &[("x", "{{y}}"), ("y", "1")]),
            "a{{y}}b1"
        );
        assert_eq!(render("{{unknown}}", &[]), "{{unknown}}");
    }
}
