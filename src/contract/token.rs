//! The contract token: `base64url(payload).base64url(hmac)`, where the payload is the
//! compact JSON of [`ContractParams`]. The MAC uses the contract key, checked in
//! constant time; a tampered, truncated or foreign token is refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::keys::{mac, verify_mac, Keys};

/// Everything the terms are built from. Carried inside the token so that a later
/// config change (a new price) never alters a contract already issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractParams {
    /// `public_url` at minting.
    #[serde(rename = "u")]
    pub merchant: String,
    /// Canonical resource path.
    #[serde(rename = "r")]
    pub resource: String,
    /// Receipt scope.
    #[serde(rename = "s")]
    pub scope: String,
    /// Summary.
    #[serde(rename = "m")]
    pub summary: String,
    /// Price in base units.
    #[serde(rename = "p", with = "amount_str")]
    pub price: Amount,
    /// Chain id.
    #[serde(rename = "i")]
    pub chain_id: u64,
    /// Token contract.
    #[serde(rename = "a")]
    pub token: String,
    /// Token decimals.
    #[serde(rename = "e")]
    pub decimals: u32,
    /// Confirmations required for this contract.
    #[serde(rename = "k")]
    pub confirmations: u64,
    /// Fresh nonce (base64url of 16 random bytes).
    #[serde(rename = "n")]
    pub nonce: String,
    /// UNIX seconds.
    #[serde(rename = "c")]
    pub created: u64,
    /// UNIX seconds.
    #[serde(rename = "d")]
    pub pay_deadline: u64,
    /// Receipt lifetime, seconds.
    #[serde(rename = "t")]
    pub access_ttl: u64,
    /// A basket's lines (items and extras); empty for a single priced resource.
    #[serde(rename = "b", default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ContractItem>,
}

/// One line of a basket contract: exactly a `products` entry of the terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractItem {
    /// Product id (or `tollgate:tax`, ...).
    #[serde(rename = "i")]
    pub id: String,
    /// Description.
    #[serde(rename = "d")]
    pub description: String,
    /// Quantity.
    #[serde(rename = "q")]
    pub quantity: u32,
    /// Unit price, signed decimal string (a refund is negative).
    #[serde(rename = "p")]
    pub price: String,
}

mod amount_str {
    use crate::amount::Amount;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(a: &Amount, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&a.0.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Amount, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<u128>()
            .map(Amount)
            .map_err(serde::de::Error::custom)
    }
}

/// Why a contract token was refused (always a client error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not two base64url parts.
    #[error("malformed contract token")]
    Malformed,
    /// The MAC does not verify: tampered, truncated or minted by someone else.
    #[error("contract token does not verify (tampered, truncated or not ours)")]
    BadMac,
}

/// Upper bound on a token's length; longer input is refused before any work. (A
/// basket's token carries its lines; the basket API bounds how many it may have.)
pub const MAX_TOKEN_LEN: usize = 32 * 1024;

pub(super) fn encode_nonce(nonce: &[u8; 16]) -> String {
    B64.encode(nonce)
}

pub(super) fn encode(keys: &Keys, p: &ContractParams) -> String {
    // Serialising strings and integers cannot fail.
    let json = serde_json::to_vec(p).unwrap_or_default();
    let payload = B64.encode(json);
    let tag = mac(&keys.contract, &[payload.as_bytes()]);
    format!("{payload}.{}", B64.encode(tag))
}

pub(super) fn decode(keys: &Keys, token: &str) -> Result<ContractParams, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (payload, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let tag = B64.decode(tag).map_err(|_| TokenError::Malformed)?;
    if !verify_mac(&keys.contract, &[payload.as_bytes()], &tag) {
        return Err(TokenError::BadMac);
    }
    let json = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)
}
