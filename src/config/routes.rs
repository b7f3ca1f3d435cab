//! Validation of the `[[route]]`s (SPEC section 3): patterns, methods, prices,
//! scopes and per-route overrides, every problem reported at once.

use super::{file, Chain, Payments, Route, Scope, Server, Validator};
use crate::routes::{Pattern, RouteTable};

impl Validator<'_> {
    pub(super) fn routes(
        &mut self,
        routes: Vec<Option<file::RouteFile>>,
        chain: &Chain,
        payments: &Payments,
        server: Option<&Server>,
    ) -> RouteTable<Route> {
        let mut entries = Vec::new();
        let mut seen = std::collections::HashSet::new();
        // A case-insensitive origin: patterns are matched lower-cased.
        let fold = |p: &str| {
            if server.is_some_and(|s| s.upstream_case_insensitive) {
                p.to_ascii_lowercase()
            } else {
                p.to_string()
            }
        };
        for (i, r) in routes.into_iter().enumerate() {
            let Some(r) = r else { continue };
            let key = |k: &str| format!("route[{i}].{k}");
            let pattern = match r.path.as_deref() {
                None => {
                    self.problem(&key("path"), "missing");
                    None
                }
                Some(p) => match Pattern::parse(&fold(p)) {
                    Ok(pat) => {
                        let p = &fold(p);
                        if !seen.insert(p.to_string()) {
                            self.problem(
                                &key("path"),
                                &format!("{p:?} is already routed by an earlier [[route]]"),
                            );
                        }
                        if let Some(s) = server {
                            let prefix = &fold(&s.pay_prefix);
                            if p == prefix || p.starts_with(&format!("{prefix}/")) {
                                self.problem(
                                    &key("path"),
                                    &format!("{p:?} lies under server.pay_prefix {prefix:?}, which tollgate serves itself"),
                                );
                            }
                        }
                        Some((pat, p.to_string()))
                    }
                    Err(e) => {
                        self.problem(&key("path"), &format!("{p:?} {e}"));
                        None
                    }
                },
            };
            let methods = r.methods.as_ref().map(|ms| {
                ms.iter()
                    .filter_map(|m| {
                        let ok = !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase());
                        match (ok, http::Method::from_bytes(m.as_bytes())) {
                            (true, Ok(method)) => Some(method),
                            _ => {
                                self.problem(
                                    &key("methods"),
                                    &format!("{m:?} is not an upper-case HTTP method"),
                                );
                                None
                            }
                        }
                    })
                    .collect::<Vec<_>>()
            });
            if methods.as_ref().is_some_and(|m| m.is_empty())
                && r.methods.as_ref().is_some_and(|m| m.is_empty())
            {
                self.problem(
                    &key("methods"),
                    "must not be empty (leave it out to price every method)",
                );
            }
            let price = match r.price.as_deref() {
                None => {
                    self.problem(&key("price"), "missing (use \"0\" for a free route)");
                    None
                }
                Some(p) => self.amount(&key("price"), p, chain.decimals),
            };
            let scope = match r.scope.as_deref() {
                None | Some("resource") => Some(Scope::Resource),
                Some("route") => Some(Scope::Route),
                Some(other) => {
                    self.problem(
                        &key("scope"),
                        &format!("{other:?} must be \"resource\" or \"route\""),
                    );
                    None
                }
            };
            let ttl = match r.access_ttl.as_deref() {
                None => Some(payments.access_ttl_secs),
                Some(t) => self.duration(&key("access_ttl"), t),
            };
            let wm_price = r.wm_price.as_deref().and_then(|w| {
                match crate::amount::Amount::parse_decimal(w, 18) {
                    Ok(a) if !a.is_zero() => Some(w.to_string()),
                    _ => {
                        self.problem(
                            &key("wm_price"),
                            &format!("{w:?} must be a positive decimal like \"0.05\" (in the wallet address's asset)"),
                        );
                        None
                    }
                }
            });
            if wm_price.is_some() && price.is_some_and(|p| p.is_zero()) {
                self.problem(
                    &key("wm_price"),
                    "a free route (price \"0\") needs no wm_price",
                );
            }
            if let (Some((pattern, text)), Some(price), Some(scope), Some(ttl)) =
                (pattern, price, scope, ttl)
            {
                let summary = r.summary.unwrap_or_else(|| "{path}".into());
                entries.push((
                    pattern,
                    Route {
                        pattern: text,
                        methods,
                        price,
                        summary,
                        scope,
                        access_ttl_secs: ttl,
                        confirmations: r.confirmations.unwrap_or(chain.confirmations),
                        wm_price,
                        enforce: r.enforce.unwrap_or(true),
                    },
                ));
            }
        }
        RouteTable::new(entries)
    }
}
