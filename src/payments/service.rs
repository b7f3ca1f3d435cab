//! The payment service: claims contracts, reports status, issues receipts, and
//! answers "is this receipt's contract paid?" from the moka cache in front of the
//! durable store.
//!
//! The cache holds confirmed facts only (paid contract hashes with their scope and
//! expiry), keyed by the full contract hash; everything else is read from the store.
//! On a fleet (PostgreSQL) the facts another instance takes back reach this cache
//! through [`crate::payments::listener`]; while it is not listening the cache is
//! bypassed.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use moka::sync::Cache;

use crate::config::{Config, StoreBackend};
use crate::contract::Offer;
use crate::keys::{mac, verify_mac, Keys};
use crate::limits::budget::Budget;
use crate::payments::state::PaymentState;
use crate::receipt::{self, ReceiptClaims};
use crate::store::{NewPayment, Payment, StateChange, Store, StoreError};

/// A confirmed fact: this contract hash is paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidFact {
    /// What it unlocks.
    pub scope: String,
    /// Payment id.
    pub pid: String,
    /// UNIX seconds when it became paid.
    pub paid_at: u64,
    /// Receipt lifetime.
    pub access_ttl_secs: u64,
    /// For a basket payment: the `unlocks` patterns of the products a later paid
    /// basket refunded (its receipt no longer opens them).
    pub revoked: Vec<String>,
}

/// Why a claim failed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The token does not verify.
    #[error("{0}")]
    BadToken(#[from] crate::contract::TokenError),
    /// Past `pay_deadline`.
    #[error("this contract expired; fetch a fresh offer")]
    Expired,
    /// The contract is for another chain or token than this tollgate watches.
    #[error("this contract is for another chain or token than this tollgate watches")]
    WrongChain,
    /// Too many new payments from this client.
    #[error("too many new payments from this address; try again later")]
    RateLimited {
        /// Seconds until the client's budget is renewed.
        retry_after: u64,
    },
    /// Someone else claimed this contract first, and the request does not prove it is
    /// them (no matching claim token or claim cookie): buy your own at the offer.
    #[error("this contract was claimed by someone else; get your own offer")]
    AlreadyClaimed {
        /// The contract's resource (for the offer URL).
        resource: String,
    },
    /// Store or derivation failure: fail closed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// A claimed payment as returned by `POST /pay`.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The payment.
    pub payment: Payment,
    /// The bearer secret that fetches its receipt.
    pub claim_token: String,
    /// Whether this call created it.
    pub created: bool,
}

/// What a claim request presents to prove it is the claimer of an already-claimed
/// contract: a claim token in its body, and the claim cookies it carries (payment id
/// from the cookie name, claim token as the value).
#[derive(Debug, Clone, Default)]
pub struct ClaimProof<'a> {
    /// `claim_token` from the request body.
    pub token: Option<&'a str>,
    /// `(payment id, claim token)` of every `tollgate_claim_<id>` cookie.
    pub cookies: Vec<(&'a str, &'a str)>,
}

impl ClaimProof<'_> {
    /// True when this proves the claim of payment `pid` (MACs checked in constant time).
    pub fn proves(&self, keys: &Keys, pid: &str) -> bool {
        let cookie = self
            .cookies
            .iter()
            .find(|(id, _)| *id == pid)
            .map(|(_, t)| *t);
        [self.token, cookie]
            .into_iter()
            .flatten()
            .any(|t| PaymentService::claim_token_ok(keys, pid, t))
    }
}

/// Derives the receiving address (EIP-55) of child `index` of the account xpub.
pub type Derive = Arc<dyn Fn(u32) -> Result<String, String> + Send + Sync>;

/// The payment engine shared by the proxy, the endpoints and the watcher.
pub struct PaymentService {
    /// The durable store.
    pub store: Arc<dyn Store>,
    derive: Derive,
    cache: Cache<[u8; 32], PaidFact>,
    write_budget: Budget,
    /// Bumped before every cache invalidation, so a reader that raced a reorg
    /// drops the stale fact it just cached.
    revision: AtomicU64,
    /// True while the cache is neither read nor filled: on a fleet, until the
    /// paid-fact listener listens (a change another instance commits meanwhile
    /// would not reach the cache).
    bypass: AtomicBool,
}

impl PaymentService {
    /// Builds the service over `store`.
    pub async fn new(
        cfg: &Config,
        store: Arc<dyn Store>,
        derive: Derive,
    ) -> Result<PaymentService, StoreError> {
        Ok(PaymentService {
            store,
            derive,
            cache: Cache::builder()
                .max_capacity(cfg.store.cache_capacity)
                .build(),
            write_budget: Budget::new(cfg.payments.claim_rate),
            revision: AtomicU64::new(0),
            // Another instance may take a fact back: not before the listener listens.
            bypass: AtomicBool::new(matches!(cfg.store.backend, StoreBackend::Postgres(_))),
        })
    }

    /// The payment id for a contract hash (deterministic, so claims are idempotent).
    pub fn payment_id(keys: &Keys, hash: &[u8; 32]) -> String {
        hex::encode(&mac(&keys.claim, &[b"pid", hash])[..8])
    }

    /// The claim token for a payment id.
    pub fn claim_token(keys: &Keys, pid: &str) -> String {
        B64.encode(mac(&keys.claim, &[b"claim", pid.as_bytes()]))
    }

    /// Checks a claim token in constant time.
    pub fn claim_token_ok(keys: &Keys, pid: &str, token: &str) -> bool {
        B64.decode(token.trim())
            .is_ok_and(|t| verify_mac(&keys.claim, &[b"claim", pid.as_bytes()], &t))
    }

    /// How many paid facts the contract-hash cache holds (approximate; for metrics).
    pub fn cache_entries(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Spends one unit of the client's budget of new store records (claims, new
    /// baskets, Web Monetization verifications: `[payments] claim_rate` per IPv4
    /// address or IPv6 /64, [`Budget`]); `Err(seconds)` to wait when it is used up.
    pub fn spend_write_budget(&self, ip: Option<IpAddr>, now: u64) -> Result<(), u64> {
        match ip {
            Some(ip) => self.write_budget.spend(ip, now),
            None => Ok(()),
        }
    }

    /// Claims the contract in `token` for a client at `ip` (SPEC `POST /pay`).
    ///
    /// The claim token is the claimer's secret (invariant 10): a contract that is
    /// already claimed — found in the store, or claimed by a concurrent request that
    /// won the store's atomic claim — is answered (idempotently, even after the
    /// deadline) only when `proof` (the claim token in the request's body, or its
    /// claim cookie) is that payment's claim token; otherwise
    /// [`ClaimError::AlreadyClaimed`]. Nothing public (the contract token, a shared
    /// fulfillment URL) yields it.
    pub async fn claim(
        &self,
        cfg: &Config,
        keys: &Keys,
        token: &str,
        proof: &ClaimProof<'_>,
        ip: Option<IpAddr>,
        now: u64,
    ) -> Result<Claimed, ClaimError> {
        let offer = Offer::from_token(keys, token)?;
        if offer.params.chain_id != cfg.chain.chain_id || offer.params.token != cfg.chain.token {
            return Err(ClaimError::WrongChain);
        }
        let hash = offer.hash.0;
        let pid = Self::payment_id(keys, &hash);
        let repeat = |payment: Payment| {
            if proof.proves(keys, &payment.id) {
                Ok(Claimed {
                    claim_token: Self::claim_token(keys, &payment.id),
                    payment,
                    created: false,
                })
            } else {
                Err(ClaimError::AlreadyClaimed {
                    resource: offer.params.resource.clone(),
                })
            }
        };
        if let Some(p) = self.store.payment_by_contract(&hash).await? {
            return repeat(p);
        }
        if offer.expired(now) {
            return Err(ClaimError::Expired);
        }
        if let Err(retry_after) = self.spend_write_budget(ip, now) {
            return Err(ClaimError::RateLimited { retry_after });
        }
        let new = NewPayment {
            id: pid.clone(),
            contract_hash: Some(hash),
            contract_token: Some(offer.token.clone()),
            scope: Some(offer.params.scope.clone()),
            amount: offer.params.price,
            required_confirmations: offer.params.confirmations,
            access_ttl_secs: offer.params.access_ttl,
            created_at: now,
            expires_at: offer.params.pay_deadline,
            data: None,
            postback_url: None,
        };
        let derive = |i: u32| (self.derive)(i);
        let (payment, created) = self.store.claim(new, &derive).await?;
        if !created {
            // A concurrent claim won the store's atomic claim: it is theirs.
            return repeat(payment);
        }
        Ok(Claimed {
            claim_token: Self::claim_token(keys, &payment.id),
            payment,
            created,
        })
    }

    /// Creates a gateway payment (no contract): a random 16-hex id, the next index.
    /// `data` is stored as JSON text; `postback_url` must already be checked.
    pub async fn start_payment(
        &self,
        cfg: &Config,
        amount: crate::amount::Amount,
        data: Option<&serde_json::Value>,
        postback_url: Option<&str>,
        now: u64,
    ) -> Result<Payment, StoreError> {
        let mut last = StoreError::Conflict("no id".into());
        for _ in 0..4 {
            let mut id = [0u8; 8];
            getrandom::getrandom(&mut id)
                .map_err(|e| StoreError::Unavailable(format!("rng: {e}")))?;
            let new = NewPayment {
                id: hex::encode(id),
                contract_hash: None,
                contract_token: None,
                scope: None,
                amount,
                required_confirmations: cfg.chain.confirmations,
                access_ttl_secs: cfg.payments.access_ttl_secs,
                created_at: now,
                expires_at: now.saturating_add(cfg.payments.expiry_secs),
                data: data.map(|d| d.to_string()),
                postback_url: postback_url.map(str::to_string),
            };
            let derive = |i: u32| (self.derive)(i);
            match self.store.claim(new, &derive).await {
                Ok((payment, _)) => return Ok(payment),
                Err(StoreError::Conflict(e)) => last = StoreError::Conflict(e),
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Is the contract `hash` paid? Cache first, then the store (a paid answer is
    /// cached). `Err` means the store is unreachable: the caller fails closed.
    /// While the cache is bypassed, the store alone answers.
    pub async fn paid_fact(&self, hash: &[u8; 32]) -> Result<Option<PaidFact>, StoreError> {
        let before = self.revision.load(Ordering::SeqCst);
        let cached = !self.bypass.load(Ordering::SeqCst);
        if cached {
            if let Some(f) = self.cache.get(hash) {
                return Ok(Some(f));
            }
        }
        let fact = self.read_fact(hash).await?;
        let (true, Some(f)) = (cached, &fact) else {
            return Ok(fact);
        };
        self.cache.insert(*hash, f.clone());
        if self.revision.load(Ordering::SeqCst) != before {
            // A reorg, a refund or a lost listener may have changed it after our
            // read: drop what we cached and answer from a fresh read, uncached.
            self.cache.invalidate(hash);
            return self.read_fact(hash).await;
        }
        Ok(fact)
    }

    /// The paid fact of `hash` in the store: a contract payment's, else a Web
    /// Monetization unlock's (never revoked).
    async fn read_fact(&self, hash: &[u8; 32]) -> Result<Option<PaidFact>, StoreError> {
        if let Some(p) = self.store.payment_by_contract(hash).await? {
            return self.fact_for(&p).await;
        }
        Ok(self.store.wm_unlock(hash).await?.map(|u| PaidFact {
            scope: u.scope,
            pid: u.id,
            paid_at: u.created_at,
            access_ttl_secs: u.access_ttl_secs,
            revoked: Vec::new(),
        }))
    }

    /// The payment for a contract hash (uncached: for "still confirming" answers).
    pub async fn payment_by_contract(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<Payment>, StoreError> {
        self.store.payment_by_contract(hash).await
    }

    /// The paid fact of a contract payment that unlocks; `None` otherwise, and for
    /// a basket payment all of whose products were refunded.
    async fn fact_for(&self, p: &Payment) -> Result<Option<PaidFact>, StoreError> {
        let (true, Some(_), Some(scope), Some(paid_at)) = (
            p.state.unlocks(),
            p.contract_hash,
            p.scope.clone(),
            p.paid_at,
        ) else {
            return Ok(None);
        };
        let mut revoked = Vec::new();
        if scope.starts_with('[') {
            let bought = self.store.purchases(&p.id).await?;
            if !bought.is_empty() && bought.iter().all(|b| b.refunded) {
                return Ok(None);
            }
            revoked = bought
                .into_iter()
                .filter(|b| b.refunded)
                .flat_map(|b| b.unlocks)
                .collect();
        }
        Ok(Some(PaidFact {
            scope,
            pid: p.id.clone(),
            paid_at,
            access_ttl_secs: p.access_ttl_secs,
            revoked,
        }))
    }

    /// The state a payer sees: the stored state, except that a paid basket payment
    /// all of whose products a later paid basket refunded is `refunded`.
    pub async fn effective_state(&self, p: &Payment) -> Result<PaymentState, StoreError> {
        if p.state.unlocks() && p.scope.as_deref().is_some_and(|s| s.starts_with('[')) {
            let bought = self.store.purchases(&p.id).await?;
            if !bought.is_empty() && bought.iter().all(|b| b.refunded) {
                return Ok(PaymentState::Refunded);
            }
        }
        Ok(p.state)
    }

    /// Applies state changes from the watcher (or a challenge answer) to the cache:
    /// facts whose payment moved are dropped (the next read caches them afresh), and
    /// so are the facts of payments a basket payment refunds, when it becomes paid or
    /// stops being paid (a reorg).
    pub async fn on_changes(&self, changes: &[StateChange]) {
        for c in changes {
            let p = &c.payment;
            let mut stale: Vec<[u8; 32]> = p.contract_hash.into_iter().collect();
            if p.state.unlocks() != c.from.unlocks() {
                match self.store.refunded_by(&p.id).await {
                    Ok(hashes) => stale.extend(hashes),
                    Err(e) => {
                        // Cannot tell which facts a refund changed: forget them all.
                        tracing::error!(error = %e, "store unavailable: emptying the paid cache");
                        self.forget_all();
                    }
                }
            }
            self.forget(&stale);
            tracing::info!(payment = %p.id, from = c.from.as_str(), to = p.state.as_str(), received = %p.received.0, "payment state");
        }
    }

    /// Drops the cached facts of `hashes` (their payments changed, here or on
    /// another instance of a fleet); a read racing this does not keep what it read.
    pub fn forget(&self, hashes: &[[u8; 32]]) {
        self.revision.fetch_add(1, Ordering::SeqCst);
        for h in hashes {
            self.cache.invalidate(h);
        }
    }

    /// Drops every cached fact; a read racing this does not keep what it read.
    pub fn forget_all(&self) {
        self.revision.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate_all();
    }

    /// Empties the cache and stops using it (no hits, no inserts) until
    /// [`Self::use_cache`]: the paid-fact listener lost its connection, so a
    /// change another instance commits would not reach the cache.
    pub fn bypass_cache(&self) {
        self.bypass.store(true, Ordering::SeqCst);
        self.forget_all();
    }

    /// Empties the cache again and uses it from now on: the paid-fact listener
    /// listens (every change committed from now on reaches the cache).
    pub fn use_cache(&self) {
        self.forget_all();
        self.bypass.store(false, Ordering::SeqCst);
    }

    /// Whether the cache is bypassed (see [`Self::bypass_cache`]).
    pub fn cache_bypassed(&self) -> bool {
        self.bypass.load(Ordering::SeqCst)
    }

    /// The receipt for a paid payment, or its state when it is not paid.
    pub fn receipt_for(
        &self,
        keys: &Keys,
        p: &Payment,
    ) -> Result<(String, ReceiptClaims), PaymentState> {
        let (Some(hash), Some(scope), Some(paid_at)) =
            (p.contract_hash, p.scope.clone(), p.paid_at)
        else {
            return Err(p.state);
        };
        if !p.state.unlocks() {
            return Err(p.state);
        }
        let claims = ReceiptClaims {
            h: hex::encode(hash),
            scope,
            exp: paid_at.saturating_add(p.access_ttl_secs),
            pid: p.id.clone(),
        };
        Ok((receipt::mint(keys, &claims), claims))
    }
}

/// The EIP-681 URI for an ERC-20 transfer of `amount` base units to `to`.
pub fn eip681(token: &str, chain_id: u64, to: &str, amount: u128) -> String {
    format!("ethereum:{token}@{chain_id}/transfer?address={to}&uint256={amount}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{basket, BlockRef, ScanBatch, StoreResult, Transfer};
    use async_trait::async_trait;

    /// A store whose every call fails, as an unreachable database does.
    struct DownStore;

    fn down<T>() -> StoreResult<T> {
        Err(StoreError::Unavailable("connection refused".into()))
    }

    #[async_trait]
    impl Store for DownStore {
        async fn claim(
            &self,
            _: NewPayment,
            _: &(dyn Fn(u32) -> Result<String, String> + Send + Sync),
        ) -> StoreResult<(Payment, bool)> {
            down()
        }
        async fn payment(&self, _: &str) -> StoreResult<Option<Payment>> {
            down()
        }
        async fn payment_by_contract(&self, _: &[u8; 32]) -> StoreResult<Option<Payment>> {
            down()
        }

        async fn apply_scan(&self, _: ScanBatch) -> StoreResult<Vec<StateChange>> {
            down()
        }
        async fn refresh(&self, _: u64, _: u64, _: u64) -> StoreResult<Vec<StateChange>> {
            down()
        }
        async fn revert_to(&self, _: u64, _: u64, _: u64, _: u64) -> StoreResult<Vec<StateChange>> {
            down()
        }
        async fn checkpoint(&self, _: u64) -> StoreResult<Option<BlockRef>> {
            down()
        }
        async fn recent_blocks(&self, _: u64, _: usize) -> StoreResult<Vec<BlockRef>> {
            down()
        }
        async fn transfers_of(&self, _: &str) -> StoreResult<Vec<Transfer>> {
            down()
        }
        async fn all_payments(&self) -> StoreResult<Vec<Payment>> {
            down()
        }
        async fn payment_totals(&self) -> StoreResult<Vec<crate::store::StateTotal>> {
            down()
        }
        async fn due_deliveries(
            &self,
            _: u64,
            _: usize,
        ) -> StoreResult<Vec<crate::store::Delivery>> {
            down()
        }
        async fn record_attempt(
            &self,
            _: &str,
            _: u64,
            _: crate::store::AttemptOutcome,
        ) -> StoreResult<()> {
            down()
        }
        async fn deliveries(&self, _: usize) -> StoreResult<Vec<crate::store::Delivery>> {
            down()
        }
        async fn redeliver(&self, _: &str, _: u64) -> StoreResult<bool> {
            down()
        }
        async fn record_provisional(
            &self,
            _: Vec<Transfer>,
            _: u64,
            _: u64,
        ) -> StoreResult<Vec<StateChange>> {
            down()
        }
    }

    #[async_trait]
    impl crate::store::BasketStore for DownStore {
        async fn create_basket(&self, _: basket::NewBasket) -> StoreResult<()> {
            down()
        }
        async fn basket(&self, _: &str) -> StoreResult<Option<basket::Basket>> {
            down()
        }
        async fn basket_by_secret(&self, _: &[u8; 32]) -> StoreResult<Option<basket::Basket>> {
            down()
        }
        async fn put_line(
            &self,
            _: &str,
            _: u64,
            _: basket::BasketLine,
            _: u64,
        ) -> StoreResult<basket::BasketWrite> {
            down()
        }
        async fn lock_basket(
            &self,
            _: &str,
            _: u64,
            _: &str,
            _: &str,
            _: u64,
        ) -> StoreResult<basket::BasketWrite> {
            down()
        }
        async fn set_basket_payment(&self, _: &str, _: &str) -> StoreResult<()> {
            down()
        }
        async fn release_basket(&self, _: &str) -> StoreResult<()> {
            down()
        }
        async fn release_expired_baskets(&self, _: u64) -> StoreResult<u64> {
            down()
        }
        async fn purchases(&self, _: &str) -> StoreResult<Vec<basket::Purchase>> {
            down()
        }
        async fn refunded_by(&self, _: &str) -> StoreResult<Vec<[u8; 32]>> {
            down()
        }
    }

    #[async_trait]
    impl crate::store::WmStore for DownStore {
        async fn wm_credit(
            &self,
            _: &str,
            _: &str,
            _: u128,
            _: u128,
            _: crate::store::wm::NewWmUnlock,
            _: u64,
        ) -> StoreResult<crate::store::wm::WmCredit> {
            down()
        }
        async fn wm_unlock(&self, _: &[u8; 32]) -> StoreResult<Option<crate::store::wm::WmUnlock>> {
            down()
        }
    }

    fn cfg() -> Config {
        let text = "[server]\npublic_url = \"https://x.example\"\nupstream = \"127.0.0.1:1\"\n[secrets]\nreceipt_key_env = \"K\"\n";
        crate::config::parse(std::path::Path::new("t"), text, &|_| Some("00".repeat(32))).unwrap()
    }

    // Rules out: a fact forgotten (a fleet's notification) or bypassed (a fleet's
    // listener lost) still being answered from the cache, and facts read while
    // bypassed being cached.
    #[tokio::test]
    async fn forgotten_and_bypassed_facts_come_from_the_store() {
        let path = std::env::temp_dir().join(format!(
            "tollgate-service-unit-{}-{}.db",
            std::process::id(),
            line!()
        ));
        let store = Arc::new(crate::store::sqlite::SqliteStore::open(&path).unwrap());
        let derive: Derive = Arc::new(|i| Ok(format!("0x{i:040x}")));
        let svc = PaymentService::new(&cfg(), store, derive).await.unwrap();
        const H: [u8; 32] = [9; 32];
        let nothing_due = NewPayment {
            id: "00000000000000a9".into(),
            contract_hash: Some(H),
            contract_token: None,
            scope: Some("/x".into()),
            amount: crate::amount::Amount(0),
            required_confirmations: 1,
            access_ttl_secs: 60,
            created_at: 100,
            expires_at: 200,
            data: None,
            postback_url: None,
        };
        let (p, _) = svc
            .store
            .claim(nothing_due, &|i| Ok(format!("0x{i:040x}")))
            .await
            .unwrap();
        assert!(p.state.unlocks());
        // Another instance's writes, behind this service's back.
        let other = rusqlite::Connection::open(&path).unwrap();
        let set = |state: &str| {
            other
                .execute("UPDATE payments SET state = ?1", [state])
                .unwrap();
        };
        async fn paid(svc: &PaymentService) -> bool {
            svc.paid_fact(&H).await.unwrap().is_some()
        }
        assert!(
            !svc.cache_bypassed(),
            "SQLite: one instance, the cache is used"
        );
        assert!(paid(&svc).await);
        set("new");
        assert!(paid(&svc).await, "cached");
        svc.forget(&[H]);
        assert!(!paid(&svc).await, "forgotten: read again");
        set("paid");
        assert!(paid(&svc).await);
        svc.bypass_cache();
        set("new");
        assert!(!paid(&svc).await, "bypassed: the store answers");
        set("paid");
        assert!(paid(&svc).await);
        set("new");
        assert!(!paid(&svc).await, "bypassed: nothing was cached");
        set("paid");
        svc.use_cache();
        assert!(paid(&svc).await);
        set("new");
        assert!(paid(&svc).await, "cached again");
        drop(other);
        let _ = std::fs::remove_file(&path);
    }

    // Rules out: an unreachable store being read as "not paid" or as "paid".
    #[tokio::test]
    async fn store_outage_is_an_error_not_an_answer() {
        let cfg = cfg();
        let derive: Derive = Arc::new(|i| Ok(format!("0x{i:040x}")));
        let svc = PaymentService::new(&cfg, Arc::new(DownStore), derive)
            .await
            .unwrap();
        assert!(svc.paid_fact(&[7u8; 32]).await.is_err());
        let keys = Keys::derive(&cfg.secrets.receipt_key);
        let route = cfg.routes.lookup("/x");
        assert!(route.is_none());
        // A claim cannot be made either (it would need the store's atomic index).
        let offer_route = crate::config::Route {
            pattern: "/x".into(),
            methods: None,
            price: crate::amount::Amount(1),
            summary: "x".into(),
            scope: crate::config::Scope::Resource,
            access_ttl_secs: 60,
            confirmations: 1,
            wm_price: None,
            enforce: true,
        };
        let offer = Offer::mint(&cfg, &keys, &offer_route, "/x", [1; 16], 100);
        let err = svc
            .claim(&cfg, &keys, &offer.token, &ClaimProof::default(), None, 100)
            .await
            .unwrap_err();
        assert!(matches!(err, ClaimError::Store(_)), "{err:?}");
    }
}
