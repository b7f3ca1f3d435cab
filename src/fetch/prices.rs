//! `tollgate fetch --prices URL`: a site's price manifest (`GET {pay_prefix}/prices.json`,
//! served by [`crate::endpoints::prices`]), found from the URL given directly or through
//! the `Link: <…>; rel="payment-manifest"` header of a 402, and shown as a table.
//! Reading it pays nothing and writes nothing.

use std::fmt::Write as _;

use serde_json::Value;

use super::offer::manifest_link;
use super::{Client, FetchError};

/// A price manifest and where it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The manifest's URL.
    pub url: String,
    /// The document as served.
    pub doc: Value,
}

impl Client {
    /// The price manifest for `url`: `url` itself when it serves one, else the one a
    /// 402 from `url` links to. Anything else is an HTTP error.
    pub async fn prices(&self, url: &str) -> Result<Manifest, FetchError> {
        let req = super::Request::get(url)?;
        let (status, link, body) = self.get_json(req.url.as_str()).await?;
        if status == 200 {
            if let Some(doc) = as_manifest(&body) {
                return Ok(Manifest {
                    url: req.url.to_string(),
                    doc,
                });
            }
        }
        let Some(found) = link.as_deref().and_then(manifest_link) else {
            return Err(FetchError::Http {
                status,
                message: format!(
                    "{url} is no price manifest and names none (no 402 with a Link rel=\"payment-manifest\")"
                ),
            });
        };
        let (status, _, body) = self.get_json(&found).await?;
        match (status, as_manifest(&body)) {
            (200, Some(doc)) => Ok(Manifest { url: found, doc }),
            _ => Err(FetchError::Http {
                status,
                message: format!("{found} (the 402's payment-manifest link) is no price manifest"),
            }),
        }
    }

    async fn get_json(&self, url: &str) -> Result<(u16, Option<String>, Vec<u8>), FetchError> {
        let resp = self
            .http
            .get(url)
            .header("Accept", "application/json")
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .await
            .map_err(FetchError::from_http)?;
        let status = resp.status().as_u16();
        let link = resp
            .headers()
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ");
        let body = resp.bytes().await.map_err(FetchError::from_http)?;
        Ok((status, (!link.is_empty()).then_some(link), body.to_vec()))
    }
}

fn as_manifest(body: &[u8]) -> Option<Value> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("routes")?.as_array()?;
    Some(v)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn num(v: &Value, key: &str) -> String {
    v.get(key).map_or_else(String::new, |n| match n {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    })
}

/// Seconds as the config writes them (`30d`, `2h`, `90s`).
fn human_secs(v: &Value) -> String {
    let Some(s) = v.as_u64() else {
        return String::new();
    };
    for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if s >= n && s % n == 0 {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

/// The manifest as a human table: one line per priced route, then the basket
/// catalogue when there is one. Amounts are shown as served (decimal strings).
pub fn render_table(m: &Manifest) -> String {
    let d = &m.doc;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: prices of {} in {} (chain {}, token {})",
        m.url,
        text(d, "merchant"),
        text(d, "currency"),
        num(d, "chain_id"),
        text(d, "token")
    );
    let _ = writeln!(
        out,
        "{:<32} {:<12} {:>14} {:>16} {:<8} {:>7} {:>5}",
        "PATTERN", "METHODS", "PRICE", "BASE UNITS", "SCOPE", "ACCESS", "CONF"
    );
    let routes = d
        .get("routes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for r in &routes {
        let methods = match r.get("methods").and_then(Value::as_array) {
            Some(ms) => ms
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
            None => "*".into(),
        };
        let mut price = text(r, "price").to_string();
        if r.get("enforce") == Some(&Value::Bool(false)) {
            price.push_str(" (dry run)");
        }
        let _ = writeln!(
            out,
            "{:<32} {:<12} {:>14} {:>16} {:<8} {:>7} {:>5}",
            text(r, "pattern"),
            methods,
            price,
            text(r, "price_base_units"),
            text(r, "scope"),
            human_secs(r.get("access_ttl").unwrap_or(&Value::Null)),
            num(r, "confirmations")
        );
    }
    if routes.is_empty() {
        let _ = writeln!(out, "(no priced routes)");
    }
    if let Some(b) = d.get("basket") {
        let _ = writeln!(
            out,
            "basket {} (shop {}):",
            text(b, "url"),
            text(b, "shop_id")
        );
        for p in b
            .get("products")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let _ = writeln!(
                out,
                "  {:<20} {:>14}  {}",
                text(p, "id"),
                text(p, "price"),
                text(p, "description")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_lists_every_route_with_its_price() {
        let m = Manifest {
            url: "http://s/_tollgate/prices.json".into(),
            doc: json!({
                "version": 1, "merchant": "http://s", "currency": "0xBTC", "decimals": 8,
                "chain_id": 31337, "token": "0xabc", "pay_url": "http://s/_tollgate/pay",
                "routes": [
                    {"pattern": "/movies/*", "methods": null, "price": "0.5", "price_base_units": "50000000",
                     "currency": "0xBTC", "chain_id": 31337, "token": "0xabc", "scope": "resource",
                     "access_ttl": 86400, "confirmations": 2, "enforce": true},
                    {"pattern": "/api/{id}", "methods": ["GET", "HEAD"], "price": "0.01", "price_base_units": "1000000",
                     "scope": "route", "access_ttl": 90, "confirmations": 0, "enforce": false}
                ]
            }),
        };
        let t = render_table(&m);
        assert!(t.contains("PATTERN"), "{t}");
        let movies = t.lines().find(|l| l.starts_with("/movies/*")).unwrap();
        for want in ["*", "0.5", "50000000", "resource", "1d", "2"] {
            assert!(movies.contains(want), "{movies}");
        }
        let api = t.lines().find(|l| l.starts_with("/api/{id}")).unwrap();
        for want in ["GET,HEAD", "0.01 (dry run)", "1000000", "route", "90s", "0"] {
            assert!(api.contains(want), "{api}");
        }
    }

    #[test]
    fn only_documents_with_routes_are_manifests() {
        assert!(as_manifest(br#"{"routes": []}"#).is_some());
        assert!(as_manifest(br#"{"code": "payment_required"}"#).is_none());
        assert!(as_manifest(b"<html>").is_none());
    }
}
