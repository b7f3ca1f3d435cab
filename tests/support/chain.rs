//! Local-chain test harness: a real anvil on 127.0.0.1 and the Test 0xBTC token.
//!
//! Use from an integration test with
//!
//! ```ignore
//! #[path = "support/chain.rs"]
//! mod chain;
//! ```
//!
//! (or `pub mod chain;` in `tests/support/mod.rs`).
//!
//! * The anvil binary comes from `chain/node_modules` (`scripts/install-test-deps`
//!   installs it), or from `$TOLLGATE_ANVIL` when that is set.
//! * anvil binds `--port 0` itself; readiness is its `Listening on 127.0.0.1:PORT`
//!   stdout line, never a sleep. It runs in its own process group, killed on drop.
//! * Dev accounts come from the fixed default mnemonic and are unlocked, so
//!   transactions are sent with `eth_sendTransaction` from them.
//! * The token is `chain/artifacts/TestToken.json` (built by `node chain/build.js`,
//!   committed), compiled into the test binary. Amounts are integer base units
//!   (`u128`; 1 0xBTC = [`ONE_TOKEN`] = 10^8).
//! * JSON-RPC is plain reqwest + serde_json; ABI encoding uses alloy's `sol!`.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::{SolCall, SolEvent};
use serde_json::{json, Value};

alloy::sol! {
    /// The Test 0xBTC token (chain/contracts/TestToken.sol).
    interface ITestToken {
        event Transfer(address indexed from, address indexed to, uint256 value);
        event Approval(address indexed owner, address indexed spender, uint256 value);

        function name() external view returns (string);
        function symbol() external view returns (string);
        function decimals() external view returns (uint8);
        function totalSupply() external view returns (uint256);
        function owner() external view returns (address);
        function balanceOf(address account) external view returns (uint256);
        function allowance(address holder, address spender) external view returns (uint256);
        function transfer(address to, uint256 value) external returns (bool);
        function approve(address spender, uint256 value) external returns (bool);
        function transferFrom(address from, address to, uint256 value) external returns (bool);
        function mint(address to, uint256 value) external;
        function airdrop(address[] calldata to, uint256 value) external;
    }
}

/// The token's decimals.
pub const DECIMALS: u32 = 8;
/// One whole 0xBTC in base units.
pub const ONE_TOKEN: u128 = 100_000_000;
/// The mnemonic anvil derives its dev accounts from (anvil's own default, passed
/// explicitly so the accounts never change).
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";
/// How many dev accounts anvil creates.
pub const DEV_ACCOUNTS: usize = 10;

/// The compiled token: `{"abi": [...], "bytecode": "0x..."}`.
pub const TOKEN_ARTIFACT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/chain/artifacts/TestToken.json"
));

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(30);
const LOG_LINES: usize = 400;

/// `keccak256("Transfer(address,address,uint256)")`, topic 0 of every Transfer log.
pub fn transfer_topic() -> B256 {
    ITestToken::Transfer::SIGNATURE_HASH
}

/// `keccak256("Approval(address,address,uint256)")`.
pub fn approval_topic() -> B256 {
    ITestToken::Approval::SIGNATURE_HASH
}

/// An address as a 32-byte log topic (left-padded).
pub fn address_topic(a: Address) -> B256 {
    a.into_word()
}

/// A fresh random address nobody holds a key for.
pub fn random_address() -> Address {
    let mut b = [0u8; 20];
    getrandom::getrandom(&mut b).expect("getrandom");
    Address::from(b)
}

/// The token's ABI (JSON) and creation bytecode.
pub fn token_artifact() -> (Value, Vec<u8>) {
    let v: Value = serde_json::from_str(TOKEN_ARTIFACT).expect("TestToken.json is JSON");
    let code = v["bytecode"].as_str().expect("bytecode");
    let code = hex::decode(code.trim_start_matches("0x")).expect("bytecode is hex");
    (v["abi"].clone(), code)
}

/// The anvil binary: `$TOLLGATE_ANVIL`, else the one npm put in chain/node_modules.
pub fn anvil_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TOLLGATE_ANVIL") {
        return PathBuf::from(p);
    }
    let os = std::env::consts::OS;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("chain/node_modules/@foundry-rs")
        .join(format!("anvil-{os}-{arch}"))
        .join("bin/anvil");
    assert!(
        p.is_file(),
        "anvil not found at {}; run scripts/install-test-deps (npm ci --prefix chain)",
        p.display()
    );
    p
}

/// A JSON-RPC error object (`{"code", "message", "data"}`).
#[derive(Debug, Clone)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JSON-RPC error {}: {}", self.code, self.message)?;
        if let Some(d) = &self.data {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for RpcError {}

/// Parses a `0x…` quantity.
pub fn parse_u64(v: &Value) -> u64 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("expected a hex quantity, got {v}"));
    u64::from_str_radix(s.trim_start_matches("0x"), 16)
        .unwrap_or_else(|e| panic!("bad quantity {s}: {e}"))
}

/// Parses `0x…` data into bytes.
pub fn parse_bytes(v: &Value) -> Vec<u8> {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("expected hex data, got {v}"));
    hex::decode(s.trim_start_matches("0x")).unwrap_or_else(|e| panic!("bad hex {s}: {e}"))
}

/// Parses a 32-byte hash.
pub fn parse_b256(v: &Value) -> B256 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("expected a hash, got {v}"));
    s.parse().unwrap_or_else(|e| panic!("bad hash {s}: {e}"))
}

/// Formats bytes as `0x…` data.
pub fn hex_data(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

/// A running anvil; killed (its whole process group) on drop.
pub struct Anvil {
    child: Child,
    rpc_url: String,
    chain_id: u64,
    private_keys: Vec<String>,
    log: Arc<Mutex<VecDeque<String>>>,
    http: reqwest::Client,
    next_id: AtomicU64,
    accounts: OnceLock<Vec<Address>>,
}

impl Anvil {
    /// Starts anvil with `--chain-id chain_id`, automine on.
    pub fn start(chain_id: u64) -> Anvil {
        Self::start_with_args(chain_id, &[])
    }

    /// Starts anvil with extra command-line arguments (e.g. `["--no-mining"]`,
    /// `["--block-time", "1"]`).
    pub fn start_with_args(chain_id: u64, extra: &[&str]) -> Anvil {
        let bin = anvil_binary();
        let mut cmd = Command::new(&bin);
        cmd.args(["--host", "127.0.0.1", "--port", "0"])
            .args(["--chain-id", &chain_id.to_string()])
            .args(["--mnemonic", DEV_MNEMONIC])
            .args(["--accounts", &DEV_ACCOUNTS.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("NO_COLOR", "1");
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));

        let log = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_LINES)));
        let (tx, rx) = mpsc::channel::<Result<(String, Vec<String>), ()>>();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        {
            // Reads the banner until "Listening on ADDR", then keeps draining stdout
            // (anvil logs every call there; a full pipe would stall it).
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut ready = Some(tx);
                let mut keys = Vec::new();
                let mut in_keys = false;
                for line in BufReader::new(stdout).split(b'\n') {
                    let Ok(line) = line else { break };
                    let line = String::from_utf8_lossy(&line).into_owned();
                    if let Some(tx) = &ready {
                        let t = line.trim();
                        if t == "Private Keys" {
                            in_keys = true;
                        } else if in_keys {
                            // "(0) 0xac09…"
                            if let Some((_, key)) = t.split_once(") ") {
                                keys.push(key.trim().to_string());
                            } else if !t.is_empty() && !t.starts_with('=') {
                                in_keys = false;
                            }
                        }
                        if let Some(addr) = t.strip_prefix("Listening on ") {
                            let _ =
                                tx.send(Ok((addr.trim().to_string(), std::mem::take(&mut keys))));
                            ready = None;
                        }
                    }
                    push_log(&log, line);
                }
                if let Some(tx) = ready {
                    let _ = tx.send(Err(()));
                }
            });
        }
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).split(b'\n') {
                    let Ok(line) = line else { break };
                    push_log(&log, format!("stderr: {}", String::from_utf8_lossy(&line)));
                }
            });
        }

        let (addr, private_keys) = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Ok(v)) => v,
            other => {
                kill_group(&mut child);
                let why = if other.is_err() {
                    "timed out"
                } else {
                    "exited"
                };
                let out: Vec<String> = log.lock().unwrap().iter().cloned().collect();
                panic!(
                    "anvil {why} before printing \"Listening on\"; output:\n{}",
                    out.join("\n")
                );
            }
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("reqwest client");
        Anvil {
            child,
            rpc_url: format!("http://{addr}"),
            chain_id,
            private_keys,
            log,
            http,
            next_id: AtomicU64::new(1),
            accounts: OnceLock::new(),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn rpc_url(&self) -> &str {
        &self.rpc_url
    }

    /// The chain id anvil was started with.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// anvil's pid (also its process-group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines anvil printed (stdout, and stderr prefixed `stderr: `).
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().iter().cloned().collect()
    }

    /// Dev account `i`'s private key (`0x…`, from anvil's banner), for tests that
    /// sign transactions themselves instead of using the unlocked account.
    pub fn dev_private_key(&self, i: usize) -> &str {
        &self.private_keys[i]
    }

    // ---- JSON-RPC -------------------------------------------------------------

    /// Calls `method`; a JSON-RPC error comes back as `Err`, a transport failure panics.
    pub async fn try_rpc(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let resp = self
            .http
            .post(&self.rpc_url)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method}: request to anvil failed: {e}"));
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .unwrap_or_else(|e| panic!("{method}: anvil answered {status} without JSON: {e}"));
        if let Some(err) = v.get("error") {
            return Err(RpcError {
                code: err["code"].as_i64().unwrap_or(0),
                message: err["message"].as_str().unwrap_or_default().to_string(),
                data: err.get("data").cloned(),
            });
        }
        Ok(v.get("result").cloned().unwrap_or(Value::Null))
    }

    /// Calls `method`, panicking on an error.
    pub async fn rpc(&self, method: &str, params: Value) -> Value {
        match self.try_rpc(method, params.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{method}({params}): {e}"),
        }
    }

    // ---- chain control --------------------------------------------------------

    /// `eth_chainId` as the node reports it.
    pub async fn rpc_chain_id(&self) -> u64 {
        parse_u64(&self.rpc("eth_chainId", json!([])).await)
    }

    pub async fn block_number(&self) -> u64 {
        parse_u64(&self.rpc("eth_blockNumber", json!([])).await)
    }

    /// A block by number (`"latest"`, `"pending"` or a number), without transactions.
    pub async fn block(&self, number: Option<u64>) -> Value {
        let tag = number.map_or_else(|| json!("latest"), |n| json!(format!("{n:#x}")));
        self.rpc("eth_getBlockByNumber", json!([tag, false])).await
    }

    /// Turns mining on every transaction on or off.
    pub async fn set_automine(&self, on: bool) {
        self.rpc("evm_setAutomine", json!([on])).await;
    }

    pub async fn automine(&self) -> bool {
        self.rpc("anvil_getAutomine", json!([]))
            .await
            .as_bool()
            .unwrap_or(false)
    }

    /// Mines `n` blocks (including whatever is pending).
    pub async fn mine(&self, n: u64) {
        self.rpc("anvil_mine", json!([format!("{n:#x}")])).await;
    }

    /// Takes a snapshot of the whole chain state; returns its id.
    pub async fn snapshot(&self) -> String {
        let id = self.rpc("evm_snapshot", json!([])).await;
        id.as_str().expect("snapshot id").to_string()
    }

    /// Reverts to snapshot `id` (which is used up; take another to revert again).
    /// Panics when anvil does not know the id.
    pub async fn revert(&self, id: &str) {
        let ok = self.rpc("evm_revert", json!([id])).await;
        assert_eq!(
            ok,
            json!(true),
            "evm_revert({id}) failed (unknown or used snapshot)"
        );
    }

    /// Replaces the last `depth` blocks with as many new, empty ones: their
    /// transactions are dropped, block hashes change, the height stays.
    pub async fn reorg(&self, depth: u64) {
        self.reorg_with(depth, Vec::new()).await;
    }

    /// Like [`Self::reorg`], but puts `txs` in the new blocks: each is a transaction
    /// request (`{"from", "to", "data", …}`, from an unlocked account) or a raw
    /// signed transaction (`"0x…"`), with its block offset (0 = the first new block,
    /// `depth - 1` = the new tip).
    pub async fn reorg_with(&self, depth: u64, txs: Vec<(Value, u64)>) {
        let pairs: Vec<Value> = txs.into_iter().map(|(tx, off)| json!([tx, off])).collect();
        self.rpc("anvil_reorg", json!([depth, pairs])).await;
    }

    // ---- accounts and transactions --------------------------------------------

    /// The dev accounts (`eth_accounts`; unlocked).
    pub async fn dev_accounts(&self) -> Vec<Address> {
        if let Some(a) = self.accounts.get() {
            return a.clone();
        }
        let v = self.rpc("eth_accounts", json!([])).await;
        let accounts: Vec<Address> = serde_json::from_value(v).expect("eth_accounts");
        let _ = self.accounts.set(accounts.clone());
        accounts
    }

    /// Dev account `i` (0 deploys and owns the token).
    pub async fn dev_account(&self, i: usize) -> Address {
        let a = self.dev_accounts().await;
        *a.get(i)
            .unwrap_or_else(|| panic!("no dev account {i} (anvil has {})", a.len()))
    }

    /// Native balance (wei).
    pub async fn eth_balance(&self, addr: Address) -> U256 {
        let v = self.rpc("eth_getBalance", json!([addr, "latest"])).await;
        serde_json::from_value(v).expect("balance")
    }

    /// Sends `tx` (a transaction request from an unlocked account) and returns its
    /// hash without waiting for it to be mined.
    ///
    /// Without a `"gas"` field, gas is estimated first (`eth_estimateGas` against
    /// the latest block), so a call that would revert comes back as `Err` here
    /// (anvil's own `eth_sendTransaction` would accept it and mine a failed
    /// transaction). Give `"gas"` to send a transaction that fails on chain.
    pub async fn try_send_transaction(&self, mut tx: Value) -> Result<B256, RpcError> {
        if tx.get("gas").is_none() {
            let gas = self.try_rpc("eth_estimateGas", json!([tx])).await?;
            tx["gas"] = gas;
        }
        let h = self.try_rpc("eth_sendTransaction", json!([tx])).await?;
        Ok(parse_b256(&h))
    }

    /// Sends `data` to `to` from `from`; returns the hash, not waiting for mining.
    pub async fn try_send_call(
        &self,
        from: Address,
        to: Address,
        data: Vec<u8>,
    ) -> Result<B256, RpcError> {
        self.try_send_transaction(json!({"from": from, "to": to, "data": hex_data(&data)}))
            .await
    }

    /// The receipt, or `None` while the transaction is pending (or dropped).
    pub async fn receipt(&self, hash: B256) -> Option<Value> {
        let r = self.rpc("eth_getTransactionReceipt", json!([hash])).await;
        (!r.is_null()).then_some(r)
    }

    /// Waits (polling) until `hash` has a receipt, and returns it. Panics after
    /// 30 s: with automine off nothing is mined until [`Self::mine`].
    pub async fn wait_receipt(&self, hash: B256) -> Value {
        let start = Instant::now();
        loop {
            if let Some(r) = self.receipt(hash).await {
                return r;
            }
            assert!(
                start.elapsed() < RECEIPT_TIMEOUT,
                "no receipt for {hash} after {RECEIPT_TIMEOUT:?} (automine off? call mine())"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits for `hash`'s receipt and asserts the transaction succeeded.
    pub async fn wait_success(&self, hash: B256) -> Value {
        let r = self.wait_receipt(hash).await;
        assert_eq!(
            r["status"],
            json!("0x1"),
            "transaction {hash} reverted: {r}"
        );
        r
    }

    /// `eth_call` against the latest block; returns the raw output.
    pub async fn call(&self, to: Address, data: Vec<u8>) -> Vec<u8> {
        let out = self
            .rpc(
                "eth_call",
                json!([{"to": to, "data": hex_data(&data)}, "latest"]),
            )
            .await;
        parse_bytes(&out)
    }

    // ---- the token ------------------------------------------------------------

    /// Deploys Test 0xBTC from dev account 0 (its owner) and returns its address
    /// once deployed. With automine off it mines one block (and so whatever else
    /// is pending) to get there.
    pub async fn deploy_token(&self) -> Address {
        let (_, code) = token_artifact();
        let from = self.dev_account(0).await;
        let hash = self
            .try_send_transaction(json!({"from": from, "data": hex_data(&code)}))
            .await
            .unwrap_or_else(|e| panic!("deploy TestToken: {e}"));
        if !self.automine().await {
            self.mine(1).await;
        }
        let r = self.wait_success(hash).await;
        serde_json::from_value(r["contractAddress"].clone()).expect("contractAddress")
    }

    /// Mints `amount` base units to `to` (from the owner, dev account 0). Like
    /// [`Self::transfer`]: with automine on, returns once mined (asserting success);
    /// with automine off, returns the pending transaction's hash.
    pub async fn mint(&self, token: Address, to: Address, amount: u128) -> B256 {
        let owner = self.dev_account(0).await;
        let data = ITestToken::mintCall {
            to,
            value: U256::from(amount),
        }
        .abi_encode();
        let hash = self
            .try_send_call(owner, token, data)
            .await
            .unwrap_or_else(|e| panic!("mint {amount} to {to}: {e}"));
        if self.automine().await {
            self.wait_success(hash).await;
        }
        hash
    }

    /// Mints `amount` base units to each of `to` in one transaction (from the owner,
    /// dev account 0): one `Transfer(0x0, to[i], amount)` log per recipient, in
    /// order — for filling a chain with many logs fast. Like [`Self::mint`]: with
    /// automine on, returns once mined (asserting success); with automine off,
    /// returns the pending transaction's hash. A batch must fit in one block's gas
    /// limit (30M on anvil): about 25k gas per recipient whose balance was zero,
    /// well under 10k per recipient that already holds tokens.
    pub async fn airdrop(&self, token: Address, to: &[Address], amount: u128) -> B256 {
        let owner = self.dev_account(0).await;
        let data = ITestToken::airdropCall {
            to: to.to_vec(),
            value: U256::from(amount),
        }
        .abi_encode();
        let hash = self
            .try_send_call(owner, token, data)
            .await
            .unwrap_or_else(|e| panic!("airdrop {amount} to {} addresses: {e}", to.len()));
        if self.automine().await {
            self.wait_success(hash).await;
        }
        hash
    }

    /// Transfers `amount` base units of `token` from dev account `from` to `to`.
    /// With automine on, returns once the transfer is mined (and asserts success);
    /// with automine off, returns the hash of the still-pending transaction.
    pub async fn transfer(&self, token: Address, from: usize, to: Address, amount: u128) -> B256 {
        match self.try_transfer(token, from, to, amount).await {
            Ok(h) => h,
            Err(e) => panic!("transfer {amount} from dev account {from} to {to}: {e}"),
        }
    }

    /// [`Self::transfer`] that returns a rejected transfer (e.g. "balance exceeded")
    /// as `Err` instead of panicking.
    pub async fn try_transfer(
        &self,
        token: Address,
        from: usize,
        to: Address,
        amount: u128,
    ) -> Result<B256, RpcError> {
        let from = self.dev_account(from).await;
        let data = ITestToken::transferCall {
            to,
            value: U256::from(amount),
        }
        .abi_encode();
        let hash = self.try_send_call(from, token, data).await?;
        if self.automine().await {
            let r = self.wait_receipt(hash).await;
            if r["status"] != json!("0x1") {
                return Err(RpcError {
                    code: 0,
                    message: format!("transaction {hash} reverted on chain"),
                    data: Some(r),
                });
            }
        }
        Ok(hash)
    }

    /// `balanceOf(addr)` in base units.
    pub async fn balance_of(&self, token: Address, addr: Address) -> u128 {
        let out = self
            .call(
                token,
                ITestToken::balanceOfCall { account: addr }.abi_encode(),
            )
            .await;
        let v = ITestToken::balanceOfCall::abi_decode_returns(&out).expect("balanceOf output");
        u128::try_from(v).expect("balance fits in u128")
    }

    /// `totalSupply()` in base units.
    pub async fn total_supply(&self, token: Address) -> u128 {
        let out = self
            .call(token, ITestToken::totalSupplyCall {}.abi_encode())
            .await;
        let v = ITestToken::totalSupplyCall::abi_decode_returns(&out).expect("totalSupply output");
        u128::try_from(v).expect("supply fits in u128")
    }

    /// The token's Transfer logs from block `from_block` to the latest, optionally
    /// only those to `to`.
    pub async fn transfer_logs(
        &self,
        token: Address,
        from_block: u64,
        to: Option<Address>,
    ) -> Vec<Value> {
        let to_topic = to.map_or(Value::Null, |a| json!(address_topic(a)));
        let filter = json!({
            "address": token,
            "fromBlock": format!("{from_block:#x}"),
            "toBlock": "latest",
            "topics": [transfer_topic(), Value::Null, to_topic],
        });
        let v = self.rpc("eth_getLogs", json!([filter])).await;
        serde_json::from_value(v).expect("eth_getLogs")
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

fn push_log(log: &Mutex<VecDeque<String>>, line: String) {
    let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
    if l.len() == LOG_LINES {
        l.pop_front();
    }
    l.push_back(line);
}

/// SIGKILLs the child's process group (its pgid is its pid), then reaps it.
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}
