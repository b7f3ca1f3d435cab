//! The IO shell of `tollgate fetch`: HTTP with reqwest, the wallet file, the chain
//! through [`ChainPayer`]. Each step gathers inputs, asks a pure function in
//! [`super::offer`], [`super::wallet`] or [`super::chain`] what to do, and does it.
//!
//! Order of a paid fetch, and what the wallet holds at each point:
//! 1. request (with a stored receipt that may cover the URL) → 402;
//! 2. terms from the contract URL, hash and `--max` checked (nothing written);
//! 3. under the wallet lock: a payment in progress for this resource? resume it.
//!    Else claim, check the instructions, write the claim (`claimed`);
//! 4. under the lock: sign the transfer, write nonce, hash and signed bytes
//!    (`signed`); then broadcast;
//! 5. poll the payment's status until `paid`; fetch the receipt; under the lock,
//!    store it and drop the payment in progress;
//! 6. repeat the request with the receipt.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use serde::Deserialize;
use serde_json::json;

use super::chain::{resume_action, ChainPayer, PayerKey, ResumeAction, TxOnChain};
use super::offer::{
    check_instructions, check_price, check_token, verify_terms, Challenge, Instructions, MaxPrice,
    VerifiedOffer,
};
use super::request::{How, Outcome, PaymentSummary, ReceiptSummary, Request};
use super::wallet::{PendingPayment, PendingStep, StoredReceipt, Wallet};
use super::FetchError;
use crate::clock::{Clock, SystemClock};

type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// A paying HTTP client over one wallet file. Refuses to pay unless given a
/// [`MaxPrice`], a payer key and an RPC URL.
#[derive(Clone)]
pub struct Client {
    pub(super) http: reqwest::Client,
    wallet: Wallet,
    max: Option<MaxPrice>,
    rpc_url: Option<String>,
    /// Token contracts trusted besides mainnet 0xBTC ([`Client::trust_token`]).
    tokens: Vec<String>,
    key: Option<PayerKey>,
    progress: Progress,
    poll: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("wallet", &self.wallet.path())
            .field("max", &self.max)
            .field("payer", &self.key.as_ref().map(PayerKey::address))
            .finish()
    }
}

/// How long one of tollgate's small JSON calls may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Consecutive failed status polls before the wait gives up (the payment stays
/// resumable).
const MAX_POLL_FAILURES: u32 = 30;

impl Client {
    /// A client that replays receipts from `wallet` and pays nothing until given a
    /// `max`, a key and an RPC URL.
    pub fn new(wallet: Wallet) -> Result<Client, FetchError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("tollgate-fetch/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::custom(|a| {
                let followed = a.previous().len().saturating_sub(1);
                match a.previous().last() {
                    Some(from) if !super::request::may_follow(from, a.url(), followed) => {
                        let why = format!("refusing a redirect from {from} to {}", a.url());
                        a.error(why)
                    }
                    _ => a.follow(),
                }
            }))
            .build()
            .map_err(FetchError::from_http)?;
        Ok(Client {
            http,
            wallet,
            max: None,
            rpc_url: None,
            tokens: Vec::new(),
            key: None,
            progress: Arc::new(|_| {}),
            poll: Duration::from_millis(500),
            clock: Arc::new(SystemClock),
        })
    }

    /// The most one fetch may pay (default: nothing).
    pub fn max(mut self, max: MaxPrice) -> Self {
        self.max = Some(max);
        self
    }

    /// The JSON-RPC endpoint to pay through.
    pub fn rpc(mut self, url: impl Into<String>) -> Self {
        self.rpc_url = Some(url.into());
        self
    }

    /// Trusts the ERC-20 at `address` as 0xBTC (another deployment, a test chain):
    /// without it only 0xBTC on Ethereum mainnet is paid. Its on-chain `decimals()`
    /// must still equal the contract's.
    pub fn trust_token(mut self, address: impl Into<String>) -> Self {
        self.tokens.push(address.into());
        self
    }

    /// The payer's key.
    pub fn payer_key(mut self, key: PayerKey) -> Self {
        self.key = Some(key);
        self
    }

    /// Called with one line per step (claimed, sent, confirmations k/n, paid).
    pub fn on_progress(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.progress = Arc::new(f);
        self
    }

    /// How often the payment's status is polled (default 500 ms).
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll = every;
        self
    }

    /// The wallet.
    pub fn wallet(&self) -> &Wallet {
        &self.wallet
    }

    fn say(&self, line: &str) {
        (self.progress)(line);
    }

    /// Fetches `req`, paying a 402 within the limits given. The final response is
    /// returned whatever its status (except 402); errors say what stopped it.
    pub async fn fetch(&self, req: Request) -> Result<Outcome, FetchError> {
        let origin = req.url.origin().ascii_serialization();
        let path = crate::routes::canonical::canonicalize(req.url.path().as_bytes())
            .map(|t| t.path)
            .unwrap_or_else(|_| req.url.path().to_string());
        let now = self.clock.now_secs();
        let data = self.wallet.update(|w| w.prune(now))?;
        let mut tried: Vec<String> = Vec::new();
        let mut presented: Option<(String, StoredReceipt)> = data
            .receipts_for(&origin, &path, now)
            .first()
            .map(|(h, r)| (h.to_string(), (*r).clone()));
        loop {
            let resp = self
                .send(&req, presented.as_ref().map(|(_, r)| r.receipt.as_str()))
                .await?;
            if resp.status().as_u16() != 402 {
                let how = if presented.is_some() {
                    How::Replayed
                } else {
                    How::Free
                };
                if presented.is_some() {
                    self.say("replayed a stored receipt: nothing paid");
                }
                return Ok(Outcome {
                    response: resp,
                    how,
                    payment: None,
                    receipt: presented.map(|(h, r)| summary(&h, &r)),
                });
            }
            if let Some((h, _)) = presented.take() {
                tried.push(h);
            }
            let header = |n: &str| resp.headers().get(n).and_then(|v| v.to_str().ok());
            let challenge = Challenge::from_headers(header)?;
            let offer = self.terms(&challenge).await?;
            let now = self.clock.now_secs();
            // A receipt for the resource as the server names it, not yet tried?
            let data = self.wallet.load()?;
            let other = data
                .receipts_for(&origin, &offer.terms.resource, now)
                .into_iter()
                .find(|(h, _)| !tried.iter().any(|t| t == h))
                .map(|(h, r)| (h.to_string(), r.clone()));
            if other.is_some() {
                presented = other;
                continue;
            }
            return self.buy(&req, &origin, &challenge, &offer).await;
        }
    }

    /// Sends `req`, with `Authorization: Tollgate <receipt>` when given.
    async fn send(
        &self,
        req: &Request,
        receipt: Option<&str>,
    ) -> Result<reqwest::Response, FetchError> {
        let mut b = self.http.request(req.method.clone(), req.url.clone());
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        if let Some(r) = receipt {
            b = b.header("Authorization", format!("Tollgate {r}"));
        }
        if let Some(body) = &req.body {
            b = b.body(body.clone());
        }
        b.send().await.map_err(FetchError::from_http)
    }

    /// GETs the terms of `c` and verifies them against every announced hash.
    async fn terms(&self, c: &Challenge) -> Result<VerifiedOffer, FetchError> {
        let resp = self
            .http
            .get(&c.contract_url)
            .header("Accept", "application/json")
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(FetchError::from_http)?;
        let status = resp.status().as_u16();
        let served_hash = resp
            .headers()
            .get("x-taler-contract-hash")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.bytes().await.map_err(FetchError::from_http)?;
        if status != 200 {
            return Err(FetchError::Http {
                status,
                message: format!("the contract URL answered {status}: {}", brief(&body)),
            });
        }
        let terms: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| FetchError::ContractRefused(format!("the terms are not JSON: {e}")))?;
        let mut announced = vec![c.contract_hash.as_str()];
        announced.extend(served_hash.as_deref());
        verify_terms(&terms, &announced)
    }

    /// The 402 path: resume a payment in progress for this resource, or (within
    /// `--max`) claim and pay a new one; then the receipt and the repeated request.
    async fn buy(
        &self,
        req: &Request,
        origin: &str,
        challenge: &Challenge,
        offer: &VerifiedOffer,
    ) -> Result<Outcome, FetchError> {
        let t = &offer.terms;
        let now = self.clock.now_secs();
        let lock = self.wallet.lock()?;
        let mut data = self.wallet.load()?;
        let (hash, mut pending, how, mut chain) =
            match data.pending_for(origin, &t.resource, &offer.hash) {
                Some((h, p)) => {
                    drop(lock);
                    self.say(&format!(
                        "resuming payment {} for {} ({} 0xBTC) from an earlier run",
                        p.payment_id, p.resource, p.amount
                    ));
                    (h, p, How::Resumed, None)
                }
                None => {
                    self.say(&format!(
                        "{} costs {} 0xBTC (contract {}…)",
                        t.resource,
                        t.amount,
                        &offer.hash[..12]
                    ));
                    check_price(offer, self.max.as_ref(), now)?;
                    check_token(t, &self.tokens)?;
                    let chain = self.connect(t, offer.price.0).await?;
                    let ins = self.claim(challenge).await?;
                    check_instructions(offer, &ins)?;
                    let p = pending_from(origin, offer, &ins);
                    data.pending.insert(offer.hash.clone(), p.clone());
                    self.wallet.save(&lock, &data)?;
                    drop(lock);
                    self.say(&format!(
                        "claimed payment {}: {} 0xBTC to {}",
                        p.payment_id, p.amount, p.address
                    ));
                    (offer.hash.clone(), p, How::Paid, Some(chain))
                }
            };
        if pending.amount_base_units != "0" {
            pending = self.ensure_sent(&hash, pending, &mut chain).await?;
        }
        self.wait_paid(&hash, &pending, chain.as_ref()).await?;
        let (receipt, stored) = self.obtain_receipt(&hash, &pending).await?;
        let payment = PaymentSummary {
            payment_id: pending.payment_id.clone(),
            contract_hash: hash.clone(),
            amount: pending.amount.clone(),
            amount_base_units: pending.amount_base_units.clone(),
            address: pending.address.clone(),
            tx_hash: pending.tx_hash.clone(),
        };
        let resp = self.send(req, Some(&receipt)).await?;
        if resp.status().as_u16() == 402 {
            return Err(FetchError::Http {
                status: 402,
                message: format!(
                    "{} still asks for payment with the receipt of payment {} (scope {}); the receipt is kept in the wallet",
                    req.url, pending.payment_id, stored.scope
                ),
            });
        }
        Ok(Outcome {
            response: resp,
            how,
            payment: Some(payment),
            receipt: Some(summary(&hash, &stored)),
        })
    }

    /// Connects to the RPC for a new payment: a key and an RPC URL are required, the
    /// node must be on the contract's chain, the token must report the contract's
    /// decimals, and the payer must hold the amount.
    async fn connect(
        &self,
        t: &super::offer::OfferedTerms,
        amount: u128,
    ) -> Result<ChainPayer, FetchError> {
        let (chain_id, token) = (t.chain_id, t.token.as_str());
        let key = self.key.as_ref().ok_or_else(|| {
            FetchError::Usage(format!(
                "paying needs the payer's private key in {}",
                super::chain::PAYER_KEY_ENV
            ))
        })?;
        let rpc = self.rpc_url.as_deref().ok_or_else(|| {
            FetchError::Usage(
                "paying needs --rpc URL (a JSON-RPC endpoint of the contract's chain)".into(),
            )
        })?;
        let chain = ChainPayer::connect(rpc, key, chain_id).await?;
        let token: Address = token.parse().map_err(|_| {
            FetchError::ContractRefused(format!("the contract's token {token:?} is not an address"))
        })?;
        let decimals = chain.token_decimals(token).await?;
        if u32::from(decimals) != t.decimals {
            return Err(FetchError::ContractRefused(format!(
                "the contract counts {token} in {} decimals, the token itself in {decimals}; \
                 nothing was paid",
                t.decimals
            )));
        }
        let balance = chain.token_balance(token).await?;
        if balance < U256::from(amount) {
            return Err(FetchError::PaymentFailed(format!(
                "the payer {} holds {balance} base units of the token, the price is {amount}",
                chain.payer()
            )));
        }
        Ok(chain)
    }

    /// `POST url` with a small JSON body: the answer's status and body.
    async fn post_json(
        &self,
        url: &str,
        body: serde_json::Value,
    ) -> Result<(u16, bytes::Bytes), FetchError> {
        let resp = self
            .http
            .post(url)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(FetchError::from_http)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(FetchError::from_http)?;
        Ok((status, body))
    }

    /// `POST {pay_url} {"contract": token}`.
    async fn claim(&self, c: &Challenge) -> Result<Instructions, FetchError> {
        let (status, body) = self
            .post_json(&c.pay_url, json!({ "contract": c.contract_token()? }))
            .await?;
        match status {
            200 | 201 => serde_json::from_slice(&body).map_err(|e| FetchError::Http {
                status,
                message: format!("the claim answer is not readable: {e}"),
            }),
            410 => Err(FetchError::PaymentFailed(format!(
                "the offer expired before it was claimed: {}",
                brief(&body)
            ))),
            _ => Err(FetchError::Http {
                status,
                message: format!("claiming the contract: {}", brief(&body)),
            }),
        }
    }

    /// Makes sure a transfer for `p` is out (signing it, or sending the recorded one
    /// again, per [`resume_action`]); returns the entry as now recorded.
    async fn ensure_sent(
        &self,
        hash: &str,
        p: PendingPayment,
        chain: &mut Option<ChainPayer>,
    ) -> Result<PendingPayment, FetchError> {
        let Some(c) = self.chain_for(&p, chain).await? else {
            self.say("no payer key or --rpc: watching the payment status only");
            return Ok(p);
        };
        let action = match (&p.step, &p.tx_hash) {
            (PendingStep::Signed, Some(tx)) => {
                let on_chain = c.transaction(tx).await?;
                let confirmed = c.confirmed_nonce().await?;
                let received_nothing = match on_chain {
                    TxOnChain::Unknown => self.status(&p).await?.received_nothing(),
                    _ => false,
                };
                resume_action(&p, on_chain, confirmed, received_nothing)
            }
            _ => ResumeAction::Sign,
        };
        match action {
            ResumeAction::Watch => Ok(p),
            ResumeAction::Rebroadcast => {
                let t = signed_of(&p)?;
                c.broadcast(&t).await?;
                self.say(&format!(
                    "sent transfer {} again (same nonce: it cannot pay twice)",
                    t.tx_hash
                ));
                Ok(p)
            }
            ResumeAction::Reverted => {
                self.wallet.update(|w| {
                    if let Some(e) = w.pending.get_mut(hash) {
                        e.step = PendingStep::Claimed;
                    }
                    true
                })?;
                Err(FetchError::PaymentFailed(format!(
                    "transfer {} reverted (no tokens moved); run again to retry",
                    p.tx_hash.unwrap_or_default()
                )))
            }
            ResumeAction::Sign | ResumeAction::SignAgain => {
                if action == ResumeAction::SignAgain {
                    self.say("the recorded transfer can never be mined (its nonce was used); signing a new one");
                }
                self.sign_and_send(hash, p, c).await
            }
        }
    }

    /// A connected payer for `p`'s chain, connecting once; `None` without key or RPC
    /// (a signed payment can still be watched).
    async fn chain_for<'c>(
        &self,
        p: &PendingPayment,
        chain: &'c mut Option<ChainPayer>,
    ) -> Result<Option<&'c ChainPayer>, FetchError> {
        if chain.is_none() {
            let (Some(key), Some(rpc)) = (&self.key, &self.rpc_url) else {
                if p.step == PendingStep::Claimed {
                    return Err(FetchError::Usage(format!(
                        "payment {} was claimed but not sent: paying needs {} and --rpc",
                        p.payment_id,
                        super::chain::PAYER_KEY_ENV
                    )));
                }
                return Ok(None);
            };
            *chain = Some(ChainPayer::connect(rpc, key, p.chain_id).await?);
        }
        Ok(chain.as_ref())
    }

    /// Under the wallet lock: re-reads the entry (another run may have signed it),
    /// checks the price against `--max`, signs with the next nonce and records it;
    /// then broadcasts.
    async fn sign_and_send(
        &self,
        hash: &str,
        p: PendingPayment,
        c: &ChainPayer,
    ) -> Result<PendingPayment, FetchError> {
        let amount: u128 = p
            .amount_base_units
            .parse()
            .map_err(|_| FetchError::Usage("the wallet's amount is not a number".into()))?;
        let over_max = match &self.max {
            Some(m) => amount > m.base_units(p.decimals)?.0,
            None => true,
        };
        if over_max {
            return Err(FetchError::PriceAboveMax {
                resource: p.resource.clone(),
                price: p.amount.clone(),
                max: self.max.as_ref().map(|m| m.as_str().to_string()),
            });
        }
        let token: Address = p
            .token
            .parse()
            .map_err(|_| FetchError::Usage("the wallet's token is not an address".into()))?;
        let to: Address = p
            .address
            .parse()
            .map_err(|_| FetchError::Usage("the wallet's address is not an address".into()))?;
        let lock = self.wallet.lock()?;
        let mut data = self.wallet.load()?;
        let Some(current) = data.pending.get(hash).cloned() else {
            return Err(FetchError::Usage(format!(
                "payment {} vanished from the wallet",
                p.payment_id
            )));
        };
        if current.step == PendingStep::Signed && current.tx_hash != p.tx_hash {
            // Another run signed meanwhile: follow its transfer.
            return Ok(current);
        }
        let nonce = c.next_nonce().await?;
        let t = c.sign_transfer(token, to, amount, nonce).await?;
        let mut next = current;
        next.step = PendingStep::Signed;
        next.payer = Some(c.payer().to_string());
        next.nonce = Some(t.nonce);
        next.tx_hash = Some(t.tx_hash.clone());
        next.raw_tx = Some(t.raw.clone());
        data.pending.insert(hash.to_string(), next.clone());
        self.wallet.save(&lock, &data)?;
        drop(lock);
        c.broadcast(&t).await?;
        self.say(&format!("sent transfer {} (nonce {})", t.tx_hash, t.nonce));
        Ok(next)
    }

    async fn status(&self, p: &PendingPayment) -> Result<Status, FetchError> {
        let resp = self
            .http
            .get(&p.status_url)
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(FetchError::from_http)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(FetchError::from_http)?;
        if status != 200 {
            return Err(FetchError::Http {
                status,
                message: format!("payment status: {}", brief(&body)),
            });
        }
        serde_json::from_slice(&body).map_err(|e| FetchError::Http {
            status,
            message: format!("payment status is not readable: {e}"),
        })
    }

    /// Polls the payment's status until it unlocks, saying each change; a final
    /// failure state is an error (and a payment nothing was sent for is dropped from
    /// the wallet).
    async fn wait_paid(
        &self,
        hash: &str,
        p: &PendingPayment,
        chain: Option<&ChainPayer>,
    ) -> Result<(), FetchError> {
        let mut last = String::new();
        let mut failures = 0;
        let mut polls: u64 = 0;
        loop {
            let s = match self.status(p).await {
                Ok(s) => {
                    failures = 0;
                    s
                }
                Err(e @ (FetchError::Network(_) | FetchError::Http { .. })) => {
                    failures += 1;
                    if failures >= MAX_POLL_FAILURES {
                        return Err(e);
                    }
                    tokio::time::sleep(self.poll).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let line = match s.state.as_str() {
                "new" => "waiting for the transfer to be seen".to_string(),
                "seen" | "confirming" => format!(
                    "seen on chain: confirmations {}/{}",
                    s.confirmations, s.required_confirmations
                ),
                other => format!("payment {other}"),
            };
            if line != last {
                self.say(&line);
                last = line;
            }
            match s.state.as_str() {
                "paid" | "paid_late" => return Ok(()),
                "expired" | "underpaid" | "refunded" => {
                    let nothing_sent = p.tx_hash.is_none();
                    if nothing_sent || s.state != "expired" {
                        self.wallet.update(|w| w.pending.remove(hash).is_some())?;
                    }
                    return Err(FetchError::PaymentFailed(format!(
                        "payment {} is {} (received {} of {} 0xBTC)",
                        p.payment_id, s.state, s.received, s.amount
                    )));
                }
                _ => {}
            }
            polls += 1;
            if let (Some(c), Some(tx), "new") = (chain, &p.tx_hash, s.state.as_str()) {
                if polls % 10 == 0
                    && c.transaction(tx).await? == (TxOnChain::Mined { success: false })
                {
                    return Err(FetchError::PaymentFailed(format!(
                        "transfer {tx} reverted (no tokens moved); run again to retry"
                    )));
                }
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// `POST {receipt_url} {"claim_token"}`; stores the receipt and drops the payment
    /// in progress, in one write.
    async fn obtain_receipt(
        &self,
        hash: &str,
        p: &PendingPayment,
    ) -> Result<(String, StoredReceipt), FetchError> {
        let mut attempts = 0;
        let answer: ReceiptAnswer = loop {
            let (status, body) = self
                .post_json(&p.receipt_url, json!({ "claim_token": p.claim_token }))
                .await?;
            match status {
                200 => {
                    break serde_json::from_slice(&body).map_err(|e| FetchError::Http {
                        status,
                        message: format!("the receipt answer is not readable: {e}"),
                    })?
                }
                409 if attempts < 20 => {
                    attempts += 1;
                    tokio::time::sleep(self.poll).await;
                }
                _ => {
                    return Err(FetchError::Http {
                        status,
                        message: format!("fetching the receipt: {}", brief(&body)),
                    })
                }
            }
        };
        if !answer.contract_hash.eq_ignore_ascii_case(hash) {
            return Err(FetchError::ContractRefused(format!(
                "the receipt is for contract {}, not {hash}",
                answer.contract_hash
            )));
        }
        let stored = StoredReceipt {
            origin: p.origin.clone(),
            merchant: p.merchant.clone(),
            resource: p.resource.clone(),
            scope: match &answer.scope {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            },
            receipt: answer.receipt.clone(),
            expires_at: answer.expires_at,
            payment_id: answer.payment_id.clone(),
        };
        self.wallet.update(|w| {
            w.pending.remove(hash);
            w.receipts.insert(hash.to_string(), stored.clone());
            true
        })?;
        self.say(&format!(
            "paid: receipt stored in {} (expires at {})",
            self.wallet.path().display(),
            crate::pages::iso_utc(stored.expires_at)
        ));
        Ok((answer.receipt, stored))
    }
}

/// `GET /{id}/status.json`, as far as waiting needs it.
#[derive(Debug, Deserialize)]
struct Status {
    state: String,
    #[serde(default)]
    confirmations: u64,
    #[serde(default)]
    required_confirmations: u64,
    #[serde(default)]
    received: String,
    #[serde(default)]
    amount: String,
}

impl Status {
    fn received_nothing(&self) -> bool {
        self.state == "new" && self.received.trim_start_matches(['0', '.']).is_empty()
    }
}

/// `POST /{id}/receipt`'s answer.
#[derive(Deserialize)]
struct ReceiptAnswer {
    receipt: String,
    payment_id: String,
    contract_hash: String,
    scope: serde_json::Value,
    expires_at: u64,
}

fn pending_from(origin: &str, offer: &VerifiedOffer, ins: &Instructions) -> PendingPayment {
    let t = &offer.terms;
    PendingPayment {
        origin: origin.to_string(),
        merchant: t.merchant.clone(),
        resource: t.resource.clone(),
        scope: t.scope_string(),
        payment_id: ins.payment_id.clone(),
        claim_token: ins.claim_token.clone(),
        address: ins.address.clone().unwrap_or_default(),
        amount: t.amount.clone(),
        amount_base_units: offer.price.0.to_string(),
        decimals: t.decimals,
        chain_id: t.chain_id,
        token: t.token.clone(),
        status_url: ins.status_url.clone(),
        receipt_url: ins.receipt_url.clone(),
        expires_at: ins.expires_at,
        access_ttl: t.access_ttl,
        step: PendingStep::Claimed,
        payer: None,
        nonce: None,
        tx_hash: None,
        raw_tx: None,
    }
}

fn signed_of(p: &PendingPayment) -> Result<super::chain::SignedTransfer, FetchError> {
    match (p.nonce, &p.tx_hash, &p.raw_tx) {
        (Some(nonce), Some(tx_hash), Some(raw)) => Ok(super::chain::SignedTransfer {
            nonce,
            tx_hash: tx_hash.clone(),
            raw: raw.clone(),
        }),
        _ => Err(FetchError::Usage(format!(
            "payment {} has no signed transfer recorded",
            p.payment_id
        ))),
    }
}

fn summary(hash: &str, r: &StoredReceipt) -> ReceiptSummary {
    ReceiptSummary {
        contract_hash: hash.to_string(),
        scope: r.scope.clone(),
        expires_at: r.expires_at,
    }
}

/// The start of a response body for an error message, redacted (a body may echo
/// a claim token or a receipt).
fn brief(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let cut: String = text.chars().take(300).collect();
    crate::redact::redact(&cut).into_owned()
}
