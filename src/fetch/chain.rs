//! The payer's side of the chain for `tollgate fetch`: the key, the ERC-20 transfer
//! and what the chain says about it.
//!
//! Owns the payer's private key ([`PayerKey`], from `TOLLGATE_PAYER_KEY`), which never
//! leaves this module: it is held by alloy's local signer, its `Debug` shows only the
//! address, and no error message is built from it. Signing goes through alloy's
//! provider with the wallet filler; a transfer is *signed first and broadcast second*,
//! so its hash and raw bytes can be written to the wallet file before anything leaves
//! the machine (see [`resume_action`], the pure rule a rerun follows).

use alloy::consensus::TxEnvelope;
use alloy::eips::eip2718::Encodable2718;
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder, SendableTx};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;

use super::wallet::{PendingPayment, PendingStep};
use super::FetchError;

alloy::sol! {
    /// The two ERC-20 calls the payer makes.
    interface IErc20 {
        function balanceOf(address account) external view returns (uint256);
        function decimals() external view returns (uint8);
        function transfer(address to, uint256 value) external returns (bool);
    }
}

/// The environment variable holding the payer's private key.
pub const PAYER_KEY_ENV: &str = "TOLLGATE_PAYER_KEY";

/// The payer's private key (32 bytes, from hex with or without `0x`). Its `Debug`
/// prints the address only; it is never written anywhere.
#[derive(Clone)]
pub struct PayerKey(PrivateKeySigner);

impl std::fmt::Debug for PayerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PayerKey({})", self.address())
    }
}

impl PayerKey {
    /// Reads a hex private key. The error never repeats any of the input.
    pub fn parse(hex_key: &str) -> Result<PayerKey, FetchError> {
        let s = hex_key.trim();
        let s = s.strip_prefix("0x").unwrap_or(s);
        let bad = || {
            FetchError::Usage(format!(
                "{PAYER_KEY_ENV} is not a private key (64 hex digits, with or without 0x)"
            ))
        };
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        s.parse::<PrivateKeySigner>()
            .map(PayerKey)
            .map_err(|_| bad())
    }

    /// The key in `TOLLGATE_PAYER_KEY`; `None` when it is unset or empty.
    pub fn from_env() -> Result<Option<PayerKey>, FetchError> {
        match std::env::var(PAYER_KEY_ENV) {
            Ok(v) if !v.trim().is_empty() => PayerKey::parse(&v).map(Some),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(FetchError::Usage(format!(
                "{PAYER_KEY_ENV} is not a private key (64 hex digits, with or without 0x)"
            ))),
        }
    }

    /// The payer's address.
    pub fn address(&self) -> Address {
        self.0.address()
    }
}

/// What the chain says about a transaction hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxOnChain {
    /// The node knows nothing of it.
    Unknown,
    /// In the node's pool, not mined.
    Pending,
    /// Mined; `success` false when it reverted.
    Mined {
        /// The receipt's status.
        success: bool,
    },
}

/// What a rerun does with a payment in progress (pure: see [`resume_action`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeAction {
    /// Nothing was signed: sign a transfer now.
    Sign,
    /// The signed transfer is unknown to the node and its nonce is still free: send the
    /// very same bytes again (same nonce, same hash: it cannot pay twice).
    Rebroadcast,
    /// The transfer is on its way or mined: just wait for the payment.
    Watch,
    /// The transfer can never be mined (its nonce was used by another transaction)
    /// and the payment has received nothing: a new transfer may be signed.
    SignAgain,
    /// The transfer was mined and reverted: no tokens moved.
    Reverted,
}

/// The resume rule. `tx` is what the chain says about the recorded hash,
/// `confirmed_nonce` the payer's mined transaction count, `received_nothing` whether
/// the payment's status shows nothing received yet. Only a transfer that provably can
/// never be mined is ever replaced by a new one.
pub fn resume_action(
    p: &PendingPayment,
    tx: TxOnChain,
    confirmed_nonce: u64,
    received_nothing: bool,
) -> ResumeAction {
    if p.step == PendingStep::Claimed || p.raw_tx.is_none() {
        return ResumeAction::Sign;
    }
    match tx {
        TxOnChain::Mined { success: false } => ResumeAction::Reverted,
        TxOnChain::Mined { success: true } | TxOnChain::Pending => ResumeAction::Watch,
        TxOnChain::Unknown => match p.nonce {
            Some(n) if confirmed_nonce > n && received_nothing => ResumeAction::SignAgain,
            Some(n) if confirmed_nonce > n => ResumeAction::Watch,
            _ => ResumeAction::Rebroadcast,
        },
    }
}

/// A signed transfer, not yet (or not known to be) broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTransfer {
    /// Its nonce.
    pub nonce: u64,
    /// Its hash, 0x-prefixed lowercase hex.
    pub tx_hash: String,
    /// Its EIP-2718 bytes, 0x-prefixed hex.
    pub raw: String,
}

/// The payer connected to one RPC endpoint whose chain id was checked.
pub struct ChainPayer {
    provider: DynProvider,
    url: reqwest::Url,
    wallet: EthereumWallet,
    payer: Address,
    /// The RPC endpoint as shown in messages (scheme, host and port only).
    name: String,
}

impl std::fmt::Debug for ChainPayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainPayer")
            .field("rpc", &self.name)
            .field("payer", &self.payer)
            .finish()
    }
}

/// An RPC failure, naming the endpoint by scheme, host and port only: the full URL
/// (which the transport's own message repeats) often carries an API key in its path
/// or query.
fn rpc_err(url: &reqwest::Url, what: &str, e: impl std::fmt::Display) -> FetchError {
    let name = endpoint_name(url);
    let text = e
        .to_string()
        .replace(url.as_str(), &name)
        .replace(url.as_str().trim_end_matches('/'), &name);
    FetchError::Network(format!(
        "RPC {name}: {what}: {}",
        crate::redact::redact(&text)
    ))
}

/// Scheme, host and port of a URL (no path, query or credentials).
fn endpoint_name(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{}://{h}:{p}", url.scheme()),
        (Some(h), None) => format!("{}://{h}", url.scheme()),
        _ => url.scheme().to_string(),
    }
}

impl ChainPayer {
    /// Connects to `rpc_url` with `key` and checks that the node is on `chain_id`
    /// (the contract's chain): a node on another chain is refused before anything is
    /// claimed or signed.
    pub async fn connect(
        rpc_url: &str,
        key: &PayerKey,
        chain_id: u64,
    ) -> Result<ChainPayer, FetchError> {
        let url: reqwest::Url = rpc_url
            .parse()
            .map_err(|e| FetchError::Usage(format!("--rpc {rpc_url:?}: {e}")))?;
        let name = endpoint_name(&url);
        let wallet = EthereumWallet::from(key.0.clone());
        let provider = ProviderBuilder::new()
            .wallet(wallet.clone())
            .connect_http(url.clone())
            .erased();
        let got = provider
            .get_chain_id()
            .await
            .map_err(|e| rpc_err(&url, "eth_chainId", e))?;
        if got != chain_id {
            return Err(FetchError::ContractRefused(format!(
                "the contract is on chain {chain_id}, but the RPC {name} is on chain {got}"
            )));
        }
        Ok(ChainPayer {
            provider,
            url,
            wallet,
            payer: key.address(),
            name,
        })
    }

    /// The payer's address.
    pub fn payer(&self) -> Address {
        self.payer
    }

    /// The payer's balance of `token`, in base units.
    pub async fn token_balance(&self, token: Address) -> Result<U256, FetchError> {
        let call = IErc20::balanceOfCall {
            account: self.payer,
        };
        let tx = TransactionRequest::default()
            .with_to(token)
            .with_input(Bytes::from(call.abi_encode()));
        let out = self
            .provider
            .call(tx)
            .await
            .map_err(|e| rpc_err(&self.url, "balanceOf", e))?;
        IErc20::balanceOfCall::abi_decode_returns(&out)
            .map_err(|e| rpc_err(&self.url, "balanceOf answer", e))
    }

    /// The decimals `token` reports (ERC-20 `decimals()`).
    pub async fn token_decimals(&self, token: Address) -> Result<u8, FetchError> {
        let tx = TransactionRequest::default()
            .with_to(token)
            .with_input(Bytes::from(IErc20::decimalsCall {}.abi_encode()));
        let out = self
            .provider
            .call(tx)
            .await
            .map_err(|e| rpc_err(&self.url, "decimals", e))?;
        IErc20::decimalsCall::abi_decode_returns(&out)
            .map_err(|e| rpc_err(&self.url, "decimals answer", e))
    }

    /// The payer's next nonce counting pool transactions (`pending`).
    pub async fn next_nonce(&self) -> Result<u64, FetchError> {
        self.provider
            .get_transaction_count(self.payer)
            .pending()
            .await
            .map_err(|e| rpc_err(&self.url, "eth_getTransactionCount", e))
    }

    /// How many of the payer's transactions are mined (`latest`).
    pub async fn confirmed_nonce(&self) -> Result<u64, FetchError> {
        self.provider
            .get_transaction_count(self.payer)
            .latest()
            .await
            .map_err(|e| rpc_err(&self.url, "eth_getTransactionCount", e))
    }

    /// Signs (does not send) an ERC-20 `transfer(to, amount)` on `token` with
    /// `nonce`; gas and fees come from the node.
    pub async fn sign_transfer(
        &self,
        token: Address,
        to: Address,
        amount: u128,
        nonce: u64,
    ) -> Result<SignedTransfer, FetchError> {
        let call = IErc20::transferCall {
            to,
            value: U256::from(amount),
        };
        let tx = TransactionRequest::default()
            .with_from(self.payer)
            .with_to(token)
            .with_nonce(nonce)
            .with_input(Bytes::from(call.abi_encode()));
        let signer = ProviderBuilder::new()
            .wallet(self.wallet.clone())
            .connect_http(self.url.clone());
        let filled = signer
            .fill(tx)
            .await
            .map_err(|e| rpc_err(&self.url, "preparing the transfer", e))?;
        let SendableTx::Envelope(envelope) = filled else {
            return Err(FetchError::Network(
                "the transfer could not be signed (no signer for the payer)".into(),
            ));
        };
        Ok(signed(&envelope, nonce))
    }

    /// Broadcasts a signed transfer. A node that already has it (or has mined it) is
    /// not an error.
    pub async fn broadcast(&self, t: &SignedTransfer) -> Result<(), FetchError> {
        let raw: Bytes = t
            .raw
            .parse()
            .map_err(|_| FetchError::Usage("the wallet's signed transfer is not hex".into()))?;
        match self.provider.send_raw_transaction(&raw).await {
            Ok(_) => Ok(()),
            Err(e) => match self.transaction(&t.tx_hash).await? {
                TxOnChain::Pending | TxOnChain::Mined { .. } => Ok(()),
                TxOnChain::Unknown => Err(rpc_err(&self.url, "sending the transfer", e)),
            },
        }
    }

    /// What the chain says about `tx_hash`.
    pub async fn transaction(&self, tx_hash: &str) -> Result<TxOnChain, FetchError> {
        let hash: B256 = tx_hash
            .parse()
            .map_err(|_| FetchError::Usage(format!("bad transaction hash {tx_hash:?}")))?;
        let receipt = self
            .provider
            .get_transaction_receipt(hash)
            .await
            .map_err(|e| rpc_err(&self.url, "eth_getTransactionReceipt", e))?;
        if let Some(r) = receipt {
            return Ok(TxOnChain::Mined {
                success: r.status(),
            });
        }
        let pooled = self
            .provider
            .get_transaction_by_hash(hash)
            .await
            .map_err(|e| rpc_err(&self.url, "eth_getTransactionByHash", e))?;
        Ok(if pooled.is_some() {
            TxOnChain::Pending
        } else {
            TxOnChain::Unknown
        })
    }
}

fn signed(envelope: &TxEnvelope, nonce: u64) -> SignedTransfer {
    SignedTransfer {
        nonce,
        tx_hash: format!("{:#x}", envelope.tx_hash()),
        raw: format!("0x{}", hex::encode(envelope.encoded_2718())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANVIL_1: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

    /// Rules out the key reaching a log or an error message.
    #[test]
    fn the_key_never_prints() {
        let k = PayerKey::parse(ANVIL_1).unwrap();
        assert_eq!(
            k.address().to_string(),
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
        );
        assert!(PayerKey::parse(&ANVIL_1[2..]).is_ok());
        let shown = format!("{k:?}");
        assert!(!shown.contains(&ANVIL_1[2..]), "{shown}");
        for bad in [&ANVIL_1[..40], "zz", "", &format!("{ANVIL_1}00")] {
            let e = PayerKey::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("59c6995e"), "{e}");
        }
    }

    // Rules out an RPC API key (in the URL's path or query) reaching stderr through
    // the transport's error message.
    #[test]
    fn rpc_errors_name_the_endpoint_without_its_path() {
        let url: reqwest::Url = "https://rpc.example:8545/v3/SECRETKEY?k=SECRET2"
            .parse()
            .unwrap();
        let e = rpc_err(
            &url,
            "eth_chainId",
            format!("error sending request for url ({url})"),
        )
        .to_string();
        assert!(!e.contains("SECRET"), "{e}");
        assert!(e.contains("https://rpc.example:8545"), "{e}");
    }

    fn pending(step: PendingStep, nonce: Option<u64>) -> PendingPayment {
        PendingPayment {
            step,
            nonce,
            tx_hash: nonce.map(|_| "0xab".into()),
            raw_tx: nonce.map(|_| "0x02".into()),
            ..crate::fetch::wallet::sample_pending()
        }
    }

    /// Rules out paying twice after a crash anywhere between claim and confirmation:
    /// a signed transfer is only ever re-sent as the same bytes, and replaced only
    /// when its nonce went to another transaction and nothing arrived.
    #[test]
    fn a_resumed_payment_never_sends_a_second_transfer() {
        use ResumeAction::*;
        use TxOnChain::*;
        let claimed = pending(PendingStep::Claimed, None);
        assert_eq!(resume_action(&claimed, Unknown, 0, true), Sign);
        let signed = pending(PendingStep::Signed, Some(7));
        assert_eq!(resume_action(&signed, Pending, 7, true), Watch);
        assert_eq!(
            resume_action(&signed, Mined { success: true }, 8, true),
            Watch
        );
        assert_eq!(
            resume_action(&signed, Mined { success: false }, 8, true),
            Reverted
        );
        // crashed after recording, before (or during) the broadcast
        assert_eq!(resume_action(&signed, Unknown, 7, true), Rebroadcast);
        assert_eq!(resume_action(&signed, Unknown, 3, true), Rebroadcast);
        // nonce 7 went to another transaction: ours can never be mined
        assert_eq!(resume_action(&signed, Unknown, 8, true), SignAgain);
        // ... unless the payment shows money arriving: then only watch
        assert_eq!(resume_action(&signed, Unknown, 8, false), Watch);
    }
}
