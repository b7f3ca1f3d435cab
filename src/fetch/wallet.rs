//! The wallet file of `tollgate fetch`: receipts to replay and payments in progress.
//!
//! Owns the file's format, the pure decisions over it (which receipt may cover a URL,
//! which payment in progress a new 402 belongs to, what has expired) and its safe
//! storage: every write is a new file created with mode 0600, synced and renamed over
//! the old one, under an exclusive `flock` on a lock file beside it, so two runs never
//! interleave their read-modify-write and a crash leaves either the old or the new
//! file, never half of one. It never holds the payer's private key: nothing from
//! `TOLLGATE_PAYER_KEY` reaches this module.
//!
//! The file holds secrets (receipts and claim tokens, each opening what was bought), so
//! it is created 0600 in a 0700 directory and never printed whole.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::receipt::Scope;
use crate::routes::table::Pattern;

/// The wallet file format version this build writes and reads.
pub const WALLET_VERSION: u32 = 1;

/// A stored receipt: what a later `fetch` of anything its scope covers replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReceipt {
    /// The origin (`scheme://host[:port]`) the receipt was bought from; it is only
    /// ever sent there.
    pub origin: String,
    /// The terms' `merchant` (its `public_url`).
    pub merchant: String,
    /// The resource the contract was for.
    pub resource: String,
    /// What it unlocks (a path, `route:PATTERN` or a JSON list of patterns).
    pub scope: String,
    /// The `tg1.` receipt itself (a secret: never printed).
    pub receipt: String,
    /// UNIX seconds after which the server no longer accepts it (and it is pruned).
    pub expires_at: u64,
    /// The payment it came from.
    pub payment_id: String,
}

/// Where a payment in progress has got to. Each step is written to the file before
/// the next one starts, so a rerun knows what was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingStep {
    /// Claimed: instructions received, nothing signed yet. Resuming may sign.
    Claimed,
    /// A transfer was signed with a recorded nonce and hash, and may have been
    /// broadcast. Resuming never signs another one with a new nonce unless this one
    /// provably can never be mined (its nonce was used by another transaction).
    Signed,
}

/// A payment in progress: everything needed to resume it after a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPayment {
    /// The origin the 402 came from.
    pub origin: String,
    /// The terms' `merchant`.
    pub merchant: String,
    /// The resource the contract is for.
    pub resource: String,
    /// What the receipt will unlock.
    pub scope: String,
    /// The payment id.
    pub payment_id: String,
    /// The claim token (a secret: the only way to fetch the receipt).
    pub claim_token: String,
    /// The payment's receiving address.
    pub address: String,
    /// The amount, decimal 0xBTC.
    pub amount: String,
    /// The amount in base units (decimal string).
    pub amount_base_units: String,
    /// Token decimals.
    pub decimals: u32,
    /// The chain.
    pub chain_id: u64,
    /// The token contract.
    pub token: String,
    /// `GET` for the payment's state.
    pub status_url: String,
    /// `POST {"claim_token"}` for the receipt.
    pub receipt_url: String,
    /// The payment expires unpaid after this (UNIX seconds).
    pub expires_at: u64,
    /// The receipt lifetime the contract promises (seconds).
    pub access_ttl: u64,
    /// How far it got.
    pub step: PendingStep,
    /// The payer's address (set when signed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// The transfer's nonce (set when signed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<u64>,
    /// The transfer's transaction hash (set when signed, before it is broadcast).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<String>,
    /// The signed transfer (EIP-2718 bytes, hex): public once broadcast, and what a
    /// resumed run broadcasts again (same nonce, same hash: it cannot pay twice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_tx: Option<String>,
}

impl PendingPayment {
    /// When a pending entry is no use any more: the payment expired and even a late
    /// payment's receipt would have lapsed (what the server's claim cookie allows).
    pub fn stale_after(&self) -> u64 {
        self.expires_at.saturating_add(self.access_ttl)
    }
}

/// The wallet's content: receipts and payments in progress, each keyed by contract
/// hash (lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletData {
    /// Format version ([`WALLET_VERSION`]).
    pub version: u32,
    /// Receipts by contract hash.
    #[serde(default)]
    pub receipts: BTreeMap<String, StoredReceipt>,
    /// Payments in progress by contract hash.
    #[serde(default)]
    pub pending: BTreeMap<String, PendingPayment>,
}

impl Default for WalletData {
    fn default() -> Self {
        WalletData {
            version: WALLET_VERSION,
            receipts: BTreeMap::new(),
            pending: BTreeMap::new(),
        }
    }
}

/// Whether a scope may cover `path` as seen from the client. A resource scope is
/// exact; a route scope matches its pattern (the server may still refuse when a more
/// specific route prices the path: the client then gets the 402 and carries on); a
/// list matches any of its patterns.
pub fn scope_may_cover(scope: &str, path: &str) -> bool {
    match Scope::parse(scope) {
        Some(Scope::Resource(p)) => p == path,
        Some(Scope::Route(pattern)) => Pattern::parse(pattern).is_ok_and(|p| p.matches(path)),
        Some(Scope::List(patterns)) => crate::receipt::list_pattern_for(&patterns, path).is_some(),
        None => false,
    }
}

impl WalletData {
    /// Drops receipts past their expiry and payments in progress past
    /// [`PendingPayment::stale_after`] at `now`; true when anything was dropped.
    pub fn prune(&mut self, now: u64) -> bool {
        let before = self.receipts.len() + self.pending.len();
        self.receipts.retain(|_, r| r.expires_at >= now);
        self.pending.retain(|_, p| p.stale_after() >= now);
        before != self.receipts.len() + self.pending.len()
    }

    /// The unexpired receipts bought from `origin` whose scope may cover `path`,
    /// latest expiry first, as `(contract hash, receipt)`.
    pub fn receipts_for(&self, origin: &str, path: &str, now: u64) -> Vec<(&str, &StoredReceipt)> {
        let mut found: Vec<(&str, &StoredReceipt)> = self
            .receipts
            .iter()
            .filter(|(_, r)| {
                r.origin == origin && r.expires_at >= now && scope_may_cover(&r.scope, path)
            })
            .map(|(h, r)| (h.as_str(), r))
            .collect();
        found.sort_by_key(|r| std::cmp::Reverse(r.1.expires_at));
        found
    }

    /// The payment in progress a 402 for `resource` at `origin` belongs to: the one
    /// for contract `hash` itself, else one for the same resource (a rerun meets a
    /// fresh contract with a fresh nonce, and must resume instead of paying again).
    /// A payment already signed wins over one only claimed.
    pub fn pending_for(
        &self,
        origin: &str,
        resource: &str,
        hash: &str,
    ) -> Option<(String, PendingPayment)> {
        if let Some(p) = self.pending.get(hash) {
            return Some((hash.to_string(), p.clone()));
        }
        self.pending
            .iter()
            .filter(|(_, p)| p.origin == origin && p.resource == resource)
            .max_by_key(|(_, p)| (p.step == PendingStep::Signed, p.expires_at))
            .map(|(h, p)| (h.clone(), p.clone()))
    }
}

/// A wallet file problem (exit code 1: local trouble).
#[derive(Debug, thiserror::Error)]
#[error("wallet {path}: {what}")]
pub struct WalletError {
    /// The wallet file.
    pub path: String,
    /// What went wrong.
    pub what: String,
}

/// The default wallet file: `$XDG_DATA_HOME/tollgate/wallet.json`, else
/// `$HOME/.local/share/tollgate/wallet.json`; `None` when neither is set.
pub fn default_path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?)
            .join(".local")
            .join("share"),
    };
    Some(base.join("tollgate").join("wallet.json"))
}

/// The wallet file on disk.
#[derive(Debug, Clone)]
pub struct Wallet {
    path: PathBuf,
}

/// An exclusive hold on the wallet (a `flock` on `<file>.lock`), released on drop —
/// also when the process is killed, since the kernel drops the lock with the process.
#[derive(Debug)]
pub struct WalletLock {
    _lock: nix::fcntl::Flock<File>,
}

impl Wallet {
    /// The wallet at `path` (nothing is read or created yet).
    pub fn at(path: impl Into<PathBuf>) -> Wallet {
        Wallet { path: path.into() }
    }

    /// The wallet file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, what: impl std::fmt::Display) -> WalletError {
        WalletError {
            path: self.path.display().to_string(),
            what: what.to_string(),
        }
    }

    fn ensure_dir(&self) -> Result<(), WalletError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| self.err(format!("cannot create its directory: {e}")))?;
            }
        }
        Ok(())
    }

    /// Takes the exclusive lock, waiting for another run to finish its write.
    pub fn lock(&self) -> Result<WalletLock, WalletError> {
        self.ensure_dir()?;
        let mut name = self.path.clone().into_os_string();
        name.push(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&name)
            .map_err(|e| self.err(format!("cannot open the lock file: {e}")))?;
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| self.err(format!("cannot lock: {e}")))?;
        Ok(WalletLock { _lock: lock })
    }

    /// Reads the wallet (empty when the file does not exist yet). Take the lock first
    /// when the read is followed by a write.
    pub fn load(&self) -> Result<WalletData, WalletError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(WalletData::default()),
            Err(e) => return Err(self.err(format!("cannot read: {e}"))),
        };
        let data: WalletData = serde_json::from_slice(&bytes)
            .map_err(|e| self.err(format!("not a tollgate wallet file ({e})")))?;
        if data.version != WALLET_VERSION {
            return Err(self.err(format!(
                "format version {} (this tollgate reads {WALLET_VERSION})",
                data.version
            )));
        }
        Ok(data)
    }

    /// Writes `data` atomically: a new file created 0600, synced, renamed over the
    /// old one, and the directory synced. Hold the lock ([`Wallet::lock`]).
    pub fn save(&self, _lock: &WalletLock, data: &WalletData) -> Result<(), WalletError> {
        self.ensure_dir()?;
        let json = serde_json::to_vec_pretty(data).map_err(|e| self.err(e))?;
        let mut rnd = [0u8; 6];
        getrandom::getrandom(&mut rnd).map_err(|e| self.err(e))?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(format!(".tmp-{}", hex::encode(rnd)));
        let tmp = PathBuf::from(tmp);
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&json)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.err(format!("cannot write: {e}"))
        })
    }

    /// Locks, loads, applies `change`, and saves when it returns true; returns what
    /// `change` left in the wallet.
    pub fn update(
        &self,
        change: impl FnOnce(&mut WalletData) -> bool,
    ) -> Result<WalletData, WalletError> {
        let lock = self.lock()?;
        let mut data = self.load()?;
        if change(&mut data) {
            self.save(&lock, &data)?;
        }
        Ok(data)
    }
}

/// A payment in progress for unit tests (here and in [`super::chain`]).
#[cfg(test)]
pub(super) fn sample_pending() -> PendingPayment {
    PendingPayment {
        origin: "http://a".into(),
        merchant: "http://a".into(),
        resource: "/x".into(),
        scope: "/x".into(),
        payment_id: "p".into(),
        claim_token: "c".into(),
        address: "0x0".into(),
        amount: "0.5".into(),
        amount_base_units: "50000000".into(),
        decimals: 8,
        chain_id: 1,
        token: "0x1".into(),
        status_url: "s".into(),
        receipt_url: "r".into(),
        expires_at: 10,
        access_ttl: 10,
        step: PendingStep::Claimed,
        payer: None,
        nonce: None,
        tx_hash: None,
        raw_tx: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(origin: &str, scope: &str, exp: u64) -> StoredReceipt {
        StoredReceipt {
            origin: origin.into(),
            merchant: origin.into(),
            resource: "/movies/x".into(),
            scope: scope.into(),
            receipt: "tg1.a.b".into(),
            expires_at: exp,
            payment_id: "p".into(),
        }
    }

    fn pending(resource: &str, step: PendingStep, expires_at: u64) -> PendingPayment {
        PendingPayment {
            resource: resource.into(),
            scope: resource.into(),
            expires_at,
            access_ttl: 100,
            step,
            ..sample_pending()
        }
    }

    /// Rules out replaying a receipt to a path (or a site) it was not bought for.
    #[test]
    fn receipts_cover_only_their_scope_on_their_origin() {
        let mut w = WalletData::default();
        w.receipts
            .insert("h1".into(), receipt("http://a", "/movies/x", 100));
        w.receipts
            .insert("h2".into(), receipt("http://a", "route:/series/*", 200));
        w.receipts
            .insert("h3".into(), receipt("http://a", r#"["/albums/*"]"#, 300));
        let hashes = |path: &str, origin: &str| -> Vec<String> {
            w.receipts_for(origin, path, 50)
                .iter()
                .map(|(h, _)| h.to_string())
                .collect()
        };
        assert_eq!(hashes("/movies/x", "http://a"), ["h1"]);
        assert!(hashes("/movies/y", "http://a").is_empty());
        assert!(hashes("/movies/x", "http://b").is_empty());
        assert_eq!(hashes("/series/s1/e1", "http://a"), ["h2"]);
        assert_eq!(hashes("/albums/z", "http://a"), ["h3"]);
        assert!(w.receipts_for("http://a", "/movies/x", 101).is_empty());
    }

    /// Rules out an expired receipt or a long-dead payment lingering in the file.
    #[test]
    fn prune_drops_expired_receipts_and_stale_payments() {
        let mut w = WalletData::default();
        w.receipts
            .insert("old".into(), receipt("http://a", "/x", 10));
        w.receipts
            .insert("new".into(), receipt("http://a", "/y", 1000));
        w.pending
            .insert("p-old".into(), pending("/x", PendingStep::Claimed, 10));
        w.pending
            .insert("p-new".into(), pending("/y", PendingStep::Claimed, 990));
        assert!(w.prune(500));
        assert_eq!(w.receipts.keys().collect::<Vec<_>>(), ["new"]);
        assert_eq!(w.pending.keys().collect::<Vec<_>>(), ["p-new"]);
        assert!(!w.prune(500));
    }

    /// Rules out paying twice after a crash: a fresh contract for the same resource
    /// finds the payment already under way (a signed one first).
    #[test]
    fn a_fresh_contract_for_the_same_resource_finds_the_payment_in_progress() {
        let mut w = WalletData::default();
        w.pending.insert(
            "h-claimed".into(),
            pending("/movies/x", PendingStep::Claimed, 900),
        );
        w.pending.insert(
            "h-signed".into(),
            pending("/movies/x", PendingStep::Signed, 800),
        );
        let (h, _) = w.pending_for("http://a", "/movies/x", "h-fresh").unwrap();
        assert_eq!(h, "h-signed");
        let (h, _) = w.pending_for("http://a", "/movies/x", "h-claimed").unwrap();
        assert_eq!(h, "h-claimed");
        assert!(w.pending_for("http://b", "/movies/x", "h-fresh").is_none());
        assert!(w.pending_for("http://a", "/movies/y", "h-fresh").is_none());
    }

    /// Rules out a world-readable wallet and a torn write.
    #[test]
    fn saves_are_atomic_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("tollgate-wallet-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let wallet = Wallet::at(dir.join("sub").join("wallet.json"));
        assert_eq!(wallet.load().unwrap(), WalletData::default());
        let data = wallet
            .update(|w| {
                w.receipts.insert("h".into(), receipt("http://a", "/x", 5));
                true
            })
            .unwrap();
        assert_eq!(wallet.load().unwrap(), data);
        let mode = std::fs::metadata(wallet.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(dir.join("sub"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let leftovers: Vec<_> = std::fs::read_dir(dir.join("sub"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
