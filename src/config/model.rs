//! The validated internal configuration.
//!
//! Everything here has been checked by [`super::load`]: the rest of tollgate never
//! re-validates it. Secrets are held in [`SecretKey`], whose `Debug` never prints them.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use http::Method;
use ipnet::IpNet;

use crate::amount::Amount;
use crate::routes::RouteTable;

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (for messages).
    pub file: PathBuf,
    /// `[server]`.
    pub server: Server,
    /// `[admin]`, when configured.
    pub admin: Option<Admin>,
    /// `[gateway]`, when configured.
    pub gateway: Option<Gateway>,
    /// `[store]`.
    pub store: Store,
    /// `[secrets]`, with the keys loaded.
    pub secrets: Secrets,
    /// `[chain]`.
    pub chain: Chain,
    /// `[payments]`.
    pub payments: Payments,
    /// `[[route]]`s, ready for most-specific lookup.
    pub routes: RouteTable<Route>,
    /// `[[product]]`s.
    pub products: Vec<Product>,
    /// `[basket]` (defaults when absent).
    pub basket: Basket,
    /// `[[rebate]]`s.
    pub rebates: Vec<Rebate>,
    /// `[web_monetization]`.
    pub web_monetization: Option<WebMonetization>,
    /// `[postback]`.
    pub postback: Postback,
}

/// `[postback]`.
#[derive(Debug, Clone)]
pub struct Postback {
    /// Private/loopback networks postbacks may nevertheless reach.
    pub allow_networks: Vec<IpNet>,
    /// Per-attempt timeout in seconds.
    pub timeout_secs: u64,
    /// Retry window in seconds.
    pub retry_for_secs: u64,
    /// First retry delay in milliseconds.
    pub retry_base_ms: u64,
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct Server {
    /// Public listener (port 0: pick a free port at start).
    pub listen: SocketAddr,
    /// Base URL, no trailing slash, e.g. `https://shop.example`.
    pub public_url: String,
    /// True when `public_url` is https (cookies get `Secure`).
    pub public_https: bool,
    /// Origin socket address (resolved once at load).
    pub upstream: SocketAddr,
    /// The origin as written (`host:port`), for messages.
    pub upstream_name: String,
    /// TLS to the origin.
    pub upstream_tls: bool,
    /// SNI for the origin.
    pub upstream_sni: String,
    /// Reserved prefix, starts with `/`, no trailing `/`.
    pub pay_prefix: String,
    /// Proxy worker threads.
    pub threads: usize,
    /// Graceful shutdown period in seconds.
    pub grace_period_secs: u64,
    /// The origin matches paths without regard to ASCII case: route patterns are
    /// stored lower-cased, and request paths are lower-cased before matching and
    /// forwarding.
    pub upstream_case_insensitive: bool,
    /// Peers whose forwarding headers are believed for the client address
    /// (`[server] trusted_proxies`; empty: nobody's).
    pub trusted_proxies: Vec<IpNet>,
    /// Where `serve` writes its process id for `tollgate reload` (`[server] pid_file`).
    pub pid_file: Option<PathBuf>,
    /// `header_timeout`, `idle_timeout`, `max_connections`: every listener's limits.
    pub limits: crate::limits::Limits,
}

impl Server {
    /// `{public_url}{pay_prefix}`: the absolute base of tollgate's own endpoints, as
    /// placed in headers, pages and JSON answers.
    pub fn pay_base(&self) -> String {
        format!("{}{}", self.public_url, self.pay_prefix)
    }

    /// `"; Secure"` for cookies when `public_url` is https, else nothing.
    pub fn cookie_secure(&self) -> &'static str {
        if self.public_https {
            "; Secure"
        } else {
            ""
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Listener address.
    pub listen: SocketAddr,
    /// Allowed client networks.
    pub allow: Vec<IpNet>,
    /// The bearer token, when `token_env` names a set variable.
    pub token: Option<SecretKey>,
}

/// `[gateway]`.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// Listener address.
    pub listen: SocketAddr,
    /// `start_payment` calls per client IP (IPv6: per /64) per window.
    pub start_rate: Rate,
}

/// `[store]`.
#[derive(Debug, Clone)]
pub struct Store {
    /// Where the durable store lives.
    pub backend: StoreBackend,
    /// Contract-hash cache capacity.
    pub cache_capacity: u64,
}

/// The durable store named by `[store] url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// `sqlite://PATH` (relative paths are relative to the working directory).
    Sqlite(PathBuf),
    /// `postgres://…`.
    Postgres(String),
}

/// Loaded secrets.
#[derive(Debug, Clone)]
pub struct Secrets {
    /// Root key for contract tokens and receipts (≥ 32 bytes).
    pub receipt_key: SecretKey,
    /// Postback signing key, when configured.
    pub postback_key: Option<SecretKey>,
}

/// Key material. `Debug` and `Display` print only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(pub Vec<u8>);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(<{} bytes redacted>)", self.0.len())
    }
}

/// `[chain]`.
#[derive(Debug, Clone)]
pub struct Chain {
    /// JSON-RPC endpoints in failover order.
    pub rpc_urls: Vec<String>,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Token contract, lowercase `0x…` hex.
    pub token: String,
    /// Token decimals.
    pub decimals: u32,
    /// Default confirmations.
    pub confirmations: u64,
    /// Poll interval in milliseconds.
    pub poll_interval_ms: u64,
    /// Account xpub, when configured.
    pub xpub: Option<String>,
    /// First block to scan on a fresh store.
    pub start_block: u64,
}

/// `[payments]`.
#[derive(Debug, Clone)]
pub struct Payments {
    /// Seconds until an unpaid contract/payment expires.
    pub expiry_secs: u64,
    /// Default receipt lifetime in seconds.
    pub access_ttl_secs: u64,
    /// New payments allowed per client IP per window.
    pub claim_rate: Rate,
}

/// `N` events per `per_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Events per window.
    pub count: u32,
    /// Window length in seconds.
    pub per_secs: u64,
}

/// What one payment for a route unlocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The exact resource path that was bought.
    Resource,
    /// Every path the route's pattern matches.
    Route,
}

/// One validated `[[route]]`.
#[derive(Debug, Clone)]
pub struct Route {
    /// The pattern as written (`/movies/*`).
    pub pattern: String,
    /// Priced methods; `None` prices every method. GET implies HEAD.
    pub methods: Option<Vec<Method>>,
    /// Price in base units; zero means free.
    pub price: Amount,
    /// Summary template (`{path}` is the resource).
    pub summary: String,
    /// What one payment unlocks.
    pub scope: Scope,
    /// Receipt lifetime in seconds.
    pub access_ttl_secs: u64,
    /// Confirmations required (route override or `[chain]`).
    pub confirmations: u64,
    /// What received through Web Monetization also unlocks it: a decimal string in
    /// the wallet address's own asset (scaled by its `assetScale` when verifying).
    pub wm_price: Option<String>,
    /// `false` (`enforce = false`): a dry run — what would get a 402 is served as
    /// a free route would be, and counted and logged as `would_challenge`.
    pub enforce: bool,
}

impl Route {
    /// True when a request with `method` on this route must be paid for.
    pub fn prices(&self, method: &Method) -> bool {
        if self.price.is_zero() {
            return false;
        }
        match &self.methods {
            None => true,
            Some(ms) => {
                ms.contains(method) || (method == Method::HEAD && ms.contains(&Method::GET))
            }
        }
    }

    /// The contract summary for `resource`.
    pub fn summary_for(&self, resource: &str) -> String {
        self.summary.replace("{path}", resource)
    }

    /// The receipt scope string for `resource`: the path itself, or `route:` and the
    /// route pattern (see [`crate::receipt::Scope`]).
    pub fn scope_for(&self, resource: &str) -> String {
        match self.scope {
            Scope::Resource => resource.to_string(),
            Scope::Route => crate::receipt::Scope::route(&self.pattern),
        }
    }
}

/// One `[[product]]` of the basket catalogue (SPEC section 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Product id (`[A-Za-z0-9._-]`, never starting with `tollgate:`).
    pub id: String,
    /// Description (the bill always uses it, never the client's).
    pub description: String,
    /// Price in base units (> 0).
    pub price: Amount,
    /// Path patterns one purchase unlocks (non-empty, each under a priced route,
    /// overlapping no other product's).
    pub unlocks: Vec<String>,
    /// Whether it ships (shipping is charged once when any purchased item ships).
    pub ships: bool,
    /// Most of it one basket line may hold (default 100).
    pub max_count: u32,
}

/// `[basket]` (defaults when the section is absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Basket {
    /// The shop id a basket must name (default: `host[:port]` of `public_url`).
    pub shop_id: String,
    /// Tax rate, an exact fraction in 0..=1 (default 0).
    pub tax_rate: crate::basket::bill::TaxRate,
    /// Flat shipping in base units (default 0).
    pub shipping: Amount,
    /// The chargeable limit in base units (default 1000 0xBTC).
    pub max_total: Amount,
    /// An open basket without a paid checkout is released after this (default 1h).
    pub ttl_secs: u64,
}

/// One `[[rebate]]`: every `buy` of `product` are charged as `pay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebate {
    /// A catalogue product id.
    pub product: String,
    /// How many (>= 2).
    pub buy: u32,
    /// Charged as this many (1..buy).
    pub pay: u32,
}

/// `[web_monetization]` (SPEC section 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebMonetization {
    /// The receiver's wallet address URL.
    pub wallet_address: String,
    /// Patterns whose HTML gets the link.
    pub inject_link: Vec<String>,
    /// tollgate as an Open Payments client (needed when a route has `wm_price`).
    pub client: Option<OpClient>,
    /// Extra trusted roots (PEM) for Open Payments servers.
    pub ca_pem: Option<Vec<u8>>,
}

/// tollgate's identity as an Open Payments client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpClient {
    /// Its wallet address (the server reads `{wallet_address}/jwks.json`).
    pub wallet_address: String,
    /// The Ed25519 private key (32-byte seed), never printed.
    pub key: SecretKey,
    /// The key's id (`kid`) in that JWKS.
    pub key_id: String,
}

impl Config {
    /// Sections that validate but whose feature this build does not run yet.
    /// `serve` and `check` refuse them, so nothing configured is silently ignored.
    /// Every section is supported at the moment (the PostgreSQL store too: the
    /// server refuses to start when it cannot open the database).
    pub fn unsupported(&self) -> Vec<crate::config::Problem> {
        Vec::new()
    }
}
