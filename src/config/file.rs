//! The TOML schema exactly as users write it (SPEC section 3).
//!
//! These structs are the stable user-facing contract: every struct denies unknown
//! keys, and every value that needs interpretation (durations, amounts, addresses)
//! stays a string here. Validation and conversion happen in [`super::model`]; nothing
//! outside the config module reads these types.

use serde::Deserialize;

/// `[server]`: the public listener and the origin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    /// Public listener address, `host:port` (port 0 picks a free port).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Absolute base URL for URLs placed in headers and pages.
    pub public_url: Option<String>,
    /// The origin, `host:port`.
    pub upstream: Option<String>,
    /// Connect to the origin over TLS.
    #[serde(default)]
    pub upstream_tls: bool,
    /// SNI (and certificate name) when `upstream_tls = true`.
    #[serde(default)]
    pub upstream_sni: String,
    /// Reserved path prefix for tollgate's own endpoints.
    #[serde(default = "default_pay_prefix")]
    pub pay_prefix: String,
    /// Worker threads of the proxy (default: the number of CPUs).
    pub threads: Option<usize>,
    /// How long a SIGTERM waits for in-flight requests (default "10s").
    pub grace_period: Option<String>,
    /// The origin matches paths without regard to ASCII case (IIS-style): routes
    /// are matched, and paths forwarded, lower-cased.
    #[serde(default)]
    pub upstream_case_insensitive: bool,
    /// CIDR networks of load balancers whose `X-Forwarded-For`/`Forwarded` headers
    /// give the client address (default: none, so those headers are never believed).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Where `serve` writes its process id, for `tollgate reload` (default: none).
    pub pid_file: Option<String>,
    /// A request head must be complete within this (default "10s").
    pub header_timeout: Option<String>,
    /// Idle keep-alive connections close after this (default "60s").
    pub idle_timeout: Option<String>,
    /// Most connections open at once, per listener (default 10000).
    pub max_connections: Option<usize>,
}

fn default_listen() -> String {
    "0.0.0.0:8080".into()
}

fn default_pay_prefix() -> String {
    "/_tollgate".into()
}

/// `[admin]`: the merchant's listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    /// Admin listener address.
    #[serde(default = "default_admin_listen")]
    pub listen: String,
    /// CIDR allowlist.
    #[serde(default = "default_admin_allow")]
    pub allow: Vec<String>,
    /// Name of the environment variable that holds the optional bearer token.
    pub token_env: Option<String>,
}

fn default_admin_listen() -> String {
    "127.0.0.1:8081".into()
}

fn default_admin_allow() -> Vec<String> {
    vec!["127.0.0.1/32".into(), "::1/128".into()]
}

/// `[gateway]`: the optional 0xbtcpay-compatible listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayFile {
    /// Gateway listener address.
    pub listen: String,
    /// New payments (`start_payment`) per client IP (default "600/min").
    #[serde(default = "default_start_rate")]
    pub start_rate: String,
}

fn default_start_rate() -> String {
    "600/min".into()
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreFile {
    /// `sqlite://PATH` or `postgres://…`.
    #[serde(default = "default_store_url")]
    pub url: String,
    /// Contract-hash cache entries.
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: u64,
}

impl Default for StoreFile {
    fn default() -> Self {
        StoreFile {
            url: default_store_url(),
            cache_capacity: default_cache_capacity(),
        }
    }
}

fn default_store_url() -> String {
    "sqlite://tollgate.db".into()
}

fn default_cache_capacity() -> u64 {
    100_000
}

/// `[secrets]`: where keys come from. Keys themselves never live in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsFile {
    /// Environment variable holding the receipt key (≥ 32 bytes, hex or base64).
    pub receipt_key_env: Option<String>,
    /// File holding the receipt key, as an alternative to the environment.
    pub receipt_key_file: Option<String>,
    /// Environment variable holding the postback signing key.
    pub postback_key_env: Option<String>,
    /// File holding the postback signing key.
    pub postback_key_file: Option<String>,
}

/// `[chain]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainFile {
    /// JSON-RPC endpoints, tried in order.
    #[serde(default)]
    pub rpc_urls: Vec<String>,
    /// EIP-155 chain id.
    #[serde(default = "default_chain_id")]
    pub chain_id: u64,
    /// ERC-20 token contract address.
    #[serde(default = "default_token")]
    pub token: String,
    /// Token decimals.
    #[serde(default = "default_decimals")]
    pub decimals: u32,
    /// Confirmations before a payment counts as paid.
    #[serde(default = "default_confirmations")]
    pub confirmations: u64,
    /// How often the chain is polled.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: String,
    /// BIP32 account xpub.
    pub xpub: Option<String>,
    /// First block to scan on a fresh store.
    #[serde(default)]
    pub start_block: u64,
}

impl Default for ChainFile {
    fn default() -> Self {
        ChainFile {
            rpc_urls: Vec::new(),
            chain_id: default_chain_id(),
            token: default_token(),
            decimals: default_decimals(),
            confirmations: default_confirmations(),
            poll_interval: default_poll_interval(),
            xpub: None,
            start_block: 0,
        }
    }
}

fn default_chain_id() -> u64 {
    1
}
fn default_token() -> String {
    "0xB6eD7644C69416d67B522e20bC294A9a9B405B31".into()
}
fn default_decimals() -> u32 {
    8
}
fn default_confirmations() -> u64 {
    12
}
fn default_poll_interval() -> String {
    "2s".into()
}

/// `[payments]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsFile {
    /// Unpaid payments (and contracts) expire after this long.
    #[serde(default = "default_expiry")]
    pub expiry: String,
    /// What partial transfers do: only `"wait"` (they add up).
    #[serde(default = "default_underpayment")]
    pub underpayment: String,
    /// Default lifetime of a receipt.
    #[serde(default = "default_access_ttl")]
    pub access_ttl: String,
    /// New payments per client IP, `N/s`, `N/min` or `N/h`.
    #[serde(default = "default_claim_rate")]
    pub claim_rate: String,
}

impl Default for PaymentsFile {
    fn default() -> Self {
        PaymentsFile {
            expiry: default_expiry(),
            underpayment: default_underpayment(),
            access_ttl: default_access_ttl(),
            claim_rate: default_claim_rate(),
        }
    }
}

fn default_expiry() -> String {
    "30m".into()
}
fn default_underpayment() -> String {
    "wait".into()
}
fn default_access_ttl() -> String {
    "30d".into()
}
fn default_claim_rate() -> String {
    "30/min".into()
}

/// One `[[route]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    /// `"/a/b"` exact, `"/a/*"` prefix, `"/a/{id}"` one segment.
    pub path: Option<String>,
    /// Priced methods (default: all).
    pub methods: Option<Vec<String>>,
    /// Price in 0xBTC, decimal string; `"0"` is free.
    pub price: Option<String>,
    /// Contract summary; `{path}` is replaced by the resource path.
    pub summary: Option<String>,
    /// `"resource"` (default) or `"route"`.
    pub scope: Option<String>,
    /// Receipt lifetime for this route.
    pub access_ttl: Option<String>,
    /// Per-route confirmations override.
    pub confirmations: Option<u64>,
    /// What received through Web Monetization also unlocks it (decimal, in the
    /// wallet address's own asset).
    pub wm_price: Option<String>,
    /// `false`: dry run — serve the content free, count and log what would have
    /// been charged (default `true`).
    pub enforce: Option<bool>,
}

/// One `[[product]]` of the basket catalogue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductFile {
    /// Product id.
    pub id: String,
    /// Human description.
    #[serde(default)]
    pub description: String,
    /// Price, decimal string.
    pub price: String,
    /// Route patterns one purchase unlocks.
    #[serde(default)]
    pub unlocks: Vec<String>,
    /// Whether it ships (shipping is charged once when any purchased item ships).
    #[serde(default)]
    pub ships: bool,
    /// Most of it one basket line may hold (default 100).
    pub max_count: Option<u32>,
}

/// `[basket]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasketFile {
    /// The shop id a basket must name (default: `host[:port]` of `server.public_url`).
    pub shop_id: Option<String>,
    /// Tax as a decimal fraction, e.g. `"0.20"`.
    #[serde(default = "zero")]
    pub tax_rate: String,
    /// Flat shipping, decimal string.
    #[serde(default = "zero")]
    pub shipping: String,
    /// The chargeable limit, decimal string.
    #[serde(default = "default_max_total")]
    pub max_total: String,
    /// An open basket without a paid checkout is released after this.
    #[serde(default = "default_basket_ttl")]
    pub ttl: String,
}

fn zero() -> String {
    "0".into()
}

fn default_max_total() -> String {
    "1000".into()
}

fn default_basket_ttl() -> String {
    "1h".into()
}

impl Default for BasketFile {
    fn default() -> Self {
        BasketFile {
            shop_id: None,
            tax_rate: zero(),
            shipping: zero(),
            max_total: default_max_total(),
            ttl: default_basket_ttl(),
        }
    }
}

/// One `[[rebate]]`: every `buy` of `product` in a basket are charged as `pay`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebateFile {
    /// A catalogue product id.
    pub product: String,
    /// How many (at least 2).
    pub buy: u32,
    /// Charged as this many (1 to `buy - 1`).
    pub pay: u32,
}

/// `[web_monetization]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebMonetizationFile {
    /// The receiver's Open Payments wallet address URL.
    pub wallet_address: String,
    /// Route patterns whose HTML gets the monetization link.
    #[serde(default)]
    pub inject_link: Vec<String>,
    /// tollgate's own Open Payments client wallet address (its JWKS holds the key).
    pub client_wallet_address: Option<String>,
    /// The client's Ed25519 private key, PKCS#8 PEM.
    pub client_key_file: Option<String>,
    /// The key's id in that JWKS.
    pub client_key_id: Option<String>,
    /// Extra trusted roots (PEM) for Open Payments servers.
    #[serde(default)]
    pub ca_file: String,
}

/// `[postback]`: how postbacks to shops are delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostbackFile {
    /// Networks postbacks may reach even though they are loopback/private/link-local
    /// (e.g. `["127.0.0.1/32"]` for a shop on the same host). Default: none.
    #[serde(default)]
    pub allow_networks: Vec<String>,
    /// Per-attempt timeout.
    #[serde(default = "default_postback_timeout")]
    pub timeout: String,
    /// How long failed deliveries are retried.
    #[serde(default = "default_retry_for")]
    pub retry_for: String,
    /// The first retry delay; it doubles per attempt up to one hour (`ms` allowed).
    #[serde(default = "default_retry_base")]
    pub retry_base: String,
}

fn default_retry_base() -> String {
    "5s".into()
}

impl Default for PostbackFile {
    fn default() -> Self {
        PostbackFile {
            allow_networks: Vec::new(),
            timeout: default_postback_timeout(),
            retry_for: default_retry_for(),
            retry_base: default_retry_base(),
        }
    }
}

fn default_postback_timeout() -> String {
    "10s".into()
}

fn default_retry_for() -> String {
    "24h".into()
}
