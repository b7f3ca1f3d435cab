//! tollgate as an Open Payments client (SPEC section 10): reads an incoming payment
//! from the receiver's resource server, authenticated.
//!
//! * the wallet address document, cached for the lifetime its `Cache-Control`
//!   gives (bounded);
//! * a non-interactive GNAP grant for `incoming-payment` with the `read-all` action
//!   (the Web Monetization agent created the incoming payment, not tollgate, and
//!   `read` only covers a client's own), its token cached until it expires and
//!   renewed on a 401; the token is never logged;
//! * every request signed per RFC 9421 HTTP message signatures (the `httpsig` crate)
//!   with tollgate's Ed25519 key: label `sig1`, `keyid`, `created`, covering
//!   `@method`, `@target-uri`, `authorization` when present, and with a body
//!   `content-digest` (RFC 9530, SHA-512 of the exact bytes sent), `content-length`
//!   and `content-type`;
//! * only `https://` URLs, or `http://` on loopback hosts; every call bounded by a
//!   deadline.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use httpsig::prelude::message_component::{HttpMessageComponent, HttpMessageComponentId};
use httpsig::prelude::{AlgorithmName, HttpSignatureBase, HttpSignatureParams, SecretKey};
use serde::Deserialize;
use sha2::{Digest, Sha512};

use crate::config::op_url_allowed;
use crate::config::{OpClient as Identity, WebMonetization};

/// How long one Open Payments call may take.
pub const CALL_DEADLINE: Duration = Duration::from_secs(5);

/// Longest a wallet address document is cached, whatever its `Cache-Control` says.
pub const MAX_WALLET_CACHE: Duration = Duration::from_secs(3600);

/// Why an Open Payments read failed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// A URL that is not `https://` (or loopback `http://`), or not a URL.
    #[error("{0} is not an allowed Open Payments URL (https://, or http:// on loopback)")]
    BadUrl(String),
    /// The server could not be reached in time, or answered with a server error.
    #[error("Open Payments server unavailable: {0}")]
    Unavailable(String),
    /// The server refused tollgate's credentials (signature or grant) even after
    /// renewing them: a misconfigured client key or wallet address.
    #[error("Open Payments server refused tollgate's signed request: {0}")]
    Refused(String),
    /// No such resource (404).
    #[error("not found at the Open Payments server")]
    NotFound,
    /// An answer that is not what the Open Payments specs say.
    #[error("unexpected answer from the Open Payments server: {0}")]
    Malformed(String),
}

/// A wallet address document (the fields tollgate uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletAddress {
    /// Its canonical URL.
    pub id: String,
    /// The asset it receives in.
    pub asset_code: String,
    /// The asset's scale (decimals).
    pub asset_scale: u8,
    /// Its GNAP authorization server.
    pub auth_server: String,
    /// Its resource server (incoming payments live under it).
    pub resource_server: String,
}

/// An Open Payments amount: an unsigned integer string in an asset.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpAmount {
    /// `uint64` as a decimal string.
    pub value: String,
    /// Asset code.
    pub asset_code: String,
    /// Asset scale.
    pub asset_scale: u8,
}

/// The authenticated view of an incoming payment (the fields tollgate uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncomingPayment {
    /// Its URL.
    pub id: String,
    /// The wallet address it pays into (absent from the public view: never enough).
    pub wallet_address: String,
    /// What it has received so far.
    pub received_amount: OpAmount,
    /// Whether it is completed.
    #[serde(default)]
    pub completed: bool,
}

/// A cached GNAP access token.
#[derive(Clone)]
struct Token {
    value: String,
    expires_at: std::time::Instant,
}

/// The Open Payments client.
pub struct OpClient {
    http: reqwest::Client,
    identity: Identity,
    key: SecretKey,
    wallets: Mutex<HashMap<String, (WalletAddress, std::time::Instant)>>,
    tokens: Mutex<HashMap<String, Token>>,
}

impl std::fmt::Debug for OpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpClient")
            .field("client", &self.identity.wallet_address)
            .field("key_id", &self.identity.key_id)
            .finish_non_exhaustive()
    }
}

/// `max-age` of a `Cache-Control` value, bounded by [`MAX_WALLET_CACHE`]; none
/// (or `no-store`/`no-cache`) is not cached. Public for the fuzz targets (`fuzz/`).
pub fn max_age(cache_control: Option<&str>) -> Duration {
    let Some(cc) = cache_control else {
        return Duration::ZERO;
    };
    let lower = cc.to_ascii_lowercase();
    if lower.contains("no-store") || lower.contains("no-cache") {
        return Duration::ZERO;
    }
    lower
        .split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(MAX_WALLET_CACHE))
        .next()
        .unwrap_or(Duration::ZERO)
}

impl OpClient {
    /// A client for `cfg`; `None` when it has no client identity.
    pub fn new(cfg: &WebMonetization) -> Result<Option<OpClient>, String> {
        let Some(identity) = cfg.client.clone() else {
            return Ok(None);
        };
        let key = SecretKey::from_bytes(&AlgorithmName::Ed25519, &identity.key.0)
            .map_err(|e| format!("web_monetization client key: {e}"))?;
        let mut http = reqwest::Client::builder()
            .timeout(CALL_DEADLINE)
            .connect_timeout(CALL_DEADLINE)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &cfg.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("web_monetization.ca_file: {e}"))?
            {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http
            .build()
            .map_err(|e| format!("Open Payments HTTP client: {e}"))?;
        Ok(Some(OpClient {
            http,
            identity,
            key,
            wallets: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }))
    }

    /// The wallet address document at `url` (cached with its lifetime).
    pub async fn wallet_address(&self, url: &str) -> Result<WalletAddress, OpError> {
        let now = std::time::Instant::now();
        if let Some((w, until)) = self.wallets.lock().ok().and_then(|m| m.get(url).cloned()) {
            if until > now {
                return Ok(w);
            }
        }
        let u = checked_url(url)?;
        let r = self
            .send(self.http.get(u).header("Accept", "application/json"))
            .await?;
        let ttl = max_age(
            r.headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
        );
        let w: WalletAddress = json_of(r, "wallet address").await?;
        for (what, u) in [
            ("authServer", &w.auth_server),
            ("resourceServer", &w.resource_server),
        ] {
            if !op_url_allowed(u) {
                return Err(OpError::Malformed(format!(
                    "the wallet address names a {what} that is not an allowed URL"
                )));
            }
        }
        if let Ok(mut m) = self.wallets.lock() {
            if m.len() > 1024 {
                m.clear();
            }
            m.insert(url.to_string(), (w.clone(), now + ttl));
        }
        Ok(w)
    }

    /// The incoming payment at `url`, read with a `read-all` grant from
    /// `auth_server` (a 401 renews the grant once).
    pub async fn incoming_payment(
        &self,
        url: &str,
        auth_server: &str,
    ) -> Result<IncomingPayment, OpError> {
        let u = checked_url(url)?;
        for attempt in 0..2 {
            let token = self.token(auth_server, attempt > 0).await?;
            let authorization = format!("GNAP {}", token.value);
            let headers = self.sign("GET", &u, Some(&authorization), None)?;
            let mut req = self
                .http
                .get(u.clone())
                .header("Accept", "application/json")
                .header("Authorization", &authorization);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let r = self.send(req).await?;
            if r.status() == reqwest::StatusCode::UNAUTHORIZED
                || r.status() == reqwest::StatusCode::FORBIDDEN
            {
                self.forget_token(auth_server);
                if attempt == 0 {
                    continue;
                }
                return Err(OpError::Refused(format!(
                    "{} reading the incoming payment",
                    r.status()
                )));
            }
            return json_of(r, "incoming payment").await;
        }
        Err(OpError::Refused("no grant".into()))
    }

    fn forget_token(&self, auth_server: &str) {
        if let Ok(mut t) = self.tokens.lock() {
            t.remove(auth_server);
        }
    }

    /// A `read-all` token from `auth_server`: the cached one unless `fresh`.
    async fn token(&self, auth_server: &str, fresh: bool) -> Result<Token, OpError> {
        let now = std::time::Instant::now();
        if !fresh {
            let cached = self
                .tokens
                .lock()
                .ok()
                .and_then(|t| t.get(auth_server).cloned());
            if let Some(t) = cached.filter(|t| t.expires_at > now) {
                return Ok(t);
            }
        }
        let u = checked_url(auth_server)?;
        let body = serde_json::to_vec(&serde_json::json!({
            "access_token": {
                "access": [{"type": "incoming-payment", "actions": ["read-all"]}]
            },
            "client": self.identity.wallet_address,
        }))
        .map_err(|e| OpError::Malformed(e.to_string()))?;
        let headers = self.sign("POST", &u, None, Some(&body))?;
        let mut req = self
            .http
            .post(u)
            .header("Accept", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let r = self.send(req).await?;
        if r.status() == reqwest::StatusCode::UNAUTHORIZED
            || r.status() == reqwest::StatusCode::FORBIDDEN
            || r.status() == reqwest::StatusCode::BAD_REQUEST
        {
            return Err(OpError::Refused(format!(
                "{} on the grant request",
                r.status()
            )));
        }
        #[derive(Deserialize)]
        struct Granted {
            access_token: AccessToken,
        }
        #[derive(Deserialize)]
        struct AccessToken {
            value: String,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let g: Granted = json_of(r, "grant").await.map_err(|e| match e {
            OpError::Malformed(_) => OpError::Refused(
                "the grant was not issued without interaction (the server may require it for read-all)".into(),
            ),
            e => e,
        })?;
        // Renew a little before the server would refuse it.
        let life = Duration::from_secs(g.access_token.expires_in.unwrap_or(600).saturating_sub(5));
        let token = Token {
            value: g.access_token.value,
            expires_at: now + life,
        };
        if let Ok(mut t) = self.tokens.lock() {
            t.insert(auth_server.to_string(), token.clone());
        }
        Ok(token)
    }

    /// The `Signature-Input`, `Signature` (and, with a body, `Content-Digest`,
    /// `Content-Length`, `Content-Type`) headers for a request.
    fn sign(
        &self,
        method: &str,
        url: &reqwest::Url,
        authorization: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<Vec<(&'static str, String)>, OpError> {
        let mut lines = vec![
            format!("\"@method\": {method}"),
            format!("\"@target-uri\": {url}"),
        ];
        let mut extra = Vec::new();
        if let Some(a) = authorization {
            lines.push(format!("\"authorization\": {a}"));
        }
        if let Some(b) = body {
            let digest = format!("sha-512=:{}:", B64.encode(Sha512::digest(b)));
            lines.push(format!("\"content-digest\": {digest}"));
            lines.push(format!("\"content-length\": {}", b.len()));
            lines.push("\"content-type\": application/json".to_string());
            extra.push(("Content-Digest", digest));
            extra.push(("Content-Type", "application/json".to_string()));
        }
        let failed =
            |e: httpsig::prelude::HttpSigError| OpError::Malformed(format!("signing: {e}"));
        let components = lines
            .iter()
            .map(|l| HttpMessageComponent::try_from(l.as_str()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(failed)?;
        let ids: Vec<HttpMessageComponentId> = components.iter().map(|c| c.id.clone()).collect();
        let mut params = HttpSignatureParams::try_new(&ids).map_err(failed)?;
        params.set_keyid(&self.identity.key_id);
        let base = HttpSignatureBase::try_new(&components, &params).map_err(failed)?;
        let headers = base
            .build_signature_headers(&self.key, Some("sig1"))
            .map_err(failed)?;
        extra.push(("Signature-Input", headers.signature_input_header_value()));
        extra.push(("Signature", headers.signature_header_value()));
        Ok(extra)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, OpError> {
        let r = req.send().await.map_err(|e| {
            OpError::Unavailable(crate::redact::redact(&e.to_string()).into_owned())
        })?;
        if r.status().is_server_error() || r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(OpError::Unavailable(format!("answered {}", r.status())));
        }
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(OpError::NotFound);
        }
        Ok(r)
    }
}

fn checked_url(url: &str) -> Result<reqwest::Url, OpError> {
    if !op_url_allowed(url) {
        return Err(OpError::BadUrl(url.chars().take(200).collect()));
    }
    reqwest::Url::parse(url).map_err(|_| OpError::BadUrl(url.chars().take(200).collect()))
}

async fn json_of<T: serde::de::DeserializeOwned>(
    r: reqwest::Response,
    what: &str,
) -> Result<T, OpError> {
    if !r.status().is_success() {
        return Err(OpError::Malformed(format!("{what}: {}", r.status())));
    }
    // Bounded: an Open Payments document is small.
    let bytes = r
        .bytes()
        .await
        .map_err(|e| OpError::Unavailable(e.to_string()))?;
    if bytes.len() > 256 * 1024 {
        return Err(OpError::Malformed(format!("{what}: too large")));
    }
    serde_json::from_slice(&bytes).map_err(|e| OpError::Malformed(format!("{what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_lifetimes_follow_cache_control() {
        assert_eq!(max_age(None), Duration::ZERO);
        assert_eq!(max_age(Some("public, max-age=60")), Duration::from_secs(60));
        assert_eq!(max_age(Some("max-age=999999")), MAX_WALLET_CACHE);
        assert_eq!(max_age(Some("no-store, max-age=60")), Duration::ZERO);
    }

    #[test]
    fn signatures_cover_what_open_payments_requires() {
        let cfg = WebMonetization {
            wallet_address: "https://w.example/alice".into(),
            inject_link: vec![],
            client: Some(Identity {
                wallet_address: "https://w.example/tollgate".into(),
                key: crate::config::SecretKey(vec![9u8; 32]),
                key_id: "k1".into(),
            }),
            ca_pem: None,
        };
        let c = OpClient::new(&cfg).unwrap().unwrap();
        let u = reqwest::Url::parse("https://w.example/rs/incoming-payments/1").unwrap();
        let h: HashMap<_, _> = c
            .sign("GET", &u, Some("GNAP tok"), None)
            .unwrap()
            .into_iter()
            .collect();
        let input = &h["Signature-Input"];
        assert!(
            input.starts_with("sig1=(\"@method\" \"@target-uri\" \"authorization\")"),
            "{input}"
        );
        assert!(
            input.contains("keyid=\"k1\"") && input.contains("created="),
            "{input}"
        );
        assert!(h["Signature"].starts_with("sig1=:") && h["Signature"].ends_with(':'));
        // Verifies with the public key over the RFC 9421 signature base.
        let sig = B64
            .decode(
                h["Signature"]
                    .trim_start_matches("sig1=:")
                    .trim_end_matches(':'),
            )
            .unwrap();
        let params = input.trim_start_matches("sig1=");
        let base = format!(
            "\"@method\": GET\n\"@target-uri\": {u}\n\"authorization\": GNAP tok\n\"@signature-params\": {params}"
        );
        let vk = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]).verifying_key();
        let sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
        vk.verify_strict(base.as_bytes(), &sig).unwrap();
        // With a body: digest, length and type are covered too.
        let h: HashMap<_, _> = c
            .sign("POST", &u, None, Some(b"{\"a\":1}"))
            .unwrap()
            .into_iter()
            .collect();
        assert!(
            h["Signature-Input"].contains("\"content-digest\" \"content-length\" \"content-type\"")
        );
        assert!(h["Content-Digest"].starts_with("sha-512=:"));
    }
}
