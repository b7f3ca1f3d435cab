//! Contracts: the terms a 402 offers, their JCS hash, and the MAC'd token that
//! lets tollgate rebuild the identical terms later without having stored anything.
//!
//! Owns: minting an [`Offer`] for a priced resource, and turning a token back into
//! that offer. It does no IO; randomness and time are passed in.

mod terms;
mod token;

pub use terms::{ContractHash, Product, Terms};
pub use token::{ContractItem, ContractParams, TokenError};

use crate::config::{Config, Route};
use crate::keys::Keys;

/// A contract ready to be offered: its token, its terms and their hash.
#[derive(Debug, Clone)]
pub struct Offer {
    /// The parameters the terms are built from.
    pub params: ContractParams,
    /// The MAC'd token carried by the contract URL and the fulfillment URL.
    pub token: String,
    /// The terms.
    pub terms: Terms,
    /// SHA-256 over the JCS form of the terms.
    pub hash: ContractHash,
}

impl Offer {
    /// Mints a fresh offer for `resource` (a canonical path) priced by `route`.
    /// `nonce` must be fresh randomness; `now` is UNIX seconds.
    pub fn mint(
        cfg: &Config,
        keys: &Keys,
        route: &Route,
        resource: &str,
        nonce: [u8; 16],
        now: u64,
    ) -> Offer {
        let params = ContractParams {
            merchant: cfg.server.public_url.clone(),
            resource: resource.to_string(),
            scope: route.scope_for(resource),
            summary: route.summary_for(resource),
            price: route.price,
            chain_id: cfg.chain.chain_id,
            token: cfg.chain.token.clone(),
            decimals: cfg.chain.decimals,
            confirmations: route.confirmations,
            nonce: token::encode_nonce(&nonce),
            created: now,
            pay_deadline: now.saturating_add(cfg.payments.expiry_secs),
            access_ttl: route.access_ttl_secs,
            items: Vec::new(),
        };
        Offer::from_params(keys, params)
    }

    /// Mints the contract of a basket checkout: one `products` entry per line
    /// (`items`, items then extras), `amount` = `total`, the receipt scope the list of
    /// the purchased products' `unlocks`. `resource` is the basket's own path.
    #[allow(clippy::too_many_arguments)]
    pub fn mint_basket(
        cfg: &Config,
        keys: &Keys,
        resource: &str,
        summary: String,
        items: Vec<ContractItem>,
        total: crate::amount::Amount,
        scope: Vec<String>,
        nonce: [u8; 16],
        now: u64,
    ) -> Offer {
        let params = ContractParams {
            merchant: cfg.server.public_url.clone(),
            resource: resource.to_string(),
            scope: crate::receipt::Scope::list(&scope),
            summary,
            price: total,
            chain_id: cfg.chain.chain_id,
            token: cfg.chain.token.clone(),
            decimals: cfg.chain.decimals,
            confirmations: cfg.chain.confirmations,
            nonce: token::encode_nonce(&nonce),
            created: now,
            pay_deadline: now.saturating_add(cfg.payments.expiry_secs),
            access_ttl: cfg.payments.access_ttl_secs,
            items,
        };
        Offer::from_params(keys, params)
    }

    /// Rebuilds the offer from a token, checking its MAC (constant time).
    /// Expiry is not checked here: the caller decides what an expired contract means.
    pub fn from_token(keys: &Keys, token: &str) -> Result<Offer, TokenError> {
        let params = token::decode(keys, token)?;
        Ok(Offer::from_params(keys, params))
    }

    fn from_params(keys: &Keys, params: ContractParams) -> Offer {
        let token = token::encode(keys, &params);
        let terms = Terms::build(&params, &token);
        let hash = terms.hash();
        Offer {
            params,
            token,
            terms,
            hash,
        }
    }

    /// True when the pay deadline has passed at `now`.
    pub fn expired(&self, now: u64) -> bool {
        now > self.params.pay_deadline
    }
}
