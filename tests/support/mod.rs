//! Test harness: a real origin on 127.0.0.1:0 and the real tollgate binary.
//!
//! Everything listens on loopback with ephemeral ports; readiness comes from the
//! servers themselves (a bound listener, tollgate's `tollgate ready` line), never
//! from sleeps. Processes a test starts are stopped by pid when the handle drops.
#![allow(dead_code)]

pub mod background_server;
pub mod chain;
pub mod lenient_origin;
pub mod node_script;
pub mod op_server;
pub mod origin;
pub mod payer;
pub mod postgres;
pub mod rpc_proxy;
pub mod wm_origin;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A fixed 32-byte test key (hex). Tests that need a foreign key use [`OTHER_KEY`].
pub const TEST_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// Another valid key, for "minted by someone else" tests.
pub const OTHER_KEY: &str = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1eff";

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let mut rnd = [0u8; 8];
        getrandom::getrandom(&mut rnd).unwrap();
        let p = std::env::temp_dir().join(format!("tollgate-test-{tag}-{}", hex::encode(rnd)));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `tollgate serve`.
pub struct Tollgate {
    pub child: Child,
    pub addr: SocketAddr,
    /// The admin listener, when configured.
    pub admin: Option<SocketAddr>,
    /// The gateway listener, when configured.
    pub gateway: Option<SocketAddr>,
    pub dir: Option<TempDir>,
    pub stderr_path: PathBuf,
    /// Set after `kill9`: Drop has nothing left to stop.
    killed: bool,
}

impl Tollgate {
    /// Starts tollgate with `config` (TOML; `{listen}` is replaced by 127.0.0.1:0)
    /// and the receipt key in `TOLLGATE_TEST_KEY`.
    pub fn start(config: &str) -> Tollgate {
        Self::start_with_env(config, &[("TOLLGATE_TEST_KEY", TEST_KEY)])
    }

    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Tollgate {
        let dir = TempDir::new("tg");
        let mut tg = Self::start_in(dir.path(), config, env);
        tg.dir = Some(dir);
        tg
    }

    /// [`Tollgate::start_in`] with the test receipt key: the usual (re)start of a
    /// payments test on its own directory.
    pub fn start_keyed(dir: &Path, config: &str) -> Tollgate {
        Self::start_in(dir, config, &[("TOLLGATE_TEST_KEY", TEST_KEY)])
    }

    /// Starts tollgate with its working directory (and so its SQLite store) in
    /// `dir`, which outlives it: a later `start_in` on the same `dir` is a restart.
    pub fn start_in(dir: &Path, config: &str, env: &[(&str, &str)]) -> Tollgate {
        let cfg_path = dir.join("tollgate.toml");
        std::fs::write(&cfg_path, config).unwrap();
        let stderr_path = dir.join(format!(
            "stderr-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        cmd.args(["serve", "--config"])
            .arg(&cfg_path)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .env("RUST_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn tollgate");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("tollgate ready: ") {
                    let mut words = rest.split_whitespace();
                    let kind = words.next().unwrap_or("").to_string();
                    let addr = words
                        .next()
                        .unwrap_or("")
                        .trim_start_matches("http://")
                        .to_string();
                    let _ = tx.send((kind, addr));
                }
            }
        });
        let (mut admin, mut gateway) = (None, None);
        let addr = loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok((kind, a)) if kind == "public" => break a.parse().unwrap(),
                Ok((kind, a)) if kind == "admin" => admin = Some(a.parse().unwrap()),
                Ok((kind, a)) if kind == "gateway" => gateway = Some(a.parse().unwrap()),
                Ok(_) => {}
                Err(_) => {
                    // Exited on its own (and how), or still running after the wait.
                    let status = child.try_wait().ok().flatten();
                    let _ = child.kill();
                    let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                    panic!(
                        "tollgate did not become ready (exit status: {status:?}); stderr:\n{err}"
                    );
                }
            }
        };
        Tollgate {
            child,
            addr,
            admin,
            gateway,
            dir: None,
            stderr_path,
            killed: false,
        }
    }

    /// `kill -9`: no chance to flush or shut down.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.killed = true;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Peak resident memory (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for Tollgate {
    fn drop(&mut self) {
        if self.killed {
            return;
        }
        // SIGINT: pingora's fast shutdown.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Runs `tollgate <args>` to completion with `env`; returns (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A raw HTTP/1.1 response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method target` byte-for-byte (no client-side normalisation) with
/// `Connection: close` and reads the whole response.
pub fn raw_request(
    addr: SocketAddr,
    method: &str,
    target: &[u8],
    headers: &[(&str, &str)],
) -> RawResponse {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = Vec::new();
    req.extend_from_slice(method.as_bytes());
    req.push(b' ');
    req.extend_from_slice(target);
    req.extend_from_slice(b" HTTP/1.1\r\nHost: tollgate.test\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    s.write_all(&req).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse_response(&buf, method == "HEAD")
}

/// Parses one HTTP/1.1 response (Content-Length or close-delimited bodies).
pub fn parse_response(buf: &[u8], head_only: bool) -> RawResponse {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let body = if head_only {
        Vec::new()
    } else {
        buf[end + 4..].to_vec()
    };
    RawResponse {
        status,
        headers,
        body,
    }
}

/// A minimal config in front of `origin`, with `routes` appended.
pub fn config(origin: SocketAddr, routes: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "https://shop.test"
upstream = "{origin}"
threads = 2
grace_period = "1s"

[secrets]
receipt_key_env = "TOLLGATE_TEST_KEY"

[payments]
expiry = "30m"

{routes}
"#
    )
}

/// The merchant's account xpub in tests: m/44'/60'/1'/0 of anvil's dev mnemonic, so
/// receiving addresses are distinct from the funded dev accounts (m/44'/60'/0'/0/i).
pub fn merchant_xpub() -> String {
    use coins_bip32::enc::{MainnetEncoder, XKeyEncoder};
    use coins_bip32::primitives::Hint;
    use coins_bip32::xkeys::XPriv;
    use coins_bip39::{English, Mnemonic};
    let m: Mnemonic<English> = Mnemonic::new_from_phrase(chain::DEV_MNEMONIC).unwrap();
    let root = XPriv::root_from_seed(&m.to_seed(None).unwrap(), Some(Hint::Legacy)).unwrap();
    let account = root.derive_path("m/44'/60'/1'/0").unwrap();
    MainnetEncoder::xpub_to_base58(&account.verify_key()).unwrap()
}

/// A local chain with Test 0xBTC deployed and 1000 0xBTC minted to dev account 1
/// (the payer in every payment test).
pub async fn funded_chain(chain_id: u64) -> (chain::Anvil, alloy::primitives::Address) {
    let anvil = chain::Anvil::start(chain_id);
    let token = anvil.deploy_token().await;
    let payer = anvil.dev_account(1).await;
    anvil.mint(token, payer, 1000 * chain::ONE_TOKEN).await;
    (anvil, token)
}

/// The parts of a payments-enabled test config that every payment test shares:
/// `[server]` (listen/public_url given), `[store]` (SQLite in the working directory),
/// `[secrets]` (the test receipt key, plus `secrets_extra` lines) and `[chain]`
/// (anvil's RPC after any `dead_rpcs`, the token, `confirmations`, 100 ms polls, the
/// merchant xpub). `rest` appends the test's own sections.
pub struct PaymentsConfig<'a> {
    pub listen: &'a str,
    pub public_url: &'a str,
    pub origin: SocketAddr,
    pub rpc: &'a str,
    pub dead_rpcs: &'a [&'a str],
    pub chain_id: u64,
    pub token: alloy::primitives::Address,
    pub confirmations: u64,
    pub secrets_extra: &'a str,
    pub rest: &'a str,
}

impl<'a> PaymentsConfig<'a> {
    /// The usual test setup: tollgate on 127.0.0.1:0 with `public_url`
    /// `http://tollgate.test` (what [`payer::PUBLIC_URL`] maps back), one RPC URL,
    /// one confirmation, no extra secrets; override fields with struct update syntax.
    pub fn local(
        origin: SocketAddr,
        rpc: &'a str,
        chain_id: u64,
        token: alloy::primitives::Address,
        rest: &'a str,
    ) -> PaymentsConfig<'a> {
        PaymentsConfig {
            listen: "127.0.0.1:0",
            public_url: payer::PUBLIC_URL,
            origin,
            rpc,
            dead_rpcs: &[],
            chain_id,
            token,
            confirmations: 1,
            secrets_extra: "",
            rest,
        }
    }

    /// The config on a SQLite store in the working directory, polling every 100 ms.
    pub fn render(&self) -> String {
        self.render_on("sqlite://tollgate.db", "100ms")
    }

    /// The config on the store at `store_url` (a fleet's PostgreSQL URL), polling
    /// the chain every `poll_interval`.
    pub fn render_on(&self, store_url: &str, poll_interval: &str) -> String {
        let rpcs: String = self
            .dead_rpcs
            .iter()
            .map(|u| format!("\"{u}\", "))
            .collect();
        format!(
            r#"
[server]
listen = "{listen}"
public_url = "{public_url}"
upstream = "{origin}"
threads = 2
grace_period = "1s"
[store]
url = "{store_url}"
[secrets]
receipt_key_env = "TOLLGATE_TEST_KEY"
{secrets_extra}
[chain]
rpc_urls = [{rpcs}"{rpc}"]
chain_id = {chain_id}
token = "{token}"
confirmations = {confirmations}
poll_interval = "{poll_interval}"
xpub = "{xpub}"
{rest}
"#,
            listen = self.listen,
            public_url = self.public_url,
            origin = self.origin,
            secrets_extra = self.secrets_extra,
            rpc = self.rpc,
            chain_id = self.chain_id,
            token = self.token,
            confirmations = self.confirmations,
            xpub = merchant_xpub(),
            rest = self.rest,
        )
    }
}

/// A small deterministic random sequence (xorshift64) for tests that pick their
/// kill points and instances "at random" but must replay the same way.
pub struct Xorshift(pub u64);

impl Xorshift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.next() % n == 0
    }
}

/// Polls `check` every 50 ms until it yields a value; panics after 30 s with
/// `what` and the last observation. The one bounded wait every test uses.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) => assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; last seen: {last}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A free loopback port, for a server whose address must be known before it starts
/// (a browser must reach tollgate at its `public_url`).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A decimal 0xBTC amount ("0.5") in base units.
pub fn base_units(decimal: &str) -> u128 {
    let (whole, frac) = decimal.split_once('.').unwrap_or((decimal, ""));
    let places = chain::DECIMALS as usize;
    assert!(frac.len() <= places, "too many decimals: {decimal}");
    let frac = format!("{frac:0<places$}");
    whole.parse::<u128>().unwrap() * chain::ONE_TOKEN + frac.parse::<u128>().unwrap()
}

/// tollgate with payments on `anvil`/`token` in front of `origin`, listening where its
/// `public_url` (`http://127.0.0.1:PORT`, the port chosen first) points, so a browser
/// reaches it at the URLs it hands out; `rest` adds the test's sections.
pub fn browser_tollgate(
    anvil: &chain::Anvil,
    token: alloy::primitives::Address,
    origin: SocketAddr,
    confirmations: u64,
    rest: &str,
) -> Tollgate {
    let listen = format!("127.0.0.1:{}", free_port());
    let public_url = format!("http://{listen}");
    let config = PaymentsConfig {
        listen: &listen,
        public_url: &public_url,
        origin,
        rpc: anvil.rpc_url(),
        dead_rpcs: &[],
        chain_id: anvil.chain_id(),
        token,
        confirmations,
        secrets_extra: "",
        rest,
    }
    .render();
    let dir = TempDir::new("browser-tg");
    let mut tg = Tollgate::start_in(dir.path(), &config, &[("TOLLGATE_TEST_KEY", TEST_KEY)]);
    tg.dir = Some(dir);
    assert_eq!(
        tg.addr.to_string(),
        listen,
        "tollgate must listen where public_url points"
    );
    tg
}
