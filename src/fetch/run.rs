//! The `tollgate fetch` command: turns the command line into a [`Client`] call and
//! its result into output, a `--json` summary and an exit code. Progress and errors
//! go to stderr as one line each; the body goes to stdout or `-o FILE`.

use std::io::Write;
use std::path::PathBuf;

use base64::Engine;
use serde_json::{json, Value};

use super::chain::PayerKey;
use super::offer::MaxPrice;
use super::{Client, FetchError, Outcome, Request, Wallet};

/// The command line of `tollgate fetch` (see the README's "Paying from a program").
#[derive(Debug, Clone, Default)]
pub struct Args {
    /// The URL to fetch.
    pub url: String,
    /// `--max`: the most to pay, decimal 0xBTC.
    pub max: Option<String>,
    /// `--rpc`: the JSON-RPC endpoint to pay through.
    pub rpc: Option<String>,
    /// `--token`: token contracts trusted besides mainnet 0xBTC.
    pub tokens: Vec<String>,
    /// `--wallet`: the wallet file (default [`super::wallet::default_path`]).
    pub wallet: Option<PathBuf>,
    /// `-o`: write the body here instead of stdout.
    pub output: Option<PathBuf>,
    /// `--json`: a machine-readable summary on stdout.
    pub json: bool,
    /// `-H 'Name: value'`, repeatable.
    pub headers: Vec<String>,
    /// `-X`: the method (default GET, or POST with `--data`).
    pub method: Option<String>,
    /// `--data`: the request body (`@FILE` reads a file).
    pub data: Option<String>,
    /// `--prices`: print the site's price manifest instead.
    pub prices: bool,
}

/// Runs the command; returns the exit code.
pub fn run(args: Args) -> u8 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&args, &FetchError::Usage(format!("cannot start: {e}"))),
    };
    let result = rt.block_on(async {
        tokio::select! {
            r = main(&args) => r,
            _ = tokio::signal::ctrl_c() => Err(FetchError::Interrupted),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => fail(&args, &e),
    }
}

fn say(line: &str) {
    eprintln!("tollgate fetch: {}", crate::redact::redact(line));
}

/// Says `e` on stderr (and as JSON on stdout with `--json`); returns its exit code.
fn fail(args: &Args, e: &FetchError) -> u8 {
    let message = crate::redact::redact(&e.to_string()).into_owned();
    eprintln!("tollgate fetch: error: {message}");
    if args.json {
        let mut v = json!({
            "ok": false,
            "code": e.code(),
            "message": message,
            "exit_code": e.exit_code(),
        });
        match e {
            FetchError::PriceAboveMax {
                resource,
                price,
                max,
            } => {
                v["resource"] = json!(resource);
                v["price"] = json!(price);
                v["max"] = json!(max);
            }
            FetchError::Http { status, .. } => v["status"] = json!(status),
            _ => {}
        }
        println!("{v}");
    }
    e.exit_code()
}

fn request(args: &Args) -> Result<Request, FetchError> {
    let mut req = Request::get(&args.url)?;
    if let Some(data) = &args.data {
        req.body = Some(match data.strip_prefix('@') {
            Some(file) => std::fs::read(file)
                .map_err(|e| FetchError::Usage(format!("--data @{file}: {e}")))?,
            None => data.as_bytes().to_vec(),
        });
        req.method = reqwest::Method::POST;
    }
    if let Some(m) = &args.method {
        req.method = reqwest::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| FetchError::Usage(format!("-X {m:?} is not an HTTP method")))?;
    }
    for h in &args.headers {
        let Some((name, value)) = h.split_once(':') else {
            return Err(FetchError::Usage(format!(
                "-H {h:?}: expected 'Name: value'"
            )));
        };
        let (name, value) = (name.trim(), value.trim());
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
            || reqwest::header::HeaderValue::from_str(value).is_err()
        {
            return Err(FetchError::Usage(format!(
                "-H {name:?}: not a valid header"
            )));
        }
        req.headers.push((name.to_string(), value.to_string()));
    }
    Ok(req)
}

fn client(args: &Args) -> Result<Client, FetchError> {
    let path = match &args.wallet {
        Some(p) => p.clone(),
        None => super::wallet::default_path().ok_or_else(|| {
            FetchError::Usage("no wallet file: set --wallet FILE (or HOME/XDG_DATA_HOME)".into())
        })?,
    };
    let mut c = Client::new(Wallet::at(path))?.on_progress(say);
    if let Some(m) = &args.max {
        c = c.max(MaxPrice::parse(m)?);
    }
    if let Some(r) = &args.rpc {
        c = c.rpc(r.clone());
    }
    for t in &args.tokens {
        if t.parse::<alloy::primitives::Address>().is_err() {
            return Err(FetchError::Usage(format!(
                "--token {t:?} is not an address"
            )));
        }
        c = c.trust_token(t.clone());
    }
    if let Some(k) = PayerKey::from_env()? {
        c = c.payer_key(k);
    }
    Ok(c)
}

async fn main(args: &Args) -> Result<u8, FetchError> {
    let client = client(args)?;
    if args.prices {
        let m = client.prices(&args.url).await?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&m.doc).unwrap_or_default()
            );
        } else {
            print!("{}", super::prices::render_table(&m));
        }
        return Ok(0);
    }
    let req = request(args)?;
    let outcome = client.fetch(req).await?;
    deliver(args, outcome).await
}

/// Writes the body (2xx and 3xx only) and the summary; a 4xx/5xx is an HTTP error.
async fn deliver(args: &Args, outcome: Outcome) -> Result<u8, FetchError> {
    let Outcome {
        mut response,
        how,
        payment,
        receipt,
    } = outcome;
    let status = response.status();
    let url = response.url().to_string();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if status.is_client_error() || status.is_server_error() {
        let body = response.bytes().await.unwrap_or_default();
        let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        return Err(FetchError::Http {
            status: status.as_u16(),
            message: format!("{url}: {}", text.trim()),
        });
    }
    let mut in_memory: Option<Vec<u8>> = None;
    let mut bytes: u64 = 0;
    {
        let mut sink: Box<dyn Write> = match &args.output {
            Some(path) => Box::new(
                std::fs::File::create(path)
                    .map_err(|e| FetchError::Usage(format!("-o {}: {e}", path.display())))?,
            ),
            None if args.json => Box::new(in_memory.insert(Vec::new())),
            None => Box::new(std::io::stdout().lock()),
        };
        while let Some(chunk) = response.chunk().await.map_err(FetchError::from_http)? {
            bytes += chunk.len() as u64;
            sink.write_all(&chunk)
                .map_err(|e| FetchError::Usage(format!("writing the body: {e}")))?;
        }
        sink.flush()
            .map_err(|e| FetchError::Usage(format!("writing the body: {e}")))?;
    }
    if args.json {
        let mut v = json!({
            "ok": true,
            "status": status.as_u16(),
            "url": url,
            "how": how.as_str(),
            "paid": payment.is_some(),
            "payment": payment.map(|p| json!({
                "payment_id": p.payment_id,
                "contract_hash": p.contract_hash,
                "amount": p.amount,
                "amount_base_units": p.amount_base_units,
                "address": p.address,
                "tx_hash": p.tx_hash,
            })),
            "receipt": receipt.map(|r| json!({
                "contract_hash": r.contract_hash,
                "scope": crate::receipt::scope_value(&r.scope),
                "expires_at": r.expires_at,
            })),
            "content_type": content_type,
            "bytes": bytes,
            "output": args.output.as_ref().map(|p| p.display().to_string()),
        });
        if let Some(body) = in_memory {
            match String::from_utf8(body) {
                Ok(s) => v["body"] = Value::String(s),
                Err(e) => {
                    v["body_base64"] = Value::String(
                        base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
                    )
                }
            }
        }
        println!("{v}");
    }
    Ok(0)
}
