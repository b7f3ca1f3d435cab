//! Configuration: read → parse → validate (collect every problem) → internal model.
//!
//! Owns the TOML schema ([`file`](mod@file)) and the validated model ([`model`]). [`load`]
//! reports every problem at once, each naming the file, the key and what is wrong.
//! Key material is read here from the environment or a key file and never logged.

mod catalogue;
pub mod file;
pub mod model;
mod monetization;
pub mod reload;
mod server;
pub use monetization::op_url_allowed;
mod routes;

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::de::DeserializeOwned;

use crate::amount::Amount;
pub use model::*;

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// The key, e.g. `route[2].price` or `server.listen`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
    }
}

/// Every problem found in one config file.
#[derive(Debug, Clone)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            writeln!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Loads and validates `path`, reading secrets from the process environment.
pub fn load(path: &Path) -> Result<Config, Problems> {
    load_with_env(path, &|k| std::env::var(k).ok())
}

/// As [`load`], with `env` standing in for the environment (tests).
pub fn load_with_env(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Problems> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Problems(vec![Problem {
            file: path.to_path_buf(),
            key: "(file)".into(),
            message: format!("cannot read: {e}"),
        }])
    })?;
    parse(path, &text, env)
}

/// Parses and validates config `text` (named `path` in messages). `server.upstream`
/// is resolved with the system resolver (DNS for a host name).
pub fn parse(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Problems> {
    parse_with(path, text, env, &|u| {
        u.to_socket_addrs().ok().and_then(|mut a| a.next())
    })
}

/// As [`parse`], but `server.upstream` must be a literal `ip:port`: nothing is looked
/// up, so the answer depends on `text` alone (the fuzzer; a DNS look-up under load
/// would read as a hang).
pub fn parse_offline(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Problems> {
    parse_with(path, text, env, &|u| u.parse().ok())
}

fn parse_with(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    resolve: &dyn Fn(&str) -> Option<SocketAddr>,
) -> Result<Config, Problems> {
    let mut v = Validator {
        file: path.to_path_buf(),
        problems: Vec::new(),
        resolve,
    };
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            v.problem("(syntax)", e.to_string().trim());
            return Err(Problems(v.problems));
        }
    };
    const SECTIONS: &[&str] = &[
        "server",
        "admin",
        "gateway",
        "store",
        "secrets",
        "chain",
        "payments",
        "route",
        "product",
        "basket",
        "rebate",
        "web_monetization",
        "postback",
    ];
    for key in table.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            v.problem(
                key,
                &format!("unknown section, expected one of: {}", SECTIONS.join(", ")),
            );
        }
    }
    let server: Option<file::ServerFile> = v.section(&table, "server");
    let admin: Option<file::AdminFile> = v.section(&table, "admin");
    let gateway: Option<file::GatewayFile> = v.section(&table, "gateway");
    let store: Option<file::StoreFile> = v.section(&table, "store");
    let secrets: Option<file::SecretsFile> = v.section(&table, "secrets");
    let chain: Option<file::ChainFile> = v.section(&table, "chain");
    let payments: Option<file::PaymentsFile> = v.section(&table, "payments");
    let routes: Vec<Option<file::RouteFile>> = v.array(&table, "route");
    let products: Vec<Option<file::ProductFile>> = v.array(&table, "product");
    let basket: Option<file::BasketFile> = v.section(&table, "basket");
    let rebates: Vec<Option<file::RebateFile>> = v.array(&table, "rebate");
    let wm: Option<file::WebMonetizationFile> = v.section(&table, "web_monetization");
    let postback: Option<file::PostbackFile> = v.section(&table, "postback");

    if !table.contains_key("server") {
        v.problem("server", "missing section [server]");
    }
    let chain = v.chain(chain.unwrap_or_default());
    let payments = v.payments(payments.unwrap_or_default());
    let server = server.and_then(|s| v.server(s));
    let admin = admin.and_then(|a| v.admin(a, env));
    let gateway = gateway.and_then(|g| {
        let start_rate = parse_rate(&g.start_rate)
            .map_err(|e| v.problem("gateway.start_rate", &e))
            .ok();
        let listen = v.socket_addr("gateway.listen", &g.listen);
        Some(Gateway {
            listen: listen?,
            start_rate: start_rate?,
        })
    });
    let store = v.store(store.unwrap_or_default());
    let secrets = v.secrets(secrets.unwrap_or_default(), env);
    let routes = v.routes(routes, &chain, &payments, server.as_ref());
    let catalogue = catalogue::CatalogueFile {
        products,
        basket,
        rebates,
    };
    let (products, basket, rebates) =
        v.catalogue(catalogue, chain.decimals, server.as_ref(), &routes);
    let web_monetization = wm.and_then(|w| v.web_monetization(w, &routes));
    if web_monetization.is_none()
        && routes
            .iter_by_specificity()
            .any(|(_, r)| r.wm_price.is_some())
    {
        v.problem(
            "web_monetization",
            "routes with wm_price need a [web_monetization] section (the wallet address and tollgate's client identity)",
        );
    }
    let postback = v.postback(postback.unwrap_or_default());
    let payments_on = chain.xpub.is_some() && !chain.rpc_urls.is_empty();
    for (key, on) in [("admin", admin.is_some()), ("gateway", gateway.is_some())] {
        if on && !payments_on {
            v.problem(key, "needs payments: set [chain] rpc_urls and xpub");
        }
    }
    if (admin.is_some() || gateway.is_some())
        && secrets.as_ref().is_some_and(|s| s.postback_key.is_none())
    {
        v.problem(
            "secrets.postback_key_env",
            "required with [admin] or [gateway]: postbacks are always signed (>= 32 bytes, hex or base64)",
        );
    }

    if !v.problems.is_empty() {
        return Err(Problems(v.problems));
    }
    match (server, store, secrets) {
        (Some(server), Some(store), Some(secrets)) => Ok(Config {
            file: path.to_path_buf(),
            server,
            admin,
            gateway,
            store,
            secrets,
            chain,
            payments,
            routes,
            products,
            basket,
            rebates,
            web_monetization,
            postback,
        }),
        _ => Err(Problems(vec![Problem {
            file: path.to_path_buf(),
            key: "(config)".into(),
            message: "incomplete configuration".into(),
        }])),
    }
}

/// Parses a duration such as `"30s"`, `"30m"`, `"12h"`, `"7d"` into seconds.
pub fn parse_duration_secs(s: &str) -> Result<u64, String> {
    parse_duration_ms(s).map(|ms| ms / 1000).and_then(|secs| {
        if s.ends_with("ms") {
            Err("use s, m, h or d".into())
        } else {
            Ok(secs)
        }
    })
}

/// Parses a duration with unit `ms`, `s`, `m`, `h` or `d` into milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    let err =
        || format!("{s:?} is not a duration (use a whole number with s, m, h or d, e.g. \"30m\")");
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(err());
    }
    let n: u64 = num.parse().map_err(|_| err())?;
    let mult: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(err()),
    };
    n.checked_mul(mult).ok_or_else(err)
}

/// Decodes key material written as hex or base64 (standard or URL-safe, padded or
/// not) and requires at least 32 bytes.
pub fn parse_key(text: &str) -> Result<SecretKey, String> {
    let t = text.trim();
    let bytes = if t.len() % 2 == 0 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(t).ok()
    } else {
        None
    }
    .or_else(|| base64::engine::general_purpose::STANDARD.decode(t).ok())
    .or_else(|| {
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(t)
            .ok()
    })
    .or_else(|| base64::engine::general_purpose::URL_SAFE.decode(t).ok())
    .or_else(|| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .ok()
    })
    .ok_or_else(|| "key is neither hex nor base64".to_string())?;
    if bytes.len() < 32 {
        return Err(format!(
            "key is {} bytes; at least 32 are required (e.g. `openssl rand -hex 32`)",
            bytes.len()
        ));
    }
    Ok(SecretKey(bytes))
}

struct Validator<'r> {
    file: PathBuf,
    problems: Vec<Problem>,
    /// `host:port` → the first address it resolves to.
    resolve: &'r dyn Fn(&str) -> Option<SocketAddr>,
}

impl Validator<'_> {
    fn problem(&mut self, key: &str, message: &str) {
        self.problems.push(Problem {
            file: self.file.clone(),
            key: key.to_string(),
            message: message.to_string(),
        });
    }

    fn section<T: DeserializeOwned>(&mut self, table: &toml::Table, name: &str) -> Option<T> {
        let value = table.get(name)?;
        if !value.is_table() {
            self.problem(name, "must be a table, e.g. [section]");
            return None;
        }
        match T::deserialize(value.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                self.problem(name, e.message());
                None
            }
        }
    }

    fn array<T: DeserializeOwned>(&mut self, table: &toml::Table, name: &str) -> Vec<Option<T>> {
        let Some(value) = table.get(name) else {
            return Vec::new();
        };
        let Some(items) = value.as_array() else {
            self.problem(
                name,
                &format!("must be an array of tables, written [[{name}]]"),
            );
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match T::deserialize(item.clone()) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.problem(&format!("{name}[{i}]"), e.message());
                    None
                }
            })
            .collect()
    }

    fn duration(&mut self, key: &str, s: &str) -> Option<u64> {
        match parse_duration_secs(s) {
            Ok(0) => {
                self.problem(key, "must be longer than zero");
                None
            }
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(key, &e);
                None
            }
        }
    }

    fn amount(&mut self, key: &str, s: &str, decimals: u32) -> Option<Amount> {
        match Amount::parse_decimal(s, decimals) {
            Ok(a) => Some(a),
            Err(e) => {
                self.problem(key, &format!("{s:?}: {e}"));
                None
            }
        }
    }

    fn socket_addr(&mut self, key: &str, s: &str) -> Option<SocketAddr> {
        match s.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.problem(
                    key,
                    &format!("{s:?} is not an address like \"127.0.0.1:8080\""),
                );
                None
            }
        }
    }

    fn store(&mut self, s: file::StoreFile) -> Option<Store> {
        let backend = if let Some(p) = s.url.strip_prefix("sqlite://") {
            if p.is_empty() {
                self.problem(
                    "store.url",
                    "sqlite:// needs a file path, e.g. sqlite://tollgate.db",
                );
                return None;
            }
            StoreBackend::Sqlite(PathBuf::from(p))
        } else if s.url.starts_with("postgres://") || s.url.starts_with("postgresql://") {
            StoreBackend::Postgres(s.url.clone())
        } else {
            self.problem(
                "store.url",
                "must start with sqlite:// or postgres:// (value not shown: it may hold a password)",
            );
            return None;
        };
        if s.cache_capacity == 0 {
            self.problem("store.cache_capacity", "must be at least 1");
        }
        Some(Store {
            backend,
            cache_capacity: s.cache_capacity,
        })
    }

    fn key(
        &mut self,
        env_key: &str,
        env_name: Option<&str>,
        file_key: &str,
        file_path: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Option<SecretKey>> {
        let text = match (env_name, file_path) {
            (Some(_), Some(_)) => {
                self.problem(
                    env_key,
                    &format!("set either {env_key} or {file_key}, not both"),
                );
                return None;
            }
            (Some(name), None) => match env(name) {
                Some(t) => (t, format!("environment variable {name}")),
                None => {
                    self.problem(env_key, &format!("environment variable {name} is not set"));
                    return None;
                }
            },
            (None, Some(p)) => {
                let base = self.file.parent().unwrap_or(Path::new("."));
                match std::fs::read_to_string(base.join(p)) {
                    Ok(t) => (t, format!("key file {p}")),
                    Err(e) => {
                        self.problem(file_key, &format!("cannot read {p}: {e}"));
                        return None;
                    }
                }
            }
            (None, None) => return Some(None),
        };
        match parse_key(&text.0) {
            Ok(k) => Some(Some(k)),
            Err(e) => {
                let key = if env_name.is_some() {
                    env_key
                } else {
                    file_key
                };
                self.problem(key, &format!("{}: {e}", text.1));
                None
            }
        }
    }

    fn secrets(
        &mut self,
        s: file::SecretsFile,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Secrets> {
        let receipt = self.key(
            "secrets.receipt_key_env",
            s.receipt_key_env.as_deref(),
            "secrets.receipt_key_file",
            s.receipt_key_file.as_deref(),
            env,
        );
        let postback = self.key(
            "secrets.postback_key_env",
            s.postback_key_env.as_deref(),
            "secrets.postback_key_file",
            s.postback_key_file.as_deref(),
            env,
        );
        let receipt = match receipt {
            Some(Some(k)) => Some(k),
            Some(None) => {
                self.problem(
                    "secrets.receipt_key_env",
                    "missing: name the environment variable (or set receipt_key_file) holding a key of at least 32 bytes",
                );
                None
            }
            None => None,
        };
        Some(Secrets {
            receipt_key: receipt?,
            postback_key: postback?,
        })
    }

    fn chain(&mut self, c: file::ChainFile) -> Chain {
        for (i, u) in c.rpc_urls.iter().enumerate() {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                self.problem(
                    &format!("chain.rpc_urls[{i}]"),
                    "must be an http:// or https:// URL",
                );
            }
        }
        let token = c.token.to_ascii_lowercase();
        let token_ok = token.len() == 42
            && token.starts_with("0x")
            && token[2..].bytes().all(|b| b.is_ascii_hexdigit());
        if !token_ok {
            self.problem(
                "chain.token",
                &format!("{:?} is not a 0x-prefixed 20-byte address", c.token),
            );
        }
        if c.decimals > 30 {
            self.problem("chain.decimals", "must be at most 30");
        }
        if c.chain_id == 0 {
            self.problem("chain.chain_id", "must be a positive EIP-155 chain id");
        }
        let poll = match parse_duration_ms(&c.poll_interval) {
            Ok(0) => {
                self.problem("chain.poll_interval", "must be longer than zero");
                1000
            }
            Ok(ms) => ms,
            Err(e) => {
                self.problem("chain.poll_interval", &e);
                1000
            }
        };
        if let Some(x) = &c.xpub {
            match crate::chain::xpub::AccountXpub::parse(x) {
                Ok(k) if k.depth() != 4 => self.problem(
                    "chain.xpub",
                    &format!(
                        "this key is at depth {}; export the account key of m/44'/60'/0'/0 (depth 4) so the addresses match what your wallet shows",
                        k.depth()
                    ),
                ),
                Ok(_) => {}
                Err(e) => self.problem("chain.xpub", &e.to_string()),
            }
        }
        if c.xpub.is_some() == c.rpc_urls.is_empty() {
            self.problem(
                "chain",
                "payments need both rpc_urls and xpub (or neither, for a 402-only tollgate)",
            );
        }
        Chain {
            rpc_urls: c.rpc_urls,
            chain_id: c.chain_id,
            token,
            decimals: c.decimals.min(30),
            confirmations: c.confirmations,
            poll_interval_ms: poll,
            xpub: c.xpub,
            start_block: c.start_block,
        }
    }

    fn payments(&mut self, p: file::PaymentsFile) -> Payments {
        let expiry_secs = self.duration("payments.expiry", &p.expiry).unwrap_or(1800);
        let access_ttl_secs = self
            .duration("payments.access_ttl", &p.access_ttl)
            .unwrap_or(1);
        if p.underpayment != "wait" {
            self.problem(
                "payments.underpayment",
                &format!(
                    "{:?} is not supported: the only policy is \"wait\" (partial transfers add up)",
                    p.underpayment
                ),
            );
        }
        let claim_rate = match parse_rate(&p.claim_rate) {
            Ok(r) => r,
            Err(e) => {
                self.problem("payments.claim_rate", &e);
                Rate {
                    count: 30,
                    per_secs: 60,
                }
            }
        };
        Payments {
            expiry_secs,
            access_ttl_secs,
            claim_rate,
        }
    }
}

impl Validator<'_> {
    fn postback(&mut self, p: file::PostbackFile) -> Postback {
        let mut allow_networks = Vec::new();
        for (i, c) in p.allow_networks.iter().enumerate() {
            match c.parse::<ipnet::IpNet>() {
                Ok(n) => allow_networks.push(n),
                Err(_) => self.problem(
                    &format!("postback.allow_networks[{i}]"),
                    &format!("{c:?} is not a CIDR network like \"127.0.0.1/32\""),
                ),
            }
        }
        Postback {
            allow_networks,
            timeout_secs: self.duration("postback.timeout", &p.timeout).unwrap_or(10),
            retry_for_secs: self
                .duration("postback.retry_for", &p.retry_for)
                .unwrap_or(86_400),
            retry_base_ms: match parse_duration_ms(&p.retry_base) {
                Ok(ms) if ms > 0 => ms,
                Ok(_) => {
                    self.problem("postback.retry_base", "must be longer than zero");
                    5000
                }
                Err(e) => {
                    self.problem("postback.retry_base", &e);
                    5000
                }
            },
        }
    }
}

/// Parses `"30/min"`, `"5/s"`, `"100/h"`.
pub fn parse_rate(s: &str) -> Result<Rate, String> {
    let err = || format!("{s:?} is not a rate like \"30/min\" (units: s, min, h)");
    let (n, unit) = s.split_once('/').ok_or_else(err)?;
    let count: u32 = n.parse().map_err(|_| err())?;
    let per_secs = match unit {
        "s" => 1,
        "min" | "m" => 60,
        "h" => 3600,
        _ => return Err(err()),
    };
    if count == 0 {
        return Err(format!("{s:?}: the count must be at least 1"));
    }
    Ok(Rate { count, per_secs })
}

#[cfg(test)]
mod tests;
