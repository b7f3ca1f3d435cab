//! Purpose-bound keys derived from the configured receipt key.
//!
//! Owns domain separation: contract tokens and receipts are MAC'd with different
//! keys derived by HMAC-SHA256(root, label), so a value minted for one purpose can
//! never verify as the other. It never logs or formats key material.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::SecretKey;

/// HMAC-SHA256 as used everywhere in tollgate.
pub type HmacSha256 = Hmac<Sha256>;

/// The derived keys.
#[derive(Clone)]
pub struct Keys {
    /// MACs contract tokens.
    pub contract: [u8; 32],
    /// MACs receipts.
    pub receipt: [u8; 32],
    /// Derives payment ids and claim tokens.
    pub claim: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

impl Keys {
    /// Derives the purpose keys from the root receipt key.
    pub fn derive(root: &SecretKey) -> Keys {
        Keys {
            contract: derive(root, b"tollgate/contract-token/v1"),
            receipt: derive(root, b"tollgate/receipt/v1"),
            claim: derive(root, b"tollgate/claim/v1"),
        }
    }
}

fn derive(root: &SecretKey, label: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&mac(&root.0, &[label]));
    out
}

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
pub fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// Checks `tag` against HMAC-SHA256(key, parts) in constant time.
pub fn verify_mac(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        m.update(p);
    }
    m.verify_slice(tag).is_ok()
}
