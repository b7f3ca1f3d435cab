//! `tg1` receipts: mint and verify (SPEC section 6).
//!
//! A receipt is `tg1.<base64url(payload)>.<base64url(mac)>` with payload
//! `{h, scope, exp, pid}`, MAC'd with the receipt key (HMAC-SHA256, checked in
//! constant time). Verifying here checks only the MAC and the expiry; the caller
//! then checks the scope against the canonical path and the contract-hash store.
//! It never reads the store and never logs a receipt.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::keys::{mac, verify_mac, Keys};

/// The signed content of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptClaims {
    /// The contract hash, lowercase hex.
    pub h: String,
    /// What it unlocks: a canonical path, `route:` and a route pattern, or (a
    /// basket's) a list of patterns ([`Scope`]; a list travels as a JSON array).
    #[serde(with = "scope_json")]
    pub scope: String,
    /// UNIX seconds after which it is no longer accepted.
    pub exp: u64,
    /// The payment id.
    pub pid: String,
}

/// Why a receipt was not accepted (the request gets the 402 again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// Not `tg1.<payload>.<mac>`.
    #[error("malformed receipt")]
    Malformed,
    /// MAC mismatch: forged or minted under another key.
    #[error("receipt does not verify")]
    BadMac,
    /// Past its expiry.
    #[error("receipt expired")]
    Expired,
}

/// Longest receipt accepted; longer input is refused before any work.
pub const MAX_RECEIPT_LEN: usize = 2048;

/// Mints a receipt for `claims`.
pub fn mint(keys: &Keys, claims: &ReceiptClaims) -> String {
    // Serialising strings and integers cannot fail.
    let payload = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
    let tag = mac(&keys.receipt, &[b"tg1.", payload.as_bytes()]);
    format!("tg1.{payload}.{}", B64.encode(tag))
}

/// Verifies the MAC (constant time) and the expiry at `now`.
pub fn verify(keys: &Keys, receipt: &str, now: u64) -> Result<ReceiptClaims, ReceiptError> {
    if receipt.len() > MAX_RECEIPT_LEN {
        return Err(ReceiptError::Malformed);
    }
    let rest = receipt
        .strip_prefix("tg1.")
        .ok_or(ReceiptError::Malformed)?;
    let (payload, tag) = rest.split_once('.').ok_or(ReceiptError::Malformed)?;
    let tag = B64.decode(tag).map_err(|_| ReceiptError::Malformed)?;
    if !verify_mac(&keys.receipt, &[b"tg1.", payload.as_bytes()], &tag) {
        return Err(ReceiptError::BadMac);
    }
    let json = B64.decode(payload).map_err(|_| ReceiptError::Malformed)?;
    let claims: ReceiptClaims =
        serde_json::from_slice(&json).map_err(|_| ReceiptError::Malformed)?;
    if now > claims.exp {
        return Err(ReceiptError::Expired);
    }
    Ok(claims)
}

/// The scope-string prefix of a route scope: `route:/articles/{slug}`. A resource
/// scope is the canonical path itself (it always starts with `/`).
pub const ROUTE_SCOPE: &str = "route:";

/// What a receipt unlocks, as fixed when its contract was minted. The kind travels
/// in the scope string (`/path` or `route:PATTERN`), so the contract token's MAC, the
/// receipt's MAC and the stored paid fact all cover it: it is never guessed from the
/// characters of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Exactly this canonical path, taken literally (`*` and `{` are characters).
    Resource(&'a str),
    /// The paths this route pattern is the most specific route for.
    Route(&'a str),
    /// A basket's: every path one of these patterns matches (the `unlocks` of the
    /// products it bought; they never overlap).
    List(Vec<String>),
}

impl<'a> Scope<'a> {
    /// Reads a scope string; `None` for anything else (never accepted).
    pub fn parse(s: &'a str) -> Option<Scope<'a>> {
        if s.starts_with('[') {
            let list: Vec<String> = serde_json::from_str(s).ok()?;
            return (!list.is_empty() && list.iter().all(|p| p.starts_with('/')))
                .then_some(Scope::List(list));
        }
        match s.strip_prefix(ROUTE_SCOPE) {
            Some(pattern) if pattern.starts_with('/') => Some(Scope::Route(pattern)),
            Some(_) => None,
            None if s.starts_with('/') => Some(Scope::Resource(s)),
            None => None,
        }
    }

    /// The scope string for a route scope over `pattern`.
    pub fn route(pattern: &str) -> String {
        format!("{ROUTE_SCOPE}{pattern}")
    }

    /// The scope string for a list of patterns (compact JSON array).
    pub fn list(patterns: &[String]) -> String {
        serde_json::to_string(patterns).unwrap_or_default()
    }
}

/// A scope as JSON: a list scope as an array, any other as a string.
pub fn scope_value(scope: &str) -> serde_json::Value {
    scope_json::serialize(scope, serde_json::value::Serializer)
        .unwrap_or_else(|_| serde_json::Value::String(scope.to_string()))
}

/// The pattern of a list scope that matches `path`, if any.
pub fn list_pattern_for<'s>(patterns: &'s [String], path: &str) -> Option<&'s str> {
    patterns
        .iter()
        .find(|p| crate::routes::Pattern::parse(p).is_ok_and(|pat| pat.matches(path)))
        .map(String::as_str)
}

/// Serde for a scope field: a list scope (a JSON array in a string) is written as
/// a real JSON array and read back into the same compact string.
pub mod scope_json {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Wire {
        One(String),
        List(Vec<String>),
    }

    /// Writes a list scope as an array, anything else as a string.
    pub fn serialize<S: Serializer>(scope: &str, s: S) -> Result<S::Ok, S::Error> {
        match scope.starts_with('[') {
            true => match serde_json::from_str::<Vec<String>>(scope) {
                Ok(list) => Wire::List(list).serialize(s),
                Err(_) => scope.serialize(s),
            },
            false => scope.serialize(s),
        }
    }

    /// Reads a string or an array.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(match Wire::deserialize(d)? {
            Wire::One(s) => s,
            Wire::List(l) => super::Scope::list(&l),
        })
    }
}

/// True when a receipt `scope` covers the canonical `path`, which the gate found
/// priced by the route with pattern `pricing_route` (its most-specific lookup). A
/// resource scope covers that one path, literally; a route scope covers the path
/// only when that very route prices it, never a more specific nested one.
pub fn scope_covers(scope: &str, path: &str, pricing_route: &str) -> bool {
    match Scope::parse(scope) {
        Some(Scope::Resource(p)) => p == path,
        Some(Scope::Route(pattern)) => pattern == pricing_route,
        Some(Scope::List(patterns)) => list_pattern_for(&patterns, path).is_some(),
        None => false,
    }
}

/// The receipts a request carries: `Authorization: Tollgate <r>` first, then every
/// `tollgate_receipt` cookie value (a cookie may hold several, joined by `~`).
pub fn candidates<'a>(
    authorization: Option<&'a [u8]>,
    cookies: impl Iterator<Item = &'a [u8]>,
) -> Vec<&'a str> {
    let mut out = Vec::new();
    if let Some(v) = authorization.and_then(|a| std::str::from_utf8(a).ok()) {
        if let Some((scheme, r)) = v.trim().split_once(' ') {
            if scheme.eq_ignore_ascii_case("tollgate") {
                out.push(r.trim());
            }
        }
    }
    for header in cookies {
        let Ok(header) = std::str::from_utf8(header) else {
            continue;
        };
        for pair in header.split(';') {
            if let Some(v) = pair.trim().strip_prefix("tollgate_receipt=") {
                out.extend(v.trim_matches('"').split('~').filter(|r| !r.is_empty()));
            }
        }
    }
    out.truncate(16);
    out
}

/// The `Cookie` header without any `tollgate_receipt` pair; `None` when nothing is left.
pub fn strip_cookie(header: &str) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.starts_with("tollgate_receipt="))
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretKey;

    fn keys(b: u8) -> Keys {
        Keys::derive(&SecretKey(vec![b; 32]))
    }

    fn claims() -> ReceiptClaims {
        ReceiptClaims {
            h: "ab".repeat(32),
            scope: "/movies/x".into(),
            exp: 1000,
            pid: "0123456789abcdef".into(),
        }
    }

    #[test]
    fn round_trip_and_expiry() {
        let k = keys(1);
        let r = mint(&k, &claims());
        assert!(r.starts_with("tg1."));
        assert_eq!(verify(&k, &r, 1000), Ok(claims()));
        assert_eq!(verify(&k, &r, 1001), Err(ReceiptError::Expired));
    }

    #[test]
    fn forged_and_foreign_receipts_fail() {
        let k = keys(1);
        let r = mint(&k, &claims());
        assert_eq!(verify(&keys(2), &r, 0), Err(ReceiptError::BadMac));
        let mut other = claims();
        other.scope = "/*".into();
        let forged_payload = B64.encode(serde_json::to_vec(&other).unwrap());
        let tag = r.rsplit('.').next().unwrap();
        assert_eq!(
            verify(&k, &format!("tg1.{forged_payload}.{tag}"), 0),
            Err(ReceiptError::BadMac)
        );
        assert_eq!(verify(&k, "tg1.x", 0), Err(ReceiptError::Malformed));
        assert!(verify(&k, &r[..r.len() - 2], 0).is_err());
        // A contract token is not a receipt (different key and prefix).
        assert_eq!(
            verify(&k, &r.replacen("tg1.", "tg2.", 1), 0),
            Err(ReceiptError::Malformed)
        );
    }

    #[test]
    fn scopes() {
        // A resource scope is one path, literally: `*` and `{` are characters.
        assert!(scope_covers("/movies/x", "/movies/x", "/movies/*"));
        assert!(!scope_covers("/movies/x", "/movies/y", "/movies/*"));
        assert!(!scope_covers("/movies/x", "/movies/x/", "/movies/*"));
        assert!(scope_covers("/movies/*", "/movies/*", "/movies/*"));
        assert!(!scope_covers("/movies/*", "/movies/y/z", "/movies/*"));
        assert!(!scope_covers(
            "/articles/{slug}",
            "/articles/a",
            "/articles/{slug}"
        ));
        // A route scope covers what that very route prices, nothing nested.
        assert!(scope_covers("route:/movies/*", "/movies/y/z", "/movies/*"));
        assert!(!scope_covers(
            "route:/movies/*",
            "/movies/premium/z",
            "/movies/premium/*"
        ));
        assert!(scope_covers(
            "route:/articles/{slug}",
            "/articles/a",
            "/articles/{slug}"
        ));
        assert!(!scope_covers(
            "route:/articles/{slug}",
            "/articles/premium",
            "/articles/premium"
        ));
        // A list scope covers what its patterns match, whatever route prices it.
        let list = Scope::list(&["/albums/a/*".into(), "/tracks/{id}".into()]);
        assert!(scope_covers(&list, "/albums/a/1", "/albums/*"));
        assert!(scope_covers(&list, "/tracks/9", "/tracks/*"));
        assert!(!scope_covers(&list, "/albums/b/1", "/albums/*"));
        assert!(!scope_covers(&list, "/tracks/9/x", "/tracks/*"));
        let c = ReceiptClaims {
            scope: list.clone(),
            ..claims()
        };
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(
            json["scope"],
            serde_json::json!(["/albums/a/*", "/tracks/{id}"])
        );
        let k = keys(1);
        assert_eq!(verify(&k, &mint(&k, &c), 0).unwrap().scope, list);
        // Anything else is not a scope.
        for bad in [
            "",
            "movies",
            "route:",
            "route:movies",
            "*",
            "[]",
            "[\"x\"]",
            "[1]",
            "[",
        ] {
            assert_eq!(Scope::parse(bad), None, "{bad}");
            assert!(!scope_covers(bad, "/movies/x", "/movies/*"));
        }
    }

    #[test]
    fn candidates_and_cookie_stripping() {
        let c = candidates(
            Some(b"Tollgate tg1.a.b"),
            [&b"x=1; tollgate_receipt=tg1.c.d~tg1.e.f"[..]].into_iter(),
        );
        assert_eq!(c, vec!["tg1.a.b", "tg1.c.d", "tg1.e.f"]);
        assert!(candidates(Some(b"Bearer xyz"), std::iter::empty()).is_empty());
        assert_eq!(
            strip_cookie("a=1; tollgate_receipt=tg1.x; b=2").as_deref(),
            Some("a=1; b=2")
        );
        assert_eq!(strip_cookie("tollgate_receipt=tg1.x"), None);
    }
}
