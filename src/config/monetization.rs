//! Validation of `[web_monetization]` and the routes' `wm_price` (SPEC section 10):
//! Open Payments URLs (https, or http on loopback only), tollgate's client identity
//! (its Ed25519 key, PKCS#8 PEM, read once and never printed), extra trusted roots.

use std::net::IpAddr;
use std::path::Path;

use ed25519_dalek::pkcs8::DecodePrivateKey;

use super::{file, OpClient, Route, SecretKey, Validator, WebMonetization};
use crate::routes::{Pattern, RouteTable};

/// True for a URL tollgate may talk Open Payments to: `https://`, or `http://` with a
/// loopback host (127.0.0.0/8, `::1`, `localhost`), for local testing.
pub fn op_url_allowed(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    match (u.scheme(), u.host()) {
        ("https", Some(_)) => true,
        ("http", Some(url::Host::Domain(d))) => d.eq_ignore_ascii_case("localhost"),
        ("http", Some(url::Host::Ipv4(ip))) => IpAddr::V4(ip).is_loopback(),
        ("http", Some(url::Host::Ipv6(ip))) => IpAddr::V6(ip).is_loopback(),
        _ => false,
    }
}

impl Validator<'_> {
    pub(super) fn web_monetization(
        &mut self,
        w: file::WebMonetizationFile,
        routes: &RouteTable<Route>,
    ) -> Option<WebMonetization> {
        let url_problem = |v: &mut Self, key: &str, url: &str| {
            if !op_url_allowed(url) {
                v.problem(
                    key,
                    &format!("{url:?} must be an https:// URL (http:// only on a loopback host)"),
                );
            }
        };
        url_problem(self, "web_monetization.wallet_address", &w.wallet_address);
        for (i, p) in w.inject_link.iter().enumerate() {
            if let Err(e) = Pattern::parse(p) {
                self.problem(
                    &format!("web_monetization.inject_link[{i}]"),
                    &format!("{p:?} {e}"),
                );
            }
        }
        let base = self.file.parent().unwrap_or(Path::new(".")).to_path_buf();
        let client = match (
            &w.client_wallet_address,
            &w.client_key_file,
            &w.client_key_id,
        ) {
            (None, None, None) => None,
            (Some(addr), Some(key_file), Some(kid)) => {
                url_problem(self, "web_monetization.client_wallet_address", addr);
                if kid.is_empty() || kid.len() > 200 || kid.chars().any(char::is_control) {
                    self.problem(
                        "web_monetization.client_key_id",
                        "must be the key's non-empty `kid` in the client wallet address's JWKS",
                    );
                }
                let key = match std::fs::read_to_string(base.join(key_file)) {
                    Ok(pem) => match ed25519_dalek::SigningKey::from_pkcs8_pem(&pem) {
                        Ok(k) => Some(SecretKey(k.to_bytes().to_vec())),
                        Err(_) => {
                            self.problem(
                                "web_monetization.client_key_file",
                                &format!("{key_file} is not an Ed25519 private key in PKCS#8 PEM (\"-----BEGIN PRIVATE KEY-----\")"),
                            );
                            None
                        }
                    },
                    Err(e) => {
                        self.problem(
                            "web_monetization.client_key_file",
                            &format!("cannot read {key_file}: {e}"),
                        );
                        None
                    }
                };
                key.map(|key| OpClient {
                    wallet_address: addr.clone(),
                    key,
                    key_id: kid.clone(),
                })
            }
            _ => {
                self.problem(
                    "web_monetization",
                    "client_wallet_address, client_key_file and client_key_id go together",
                );
                None
            }
        };
        let ca_pem = if w.ca_file.is_empty() {
            None
        } else {
            match std::fs::read(base.join(&w.ca_file)) {
                Ok(pem)
                    if reqwest::Certificate::from_pem_bundle(&pem).is_ok_and(|c| !c.is_empty()) =>
                {
                    Some(pem)
                }
                Ok(_) => {
                    self.problem(
                        "web_monetization.ca_file",
                        &format!("{} holds no PEM certificate", w.ca_file),
                    );
                    None
                }
                Err(e) => {
                    self.problem(
                        "web_monetization.ca_file",
                        &format!("cannot read {}: {e}", w.ca_file),
                    );
                    None
                }
            }
        };
        let priced_by_wm = routes
            .iter_by_specificity()
            .any(|(_, r)| r.wm_price.is_some());
        if priced_by_wm && client.is_none() && w.client_wallet_address.is_none() {
            self.problem(
                "web_monetization.client_wallet_address",
                "routes with wm_price need tollgate's Open Payments client identity (client_wallet_address, client_key_file, client_key_id) to read incoming payments",
            );
        }
        Some(WebMonetization {
            wallet_address: w.wallet_address,
            inject_link: w.inject_link,
            client,
            ca_pem,
        })
    }
}
