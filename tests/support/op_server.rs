//! The strict local Open Payments server (`tests/support/op_server.mjs`, node) as a
//! test handle: receivers `alice`, `bob` (USD, scale 2) and `eur` (EUR), tollgate's
//! client wallet address `tollgate` whose JWKS holds the public half of an Ed25519
//! key made here (its PKCS#8 PEM written for tollgate's `client_key_file`), a GNAP
//! authorization server at `{base}/auth` and a resource server at `{base}/rs`.
//! Every request that breaks the Open Payments specs or fails signature checks is a
//! *violation*, readable through [`OpServer::violations`]. Plain http, or https
//! with a certificate from a [`TestCa`].
//!
//! Started from its `op_server listening <url>` line (no sleeps), killed by pid on
//! drop. Needs `tests/op/node_modules` (scripts/install-test-deps).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use serde_json::{json, Value};

use super::TempDir;

/// `tests/op/`, where the Interledger packages (and the signing client) live.
pub fn op_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/op")
}

fn assert_installed() {
    assert!(
        op_dir()
            .join("node_modules/@interledger/open-payments/package.json")
            .is_file(),
        "the Interledger packages are not installed in {}: run scripts/install-test-deps",
        op_dir().display()
    );
}

/// A test certificate authority and one server certificate (127.0.0.1 and
/// localhost) it signed, as PEM files in a temporary directory (rcgen, ECDSA P-256).
pub struct TestCa {
    dir: TempDir,
}

impl TestCa {
    pub fn new() -> TestCa {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let dir = TempDir::new("op-ca");
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "tollgate test CA (Open Payments)");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);

        let mut leaf =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "op_server.test");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), leaf_cert.pem()).unwrap();
        std::fs::write(dir.path().join("server-key.pem"), leaf_key.serialize_pem()).unwrap();
        TestCa { dir }
    }

    /// The CA certificate: tollgate's `[web_monetization] ca_file`.
    pub fn ca_pem_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server certificate (signed by the CA).
    pub fn cert_pem_path(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    /// The server certificate's private key.
    pub fn key_pem_path(&self) -> PathBuf {
        self.dir.path().join("server-key.pem")
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// An Ed25519 private key as PKCS#8 v1 PEM (RFC 8410: what `openssl genpkey
/// -algorithm ed25519` writes). Not ed25519-dalek's `to_pkcs8_pem`: its v2 form
/// (with the public key) is refused by the OpenSSL 3.0 under Node here, and the key
/// file must be readable by both tollgate and Interledger's Node client code.
pub fn pkcs8_v1_pem(seed: &[u8; 32]) -> String {
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend_from_slice(seed);
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
}

/// A running `op_server.mjs`.
pub struct OpServer {
    child: Child,
    base: String,
    key_id: String,
    jwk: Value,
    ca: Option<PathBuf>,
    http: reqwest::Client,
    stderr_path: PathBuf,
    dir: TempDir,
}

impl OpServer {
    /// Makes tollgate's client key, starts the server (https with `https`'s server
    /// certificate) and waits for its listening line.
    pub fn start(https: Option<&TestCa>) -> OpServer {
        assert_installed();
        let dir = TempDir::new("op");
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        std::fs::write(dir.path().join("client-key.pem"), pkcs8_v1_pem(&seed)).unwrap();
        let key_id = format!("tollgate-test-{}", hex::encode(&seed[..4]));
        let jwk = json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "kid": key_id,
            "x": B64URL.encode(key.verifying_key().as_bytes()),
        });
        let jwk_path = dir.path().join("client-jwk.json");
        std::fs::write(&jwk_path, jwk.to_string()).unwrap();

        let stderr_path = dir.path().join("op_server-stderr.log");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/op_server.mjs");
        let mut cmd = Command::new("node");
        cmd.arg(&script)
            .arg("--client-jwk")
            .arg(&jwk_path)
            .current_dir(op_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        if let Some(ca) = https {
            cmd.arg("--cert")
                .arg(ca.cert_pem_path())
                .arg("--key")
                .arg(ca.key_pem_path())
                // It fetches its own jwks.json over TLS, as Rafiki fetches a client's.
                .env("NODE_EXTRA_CA_CERTS", ca.ca_pem_path());
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn node ({e}): run scripts/install-test-deps"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("op_server listening ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                panic!("op_server did not start; stderr:\n{err}");
            }
        };
        let mut http = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if let Some(ca) = https {
            let pem = std::fs::read(ca.ca_pem_path()).unwrap();
            http = http.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
        }
        OpServer {
            child,
            base,
            key_id,
            jwk,
            ca: https.map(TestCa::ca_pem_path),
            http: http.build().unwrap(),
            stderr_path,
            dir,
        }
    }

    /// `http(s)://127.0.0.1:<port>`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A wallet address on this server: `alice`, `bob`, `eur` or `tollgate`.
    pub fn wallet(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }

    /// tollgate's client wallet address.
    pub fn client_wallet(&self) -> String {
        self.wallet("tollgate")
    }

    /// tollgate's Ed25519 private key, PKCS#8 PEM (`client_key_file`).
    pub fn client_key_pem_path(&self) -> PathBuf {
        self.dir.path().join("client-key.pem")
    }

    /// The key's `kid` in the client wallet address's JWKS (`client_key_id`).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public JWK the server publishes for tollgate.
    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    /// The CA tollgate must trust (https only).
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    /// What the server logged (one line per violation).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// tollgate's `[web_monetization]` section for receiving into `wallet`, with
    /// this server's client identity (and its CA over https).
    pub fn wm_config(&self, wallet: &str) -> String {
        let ca = self
            .ca
            .as_ref()
            .map(|p| format!("ca_file = {:?}\n", p.display().to_string()))
            .unwrap_or_default();
        format!(
            "[web_monetization]\nwallet_address = {:?}\nclient_wallet_address = {:?}\nclient_key_file = {:?}\nclient_key_id = {:?}\n{ca}",
            self.wallet(wallet),
            self.client_wallet(),
            self.client_key_pem_path().display().to_string(),
            self.key_id,
        )
    }

    // ---- the control API ------------------------------------------------------------

    async fn control(&self, method: reqwest::Method, what: &str, body: Option<Value>) -> Value {
        let url = format!("{}/_control/{what}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("op_server {method} {what}: {e}"));
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "op_server {method} {what}: {status} {v}"
        );
        v
    }

    /// A new incoming payment for `wallet` having received `value` (base units of
    /// the wallet's asset); its URL.
    pub async fn create_incoming(&self, wallet: &str, value: &str) -> String {
        self.create_incoming_with(json!({"wallet": wallet, "value": value}))
            .await
    }

    /// A new incoming payment from a full control body (`{wallet, value, assetCode,
    /// assetScale, completed, expiresInSecs}`); its URL.
    pub async fn create_incoming_with(&self, body: Value) -> String {
        let v = self
            .control(reqwest::Method::POST, "incoming-payments", Some(body))
            .await;
        v["url"].as_str().unwrap().to_string()
    }

    /// Sets what the incoming payment at `url` has received.
    pub async fn set_received(&self, url: &str, value: &str) {
        self.control(
            reqwest::Method::POST,
            "received",
            Some(json!({"url": url, "value": value})),
        )
        .await;
    }

    /// Expires every token issued so far (the next use gets a 401); how many were live.
    pub async fn expire_tokens(&self) -> u64 {
        self.control(reqwest::Method::POST, "expire-tokens", None)
            .await["expired"]
            .as_u64()
            .unwrap()
    }

    /// From now on every signature is refused with a 401 (a misconfigured key).
    pub async fn break_signatures(&self) {
        self.control(
            reqwest::Method::POST,
            "break-signatures",
            Some(json!({"broken": true})),
        )
        .await;
    }

    /// Signatures are checked normally again.
    pub async fn mend_signatures(&self) {
        self.control(
            reqwest::Method::POST,
            "break-signatures",
            Some(json!({"broken": false})),
        )
        .await;
    }

    /// Every Open Payments request waits `ms` first.
    pub async fn set_delay_ms(&self, ms: u64) {
        self.control(reqwest::Method::POST, "delay", Some(json!({"ms": ms})))
            .await;
    }

    /// The `expires_in` of grants issued from now on.
    pub async fn set_token_ttl(&self, seconds: u64) {
        self.control(
            reqwest::Method::POST,
            "token-ttl",
            Some(json!({"seconds": seconds})),
        )
        .await;
    }

    /// Every violation so far: `{method, url, why}`.
    pub async fn violations(&self) -> Vec<Value> {
        match self.control(reqwest::Method::GET, "violations", None).await {
            Value::Array(v) => v,
            other => panic!("violations: {other}"),
        }
    }

    /// Panics with the violations, if there are any.
    pub async fn assert_no_violations(&self) {
        let v = self.violations().await;
        assert!(
            v.is_empty(),
            "the Open Payments server saw violations:\n{}",
            serde_json::to_string_pretty(&v).unwrap()
        );
    }

    /// Every access and continue token the server issued.
    pub async fn issued_tokens(&self) -> Vec<String> {
        let v = self.control(reqwest::Method::GET, "tokens", None).await;
        serde_json::from_value(v).unwrap()
    }

    /// The counters: `grants`, `grants_refused`, `incoming_reads_auth`,
    /// `incoming_reads_public`, `unauthorized`, `expired_token_refusals`,
    /// `forced_signature_refusals`, `wallet_reads`, `jwks_reads`, `not_found`, …
    pub async fn counters(&self) -> Value {
        self.control(reqwest::Method::GET, "counters", None).await
    }

    // ---- Interledger's own client -----------------------------------------------------

    /// One request made by `tests/op/op_client.mjs` with tollgate's key, signed by
    /// `@interledger/http-signature-utils` (`mode` "sign") or deliberately wrong
    /// ("unsigned", "wrong-key", "no-authorization-component", "other-target",
    /// "pretty-body"): `{status, body, wwwAuthenticate}`.
    pub fn interledger_request(
        &self,
        mode: &str,
        method: &str,
        url: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Value {
        let mut o = json!({
            "mode": mode,
            "method": method,
            "url": url,
            "keyFile": self.client_key_pem_path(),
            "keyId": self.key_id,
        });
        if let Some(b) = body {
            o["body"] = b.clone();
        }
        if let Some(t) = token {
            o["token"] = json!(t);
        }
        let mut cmd = Command::new("node");
        cmd.arg(op_dir().join("op_client.mjs"))
            .arg(o.to_string())
            .current_dir(op_dir());
        if let Some(ca) = &self.ca {
            cmd.env("NODE_EXTRA_CA_CERTS", ca);
        }
        let out = cmd.output().expect("run node op_client.mjs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
            panic!(
                "op_client.mjs {mode} {method} {url}: {}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

impl Drop for OpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
