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
    /// The price manifest (`prices.json`), for programs that want every price.
    pub manifest_url: String,
}

impl ChallengeUrls {
    /// The URLs for `offer` under `cfg`'s `public_url` and `pay_prefix`.
    pub fn new(cfg: &Config, offer: &Offer) -> ChallengeUrls {
        let base = cfg.server.pay_base();
        ChallengeUrls {
            contract_url: format!("{base}/contract/{}", offer.token),
            pay_url: format!("{base}/pay"),
            offer_url: offer_url(cfg, &offer.params.resource),
            manifest_url: format!("{base}/prices.json"),
        }
    }
}

/// The absolute URL of the human offer page for `resource` (a fresh contract).
pub fn offer_url(cfg: &Config, resource: &str) -> String {
    format!(
        "{}/offer?resource={}",
        cfg.server.pay_base(),
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

/// How a visitor came to a 402.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// With a freshly minted contract.
    Fresh,
    /// By a revisited fulfillment URL (its own contract again): the paywall's script
    /// runs the seed's `executePayment` (replay what this browser accepted, else go to
    /// the offer).
    Revisit,
}

/// The `402 Payment Required` for `offer`; JSON when `json` is true, else the paywall.
pub fn payment_required(cfg: &Config, offer: &Offer, visit: Visit, json: bool) -> Reply {
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
            render_page(cfg, offer, &urls, &hash, Kind::Paywall(visit)),
        )
    };
    with_challenge_headers(reply, urls, hash)
}

/// The four `X-Taler-*` headers, the manifest `Link` and `Vary: Accept` of a 402.
fn with_challenge_headers(reply: Reply, urls: ChallengeUrls, hash: String) -> Reply {
    reply
        .with_header(
            "Link",
            format!("<{}>; rel=\"payment-manifest\"", urls.manifest_url),
        )
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
    let urls = ChallengeUrls::new(cfg, offer);
    let base = cfg.server.pay_base();
    let msg = format!(
        "payment {} is {} ({} of {} confirmations); do not pay again: retry shortly",
        p.id,
        p.state.as_str(),
        p.confirmations,
        p.required_confirmations
    );
    let reply = if json {
        Reply::json(
            402,
            &serde_json::json!({
                "code": "payment_confirming",
                "message": msg,
                "payment_id": p.id,
                "state": p.state.as_str(),
                "status_url": format!("{base}/{}/status.json", p.id),
                "contract_hash": offer.hash.to_string(),
                "offer_url": urls.offer_url,
            }),
        )
    } else {
        Reply::html(
            402,
            pages::render(
                &pages::Message::new("Your payment is confirming", &msg)
                    .link(&format!("{base}/{}/status", p.id), "Payment status", false)
                    .link(
                        &urls.offer_url,
                        "Not your purchase (a shared link)? Buy your own on the offer page",
                        false,
                    )
                    .refresh(5),
            ),
        )
    };
    with_challenge_headers(reply, urls, offer.hash.to_string())
        .with_header("Retry-After", "5".into())
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
    /// The 402 paywall.
    Paywall(Visit),
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
        revisit: matches!(kind, Kind::Paywall(Visit::Revisit)),
        library_url: &format!("{}/tollgate.js", cfg.server.pay_base()),
        terms: t,
        urls,
        hash,
        token: &offer.token,
        deadline_iso: pages::iso_utc(t.pay_deadline),
        deadline_human: pages::human_utc(t.pay_deadline),
        monetization_link: monetization_link(cfg, &offer.params.resource),
    })
}

/// The wallet address for the paywall's `<link rel="monetization">`: set when
/// `[web_monetization]` is configured and the route pricing `resource` has a `wm_price`
/// (SPEC section 10).
fn monetization_link<'c>(cfg: &'c Config, resource: &str) -> Option<&'c str> {
    let wm = cfg.web_monetization.as_ref()?;
    let route = cfg.routes.lookup(resource)?;
    route.wm_price.as_ref()?;
    Some(wm.wallet_address.as_str())
}
