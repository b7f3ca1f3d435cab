//! The 402 challenge and the offer page (SPEC section 5 and `GET /offer`).
//!
//! Turns an [`Offer`] into the response a client sees: the four `X-Taler-*`
//! headers as absolute URLs, `Cache-Control: no-store`, and a JSON body for
//! programs or an HTML paywall for people. It writes nothing anywhere.

use serde::Serialize;

use crate::config::Config;
use crate::contract::{Offer, Terms};
use crate::pages;
use crate::reply::{query_escape, Reply};

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

/// Which contract a 402 offers.
#[derive(Debug)]
pub enum Page {
    /// A freshly minted contract.
    Fresh(Offer),
    /// The contract of a revisited fulfillment URL: the paywall's script runs the seed's
    /// `executePayment` (replay what this browser accepted, else go to the offer).
    Revisit(Offer),
}

impl Page {
    fn offer(&self) -> &Offer {
        match self {
            Page::Fresh(o) | Page::Revisit(o) => o,
        }
    }
}

/// The `402 Payment Required` for `page`'s contract; JSON when `json` is true, else
/// the paywall.
pub fn payment_required(cfg: &Config, page: &Page, json: bool) -> Reply {
    let offer = page.offer();
    let revisit = matches!(page, Page::Revisit(_));
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
        Reply::html(
            402,
            render_page(cfg, offer, &urls, &hash, Kind::Paywall { revisit }),
        )
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
    let mut reply = payment_required(cfg, &Page::Revisit(offer.clone()), json);
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
        bytes::Bytes::from(pages::render(
            &pages::Message::new("Your payment is confirming", &msg)
                .link(&format!("{base}/{}/status", p.id), "Payment status", false)
                .link(
                    &offer_url(cfg, &offer.params.resource),
                    "Not your purchase (a shared link)? Buy your own on the offer page",
                    false,
                )
                .refresh(5),
        ))
    };
    reply.with_header("Retry-After", "5".into())
}

/// The human offer page (200) for a fresh `offer`.
pub fn offer_page(cfg: &Config, offer: &Offer) -> Reply {
    let urls = ChallengeUrls::new(cfg, offer);
    let hash = offer.hash.to_string();
    Reply::html(200, render_page(cfg, offer, &urls, &hash, Kind::Offer))
        .with_header("X-Taler-Contract-Url", urls.contract_url)
}

/// Which page [`render_page`] draws.
#[derive(Clone, Copy)]
enum Kind {
    /// The 402 paywall (`revisit`: for a revisited fulfillment URL).
    Paywall { revisit: bool },
    /// The offer page.
    Offer,
}

fn render_page(
    cfg: &Config,
    offer: &Offer,
    urls: &ChallengeUrls,
    hash: &str,
    kind: Kind,
) -> String {
    let t = &offer.terms;
    pages::render(&pages::Paywall {
        offer_page: matches!(kind, Kind::Offer),
        revisit: matches!(kind, Kind::Paywall { revisit: true }),
        library_url: &format!(
            "{}{}/tollgate.js",
            cfg.server.public_url, cfg.server.pay_prefix
        ),
        terms: t,
        urls,
        hash,
        token: &offer.token,
        deadline_iso: pages::iso_utc(t.pay_deadline),
        deadline_human: pages::human_utc(t.pay_deadline),
    })
}
