//! Contract terms (SPEC section 5) and their hash: SHA-256 over the RFC 8785 (JCS)
//! canonical JSON, lowercase hex.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::token::ContractParams;

/// The contract terms exactly as served by the contract URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Terms {
    /// Format version (1).
    pub version: u32,
    /// The merchant's public URL.
    pub merchant: String,
    /// Human summary.
    pub summary: String,
    /// What is bought.
    pub products: Vec<Product>,
    /// Total, decimal string.
    pub amount: String,
    /// Always "0xBTC".
    pub currency: String,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Token contract, lowercase hex.
    pub token: String,
    /// Token decimals.
    pub decimals: u32,
    /// The resource path.
    pub resource: String,
    /// What a receipt for this contract unlocks (a path, a route pattern, or a
    /// basket's list of patterns).
    #[serde(with = "crate::receipt::scope_json")]
    pub scope: String,
    /// The resource URL carrying this contract's token.
    pub fulfillment_url: String,
    /// Fresh per 402 (the seed's "fresh transaction id").
    pub nonce: String,
    /// UNIX seconds.
    pub created: u64,
    /// UNIX seconds after which the contract can no longer be claimed.
    pub pay_deadline: u64,
    /// Receipt lifetime in seconds.
    pub access_ttl: u64,
}

/// One line of a contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    /// Product id (for a priced path: the path).
    pub id: String,
    /// Description.
    pub description: String,
    /// Quantity.
    pub quantity: u32,
    /// Unit price, decimal string.
    pub price: String,
}

/// A contract hash: 32 bytes, shown as lowercase hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContractHash(pub [u8; 32]);

impl ContractHash {
    /// SHA-256 over the RFC 8785 (JCS) canonical form of any JSON value: the check a
    /// paying client makes on terms it downloaded (`tollgate fetch`), with the same
    /// canonicaliser and digest as [`Terms::hash`]. `None` when the value has no
    /// canonical form (a number JCS cannot represent); such terms are refused.
    pub fn of_json(value: &serde_json::Value) -> Option<ContractHash> {
        let canonical = serde_json_canonicalizer::to_string(value).ok()?;
        Some(Self::digest(&canonical))
    }

    fn digest(canonical: &str) -> ContractHash {
        ContractHash(Sha256::digest(canonical.as_bytes()).into())
    }
}

impl std::fmt::Display for ContractHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl Terms {
    /// Builds the terms for `params`; `token` is the contract token (for the fulfillment URL).
    pub fn build(p: &ContractParams, token: &str) -> Terms {
        let amount = p.price.to_decimal(p.decimals);
        Terms {
            version: 1,
            merchant: p.merchant.clone(),
            summary: p.summary.clone(),
            products: if p.items.is_empty() {
                vec![Product {
                    id: p.resource.clone(),
                    description: p.summary.clone(),
                    quantity: 1,
                    price: amount.clone(),
                }]
            } else {
                p.items
                    .iter()
                    .map(|i| Product {
                        id: i.id.clone(),
                        description: i.description.clone(),
                        quantity: i.quantity,
                        price: i.price.clone(),
                    })
                    .collect()
            },
            amount,
            currency: "0xBTC".into(),
            chain_id: p.chain_id,
            token: p.token.clone(),
            decimals: p.decimals,
            resource: p.resource.clone(),
            scope: p.scope.clone(),
            fulfillment_url: format!("{}{}?tollgate_contract={token}", p.merchant, p.resource),
            nonce: p.nonce.clone(),
            created: p.created,
            pay_deadline: p.pay_deadline,
            access_ttl: p.access_ttl,
        }
    }

    /// The RFC 8785 canonical JSON of these terms.
    pub fn canonical_json(&self) -> String {
        // Serialising plain strings and integers cannot fail.
        serde_json_canonicalizer::to_string(self).unwrap_or_default()
    }

    /// SHA-256 of [`Self::canonical_json`].
    pub fn hash(&self) -> ContractHash {
        ContractHash::digest(&self.canonical_json())
    }
}
