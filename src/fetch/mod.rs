//! `tollgate fetch`: a paying HTTP client with a receipt wallet (issue 15).
//!
//! A request that meets tollgate's 402 reads the contract, checks its JCS SHA-256
//! against the announced hash and its amount against the payer's `--max`, claims it,
//! pays it with an ERC-20 `transfer` signed by the payer's own key, waits for `paid`,
//! obtains the receipt and repeats the request with it. Receipts and payments in
//! progress live in a wallet file, so a later fetch replays without paying and an
//! interrupted one resumes the same payment instead of paying twice.
//!
//! The pure decisions live in [`offer`] (the 402, the terms, the price, the claim's
//! instructions), [`wallet`] (which receipt may cover a URL, which payment in progress
//! a 402 belongs to, pruning) and [`chain::resume_action`] (what a rerun does with a
//! transfer it may or may not have sent). The IO shell is [`Client`] (reqwest) and
//! [`chain::ChainPayer`] (alloy's provider with a local signer). Nothing here prints
//! or stores the payer's private key or a whole receipt.
//!
//! ```no_run
//! use tollgate::fetch::{chain::PayerKey, offer::MaxPrice, Client, Request, Wallet};
//!
//! # async fn demo() -> Result<(), tollgate::fetch::FetchError> {
//! let client = Client::new(Wallet::at("/tmp/wallet.json"))?
//!     .max(MaxPrice::parse("0.5")?)
//!     .rpc("http://127.0.0.1:8545")
//!     .payer_key(PayerKey::from_env()?.expect("TOLLGATE_PAYER_KEY"))
//!     .on_progress(|line| eprintln!("{line}"));
//! let outcome = client
//!     .fetch(Request::get("http://127.0.0.1:8080/movies/big-buck-bunny.html")?)
//!     .await?;
//! println!("{:?}: {}", outcome.how, outcome.response.status());
//! let body = outcome.response.bytes().await.map_err(tollgate::fetch::FetchError::from_http)?;
//! # let _ = body;
//! # Ok(())
//! # }
//! ```

pub mod chain;
mod client;
pub mod offer;
pub mod prices;
mod request;
pub mod run;
pub mod wallet;

pub use client::Client;
pub use request::{How, Outcome, PaymentSummary, ReceiptSummary, Request};
pub use wallet::{Wallet, WalletData, WalletError};

/// Why a fetch did not end with the resource. Each kind has its own exit code
/// ([`FetchError::exit_code`]) and a stable `code` for `--json`.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A mistake in how the command was called, or in its environment (exit 1).
    #[error("{0}")]
    Usage(String),
    /// The wallet file cannot be used (exit 1).
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// The price is above `--max`, or no `--max` was given (exit 3). Nothing was
    /// claimed or sent.
    #[error("{resource} costs {price} 0xBTC, {}; nothing was paid", match .max { Some(m) => format!("above --max {m}"), None => "and no --max was given".to_string() })]
    PriceAboveMax {
        /// The resource offered.
        resource: String,
        /// Its price, decimal 0xBTC.
        price: String,
        /// The `--max` given, if any.
        max: Option<String>,
    },
    /// The payment failed or expired: the offer or payment expired, too little
    /// arrived, the transfer reverted, the payer lacks tokens (exit 4).
    #[error("payment failed: {0}")]
    PaymentFailed(String),
    /// The network or the RPC endpoint failed (exit 5). A payment in progress stays
    /// in the wallet: run again to resume it.
    #[error("network: {0}")]
    Network(String),
    /// The server answered with an HTTP error (exit 6).
    #[error("HTTP {status}: {message}")]
    Http {
        /// The status code.
        status: u16,
        /// What it means here.
        message: String,
    },
    /// The offer cannot be accepted safely: its terms do not hash to the announced
    /// hash, the instructions differ from the terms, the RPC is on another chain
    /// (exit 7). Nothing was sent.
    #[error("contract refused: {0}")]
    ContractRefused(String),
    /// Interrupted (Ctrl-C); a payment in progress resumes on the next run (exit 130).
    #[error("interrupted; a payment in progress is kept in the wallet: run the same command again to resume it")]
    Interrupted,
}

impl FetchError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            FetchError::Usage(_) | FetchError::Wallet(_) => 1,
            FetchError::PriceAboveMax { .. } => 3,
            FetchError::PaymentFailed(_) => 4,
            FetchError::Network(_) => 5,
            FetchError::Http { .. } => 6,
            FetchError::ContractRefused(_) => 7,
            FetchError::Interrupted => 130,
        }
    }

    /// The stable machine-readable code (`--json`'s `code`).
    pub fn code(&self) -> &'static str {
        match self {
            FetchError::Usage(_) => "usage",
            FetchError::Wallet(_) => "wallet",
            FetchError::PriceAboveMax { .. } => "price_above_max",
            FetchError::PaymentFailed(_) => "payment_failed",
            FetchError::Network(_) => "network",
            FetchError::Http { .. } => "http",
            FetchError::ContractRefused(_) => "contract_refused",
            FetchError::Interrupted => "interrupted",
        }
    }

    /// A transport error of reqwest as a network error (the URL's query is dropped).
    pub fn from_http(e: reqwest::Error) -> FetchError {
        let e = e.without_url();
        FetchError::Network(crate::redact::redact(&error_chain(&e)).into_owned())
    }
}

/// An error with its sources, `: `-joined (reqwest's own message is terse).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let m = inner.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = inner.source();
    }
    s
}
