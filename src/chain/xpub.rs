//! Watch-only payment addresses from the merchant's BIP32 extended **public** key.
//!
//! Every payment goes to a fresh Ethereum address: the non-hardened child `index` of
//! the configured xpub, rendered as an EIP-55 checksummed address. The xpub is the
//! one for the BIP44 *change* node `m/44'/60'/0'/0` (depth 4), so child `i` is the
//! wallet's account `m/44'/60'/0'/0/i` and the merchant's wallet sees the funds.
//!
//! What this module owns:
//! - parsing and validating `xpub…` (mainnet) and `tpub…` (testnet) base58check
//!   strings into an [`AccountXpub`];
//! - public (non-hardened) child derivation and the address rendering.
//!
//! What it must never do:
//! - accept, hold or derive from private key material. Extended private keys
//!   (`xprv`/`tprv` and friends), raw 32-byte hex keys and seed phrases are refused
//!   with [`XpubError::PrivateKey`] before anything else is done with them;
//! - echo the rejected input in an error message (it may be a secret pasted into
//!   the wrong field);
//! - hand-roll crypto: base58check, BIP32 and secp256k1 come from `coins-bip32` /
//!   `k256`, Keccak and EIP-55 from `alloy-primitives`.

use std::fmt;
use std::str::FromStr;

use alloy::primitives::Address;
use coins_bip32::ecdsa::VerifyingKey;
use coins_bip32::enc::{decode_b58_check, MainnetEncoder, TestnetEncoder, XKeyEncoder};
use coins_bip32::primitives::XKeyInfo;
use coins_bip32::xkeys::{Parent, XPub};
use coins_bip32::{Bip32Error, BIP32_HARDEN};

/// Length of a serialized BIP32 extended key (before the 4-byte checksum).
const XKEY_LEN: usize = 78;
/// Offset of the 33-byte key data inside a serialized extended key.
const KEY_DATA_OFFSET: usize = 45;
/// The usual base58 length of an extended key; used only for error hints and a
/// sanity window that keeps malformed input away from the decoder.
const B58_XKEY_CHARS: usize = 111;

/// BIP32 version bytes of `xpub` (mainnet, public).
const VERSION_XPUB: u32 = 0x0488_B21E;
/// BIP32 version bytes of `tpub` (testnet, public).
const VERSION_TPUB: u32 = 0x0435_87CF;

/// Version bytes of extended *private* keys: `xprv`, `tprv`, `yprv`, `zprv`,
/// `uprv`, `vprv` and the multisig `Yprv`, `Zprv`, `Uprv`, `Vprv`.
const PRIVATE_VERSIONS: [u32; 10] = [
    0x0488_ADE4,
    0x0435_8394,
    0x049D_7878,
    0x04B2_430C,
    0x044A_4E28,
    0x045F_18BC,
    0x0295_B005,
    0x02AA_7A99,
    0x0242_85B5,
    0x0257_5048,
];

/// Why an xpub could not be parsed or a child address derived.
///
/// No variant carries the rejected input: it may be secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XpubError {
    /// The input is (or looks like) private key material. Never accepted.
    #[error(
        "refusing {0}: tollgate never accepts private keys; configure the watch-only \
         extended public key (xpub… or tpub…) of m/44'/60'/0'/0 instead"
    )]
    PrivateKey(&'static str),
    /// The input is not a well-formed base58check extended public key.
    #[error("not a valid extended public key: {0}")]
    Malformed(String),
    /// A well-formed extended public key, but not an `xpub`/`tpub` encoding.
    #[error(
        "unsupported extended public key version 0x{0:08x} ({1}); expected xpub… (mainnet) \
         or tpub… (testnet)"
    )]
    UnsupportedVersion(u32, &'static str),
    /// The requested child index is hardened; an xpub cannot derive those.
    #[error(
        "child index {0} is hardened (>= 2^31); a watch-only xpub can only derive \
         non-hardened children 0..2^31"
    )]
    HardenedIndex(u32),
    /// BIP32 has no valid key at this index (probability ~2^-127); skip to the next one.
    #[error("BIP32 defines no valid key at child index {0}; use the next index")]
    InvalidChild(u32),
    /// The underlying BIP32 derivation failed.
    #[error("BIP32 derivation failed: {0}")]
    Derivation(String),
}

/// Which network's version bytes the xpub was encoded with.
///
/// Ethereum addresses do not depend on it; it only decides `xpub…` vs `tpub…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XpubNetwork {
    /// `xpub…` (version bytes `0x0488B21E`).
    Mainnet,
    /// `tpub…` (version bytes `0x043587CF`).
    Testnet,
}

/// A parsed, validated BIP32 extended public key (watch-only: no secret material).
///
/// `Debug` and `Display` show the (public) base58 string, never raw key bytes.
#[derive(Clone)]
pub struct AccountXpub {
    key: XPub,
    network: XpubNetwork,
    /// The canonical base58check string (identical to the accepted input, trimmed).
    encoded: String,
}

impl AccountXpub {
    /// Parse an `xpub…` or `tpub…` base58check string (surrounding whitespace is
    /// ignored).
    ///
    /// Refuses private key material ([`XpubError::PrivateKey`]), other extended-key
    /// versions such as `ypub`/`zpub` ([`XpubError::UnsupportedVersion`]) and
    /// anything malformed ([`XpubError::Malformed`]).
    pub fn parse(s: &str) -> Result<AccountXpub, XpubError> {
        let s = s.trim();
        refuse_obvious_secrets(s)?;

        if s.is_empty() {
            return Err(malformed("empty string"));
        }
        // The window keeps the decoder away from short input (it assumes at least
        // the 4 checksum bytes) and gives a readable error for pasted addresses etc.
        let n = s.chars().count();
        if !(B58_XKEY_CHARS - 8..=B58_XKEY_CHARS + 8).contains(&n) {
            return Err(malformed(format!(
                "{n} characters, an extended key has {B58_XKEY_CHARS}"
            )));
        }

        let payload = decode_b58_check(s).map_err(|e| match e {
            Bip32Error::BadB58Checksum => malformed("base58check checksum mismatch (typo?)"),
            Bip32Error::B58Error(_) => malformed("not base58"),
            _ => malformed("undecodable"),
        })?;
        if payload.len() != XKEY_LEN {
            return Err(malformed(format!(
                "decodes to {} bytes, an extended key has {XKEY_LEN}",
                payload.len()
            )));
        }

        let version = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
        // A private extended key has a 0x00 pad byte where a public one has its
        // compressed-point prefix (0x02/0x03): refuse either signal.
        if PRIVATE_VERSIONS.contains(&version) || payload[KEY_DATA_OFFSET] == 0x00 {
            return Err(XpubError::PrivateKey("an extended private key"));
        }

        let network = match version {
            VERSION_XPUB => XpubNetwork::Mainnet,
            VERSION_TPUB => XpubNetwork::Testnet,
            other => return Err(XpubError::UnsupportedVersion(other, version_name(other))),
        };

        let bad_point = |_| malformed("key data is not a valid compressed secp256k1 point");
        let key = match network {
            XpubNetwork::Mainnet => {
                MainnetEncoder::read_xpub(&mut &payload[..]).map_err(bad_point)?
            }
            XpubNetwork::Testnet => {
                TestnetEncoder::read_xpub(&mut &payload[..]).map_err(bad_point)?
            }
        };

        let info: &XKeyInfo = key.as_ref();
        if info.depth == 0 && (info.parent.0 != [0; 4] || info.index != 0) {
            return Err(malformed(
                "depth 0 (master) key with a non-zero parent fingerprint or index",
            ));
        }

        // Re-encode: the stored string is canonical and equal to the input.
        let encoded = match network {
            XpubNetwork::Mainnet => MainnetEncoder::xpub_to_base58(&key),
            XpubNetwork::Testnet => TestnetEncoder::xpub_to_base58(&key),
        }
        .map_err(|e| malformed(format!("re-encoding failed: {e}")))?;
        if encoded != s {
            return Err(malformed("non-canonical encoding"));
        }

        Ok(AccountXpub {
            key,
            network,
            encoded,
        })
    }

    /// The EIP-55 checksummed address (`0x…`) of non-hardened child `index`.
    pub fn address(&self, index: u32) -> Result<String, XpubError> {
        Ok(self.address_checked(index)?.to_checksum(None))
    }

    /// The address of non-hardened child `index`.
    ///
    /// Errors with [`XpubError::HardenedIndex`] for `index >= 2^31`, and with
    /// [`XpubError::InvalidChild`] in the (astronomically unlikely) case BIP32 has
    /// no key at `index` — never silently returning a neighbouring child's address.
    pub fn address_checked(&self, index: u32) -> Result<Address, XpubError> {
        if index >= BIP32_HARDEN {
            return Err(XpubError::HardenedIndex(index));
        }
        let child = self
            .key
            .derive_child(index)
            .map_err(|e| XpubError::Derivation(e.to_string()))?;
        // coins-bip32 moves on to index+1 when BIP32 says index is invalid; an
        // address must belong to exactly the index that was asked for.
        let info: &XKeyInfo = child.as_ref();
        if info.index != index {
            return Err(XpubError::InvalidChild(index));
        }
        let verifying_key: &VerifyingKey = child.as_ref();
        Ok(Address::from_public_key(verifying_key))
    }

    /// The canonical base58check string (`xpub…`/`tpub…`); public information.
    pub fn as_str(&self) -> &str {
        &self.encoded
    }

    /// Which version bytes the key was encoded with.
    pub fn network(&self) -> XpubNetwork {
        self.network
    }

    /// Depth of the key in its BIP32 tree (4 for `m/44'/60'/0'/0`). Callers may warn
    /// when it is not 4: a depth-3 account key yields different addresses than the
    /// merchant's wallet shows.
    pub fn depth(&self) -> u8 {
        let info: &XKeyInfo = self.key.as_ref();
        info.depth
    }
}

impl fmt::Debug for AccountXpub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountXpub")
            .field("network", &self.network)
            .field("depth", &self.depth())
            .field("xpub", &self.encoded)
            .finish()
    }
}

impl fmt::Display for AccountXpub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encoded)
    }
}

impl PartialEq for AccountXpub {
    fn eq(&self, other: &Self) -> bool {
        self.encoded == other.encoded
    }
}

impl Eq for AccountXpub {}

impl FromStr for AccountXpub {
    type Err = XpubError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AccountXpub::parse(s)
    }
}

fn malformed(why: impl Into<String>) -> XpubError {
    XpubError::Malformed(why.into())
}

/// Cheap textual checks that run before any decoding, so a secret with a typo (bad
/// checksum) is still refused as a secret rather than reported as garbage.
fn refuse_obvious_secrets(s: &str) -> Result<(), XpubError> {
    // xprv, tprv, yprv, zprv, uprv, vprv, Yprv, Zprv, Uprv, Vprv
    if s.get(1..4) == Some("prv") {
        return Err(XpubError::PrivateKey("an extended private key"));
    }
    let hex = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(XpubError::PrivateKey("what looks like a raw private key"));
    }
    if s.split_whitespace().count() >= 12 {
        return Err(XpubError::PrivateKey("what looks like a seed phrase"));
    }
    Ok(())
}

/// A human name for well-known public extended-key versions we do not accept.
fn version_name(version: u32) -> &'static str {
    match version {
        0x049D_7CB2 => "ypub, BIP49",
        0x04B2_4746 => "zpub, BIP84",
        0x044A_5262 => "upub, BIP49 testnet",
        0x045F_1CF6 => "vpub, BIP84 testnet",
        0x0295_B43F => "Ypub, BIP49 multisig",
        0x02AA_7ED3 => "Zpub, BIP84 multisig",
        0x0242_89EF => "Upub, BIP49 multisig testnet",
        0x0257_5483 => "Vpub, BIP84 multisig testnet",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coins_bip32::enc::encode_b58_check;

    /// BIP32 test vector 1, chain m/0'/1 (public and private).
    const V1_XPUB: &str = "xpub6ASuArnXKPbfEwhqN6e3mwBcDTgzisQN1wXN9BJcM47sSikHjJf3UFHKkNAWbWMiGj7Wf5uMash7SyYq527Hqck2AxYysAA7xmALppuCkwQ";
    const V1_XPRV: &str = "xprv9wTYmMFdV23N2TdNG573QoEsfRrWKQgWeibmLntzniatZvR9BmLnvSxqu53Kw1UmYPxLgboyZQaXwTCg8MSY3H2EU4pWcQDnRnrVA1xe8fs";

    fn err(s: &str) -> XpubError {
        match AccountXpub::parse(s) {
            Ok(k) => panic!("parsed unexpectedly: {k:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn parses_bip32_vector_xpub_and_round_trips() {
        let k = AccountXpub::parse(V1_XPUB).unwrap();
        assert_eq!(k.as_str(), V1_XPUB);
        assert_eq!(k.to_string(), V1_XPUB);
        assert_eq!(k.network(), XpubNetwork::Mainnet);
        assert_eq!(k.depth(), 2);
        assert_eq!(AccountXpub::parse(&format!("  {V1_XPUB}\n")).unwrap(), k);
        assert_eq!(V1_XPUB.parse::<AccountXpub>().unwrap(), k);
        let dbg = format!("{k:?}");
        assert!(dbg.contains(V1_XPUB) && dbg.contains("Mainnet"), "{dbg}");
    }

    #[test]
    fn xprv_is_refused_as_private_key() {
        let e = err(V1_XPRV);
        assert_eq!(e, XpubError::PrivateKey("an extended private key"));
        assert!(e.to_string().contains("never accepts private keys"), "{e}");
        assert!(!e.to_string().contains(V1_XPRV));
        // still refused as a secret when mangled (checksum broken)
        let mut typo = V1_XPRV.to_owned();
        typo.pop();
        typo.push('9');
        assert!(matches!(err(&typo), XpubError::PrivateKey(_)));
    }

    #[test]
    fn private_key_is_refused_by_version_bytes_even_without_prv_prefix() {
        // An xprv payload re-encoded under the xpub version: the 0x00 pad byte at the
        // key-data offset gives it away.
        let mut payload = decode_b58_check(V1_XPRV).unwrap();
        payload[..4].copy_from_slice(&VERSION_XPUB.to_be_bytes());
        let disguised = encode_b58_check(&payload);
        assert!(disguised.starts_with("xpub"));
        assert!(matches!(err(&disguised), XpubError::PrivateKey(_)));
    }

    #[test]
    fn raw_keys_and_seed_phrases_are_refused_as_private() {
        let hex = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
        assert!(matches!(err(hex), XpubError::PrivateKey(_)));
        assert!(matches!(err(&hex[2..]), XpubError::PrivateKey(_)));
        let phrase = "test test test test test test test test test test test junk";
        let e = err(phrase);
        assert!(matches!(e, XpubError::PrivateKey(_)));
        assert!(!e.to_string().contains("junk"));
    }

    #[test]
    fn garbage_is_refused() {
        for g in [
            "",
            "   ",
            "xpub",
            "hello",
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            "1111",
            "0OIl0OIl",
        ] {
            assert!(matches!(err(g), XpubError::Malformed(_)), "{g:?}");
        }
        // right length, not base58 ('0' is outside the alphabet)
        let not_b58 = V1_XPUB.replacen('A', "0", 1);
        assert!(matches!(err(&not_b58), XpubError::Malformed(_)));
        // one character changed: checksum mismatch
        let typo = V1_XPUB.replacen('A', "B", 1);
        let e = err(&typo);
        assert!(e.to_string().contains("checksum"), "{e}");
        // valid base58check, wrong payload length
        let short = encode_b58_check(&[0x04; 77]);
        assert!(matches!(err(&short), XpubError::Malformed(_)));
        let long = encode_b58_check(&[0x04; 79]);
        assert!(matches!(err(&long), XpubError::Malformed(_)));
    }

    #[test]
    fn invalid_point_is_refused() {
        let mut payload = decode_b58_check(V1_XPUB).unwrap();
        payload[KEY_DATA_OFFSET] = 0x05;
        assert!(matches!(
            err(&encode_b58_check(&payload)),
            XpubError::Malformed(_)
        ));
    }

    #[test]
    fn other_public_versions_are_refused() {
        let mut payload = decode_b58_check(V1_XPUB).unwrap();
        payload[..4].copy_from_slice(&0x04B2_4746u32.to_be_bytes());
        let zpub = encode_b58_check(&payload);
        assert!(zpub.starts_with("zpub"));
        assert_eq!(
            err(&zpub),
            XpubError::UnsupportedVersion(0x04B2_4746, "zpub, BIP84")
        );
    }

    #[test]
    fn tpub_is_accepted_and_derives_like_xpub() {
        let mut payload = decode_b58_check(V1_XPUB).unwrap();
        payload[..4].copy_from_slice(&VERSION_TPUB.to_be_bytes());
        let tpub = encode_b58_check(&payload);
        assert!(tpub.starts_with("tpub"));
        let t = AccountXpub::parse(&tpub).unwrap();
        assert_eq!(t.network(), XpubNetwork::Testnet);
        assert_eq!(t.as_str(), tpub);
        let x = AccountXpub::parse(V1_XPUB).unwrap();
        assert_eq!(t.address(7).unwrap(), x.address(7).unwrap());
    }

    #[test]
    fn hardened_index_is_refused() {
        let k = AccountXpub::parse(V1_XPUB).unwrap();
        assert_eq!(
            k.address(BIP32_HARDEN),
            Err(XpubError::HardenedIndex(BIP32_HARDEN))
        );
        assert_eq!(k.address(u32::MAX), Err(XpubError::HardenedIndex(u32::MAX)));
        assert!(k.address(BIP32_HARDEN - 1).is_ok());
        let a = k.address(0).unwrap();
        assert!(a.starts_with("0x") && a.len() == 42, "{a}");
        assert_eq!(a, k.address_checked(0).unwrap().to_checksum(None));
        assert_ne!(a, k.address(1).unwrap());
    }

    #[test]
    fn depth_zero_with_parent_is_refused() {
        let mut payload = decode_b58_check(V1_XPUB).unwrap();
        payload[4] = 0; // depth 0, but parent fingerprint and index stay non-zero
        assert!(matches!(
            err(&encode_b58_check(&payload)),
            XpubError::Malformed(_)
        ));
    }
}
