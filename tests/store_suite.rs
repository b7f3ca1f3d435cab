//! The store test suite.
//!
//! Every check in [`checks`] is written against the [`Store`] trait only, so it runs
//! unchanged against any implementation: each check takes an `Arc<dyn Store>` (a
//! fresh, empty database) or, when it must reopen the database, a [`Backend`].
//! Below the checks, one `#[tokio::test]` per check runs it against a fresh
//! [`SqliteStore`] on a temporary file, and one per check against a fresh
//! [`PostgresStore`] database on a throwaway cluster (`tests/support/postgres.rs`),
//! in module `postgres` (`postgres::<check>`). Another store plugs in by implementing [`Backend`] and adding
//! the same list of tests.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tollgate::store::postgres::PostgresStore;
use tollgate::store::sqlite::SqliteStore;
use tollgate::store::Store;

mod support;
use support::postgres::PgDatabase;

/// A database under test that can be opened more than once (to prove durability).
#[async_trait]
pub trait Backend: Send + Sync {
    /// Opens the backend's database; a second call reopens the same data.
    async fn open(&self) -> Arc<dyn Store>;
}

/// The store checks, each against any [`Store`].
pub mod checks {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use tokio::sync::Barrier;
    use tollgate::amount::Amount;
    use tollgate::payments::state::PaymentState;
    use tollgate::store::basket::{BasketLine, BasketState, BasketWrite, NewBasket};
    use tollgate::store::wm::{NewWmUnlock, WmCredit};
    use tollgate::store::{
        BlockRef, NewPayment, Payment, ScanBatch, StateChange, Store, StoreError, Transfer,
    };

    use super::Backend;

    /// The chain every check scans.
    pub const CHAIN: u64 = 1;

    /// Derives a distinct address per index (lowercase hex, like the EIP-55 form of
    /// an address with no letters).
    pub fn derive(i: u32) -> Result<String, String> {
        Ok(format!("0x{:040x}", u64::from(i) + 1))
    }

    /// Derives mixed-case addresses, as EIP-55 checksumming produces.
    pub fn derive_mixed_case(i: u32) -> Result<String, String> {
        Ok(format!("0xAbCdEf{:034x}", u64::from(i) + 1))
    }

    /// Always fails, like a broken xpub.
    pub fn derive_fails(_: u32) -> Result<String, String> {
        Err("no xpub".into())
    }

    /// A contract hash made of `b`.
    pub fn hash(b: u8) -> [u8; 32] {
        [b; 32]
    }

    /// A payment due: `amount` base units, `confirmations` deep, by `expires_at`.
    pub fn due(
        n: u64,
        contract: Option<u8>,
        amount: u128,
        confirmations: u64,
        expires_at: u64,
    ) -> NewPayment {
        NewPayment {
            id: format!("{n:016x}"),
            contract_hash: contract.map(hash),
            contract_token: contract.map(|b| format!("token-{b}")),
            scope: contract.map(|b| format!("/article/{b}")),
            amount: Amount(amount),
            required_confirmations: confirmations,
            access_ttl_secs: 86_400,
            created_at: 50,
            expires_at,
            data: Some(format!("{{\"order\":{n}}}")),
            postback_url: Some(format!("https://shop.example/postback/{n}")),
        }
    }

    /// The hash of block `n` on the original chain.
    pub fn block_hash(n: u64) -> String {
        format!("0x{:064x}", 0xb10c_0000_0000u64 + n)
    }

    /// The hash of block `n` on a competing fork.
    pub fn fork_hash(n: u64) -> String {
        format!("0x{:064x}", 0xf0c4_0000_0000u64 + n)
    }

    /// A transfer of `value` to `to` in transaction `tx`, at `block`.
    pub fn transfer(tx: u64, log_index: u64, block: u64, to: &str, value: u128) -> Transfer {
        Transfer {
            chain_id: CHAIN,
            tx_hash: format!("0x{tx:064x}"),
            log_index,
            block_number: block,
            block_hash: block_hash(block),
            to: to.to_string(),
            from: "0x1111111111111111111111111111111111111111".into(),
            value: Amount(value),
        }
    }

    /// A scan of the range ending at `checkpoint`, with the head at `head`.
    pub fn batch(transfers: Vec<Transfer>, checkpoint: u64, head: u64, now: u64) -> ScanBatch {
        ScanBatch {
            chain_id: CHAIN,
            transfers,
            checkpoint: BlockRef {
                number: checkpoint,
                hash: block_hash(checkpoint),
            },
            head,
            now,
        }
    }

    /// Claims a new payment (panics if the claim fails or returns an existing one).
    pub async fn claim(store: &dyn Store, new: NewPayment) -> Payment {
        let (p, created) = store.claim(new, &derive).await.expect("claim");
        assert!(created, "expected a new payment");
        p
    }

    /// The stored payment with `id`.
    pub async fn get(store: &dyn Store, id: &str) -> Payment {
        store
            .payment(id)
            .await
            .expect("payment")
            .expect("payment exists")
    }

    /// `(payment id, from, to)` of each change.
    pub fn moves(changes: &[StateChange]) -> Vec<(String, PaymentState, PaymentState)> {
        changes
            .iter()
            .map(|c| (c.payment.id.clone(), c.from, c.payment.state))
            .collect()
    }

    // Rules out: a second claim of the same contract creating a second payment (two
    // addresses for one purchase) or handing out a new derivation index.
    /// Claims are idempotent per contract hash; claims without a hash always create.
    pub async fn claim_is_idempotent_per_contract_hash(store: Arc<dyn Store>) {
        let (first, created) = store
            .claim(due(1, Some(7), 100, 1, 1000), &derive)
            .await
            .unwrap();
        assert!(created);
        assert_eq!(first.derivation_index, 0);
        assert_eq!(first.address, derive(0).unwrap());
        assert_eq!(first.state, PaymentState::New);
        assert_eq!(first.received, Amount::ZERO);
        assert_eq!(first.amount, Amount(100));
        assert_eq!(first.contract_hash, Some(hash(7)));
        assert_eq!(
            (first.paid_at, first.seen_at, first.tx_hash.clone()),
            (None, None, None)
        );

        // Same contract, even with other fields: the existing payment, unchanged.
        let (again, created) = store
            .claim(due(2, Some(7), 999, 5, 9), &derive)
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(again, first);

        let other = claim(&*store, due(3, Some(8), 100, 1, 1000)).await;
        assert_eq!(other.derivation_index, 1);
        let gw1 = claim(&*store, due(4, None, 100, 1, 1000)).await;
        let gw2 = claim(&*store, due(5, None, 100, 1, 1000)).await;
        assert_eq!((gw1.derivation_index, gw2.derivation_index), (2, 3));
        assert_eq!(gw1.contract_hash, None);

        assert_eq!(
            store.payment_by_contract(&hash(7)).await.unwrap(),
            Some(first.clone())
        );
        assert_eq!(store.payment_by_contract(&hash(9)).await.unwrap(), None);
        assert_eq!(store.payment(&first.id).await.unwrap(), Some(first.clone()));
        assert_eq!(store.payment("ffffffffffffffff").await.unwrap(), None);
        let all = store.all_payments().await.unwrap();
        let indexes: Vec<u32> = all.iter().map(|p| p.derivation_index).collect();
        assert_eq!(indexes, vec![0, 1, 2, 3]);
        assert!(all
            .iter()
            .any(|p| p.address == first.address && p.id == first.id));
    }

    // Rules out: two customers paying to the same address (a shared index or
    // address under concurrent claims), and a check-then-write race on the counter.
    /// 64 concurrent claims get the indexes 0..63 and 64 distinct addresses.
    pub async fn concurrent_claims_get_distinct_indexes(store: Arc<dyn Store>) {
        const N: usize = 64;
        let barrier = Arc::new(Barrier::new(N));
        let mut tasks = Vec::new();
        for i in 0..N {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let contract = Some(u8::try_from(i).unwrap());
                store
                    .claim(due(i as u64 + 1, contract, 100, 1, 1000), &derive)
                    .await
            }));
        }
        let mut indexes = Vec::new();
        let mut addresses = BTreeSet::new();
        for t in tasks {
            let (p, created) = t.await.unwrap().expect("claim");
            assert!(created);
            assert_eq!(p.address, derive(p.derivation_index).unwrap());
            indexes.push(p.derivation_index);
            addresses.insert(p.address);
        }
        indexes.sort_unstable();
        assert_eq!(indexes, (0..N as u32).collect::<Vec<_>>());
        assert_eq!(addresses.len(), N);
        assert_eq!(store.all_payments().await.unwrap().len(), N);
    }

    // Rules out: two tollgate processes sharing one database handing out the same
    // index (a counter read in one and written in the other).
    /// Concurrent claims through two handles on one database get distinct indexes.
    pub async fn claims_across_instances_get_distinct_indexes(backend: &dyn Backend) {
        const N: usize = 32;
        let stores = [backend.open().await, backend.open().await];
        let barrier = Arc::new(Barrier::new(N));
        let mut tasks = Vec::new();
        for i in 0..N {
            let store = Arc::clone(&stores[i % 2]);
            let barrier = Arc::clone(&barrier);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let contract = Some(u8::try_from(i).unwrap());
                store
                    .claim(due(i as u64 + 1, contract, 100, 1, 1000), &derive)
                    .await
            }));
        }
        let mut indexes = Vec::new();
        for t in tasks {
            let (p, created) = t.await.unwrap().expect("claim");
            assert!(created);
            assert_eq!(p.address, derive(p.derivation_index).unwrap());
            indexes.push(p.derivation_index);
        }
        indexes.sort_unstable();
        assert_eq!(indexes, (0..N as u32).collect::<Vec<_>>());
        for store in &stores {
            assert_eq!(store.all_payments().await.unwrap().len(), N);
        }
    }

    // Rules out: a race creating two payments for one contract when the same offer
    // is claimed from several tabs at once.
    /// Concurrent claims of one contract create exactly one payment.
    pub async fn concurrent_claims_of_one_contract_create_one_payment(store: Arc<dyn Store>) {
        const N: usize = 16;
        let barrier = Arc::new(Barrier::new(N));
        let mut tasks = Vec::new();
        for i in 0..N {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store
                    .claim(due(i as u64 + 1, Some(42), 100, 1, 1000), &derive)
                    .await
            }));
        }
        let mut created = 0;
        let mut ids = BTreeSet::new();
        for t in tasks {
            let (p, c) = t.await.unwrap().expect("claim");
            created += usize::from(c);
            ids.insert(p.id);
        }
        assert_eq!((created, ids.len()), (1, 1));
        assert_eq!(store.all_payments().await.unwrap().len(), 1);
    }

    // Rules out: a failed derivation being papered over (an empty or reused address)
    // or burning the index.
    /// A derivation failure is `Unavailable` and claims nothing.
    pub async fn derive_failure_claims_nothing(store: Arc<dyn Store>) {
        let r = store
            .claim(due(1, Some(1), 100, 1, 1000), &derive_fails)
            .await;
        assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
        assert!(store.all_payments().await.unwrap().is_empty());
        assert_eq!(store.payment_by_contract(&hash(1)).await.unwrap(), None);
        let p = claim(&*store, due(1, Some(1), 100, 1, 1000)).await;
        assert_eq!(p.derivation_index, 0);
    }

    // Rules out: a payment id silently overwritten by another contract's payment.
    /// Reusing a payment id for another contract is a `Conflict`.
    pub async fn duplicate_payment_id_is_a_conflict(store: Arc<dyn Store>) {
        let first = claim(&*store, due(1, Some(1), 100, 1, 1000)).await;
        let r = store.claim(due(1, Some(2), 100, 1, 1000), &derive).await;
        assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
        assert_eq!(store.all_payments().await.unwrap(), vec![first]);
        // The failed claim did not burn or break the counter.
        assert_eq!(
            claim(&*store, due(2, Some(2), 100, 1, 1000))
                .await
                .derivation_index,
            1
        );
    }

    // Rules out: double crediting (a rescanned range paying twice) and one transfer
    // paying two contracts (the same log attributed to another address).
    /// A transfer credits one payment, once, ever.
    pub async fn same_transfer_cannot_pay_two_contracts(store: Arc<dyn Store>) {
        let a = claim(&*store, due(1, Some(1), 100, 1, 1000)).await;
        let b = claim(&*store, due(2, Some(2), 100, 1, 1000)).await;
        let t = transfer(1, 0, 10, &a.address, 100);
        let changes = store
            .apply_scan(batch(vec![t.clone()], 10, 10, 100))
            .await
            .unwrap();
        assert_eq!(
            moves(&changes),
            vec![(a.id.clone(), PaymentState::New, PaymentState::Paid)]
        );

        // The same log again (a rescanned range), then the same (tx_hash, log_index)
        // claiming to go to B, alone and after the genuine one.
        let mut forged = t.clone();
        forged.to = b.address.clone();
        for (n, transfers) in [
            vec![t.clone()],
            vec![forged.clone()],
            vec![t.clone(), forged.clone()],
        ]
        .into_iter()
        .enumerate()
        {
            let n = n as u64;
            let changes = store
                .apply_scan(batch(transfers, 11 + n, 11 + n, 110 + n))
                .await
                .unwrap();
            assert!(changes.is_empty(), "{changes:?}");
        }
        let a_now = get(&*store, &a.id).await;
        assert_eq!(a_now.received, Amount(100));
        assert_eq!(a_now.paid_at, Some(100));
        assert_eq!(store.transfers_of(&a.id).await.unwrap(), vec![t]);
        let b_now = get(&*store, &b.id).await;
        assert_eq!(
            (b_now.state, b_now.received),
            (PaymentState::New, Amount::ZERO)
        );
        assert!(store.transfers_of(&b.id).await.unwrap().is_empty());

        // Within one batch, a duplicated log credits once.
        let half = transfer(2, 3, 12, &b.address, 50);
        let changes = store
            .apply_scan(batch(vec![half.clone(), half.clone()], 14, 14, 120))
            .await
            .unwrap();
        assert_eq!(
            moves(&changes),
            vec![(b.id.clone(), PaymentState::New, PaymentState::Seen)]
        );
        assert_eq!(get(&*store, &b.id).await.received, Amount(50));
        assert_eq!(store.transfers_of(&b.id).await.unwrap(), vec![half]);
    }

    // Rules out: partial payments not being summed, unlocking before the required
    // depth, and paid_at moving (a receipt's start time changing) on later scans.
    /// Partial transfers sum to paid as the head advances; paid_at is set once.
    pub async fn partial_transfers_sum_to_paid(store: Arc<dyn Store>) {
        let p = claim(&*store, due(1, Some(1), 100, 3, 1000)).await;
        let first = transfer(1, 0, 10, &p.address, 40);
        let changes = store
            .apply_scan(batch(vec![first.clone()], 10, 10, 100))
            .await
            .unwrap();
        assert_eq!(
            moves(&changes),
            vec![(p.id.clone(), PaymentState::New, PaymentState::Seen)]
        );
        let seen = get(&*store, &p.id).await;
        assert_eq!(
            (seen.received, seen.seen_at, seen.paid_at),
            (Amount(40), Some(100), None)
        );
        assert_eq!(seen.tx_hash, Some(first.tx_hash.clone()));

        let second = transfer(2, 5, 12, &p.address, 60);
        let changes = store
            .apply_scan(batch(vec![second.clone()], 12, 12, 110))
            .await
            .unwrap();
        assert_eq!(
            moves(&changes),
            vec![(p.id.clone(), PaymentState::Seen, PaymentState::Confirming)]
        );
        let confirming = get(&*store, &p.id).await;
        assert_eq!(confirming.received, Amount(100));
        assert_eq!(confirming.confirmations, 1);
        assert_eq!(confirming.tx_hash, Some(second.tx_hash.clone()));
        assert!(!confirming.state.unlocks());

        assert!(store.refresh(CHAIN, 13, 120).await.unwrap().is_empty());
        assert_eq!(get(&*store, &p.id).await.confirmations, 2);

        let changes = store.refresh(CHAIN, 14, 130).await.unwrap();
        assert_eq!(
            moves(&changes),
            vec![(p.id.clone(), PaymentState::Confirming, PaymentState::Paid)]
        );
        assert_eq!(changes[0].payment, get(&*store, &p.id).await);
        let paid = get(&*store, &p.id).await;
        assert_eq!(
            (paid.paid_at, paid.confirmations, paid.seen_at),
            (Some(130), 3, Some(100))
        );

        // Later refreshes and scans neither report it again nor move paid_at.
        assert!(store.refresh(CHAIN, 20, 200).await.unwrap().is_empty());
        assert!(store
            .apply_scan(batch(vec![], 30, 30, 300))
            .await
            .unwrap()
            .is_empty());
        assert!(store.refresh(CHAIN, 5000, 5000).await.unwrap().is_empty());
        let later = get(&*store, &p.id).await;
        assert_eq!(
            (later.state, later.paid_at),
            (PaymentState::Paid, Some(130))
        );
        assert_eq!(later.tx_hash, Some(second.tx_hash.clone()));
        assert_eq!(
            store.transfers_of(&p.id).await.unwrap(),
            vec![first, second]
        );
    }

    // Rules out: unlocking content for less than the price (rounding, or treating
    // "expired with something received" as done).
    /// Less than the amount never unlocks; after expiry it is underpaid.
    pub async fn underpaid_stays_locked(store: Arc<dyn Store>) {
        let p = claim(&*store, due(1, Some(1), 100, 1, 1000)).await;
        store
            .apply_scan(batch(vec![transfer(1, 0, 10, &p.address, 99)], 10, 10, 500))
            .await
            .unwrap();
        assert_eq!(get(&*store, &p.id).await.state, PaymentState::Seen);
        let changes = store.refresh(CHAIN, 100, 1001).await.unwrap();
        assert_eq!(
            moves(&changes),
            vec![(p.id.clone(), PaymentState::Seen, PaymentState::Underpaid)]
        );
        for (head, now) in [(200, 2000), (10_000, 100_000)] {
            assert!(store.refresh(CHAIN, head, now).await.unwrap().is_empty());
            let u = get(&*store, &p.id).await;
            assert_eq!(
                (u.state, u.received, u.paid_at),
                (PaymentState::Underpaid, Amount(99), None)
            );
            assert!(!u.state.unlocks());
        }
    }

    // Rules out: dropping money that arrives after the deadline, and dropping it
    // when the range is scanned long after it was mined (far below the head).
    /// A payment completed after expiry is recorded as paid_late.
    pub async fn late_payment_is_recorded_as_paid_late(store: Arc<dyn Store>) {
        let p = claim(&*store, due(1, Some(1), 100, 1, 1000)).await;
        let changes = store.refresh(CHAIN, 10, 1001).await.unwrap();
        assert_eq!(
            moves(&changes),
            vec![(p.id.clone(), PaymentState::New, PaymentState::Expired)]
        );

        // Mined at block 20 but scanned at head 10 000, after the deadline.
        let t = transfer(1, 0, 20, &p.address, 100);
        let changes = store
            .apply_scan(batch(vec![t.clone()], 2000, 10_000, 1500))
            .await
            .unwrap();
        assert_eq!(
            moves(&changes),
            vec![(p.id.clone(), PaymentState::Expired, PaymentState::PaidLate)]
        );
        let late = get(&*store, &p.id).await;
        assert_eq!((late.paid_at, late.received), (Some(1500), Amount(100)));
        assert_eq!(late.tx_hash, Some(t.tx_hash));
        assert!(late.state.unlocks());
        assert!(store.refresh(CHAIN, 10_001, 1600).await.unwrap().is_empty());
        assert_eq!(get(&*store, &p.id).await.paid_at, Some(1500));
    }

    // Rules out: expired payments staying claimable/unpaid forever as `new`, or
    // being reported as changing on every tick.
    /// Without transfers, a payment expires once.
    pub async fn expired_without_transfers(store: Arc<dyn Store>) {
        let p = claim(&*store, due(1, Some(1), 100, 1, 1000)).await;
        let other = claim(&*store, due(2, Some(2), 100, 1, 5000)).await;
        assert!(store.refresh(CHAIN, 10, 1000).await.unwrap().is_empty());
        let changes = store.refresh(CHAIN, 11, 1001).await.unwrap();
        assert_eq!(
            moves(&changes),
            vec![(p.id.clone(), PaymentState::New, PaymentState::Expired)]
        );
        assert!(store.refresh(CHAIN, 12, 2000).await.unwrap().is_empty());
        assert!(store
            .apply_scan(batch(vec![], 13, 13, 2100))
            .await
            .unwrap()
            .is_empty());
        let e = get(&*store, &p.id).await;
        assert_eq!(
            (e.state, e.received, e.paid_at),
            (PaymentState::Expired, Amount::ZERO, None)
        );
        assert_eq!(get(&*store, &other.id).await.state, PaymentState::New);
    }

    // Rules out: a payment staying paid after the block that paid it was reorged
    // away (content unlocked for money that never arrived), and a reverted range
    // refusing the transfers of the new fork.
    /// Reverting below the paying block moves the payment back; a new fork pays it.
    pub async fn reorg_revert_moves_paid_back(store: Arc<dyn Store>) {
        let p = claim(&*store, due(1, Some(1), 100, 2, 1000)).await;
        let bystander = claim(&*store, due(2, Some(2), 100, 1, 1000)).await;
        store.apply_scan(batch(vec![], 9, 9, 90)).await.unwrap();
        let old = transfer(1, 0, 10, &p.address, 100);
        let kept = transfer(2, 0, 8, &bystander.address, 100);
        let changes = store
            .apply_scan(batch(vec![old.clone(), kept.clone()], 11, 11, 110))
            .await
            .unwrap();
        assert_eq!(
            moves(&changes),
            vec![
                (p.id.clone(), PaymentState::New, PaymentState::Paid),
                (bystander.id.clone(), PaymentState::New, PaymentState::Paid),
            ]
        );
        assert_eq!(get(&*store, &p.id).await.paid_at, Some(110));

        let changes = store.revert_to(CHAIN, 9, 11, 120).await.unwrap();
        assert_eq!(
            moves(&changes),
            vec![(p.id.clone(), PaymentState::Paid, PaymentState::New)]
        );
        let back = get(&*store, &p.id).await;
        assert_eq!(changes[0].payment, back);
        assert_eq!(back.paid_at, None);
        assert_eq!(
            (back.received, back.seen_at, back.tx_hash.clone()),
            (Amount::ZERO, None, None)
        );
        assert_eq!(back.confirmations, 0);
        assert!(store.transfers_of(&p.id).await.unwrap().is_empty());
        assert_eq!(
            store.checkpoint(CHAIN).await.unwrap(),
            Some(BlockRef {
                number: 9,
                hash: block_hash(9)
            })
        );
        let recent: Vec<u64> = store
            .recent_blocks(CHAIN, 10)
            .await
            .unwrap()
            .iter()
            .map(|b| b.number)
            .collect();
        assert_eq!(recent, vec![9]);
        // The transfer below the ancestor is untouched.
        assert_eq!(get(&*store, &bystander.id).await.state, PaymentState::Paid);
        assert_eq!(store.transfers_of(&bystander.id).await.unwrap(), vec![kept]);

        // The new fork carries a different transfer: it pays.
        let mut new = transfer(3, 1, 10, &p.address, 100);
        new.block_hash = fork_hash(10);
        let mut fork = batch(vec![new.clone()], 12, 12, 130);
        fork.checkpoint.hash = fork_hash(12);
        let changes = store.apply_scan(fork).await.unwrap();
        assert_eq!(
            moves(&changes),
            vec![(p.id.clone(), PaymentState::New, PaymentState::Paid)]
        );
        let repaid = get(&*store, &p.id).await;
        assert_eq!(
            (repaid.paid_at, repaid.tx_hash.clone()),
            (Some(130), Some(new.tx_hash.clone()))
        );
        assert_eq!(store.transfers_of(&p.id).await.unwrap(), vec![new]);

        // Reverting to a block whose hash was never remembered leaves an empty hash.
        store.revert_to(CHAIN, 5, 12, 140).await.unwrap();
        assert_eq!(
            store.checkpoint(CHAIN).await.unwrap(),
            Some(BlockRef {
                number: 5,
                hash: String::new()
            })
        );
        assert_eq!(get(&*store, &bystander.id).await.state, PaymentState::New);
    }

    // Rules out: transfers to foreign addresses being recorded or crediting anyone,
    // and an unknown address stalling the checkpoint.
    /// Transfers to addresses that are not ours are ignored.
    pub async fn unknown_addresses_are_ignored(store: Arc<dyn Store>) {
        let p = claim(&*store, due(1, Some(1), 100, 1, 1000)).await;
        let stranger = "0x9999999999999999999999999999999999999999";
        let changes = store
            .apply_scan(batch(vec![transfer(1, 0, 10, stranger, 100)], 10, 10, 100))
            .await
            .unwrap();
        assert!(changes.is_empty());
        assert_eq!(
            store.checkpoint(CHAIN).await.unwrap().map(|b| b.number),
            Some(10)
        );
        let untouched = get(&*store, &p.id).await;
        assert_eq!(
            (untouched.state, untouched.received),
            (PaymentState::New, Amount::ZERO)
        );
        assert!(store.transfers_of(&p.id).await.unwrap().is_empty());
        // The same log cannot have been reserved by the ignored transfer either.
        let real = transfer(1, 0, 10, &p.address, 100);
        let changes = store
            .apply_scan(batch(vec![real], 11, 11, 110))
            .await
            .unwrap();
        assert_eq!(
            moves(&changes),
            vec![(p.id.clone(), PaymentState::New, PaymentState::Paid)]
        );
    }

    // Rules out: missing a payment because the log's address is lowercase while
    // the stored one is EIP-55 checksummed (or the other way round).
    /// Addresses match regardless of case; the stored address keeps its case.
    pub async fn address_match_ignores_case(store: Arc<dyn Store>) {
        let (p, _) = store
            .claim(due(1, Some(1), 100, 1, 1000), &derive_mixed_case)
            .await
            .unwrap();
        assert_eq!(p.address, derive_mixed_case(0).unwrap());
        let lower = transfer(1, 0, 10, &p.address.to_ascii_lowercase(), 40);
        let upper = transfer(
            2,
            0,
            10,
            &format!("0x{}", p.address[2..].to_ascii_uppercase()),
            60,
        );
        store
            .apply_scan(batch(vec![lower, upper], 10, 10, 100))
            .await
            .unwrap();
        let paid = get(&*store, &p.id).await;
        assert_eq!(
            (paid.state, paid.received),
            (PaymentState::Paid, Amount(100))
        );
        assert_eq!(paid.address, derive_mixed_case(0).unwrap());
        assert_eq!(store.transfers_of(&p.id).await.unwrap().len(), 2);
    }

    // Rules out: amounts losing precision (floats, i64) anywhere between the
    // payment and the sum of its transfers.
    /// Amounts near `u128::MAX` round-trip exactly and sums saturate.
    pub async fn large_amounts_are_exact(store: Arc<dyn Store>) {
        let big = u128::MAX - 1;
        let p = claim(&*store, due(1, Some(1), big, 1, 1000)).await;
        assert_eq!(get(&*store, &p.id).await.amount, Amount(big));
        let t1 = transfer(1, 0, 10, &p.address, u128::MAX / 2);
        store
            .apply_scan(batch(vec![t1], 10, 10, 100))
            .await
            .unwrap();
        let seen = get(&*store, &p.id).await;
        assert_eq!(
            (seen.state, seen.received),
            (PaymentState::Seen, Amount(u128::MAX / 2))
        );
        let t2 = transfer(2, 0, 11, &p.address, u128::MAX);
        store
            .apply_scan(batch(vec![t2.clone()], 11, 11, 110))
            .await
            .unwrap();
        let paid = get(&*store, &p.id).await;
        assert_eq!(
            (paid.state, paid.received),
            (PaymentState::Paid, Amount(u128::MAX))
        );
        assert_eq!(
            store.transfers_of(&p.id).await.unwrap()[1].value,
            Amount(u128::MAX)
        );
    }

    // Rules out: the metrics' aggregate drifting from the rows (a state miscounted,
    // an amount past i64 wrapped or rounded, a sum past u128 wrapping).
    /// `payment_totals` equals the count and received sum per state of every payment,
    /// with small amounts (summed in SQL), amounts past `i64::MAX`, and a sum past
    /// `u128::MAX` (saturates).
    pub async fn payment_totals_are_the_sum_of_the_payments(store: Arc<dyn Store>) {
        let expected = |all: &[Payment]| {
            let mut m = std::collections::BTreeMap::<&str, (u64, u128)>::new();
            for p in all {
                let e = m.entry(p.state.as_str()).or_default();
                e.0 += 1;
                e.1 = e.1.saturating_add(p.received.0);
            }
            m.into_iter()
                .map(|(s, (c, r))| (s.to_string(), c, r))
                .collect::<Vec<_>>()
        };
        let actual = |t: Vec<tollgate::store::StateTotal>| {
            let mut v = t
                .into_iter()
                .map(|t| (t.state.as_str().to_string(), t.count, t.received.0))
                .collect::<Vec<_>>();
            v.sort();
            v
        };
        assert!(store.payment_totals().await.unwrap().is_empty());
        let amounts = [100u128, 250, 7, 1 << 70, u128::MAX - 5, u128::MAX - 5];
        let mut ps = Vec::new();
        for (i, a) in amounts.iter().enumerate() {
            ps.push(claim(&*store, due(i as u64 + 1, Some(i as u8 + 1), *a, 1, 1000)).await);
        }
        // Pay the first two small ones in full: paid, summed in SQL.
        let transfers = vec![
            transfer(1, 0, 10, &ps[0].address, 100),
            transfer(2, 0, 10, &ps[1].address, 250),
        ];
        store
            .apply_scan(batch(transfers, 10, 11, 100))
            .await
            .unwrap();
        let all = store.all_payments().await.unwrap();
        assert_eq!(
            actual(store.payment_totals().await.unwrap()),
            expected(&all)
        );
        // Ten seen payments of 18 digits each: every one fits an i64, their sum not.
        let big = 999_999_999_999_999_999u128;
        let mut transfers = Vec::new();
        for i in 0..10u64 {
            let p = claim(&*store, due(100 + i, Some(100 + i as u8), big * 2, 1, 1000)).await;
            transfers.push(transfer(100 + i, 0, 11, &p.address, big));
        }
        store
            .apply_scan(batch(transfers, 11, 11, 105))
            .await
            .unwrap();
        let all = store.all_payments().await.unwrap();
        let totals = actual(store.payment_totals().await.unwrap());
        assert_eq!(totals, expected(&all));
        assert!(
            totals.contains(&("seen".into(), 10, big * 10)),
            "{totals:?}"
        );
        // The big ones: a paid amount past i64::MAX, then two near u128::MAX.
        let transfers = vec![
            transfer(3, 0, 12, &ps[3].address, 1 << 70),
            transfer(4, 0, 12, &ps[4].address, u128::MAX - 5),
            transfer(5, 0, 12, &ps[5].address, u128::MAX - 5),
        ];
        store
            .apply_scan(batch(transfers, 12, 13, 110))
            .await
            .unwrap();
        let all = store.all_payments().await.unwrap();
        let totals = actual(store.payment_totals().await.unwrap());
        assert_eq!(totals, expected(&all));
        let paid = totals.iter().find(|t| t.0 == "paid").expect("paid row");
        assert_eq!((paid.1, paid.2), (5, u128::MAX));
        assert!(
            totals.contains(&("seen".into(), 10, big * 10)),
            "{totals:?}"
        );
    }

    // Rules out: a restart forgetting where the scanner stood (rescanning from the
    // start block, or skipping a range) or the hashes the reorg walk-back needs,
    // and the block list growing without bound.
    /// The checkpoint and the newest 256 block hashes survive a reopen.
    pub async fn checkpoint_and_recent_blocks_survive_reopen(backend: &dyn Backend) {
        let store = backend.open().await;
        assert_eq!(store.checkpoint(CHAIN).await.unwrap(), None);
        assert!(store.recent_blocks(CHAIN, 10).await.unwrap().is_empty());
        for n in 1..=300 {
            store.apply_scan(batch(vec![], n, n, n)).await.unwrap();
        }
        let mut other = batch(vec![], 77, 77, 77);
        other.chain_id = CHAIN + 1;
        store.apply_scan(other).await.unwrap();

        let recent = store.recent_blocks(CHAIN, 1000).await.unwrap();
        assert_eq!(recent.len(), 256);
        assert_eq!(
            recent.first(),
            Some(&BlockRef {
                number: 300,
                hash: block_hash(300)
            })
        );
        assert_eq!(recent.last().map(|b| b.number), Some(45));
        assert!(recent.windows(2).all(|w| w[0].number > w[1].number));
        let top3 = store.recent_blocks(CHAIN, 3).await.unwrap();
        assert_eq!(
            top3.iter().map(|b| b.number).collect::<Vec<_>>(),
            vec![300, 299, 298]
        );
        drop(store);

        let store = backend.open().await;
        assert_eq!(
            store.checkpoint(CHAIN).await.unwrap(),
            Some(BlockRef {
                number: 300,
                hash: block_hash(300)
            })
        );
        assert_eq!(store.recent_blocks(CHAIN, 1000).await.unwrap(), recent);
        assert_eq!(
            store.checkpoint(CHAIN + 1).await.unwrap(),
            Some(BlockRef {
                number: 77,
                hash: block_hash(77)
            })
        );
        assert_eq!(store.recent_blocks(CHAIN + 1, 10).await.unwrap().len(), 1);
        assert_eq!(store.checkpoint(CHAIN + 2).await.unwrap(), None);
    }

    // Rules out: a paid payment (or its transfers, or the derivation counter) lost
    // or altered by a restart.
    /// A paid payment, its transfers and the next index survive a reopen.
    pub async fn paid_payment_survives_reopen(backend: &dyn Backend) {
        let store = backend.open().await;
        let p = claim(&*store, due(1, Some(1), 100, 1, 1000)).await;
        let t = transfer(1, 0, 10, &p.address, 100);
        store
            .apply_scan(batch(vec![t.clone()], 10, 10, 100))
            .await
            .unwrap();
        let paid = get(&*store, &p.id).await;
        assert_eq!(paid.state, PaymentState::Paid);
        drop(store);

        let store = backend.open().await;
        assert_eq!(get(&*store, &p.id).await, paid);
        assert_eq!(
            store.payment_by_contract(&hash(1)).await.unwrap(),
            Some(paid.clone())
        );
        assert_eq!(store.transfers_of(&p.id).await.unwrap(), vec![t.clone()]);
        // The repeated log is still refused after the restart.
        let changes = store.apply_scan(batch(vec![t], 11, 11, 110)).await.unwrap();
        assert!(changes.is_empty());
        assert_eq!(get(&*store, &p.id).await.received, Amount(100));
        let next = claim(&*store, due(2, Some(2), 100, 1, 1000)).await;
        assert_eq!(next.derivation_index, 1);
        assert_ne!(next.address, paid.address);
    }

    /// Rules out: a paid payment whose postback is never queued, queued twice, or
    /// queued before it is paid.
    pub async fn paid_payment_queues_exactly_one_postback(store: Arc<dyn Store>) {
        let p = claim(&*store, due(1, Some(1), 100, 2, 1000)).await;
        let mut quiet = due(2, Some(2), 100, 1, 1000);
        quiet.postback_url = None;
        let q = claim(&*store, quiet).await;
        store
            .apply_scan(batch(
                vec![
                    transfer(1, 0, 10, &p.address, 100),
                    transfer(2, 0, 10, &q.address, 100),
                ],
                10,
                10,
                100,
            ))
            .await
            .unwrap();
        // Confirming: nothing queued yet (q needs 1 confirmation and is paid, but has no URL).
        assert!(store.due_deliveries(u64::MAX, 10).await.unwrap().is_empty());
        store.refresh(CHAIN, 11, 110).await.unwrap();
        let due_now = store.due_deliveries(110, 10).await.unwrap();
        assert_eq!(due_now.len(), 1);
        let d = &due_now[0];
        assert_eq!(d.payment_id, p.id);
        assert_eq!(d.url, "https://shop.example/postback/1");
        assert_eq!(d.attempts, 0);
        let body: serde_json::Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!(body["id"], p.id.as_str());
        assert_eq!(body["data"], serde_json::json!({"order": 1}));
        assert_eq!(body["amount"], "0.000001");
        assert_eq!(body["paid_at"], 110);
        assert!(body["tx_hash"].is_string());
        // More refreshes never queue it again.
        store.refresh(CHAIN, 20, 200).await.unwrap();
        assert_eq!(store.deliveries(10).await.unwrap().len(), 1);
    }

    /// Rules out: retries under a new id, lost failures, or a redelivery that
    /// cannot be triggered.
    pub async fn delivery_attempts_keep_one_id(store: Arc<dyn Store>) {
        let p = claim(&*store, due(1, Some(1), 100, 1, 1000)).await;
        store
            .apply_scan(batch(
                vec![transfer(1, 0, 10, &p.address, 100)],
                10,
                10,
                100,
            ))
            .await
            .unwrap();
        let d = store.due_deliveries(100, 10).await.unwrap().remove(0);
        for i in 1..=3u64 {
            store
                .record_attempt(
                    &d.id,
                    100 + i,
                    tollgate::store::AttemptOutcome::Failed {
                        error: format!("HTTP 500 #{i}"),
                        retry_at: Some(100 + 10 * i),
                    },
                )
                .await
                .unwrap();
            assert!(store
                .due_deliveries(100 + 10 * i - 1, 10)
                .await
                .unwrap()
                .is_empty());
            let again = store.due_deliveries(100 + 10 * i, 10).await.unwrap();
            assert_eq!(again.len(), 1);
            assert_eq!(again[0].id, d.id);
            assert_eq!(again[0].body, d.body);
            assert_eq!(again[0].attempts, i as u32);
            assert_eq!(
                again[0].last_error.as_deref(),
                Some(format!("HTTP 500 #{i}").as_str())
            );
        }
        store
            .record_attempt(&d.id, 200, tollgate::store::AttemptOutcome::Delivered)
            .await
            .unwrap();
        assert!(store.due_deliveries(u64::MAX, 10).await.unwrap().is_empty());
        let listed = store.deliveries(10).await.unwrap();
        assert_eq!((listed[0].attempts, listed[0].delivered_at), (4, Some(200)));
        assert!(store.redeliver(&d.id, 300).await.unwrap());
        assert_eq!(store.due_deliveries(300, 10).await.unwrap()[0].id, d.id);
        assert!(!store.redeliver("dlv_unknown", 300).await.unwrap());
    }

    /// Rules out: a queued postback dying with the process.
    pub async fn pending_postback_survives_reopen(backend: &dyn Backend) {
        let store = backend.open().await;
        let p = claim(&*store, due(1, Some(1), 100, 1, 1000)).await;
        store
            .apply_scan(batch(
                vec![transfer(1, 0, 10, &p.address, 100)],
                10,
                10,
                100,
            ))
            .await
            .unwrap();
        let before = store.due_deliveries(100, 10).await.unwrap();
        assert_eq!(before.len(), 1);
        drop(store);
        let store = backend.open().await;
        assert_eq!(store.due_deliveries(100, 10).await.unwrap(), before);
    }

    /// A new basket `n` (id and secret hash from `n`), open until `expires_at`.
    pub fn basket(n: u8, expires_at: u64) -> NewBasket {
        NewBasket {
            id: format!("{n:016x}"),
            secret_hash: [n; 32],
            customer_id: "c".into(),
            shop_id: "shop".into(),
            created_at: 10,
            expires_at,
        }
    }

    /// A line of `product`.
    pub fn line(product: &str, count: u32, refund_of: Option<&str>) -> BasketLine {
        BasketLine {
            product_id: product.into(),
            refund: refund_of.is_some(),
            count,
            refund_of: refund_of.map(str::to_string),
            unlocks: vec![format!("/{product}/*")],
        }
    }

    /// A basket `n` that bought `products`, checked out into payment `pid_n` and paid
    /// at block 10: returns the payment.
    pub async fn paid_basket(store: &dyn Store, n: u8, products: &[&str]) -> Payment {
        store.create_basket(basket(n, 1000)).await.unwrap();
        for (i, p) in products.iter().enumerate() {
            let w = store
                .put_line(&format!("{n:016x}"), i as u64, line(p, 1, None), 20)
                .await
                .unwrap();
            assert_eq!(w, BasketWrite::Done);
        }
        let id = format!("{n:016x}");
        let w = store
            .lock_basket(&id, products.len() as u64, "tok", "url", 0)
            .await
            .unwrap();
        assert_eq!(w, BasketWrite::Done);
        let p = claim(store, due(u64::from(n) + 100, Some(n), 100, 1, 1000)).await;
        store.set_basket_payment(&id, &p.id).await.unwrap();
        pay(store, &p, u64::from(n)).await;
        get(store, &p.id).await
    }

    /// Pays `p` in full with transaction `tx`, at block 10.
    pub async fn pay(store: &dyn Store, p: &Payment, tx: u64) {
        store
            .apply_scan(batch(
                vec![transfer(tx, 0, 10, &p.address, p.amount.0)],
                10,
                10,
                100,
            ))
            .await
            .unwrap();
    }

    /// Rules out: a change based on a stale read of a basket (a check such as
    /// max_total passed by two concurrent adds), and changes after checkout.
    pub async fn basket_changes_only_at_the_revision_read(store: Arc<dyn Store>) {
        store.create_basket(basket(1, 1000)).await.unwrap();
        let id = format!("{:016x}", 1);
        let b = store.basket(&id).await.unwrap().unwrap();
        assert_eq!(
            (b.state, b.revision, b.lines.len()),
            (BasketState::Open, 0, 0)
        );
        assert_eq!(store.basket_by_secret(&[1; 32]).await.unwrap(), Some(b));
        assert_eq!(store.basket_by_secret(&[2; 32]).await.unwrap(), None);
        let put = |rev, l| {
            let store = store.clone();
            let id = id.clone();
            async move { store.put_line(&id, rev, l, 20).await.unwrap() }
        };
        assert_eq!(put(0, line("a", 1, None)).await, BasketWrite::Done);
        assert_eq!(put(0, line("b", 1, None)).await, BasketWrite::Stale);
        assert_eq!(put(1, line("b", 2, None)).await, BasketWrite::Done);
        // The same product and sign: the line is replaced in place.
        assert_eq!(put(2, line("a", 5, None)).await, BasketWrite::Done);
        let b = store.basket(&id).await.unwrap().unwrap();
        let got: Vec<(&str, u32)> = b
            .lines
            .iter()
            .map(|l| (l.product_id.as_str(), l.count))
            .collect();
        assert_eq!(got, vec![("a", 5), ("b", 2)]);
        // Expired: no change.
        assert_eq!(
            store
                .put_line(&id, 3, line("c", 1, None), 1001)
                .await
                .unwrap(),
            BasketWrite::Stale
        );
        assert_eq!(
            store.lock_basket(&id, 2, "t", "url", 0).await.unwrap(),
            BasketWrite::Stale
        );
        assert_eq!(
            store.lock_basket(&id, 3, "t", "text", 2000).await.unwrap(),
            BasketWrite::Done
        );
        let b = store.basket(&id).await.unwrap().unwrap();
        assert_eq!(b.state, BasketState::CheckedOut);
        assert_eq!(
            (
                b.contract_token.as_deref(),
                b.challenge.as_deref(),
                b.expires_at
            ),
            (Some("t"), Some("text"), 2000)
        );
        assert_eq!(put(4, line("c", 1, None)).await, BasketWrite::Stale);
        // A duplicate id or secret is refused.
        assert!(store.create_basket(basket(1, 5)).await.is_err());
    }

    /// Rules out: one purchase refunded twice (by two baskets, or two concurrent
    /// requests), and a refund that counts before its basket is paid.
    pub async fn a_purchase_is_refunded_once(store: Arc<dyn Store>) {
        let p = paid_basket(&*store, 1, &["x", "y"]).await;
        assert_eq!(p.state, PaymentState::Paid);
        let bought = store.purchases(&p.id).await.unwrap();
        assert_eq!(bought.len(), 2);
        assert!(bought.iter().all(|b| !b.refunded && b.count == 1));
        assert_eq!(bought[0].unlocks, vec!["/x/*".to_string()]);
        // Four baskets race to refund x of p: one holds it.
        for n in 2..=5 {
            store.create_basket(basket(n, 1000)).await.unwrap();
        }
        let barrier = Arc::new(Barrier::new(4));
        let mut tasks = Vec::new();
        for n in 2..=5u8 {
            let (store, barrier, pid) = (store.clone(), barrier.clone(), p.id.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store
                    .put_line(&format!("{n:016x}"), 0, line("x", 1, Some(&pid)), 20)
                    .await
                    .unwrap()
            }));
        }
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await.unwrap());
        }
        assert_eq!(
            done.iter().filter(|w| **w == BasketWrite::Done).count(),
            1,
            "{done:?}"
        );
        assert_eq!(
            done.iter()
                .filter(|w| **w == BasketWrite::RefundTaken)
                .count(),
            3
        );
        let holder = 2 + done.iter().position(|w| *w == BasketWrite::Done).unwrap() as u8;
        let holder_id = format!("{holder:016x}");
        // A refused refund left the basket unchanged (revision too).
        let loser = if holder == 2 { 3u8 } else { 2u8 };
        let lb = store
            .basket(&format!("{loser:016x}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((lb.revision, lb.lines.len()), (0, 0));
        // Held, not final: nothing refunded yet.
        assert!(store
            .purchases(&p.id)
            .await
            .unwrap()
            .iter()
            .all(|b| !b.refunded));
        // The holder checks out and pays: the refund is final.
        assert_eq!(
            store
                .lock_basket(&holder_id, 1, "t", "url", 0)
                .await
                .unwrap(),
            BasketWrite::Done
        );
        let q = claim(&*store, due(50, Some(50), 100, 1, 1000)).await;
        store.set_basket_payment(&holder_id, &q.id).await.unwrap();
        assert_eq!(store.refunded_by(&q.id).await.unwrap(), vec![hash(1)]);
        pay(&*store, &q, 50).await;
        let bought = store.purchases(&p.id).await.unwrap();
        let refunded: Vec<(&str, bool)> = bought
            .iter()
            .map(|b| (b.product_id.as_str(), b.refunded))
            .collect();
        assert_eq!(refunded, vec![("x", true), ("y", false)]);
        // Released after being paid: the refund stays final, and x stays taken.
        store.release_basket(&holder_id).await.unwrap();
        assert!(store.purchases(&p.id).await.unwrap()[0].refunded);
        store.create_basket(basket(9, 1000)).await.unwrap();
        assert_eq!(
            store
                .put_line(&format!("{:016x}", 9), 0, line("x", 1, Some(&p.id)), 20)
                .await
                .unwrap(),
            BasketWrite::RefundTaken
        );
        // y is still refundable.
        assert_eq!(
            store
                .put_line(&format!("{:016x}", 9), 0, line("y", 1, Some(&p.id)), 20)
                .await
                .unwrap(),
            BasketWrite::Done
        );
    }

    /// Rules out: a refund held forever by an abandoned basket.
    pub async fn released_and_expired_baskets_free_their_refunds(store: Arc<dyn Store>) {
        let p = paid_basket(&*store, 1, &["x"]).await;
        store.create_basket(basket(2, 500)).await.unwrap();
        store.create_basket(basket(3, 1000)).await.unwrap();
        store.create_basket(basket(4, 1000)).await.unwrap();
        let refund = |n: u8, now: u64| {
            let (store, pid) = (store.clone(), p.id.clone());
            async move {
                store
                    .put_line(&format!("{n:016x}"), 0, line("x", 1, Some(&pid)), now)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(refund(2, 100).await, BasketWrite::Done);
        assert_eq!(refund(3, 100).await, BasketWrite::RefundTaken);
        // Basket 2 passed its expiry: its hold no longer counts.
        assert_eq!(refund(3, 600).await, BasketWrite::Done);
        // Released by its holder: the hold goes with it.
        store.release_basket(&format!("{:016x}", 3)).await.unwrap();
        let b3 = store.basket(&format!("{:016x}", 3)).await.unwrap().unwrap();
        assert_eq!(b3.state, BasketState::Released);
        assert_eq!(refund(4, 600).await, BasketWrite::Done);
        // A checkout whose payment is on its way (seen, confirming) past the basket's
        // expiry: it may still complete, so its basket stays.
        store.create_basket(basket(5, 500)).await.unwrap();
        let id5 = format!("{:016x}", 5);
        assert_eq!(
            store.lock_basket(&id5, 0, "t", "url", 0).await.unwrap(),
            BasketWrite::Done
        );
        let q = claim(&*store, due(55, Some(55), 100, 3, 1000)).await;
        store.set_basket_payment(&id5, &q.id).await.unwrap();
        store
            .apply_scan(batch(
                vec![transfer(55, 0, 11, &q.address, 100)],
                11,
                11,
                120,
            ))
            .await
            .unwrap();
        assert_eq!(get(&*store, &q.id).await.state, PaymentState::Confirming);
        // The sweep releases what expired with nothing on its way (2 and 4), never a
        // paid basket (1) nor one whose payment is confirming (5).
        assert_eq!(store.release_expired_baskets(1500).await.unwrap(), 2);
        for (n, state) in [
            (1, BasketState::CheckedOut),
            (2, BasketState::Released),
            (4, BasketState::Released),
            (5, BasketState::CheckedOut),
        ] {
            let b = store.basket(&format!("{n:016x}")).await.unwrap().unwrap();
            assert_eq!(b.state, state, "basket {n}");
        }
    }

    /// Rules out: a transaction hash a payer names counting as confirmed before the
    /// scanner saw it, and a phantom (off-chain or reorged) one surviving the scan.
    pub async fn provisional_transfers_wait_for_the_scanner(store: Arc<dyn Store>) {
        let zero_conf = claim(&*store, due(1, Some(1), 100, 0, 1000)).await;
        let phantom = claim(&*store, due(2, Some(2), 100, 1, 1000)).await;
        let t1 = transfer(1, 0, 12, &zero_conf.address, 100);
        let t2 = transfer(2, 0, 12, &phantom.address, 100);
        let changes = store
            .record_provisional(vec![t1.clone(), t2.clone()], 20, 100)
            .await
            .unwrap();
        // Seen with the full amount, never paid on a hash alone (not even at 0 confirmations).
        // (Changes come in derivation order.)
        assert_eq!(
            moves(&changes),
            vec![
                (
                    zero_conf.id.clone(),
                    PaymentState::New,
                    PaymentState::Confirming
                ),
                (
                    phantom.id.clone(),
                    PaymentState::New,
                    PaymentState::Confirming
                ),
            ]
        );
        // Recording it again changes nothing.
        assert!(store
            .record_provisional(vec![t1.clone()], 20, 100)
            .await
            .unwrap()
            .is_empty());
        // The scanner reaches block 12: it finds t1 (confirmed → paid), not t2 (dropped).
        let changes = store
            .apply_scan(batch(vec![t1.clone()], 20, 20, 110))
            .await
            .unwrap();
        assert_eq!(
            moves(&changes),
            vec![
                (
                    zero_conf.id.clone(),
                    PaymentState::Confirming,
                    PaymentState::Paid
                ),
                (
                    phantom.id.clone(),
                    PaymentState::Confirming,
                    PaymentState::New
                ),
            ]
        );
        assert_eq!(store.transfers_of(&zero_conf.id).await.unwrap(), vec![t1]);
        assert!(store.transfers_of(&phantom.id).await.unwrap().is_empty());
        // A provisional record never overwrites a scanned one.
        assert!(store
            .record_provisional(vec![transfer(1, 0, 99, &zero_conf.address, 100)], 120, 120)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            store.transfers_of(&zero_conf.id).await.unwrap()[0].block_number,
            12
        );
    }

    /// Rules out: a payment of nothing (a basket whose refunds cover it) waiting
    /// forever for a transfer, or expiring.
    pub async fn nothing_due_is_paid_at_once(store: Arc<dyn Store>) {
        let p = claim(&*store, due(1, Some(1), 0, 3, 1000)).await;
        assert_eq!((p.state, p.paid_at), (PaymentState::Paid, Some(50)));
        assert!(store.refresh(CHAIN, 10, 5000).await.unwrap().is_empty());
        assert_eq!(get(&*store, &p.id).await.state, PaymentState::Paid);
    }
    /// An unlock `n` for the Web Monetization checks.
    pub fn wm_unlock(n: u8) -> NewWmUnlock {
        NewWmUnlock {
            id: format!("{n:016x}"),
            hash: [n; 32],
            scope: format!("/articles/{n}"),
            access_ttl_secs: 3600,
        }
    }

    /// Rules out: a Web Monetization payment's units paying for two unlocks, a stale
    /// (lower) read taking credit back, and concurrent verifies double-crediting.
    pub async fn wm_units_are_credited_once(store: Arc<dyn Store>) {
        let url = "https://op.example/rs/incoming-payments/1";
        let credit = |received, n: u8| {
            let store = store.clone();
            async move {
                store
                    .wm_credit(
                        url,
                        "https://op.example/alice",
                        received,
                        5,
                        wm_unlock(n),
                        100,
                    )
                    .await
                    .unwrap()
            }
        };
        assert_eq!(credit(3, 1).await, WmCredit::Insufficient { available: 3 });
        assert_eq!(store.wm_unlock(&[1; 32]).await.unwrap(), None);
        assert_eq!(credit(7, 2).await, WmCredit::Unlocked { left: 2 });
        let u = store.wm_unlock(&[2; 32]).await.unwrap().unwrap();
        assert_eq!(
            (u.id.as_str(), u.scope.as_str(), u.created_at),
            ("0000000000000002", "/articles/2", 100)
        );
        assert_eq!(u.incoming_payment, url);
        // The same reading again (a duplicate event): nothing more to credit.
        assert_eq!(credit(7, 3).await, WmCredit::Insufficient { available: 2 });
        // A stale, lower reading does not take credit back.
        assert_eq!(credit(1, 4).await, WmCredit::Insufficient { available: 2 });
        // It grew: 12 received, 5 consumed → 7 available → one more unlock.
        assert_eq!(credit(12, 5).await, WmCredit::Unlocked { left: 2 });
        // Eight concurrent verifies of 20 received (10 available): exactly 2 unlock.
        let barrier = Arc::new(Barrier::new(8));
        let mut tasks = Vec::new();
        for n in 10..18u8 {
            let (store, barrier) = (store.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store
                    .wm_credit(url, "https://op.example/alice", 20, 5, wm_unlock(n), 100)
                    .await
                    .unwrap()
            }));
        }
        let mut unlocked = 0;
        for t in tasks {
            if matches!(t.await.unwrap(), WmCredit::Unlocked { .. }) {
                unlocked += 1;
            }
        }
        assert_eq!(unlocked, 2);
        assert_eq!(
            credit(20, 30).await,
            WmCredit::Insufficient { available: 0 }
        );
        // Another incoming payment is credited on its own.
        let other = store
            .wm_credit(
                "https://op.example/rs/incoming-payments/2",
                "w",
                5,
                5,
                wm_unlock(40),
                100,
            )
            .await
            .unwrap();
        assert_eq!(other, WmCredit::Unlocked { left: 0 });
    }
}

/// A SQLite database in a unique temporary file, removed (with its WAL files)
/// when dropped.
struct SqliteFile {
    path: PathBuf,
}

impl SqliteFile {
    fn new(name: &str) -> SqliteFile {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "tollgate-store-{name}-{}-{nanos}-{}.db",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        SqliteFile { path }
    }

    fn store(&self) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&self.path).expect("open sqlite store"))
    }
}

impl Drop for SqliteFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

#[async_trait]
impl Backend for SqliteFile {
    async fn open(&self) -> Arc<dyn Store> {
        self.store()
    }
}

impl SqliteFile {
    /// A backend for the test named `name` (async like the others).
    async fn for_test(name: &str) -> SqliteFile {
        SqliteFile::new(name)
    }
}

/// A fresh PostgreSQL database; every [`Backend::open`] is a new
/// [`PostgresStore`] (a new pool, migrations checked again) on the same data.
struct PgBackend {
    db: PgDatabase,
}

impl PgBackend {
    async fn new(name: &str) -> PgBackend {
        PgBackend {
            db: PgDatabase::new(name).await,
        }
    }

    async fn store(&self) -> Arc<dyn Store> {
        Arc::new(
            PostgresStore::open(&self.db.url)
                .await
                .expect("open postgres store"),
        )
    }
}

#[async_trait]
impl Backend for PgBackend {
    async fn open(&self) -> Arc<dyn Store> {
        self.store().await
    }
}

/// One `#[tokio::test]` per check against a fresh database of a backend:
/// `$backend` is an async constructor from the test's name (its type implements
/// [`Backend`]). The checks that take a store get [`Backend::open`]; the reopen
/// checks get the backend.
macro_rules! store_tests {
    ($backend:path) => {
        store_tests!(@store $backend;
            claim_is_idempotent_per_contract_hash,
            #[flavor = "multi_thread", worker_threads = 2] concurrent_claims_get_distinct_indexes,
            #[flavor = "multi_thread", worker_threads = 2] concurrent_claims_of_one_contract_create_one_payment,
            derive_failure_claims_nothing,
            duplicate_payment_id_is_a_conflict,
            same_transfer_cannot_pay_two_contracts,
            partial_transfers_sum_to_paid,
            underpaid_stays_locked,
            late_payment_is_recorded_as_paid_late,
            expired_without_transfers,
            reorg_revert_moves_paid_back,
            unknown_addresses_are_ignored,
            address_match_ignores_case,
            large_amounts_are_exact,
            payment_totals_are_the_sum_of_the_payments,
            paid_payment_queues_exactly_one_postback,
            delivery_attempts_keep_one_id,
            basket_changes_only_at_the_revision_read,
            #[flavor = "multi_thread", worker_threads = 2] a_purchase_is_refunded_once,
            released_and_expired_baskets_free_their_refunds,
            provisional_transfers_wait_for_the_scanner,
            nothing_due_is_paid_at_once,
            #[flavor = "multi_thread", worker_threads = 2] wm_units_are_credited_once,
        );
        store_tests!(@reopen $backend;
            pending_postback_survives_reopen,
            checkpoint_and_recent_blocks_survive_reopen,
            #[flavor = "multi_thread", worker_threads = 2] claims_across_instances_get_distinct_indexes,
            paid_payment_survives_reopen,
        );
    };
    (@store $backend:path; $($(#[$($flavor:tt)*])? $check:ident),* $(,)?) => {$(
        #[tokio::test $(($($flavor)*))?]
        async fn $check() {
            let db = $backend(stringify!($check)).await;
            checks::$check(db.open().await).await;
        }
    )*};
    (@reopen $backend:path; $($(#[$($flavor:tt)*])? $check:ident),* $(,)?) => {$(
        #[tokio::test $(($($flavor)*))?]
        async fn $check() {
            let db = $backend(stringify!($check)).await;
            checks::$check(&db).await;
        }
    )*};
}

// Every check against SQLite (the test names are the checks' names)…
store_tests!(SqliteFile::for_test);

/// … and against PostgreSQL (`postgres::<check>`).
mod postgres {
    use super::{checks, Backend, PgBackend};

    store_tests!(PgBackend::new);

    use std::collections::BTreeSet;
    use std::time::Duration;

    use alloy::primitives::Address;
    use tollgate::store::basket::BasketStore;
    use tollgate::store::postgres::listen::{
        dedicated, listen, Listening, Notice, LISTEN_APPLICATION, PAID_CHANNEL,
    };
    use tollgate::store::postgres::{config_of, PostgresStore};
    use tollgate::store::Store;

    use crate::support::chain::ONE_TOKEN;
    use crate::support::origin::Origin;
    use crate::support::payer::Payer;
    use crate::support::{funded_chain, PaymentsConfig, TempDir, Tollgate, TEST_KEY};

    /// Eight instances starting at once on an empty database migrate it once
    /// (the migration advisory lock): each opens, every migration is recorded
    /// exactly once, and a database newer than this tollgate is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn instances_starting_at_once_migrate_once() {
        let db = super::PgDatabase::new("migrate_once").await;
        let opens: Vec<_> = (0..8)
            .map(|_| {
                let url = db.url.clone();
                tokio::spawn(async move { PostgresStore::open(&url).await.map(|_| ()) })
            })
            .collect();
        for o in opens {
            o.await.expect("task").expect("open");
        }
        let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        let versions: Vec<i32> = client
            .query("SELECT version FROM tollgate_schema ORDER BY version", &[])
            .await
            .expect("versions")
            .iter()
            .map(|r| r.get(0))
            .collect();
        let steps = tollgate::store::postgres::schema::STEPS.len() as i32;
        let expected: Vec<i32> = (1..=steps).collect();
        assert_eq!(versions, expected);
        client
            .execute(
                "INSERT INTO tollgate_schema (version) VALUES ($1)",
                &[&(expected.len() as i32 + 1)],
            )
            .await
            .expect("future version");
        let err = PostgresStore::open(&db.url)
            .await
            .expect_err("newer schema");
        assert!(
            err.to_string().contains("newer than this tollgate"),
            "{err}"
        );
    }

    /// Notices on the paid-fact channel up to `marker`, which this sends on `client`
    /// (notifications arrive in commit order, so all earlier commits' are in).
    async fn notified_before(
        listening: &mut Listening,
        client: &tokio_postgres::Client,
        marker: &str,
    ) -> BTreeSet<[u8; 32]> {
        client
            .execute("SELECT pg_notify($1, $2)", &[&PAID_CHANNEL, &marker])
            .await
            .expect("marker");
        let mut got = BTreeSet::new();
        loop {
            let notice = tokio::time::timeout(Duration::from_secs(10), listening.next())
                .await
                .expect("a notification within 10 s");
            match notice {
                Notice::Changed(h) => {
                    got.insert(h);
                }
                Notice::Unreadable(m) if m == marker => return got,
                other => panic!("{other:?}"),
            }
        }
    }

    /// Rules out: an instance of a fleet keeping a paid fact that another instance
    /// took back (a reorg revert, a refund becoming final or undone) because the
    /// change was not announced, announced without committing, or announced for the
    /// wrong contract. The triggers notify exactly the contract hashes whose paid
    /// fact changed, from the changing transaction.
    #[tokio::test]
    async fn changes_that_take_back_paid_facts_are_notified_on_commit() {
        use super::checks::{basket, claim, due, hash, line, paid_basket, pay, CHAIN};
        use tollgate::store::basket::BasketWrite;
        let db = super::PgDatabase::new("paid_notify").await;
        let store = PostgresStore::open(&db.url).await.expect("open");
        let config = config_of(&db.url).unwrap();
        let mut l = listen(&dedicated(&config, LISTEN_APPLICATION))
            .await
            .expect("listen");
        let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        let none = BTreeSet::new();

        // Paid: nothing was cached that it takes back.
        let p = paid_basket(&store, 1, &["x", "y"]).await;
        assert_eq!(notified_before(&mut l, &client, "m1").await, none);
        // A refund held by an open basket is not final: nothing changes.
        store.create_basket(basket(2, 1000)).await.unwrap();
        let b2 = format!("{:016x}", 2);
        let w = store.put_line(&b2, 0, line("x", 1, Some(&p.id)), 20);
        assert_eq!(w.await.unwrap(), BasketWrite::Done);
        let q = claim(&store, due(50, Some(50), 100, 1, 1000)).await;
        assert_eq!(
            store.lock_basket(&b2, 1, "t", "url", 0).await.unwrap(),
            BasketWrite::Done
        );
        store.set_basket_payment(&b2, &q.id).await.unwrap();
        assert_eq!(notified_before(&mut l, &client, "m2").await, none);
        // The refunding basket is paid: p's fact loses x.
        pay(&store, &q, 50).await;
        let p_only = BTreeSet::from([hash(1)]);
        assert_eq!(notified_before(&mut l, &client, "m3").await, p_only);
        // A change that rolls back is never announced.
        client.batch_execute("BEGIN").await.unwrap();
        let sql = "UPDATE payments SET state = 'new' WHERE id = $1";
        client.execute(sql, &[&p.id]).await.unwrap();
        client.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(notified_before(&mut l, &client, "m4").await, none);
        // A reorg takes both payments back: p's and q's own facts, and p's again
        // through q's refund.
        store.revert_to(CHAIN, 9, 12, 200).await.unwrap();
        let both = BTreeSet::from([hash(1), hash(50)]);
        assert_eq!(notified_before(&mut l, &client, "m5").await, both);
        // A checkout with nothing due is paid at once: linking it makes its refund final.
        store.create_basket(basket(3, 1000)).await.unwrap();
        let b3 = format!("{:016x}", 3);
        let w = store.put_line(&b3, 0, line("y", 1, Some(&p.id)), 20);
        assert_eq!(w.await.unwrap(), BasketWrite::Done);
        store.lock_basket(&b3, 1, "t", "url", 0).await.unwrap();
        let z = claim(&store, due(60, Some(60), 0, 1, 1000)).await;
        assert_eq!(notified_before(&mut l, &client, "m6").await, none);
        store.set_basket_payment(&b3, &z.id).await.unwrap();
        assert_eq!(notified_before(&mut l, &client, "m7").await, p_only);
        // A hold taken under a paid basket is final at once.
        let sql =
            "INSERT INTO refund_holds (payment_id, product_id, basket_id) VALUES ($1, 'w', $2)";
        client.execute(sql, &[&p.id, &b3]).await.unwrap();
        assert_eq!(notified_before(&mut l, &client, "m8").await, p_only);
    }

    /// End to end on a PostgreSQL store: the real tollgate binary with
    /// `store.url = "postgres://…"`, anvil and a real origin. A claim through
    /// HTTP, a transfer, "paid" in status.json and in the database, and
    /// `tollgate addresses --used` listing the handed-out index from PostgreSQL.
    #[tokio::test]
    async fn tollgate_serves_a_paid_flow_and_lists_addresses() {
        const CHAIN_ID: u64 = 31337;
        let db = super::PgDatabase::new("e2e_paid_flow").await;
        let (anvil, token) = funded_chain(CHAIN_ID).await;
        let origin = Origin::start();
        let rest = "
[payments]
expiry = \"30m\"
access_ttl = \"30d\"
[[route]]
path = \"/movies/*\"
price = \"0.5\"
";
        let config = PaymentsConfig::local(origin.addr, anvil.rpc_url(), CHAIN_ID, token, rest)
            .render_on(&db.url, "100ms");
        let dir = TempDir::new("pg-e2e");
        let tg = Tollgate::start_keyed(dir.path(), &config);
        let payer = Payer::new();
        let contract = payer.contract(&tg, "/movies/pg").await;
        let claim = payer.claim_contract(&tg, &contract).await;
        let to: Address = claim["address"].as_str().unwrap().parse().unwrap();
        anvil.transfer(token, 1, to, ONE_TOKEN / 2).await;
        payer.wait_state(&tg, &claim, "paid").await;

        let store = PostgresStore::open(&db.url).await.expect("open");
        let all = store.all_payments().await.expect("payments");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].id, claim["payment_id"].as_str().unwrap());
        assert_eq!(all[0].state.as_str(), "paid");

        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["addresses", "--config", "tollgate.toml", "--used"])
            .current_dir(dir.path())
            .env("TOLLGATE_TEST_KEY", TEST_KEY)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let rows: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(rows.len(), 1, "{text}");
        assert!(
            rows[0].contains(claim["address"].as_str().unwrap()),
            "{text}"
        );
        assert!(
            rows[0].contains("paid") && rows[0].contains("0.5"),
            "{text}"
        );
        drop(tg);
    }

    // Rules out: two instances on one database both scanning the chain and sending
    // postbacks, and a fleet that stops crediting when the one that scans dies.
    #[tokio::test]
    async fn a_standby_instance_takes_over_when_the_leader_dies() {
        const CHAIN_ID: u64 = 31337;
        let db = super::PgDatabase::new("e2e_takeover").await;
        let (anvil, token) = funded_chain(CHAIN_ID).await;
        let origin = Origin::start();
        let rest =
            "\n[payments]\nexpiry = \"30m\"\n[[route]]\npath = \"/movies/*\"\nprice = \"0.5\"\n";
        let config = PaymentsConfig::local(origin.addr, anvil.rpc_url(), CHAIN_ID, token, rest)
            .render_on(&db.url, "100ms");
        let (dir_a, dir_b) = (TempDir::new("pg-a"), TempDir::new("pg-b"));
        // Leadership transitions are logged at info.
        let env = [
            ("TOLLGATE_TEST_KEY", TEST_KEY),
            ("RUST_LOG", "warn,tollgate=info"),
        ];
        let mut a = Tollgate::start_in(dir_a.path(), &config, &env);
        crate::support::eventually("A leads", || async {
            if a.stderr().contains("chain watcher: leading") {
                Ok(())
            } else {
                Err(a.stderr())
            }
        })
        .await;
        let b = Tollgate::start_in(dir_b.path(), &config, &env);
        crate::support::eventually("B stands by", || async {
            if b.stderr().contains("chain watcher: standing by") {
                Ok(())
            } else {
                Err(b.stderr())
            }
        })
        .await;
        assert!(!b.stderr().contains("chain watcher: leading"));
        // Claimed on A; A dies (kill -9: its connection, and so its lock, go).
        let payer = Payer::new();
        let contract = payer.contract(&a, "/movies/takeover").await;
        let claim = payer.claim_contract(&a, &contract).await;
        a.kill9();
        let to: Address = claim["address"].as_str().unwrap().parse().unwrap();
        anvil.transfer(token, 1, to, ONE_TOKEN / 2).await;
        anvil.rpc("evm_mine", serde_json::json!([])).await;
        // B takes over and credits it; the status is B's to tell.
        payer.wait_state(&b, &claim, "paid").await;
        assert!(
            b.stderr().contains("chain watcher: leading"),
            "{}",
            b.stderr()
        );
    }
}
