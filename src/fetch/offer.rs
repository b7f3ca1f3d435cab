//! The pure decisions of `tollgate fetch` about a 402: what it offers, whether the
//! terms are the ones announced (their JCS SHA-256, through [`ContractHash::of_json`],
//! the same code the server hashes with), whether the price is within `--max`
//! ([`Amount`], integer base units), and whether a claim's instructions pay exactly
//! those terms. No IO here: the shell fetches, these functions decide.

use serde::Deserialize;

use super::FetchError;
use crate::amount::Amount;
use crate::contract::ContractHash;

/// What a 402 announces in its `X-Taler-*` headers (SPEC section 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `GET` returns the terms.
    pub contract_url: String,
    /// The announced hash of those terms, lowercase hex.
    pub contract_hash: String,
    /// `POST {"contract": token}` claims.
    pub pay_url: String,
    /// The human offer page, when given.
    pub offer_url: Option<String>,
    /// The price manifest (`Link: <…>; rel="payment-manifest"`), when given.
    pub manifest_url: Option<String>,
}

impl Challenge {
    /// Reads a 402's headers (`header(name)` returns the first value of `name`).
    /// A 402 without the contract headers is not tollgate's: an HTTP error.
    pub fn from_headers<'a>(
        header: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Challenge, FetchError> {
        let get = |name: &str| header(name).map(str::trim).filter(|v| !v.is_empty());
        let (Some(contract_url), Some(hash), Some(pay_url)) = (
            get("x-taler-contract-url"),
            get("x-taler-contract-hash"),
            get("x-taler-pay-url"),
        ) else {
            return Err(FetchError::Http {
                status: 402,
                message: "402 Payment Required without X-Taler-Contract-Url/-Hash/Pay-Url: \
                          not a tollgate offer this client can pay"
                    .into(),
            });
        };
        Ok(Challenge {
            contract_url: contract_url.to_string(),
            contract_hash: hash.to_ascii_lowercase(),
            pay_url: pay_url.to_string(),
            offer_url: get("x-taler-offer-url").map(str::to_string),
            manifest_url: get("link").and_then(manifest_link),
        })
    }

    /// The contract token: the last path segment of the contract URL (what `POST /pay`
    /// takes).
    pub fn contract_token(&self) -> Result<String, FetchError> {
        let path = self.contract_url.split(['?', '#']).next().unwrap_or("");
        match path.rsplit_once('/') {
            Some((_, t)) if !t.is_empty() => Ok(t.to_string()),
            _ => Err(FetchError::ContractRefused(format!(
                "the contract URL {} names no contract token",
                self.contract_url
            ))),
        }
    }
}

/// The URL of the `rel="payment-manifest"` entry of a `Link` header value.
pub fn manifest_link(link: &str) -> Option<String> {
    link.split(',').find_map(|entry| {
        let (url, params) = entry.trim().split_once(';')?;
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .any(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|r| r == "payment-manifest")
            })
            .then(|| url.to_string())
    })
}

/// The contract terms as a client reads them (SPEC section 5). Only what the client
/// acts on is typed; the hash is always over the whole document as received.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OfferedTerms {
    /// Format version (1).
    pub version: u32,
    /// The merchant's public URL.
    pub merchant: String,
    /// Human summary.
    pub summary: String,
    /// Total, decimal string.
    pub amount: String,
    /// "0xBTC".
    pub currency: String,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Token contract.
    pub token: String,
    /// Token decimals.
    pub decimals: u32,
    /// The resource path (canonical, as the server sees it).
    pub resource: String,
    /// What a receipt unlocks: a string, or (a basket's) a list of patterns.
    pub scope: serde_json::Value,
    /// UNIX seconds after which the contract cannot be claimed.
    pub pay_deadline: u64,
    /// Receipt lifetime in seconds.
    pub access_ttl: u64,
}

impl OfferedTerms {
    /// The scope as the receipt's scope string (a list as its compact JSON array).
    pub fn scope_string(&self) -> String {
        match &self.scope {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// Terms whose hash matched the announced one, with the price read exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedOffer {
    /// The terms.
    pub terms: OfferedTerms,
    /// Their hash, lowercase hex (= the announced one).
    pub hash: String,
    /// The price in base units.
    pub price: Amount,
}

/// Checks downloaded `terms` against every hash announced for them (the 402's header
/// and the contract URL's own `X-Taler-Contract-Hash`, when present): all must equal
/// the JCS SHA-256 of the terms as received. Then reads the amount exactly.
/// A mismatch, a currency other than 0xBTC or an unreadable amount refuses the offer.
pub fn verify_terms(
    terms: &serde_json::Value,
    announced: &[&str],
) -> Result<VerifiedOffer, FetchError> {
    let hash = ContractHash::of_json(terms)
        .ok_or_else(|| FetchError::ContractRefused("the terms have no canonical JSON form".into()))?
        .to_string();
    for a in announced {
        if !a.eq_ignore_ascii_case(&hash) {
            return Err(FetchError::ContractRefused(format!(
                "contract hash mismatch: announced {a}, but the terms hash to {hash} \
                 (tampered with on the way?); nothing was paid"
            )));
        }
    }
    let parsed: OfferedTerms = serde_json::from_value(terms.clone())
        .map_err(|e| FetchError::ContractRefused(format!("the terms are not readable: {e}")))?;
    if parsed.version != 1 {
        return Err(FetchError::ContractRefused(format!(
            "contract version {} (this client knows version 1)",
            parsed.version
        )));
    }
    if parsed.currency != "0xBTC" {
        return Err(FetchError::ContractRefused(format!(
            "the contract is in {:?}, not 0xBTC",
            parsed.currency
        )));
    }
    let price = Amount::parse_decimal(&parsed.amount, parsed.decimals).map_err(|e| {
        FetchError::ContractRefused(format!("the contract's amount {:?}: {e}", parsed.amount))
    })?;
    Ok(VerifiedOffer {
        terms: parsed,
        hash,
        price,
    })
}

/// The 0xBTC contract on Ethereum mainnet: the one token paid without `--token`.
pub const MAINNET_0XBTC: (u64, &str) = (1, "0xb6ed7644c69416d67b522e20bc294a9a9b405b31");

/// Whether the payer trusts the token the terms name: 0xBTC on mainnet, or an
/// address in `trusted` (`--token`: another deployment, a test chain). Without this
/// a site could name any ERC-20 the payer holds, with decimals of its choosing, and
/// `--max` (in 0xBTC) would bound nothing.
pub fn check_token(terms: &OfferedTerms, trusted: &[String]) -> Result<(), FetchError> {
    let token = terms.token.to_ascii_lowercase();
    let mainnet = terms.chain_id == MAINNET_0XBTC.0 && token == MAINNET_0XBTC.1;
    if mainnet || trusted.iter().any(|t| t.eq_ignore_ascii_case(&token)) {
        return Ok(());
    }
    Err(FetchError::ContractRefused(format!(
        "the contract pays in token {} on chain {}, which is not 0xBTC ({} on chain {}); \
         pass --token {} if you trust that contract; nothing was paid",
        terms.token, terms.chain_id, MAINNET_0XBTC.1, MAINNET_0XBTC.0, terms.token
    )))
}

/// The most the payer allows, as given to `--max`: a decimal 0xBTC amount ("0.5"),
/// the SPEC's currency format, read without floating point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaxPrice(String);

impl MaxPrice {
    /// Reads `--max` (checked against 0xBTC's 8 decimals).
    pub fn parse(s: &str) -> Result<MaxPrice, FetchError> {
        Amount::parse_decimal(s, 8).map_err(|e| {
            FetchError::Usage(format!(
                "--max {s:?}: {e} (give a decimal 0xBTC amount such as 0.5)"
            ))
        })?;
        Ok(MaxPrice(s.to_string()))
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// In base units of a token with `decimals` decimals.
    pub fn base_units(&self, decimals: u32) -> Result<Amount, FetchError> {
        Amount::parse_decimal(&self.0, decimals).map_err(|e| {
            FetchError::Usage(format!(
                "--max {}: {e} for a token of {decimals} decimals",
                self.0
            ))
        })
    }
}

/// Whether `offer` may be paid under `max`: never without a `--max`, never above it,
/// never past the contract's pay deadline at `now`.
pub fn check_price(
    offer: &VerifiedOffer,
    max: Option<&MaxPrice>,
    now: u64,
) -> Result<(), FetchError> {
    let t = &offer.terms;
    let refuse = |max: Option<&MaxPrice>| FetchError::PriceAboveMax {
        resource: t.resource.clone(),
        price: t.amount.clone(),
        max: max.map(|m| m.as_str().to_string()),
    };
    let Some(max) = max else {
        return Err(refuse(None));
    };
    if offer.price > max.base_units(t.decimals)? {
        return Err(refuse(Some(max)));
    }
    if now > t.pay_deadline {
        return Err(FetchError::PaymentFailed(format!(
            "the offer for {} expired at {} (its pay deadline)",
            t.resource, t.pay_deadline
        )));
    }
    Ok(())
}

/// The answer of `POST /pay` (SPEC section 6), as far as paying needs it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Instructions {
    /// The payment id.
    pub payment_id: String,
    /// The claimer's secret.
    pub claim_token: String,
    /// The receiving address (none for a payment of nothing).
    pub address: Option<String>,
    /// Decimal 0xBTC.
    pub amount: String,
    /// Base units, decimal string.
    pub amount_base_units: String,
    /// The token.
    pub token: String,
    /// The chain.
    pub chain_id: u64,
    /// `GET` for the state.
    pub status_url: String,
    /// `POST` for the receipt.
    pub receipt_url: String,
    /// The payment expires unpaid after this.
    pub expires_at: u64,
}

/// Checks that `ins` pays exactly the verified terms: the same base units, token and
/// chain, to an address. Anything else is refused before a transfer is signed.
pub fn check_instructions(offer: &VerifiedOffer, ins: &Instructions) -> Result<(), FetchError> {
    let t = &offer.terms;
    let mismatch = |what: &str, got: &str, want: &str| {
        FetchError::ContractRefused(format!(
            "the payment instructions ask for {what} {got}, the contract says {want}; refusing to pay"
        ))
    };
    if ins.amount_base_units.parse::<u128>().ok() != Some(offer.price.0) {
        return Err(mismatch(
            "amount",
            &ins.amount_base_units,
            &offer.price.0.to_string(),
        ));
    }
    if !ins.token.eq_ignore_ascii_case(&t.token) {
        return Err(mismatch("token", &ins.token, &t.token));
    }
    if ins.chain_id != t.chain_id {
        return Err(mismatch(
            "chain",
            &ins.chain_id.to_string(),
            &t.chain_id.to_string(),
        ));
    }
    let address_ok = ins
        .address
        .as_deref()
        .is_some_and(|a| a.parse::<alloy::primitives::Address>().is_ok());
    if !offer.price.is_zero() && !address_ok {
        return Err(FetchError::ContractRefused(
            "the payment instructions name no valid address to pay".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{ContractParams, Terms};
    use serde_json::json;

    fn terms() -> Terms {
        let params = ContractParams {
            merchant: "https://shop.test".into(),
            resource: "/movies/x".into(),
            scope: "/movies/x".into(),
            summary: "Movie /movies/x".into(),
            price: Amount(50_000_000),
            chain_id: 31337,
            token: "0x5fbdb2315678afecb367f032d93f642f64180aa3".into(),
            decimals: 8,
            confirmations: 1,
            nonce: "bm9uY2U".into(),
            created: 1000,
            pay_deadline: 2800,
            access_ttl: 86400,
            items: Vec::new(),
        };
        Terms::build(&params, "tok")
    }

    /// The client's hash over the JSON it downloads is the server's hash of the terms
    /// it minted: one canonicaliser, one digest.
    #[test]
    fn client_hash_of_served_terms_is_the_server_hash() {
        let t = terms();
        let served: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        let v = verify_terms(&served, &[&t.hash().to_string()]).unwrap();
        assert_eq!(v.hash, t.hash().to_string());
        assert_eq!(v.price, Amount(50_000_000));
        assert_eq!(v.terms.scope_string(), "/movies/x");
    }

    /// Rules out paying terms someone altered on the way (a lower shown price, another
    /// token) while the announced hash stays the original's.
    #[test]
    fn altered_terms_are_refused() {
        let t = terms();
        let hash = t.hash().to_string();
        let mut served = serde_json::to_value(&t).unwrap();
        served["amount"] = json!("0.05");
        let e = verify_terms(&served, &[&hash]).unwrap_err();
        assert!(matches!(e, FetchError::ContractRefused(_)), "{e}");
        assert_eq!(e.exit_code(), 7);
        let served = serde_json::to_value(&t).unwrap();
        assert!(verify_terms(&served, &[&hash, &"0".repeat(64)]).is_err());
    }

    /// Rules out paying without consent or above it, and money through floats.
    #[test]
    fn price_must_be_within_max() {
        let t = terms();
        let v = verify_terms(&serde_json::to_value(&t).unwrap(), &[]).unwrap();
        let max = |s: &str| MaxPrice::parse(s).unwrap();
        assert!(check_price(&v, Some(&max("0.5")), 1500).is_ok());
        assert!(check_price(&v, Some(&max("1")), 1500).is_ok());
        let e = check_price(&v, Some(&max("0.49999999")), 1500).unwrap_err();
        assert_eq!(e.exit_code(), 3, "{e}");
        assert_eq!(check_price(&v, None, 1500).unwrap_err().exit_code(), 3);
        assert_eq!(
            check_price(&v, Some(&max("1")), 2801)
                .unwrap_err()
                .exit_code(),
            4
        );
        for bad in ["", "0,5", "1e3", "-1", "0.000000001", "0.5 "] {
            assert!(MaxPrice::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// Rules out paying in a token the payer never agreed to: only mainnet 0xBTC, or
    /// an address trusted by name (any case), on any chain but mainnet's for the
    /// 0xBTC address itself.
    #[test]
    fn only_mainnet_0xbtc_or_a_trusted_token_is_paid() {
        let t = verify_terms(&serde_json::to_value(terms()).unwrap(), &[])
            .unwrap()
            .terms;
        let e = check_token(&t, &[]).unwrap_err();
        assert_eq!(e.exit_code(), 7, "{e}");
        assert!(check_token(&t, &["0x5FbDB2315678afecb367f032d93F642f64180aa3".into()]).is_ok());
        assert!(check_token(&t, &["0x0000000000000000000000000000000000000001".into()]).is_err());
        let mainnet = OfferedTerms {
            chain_id: 1,
            token: "0xB6eD7644C69416d67B522e20bC294A9a9B405B31".into(),
            ..t.clone()
        };
        assert!(check_token(&mainnet, &[]).is_ok());
        let elsewhere = OfferedTerms {
            chain_id: 10,
            ..mainnet
        };
        assert!(check_token(&elsewhere, &[]).is_err());
    }

    /// Rules out a claim answer that would have the payer send another amount, token
    /// or chain than the terms they checked.
    #[test]
    fn instructions_must_pay_exactly_the_terms() {
        let t = terms();
        let v = verify_terms(&serde_json::to_value(&t).unwrap(), &[]).unwrap();
        let good = Instructions {
            payment_id: "p".into(),
            claim_token: "c".into(),
            address: Some("0x8c8d7c46219d9205f056f28fee5950ad564d7465".into()),
            amount: "0.5".into(),
            amount_base_units: "50000000".into(),
            token: "0x5FbDB2315678afecb367f032d93F642f64180aa3".into(),
            chain_id: 31337,
            status_url: "s".into(),
            receipt_url: "r".into(),
            expires_at: 5,
        };
        assert!(check_instructions(&v, &good).is_ok());
        for bad in [
            Instructions {
                amount_base_units: "50000001".into(),
                ..good.clone()
            },
            Instructions {
                token: "0x0000000000000000000000000000000000000001".into(),
                ..good.clone()
            },
            Instructions {
                chain_id: 1,
                ..good.clone()
            },
            Instructions {
                address: None,
                ..good.clone()
            },
            Instructions {
                address: Some("nowhere".into()),
                ..good.clone()
            },
        ] {
            assert_eq!(
                check_instructions(&v, &bad).unwrap_err().exit_code(),
                7,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn challenge_headers_and_manifest_link() {
        let headers = [
            (
                "x-taler-contract-url",
                "http://s/_tollgate/contract/abc.def",
            ),
            ("x-taler-contract-hash", "ABCD"),
            ("x-taler-pay-url", "http://s/_tollgate/pay"),
            (
                "link",
                r#"<http://s/other>; rel="next", <http://s/_tollgate/prices.json>; rel="payment-manifest""#,
            ),
        ];
        let c = Challenge::from_headers(|n| headers.iter().find(|(k, _)| *k == n).map(|(_, v)| *v))
            .unwrap();
        assert_eq!(c.contract_hash, "abcd");
        assert_eq!(c.contract_token().unwrap(), "abc.def");
        assert_eq!(
            c.manifest_url.as_deref(),
            Some("http://s/_tollgate/prices.json")
        );
        assert_eq!(
            Challenge::from_headers(|_| None).unwrap_err().exit_code(),
            6
        );
    }
}
