//! Operations on real parts: the real binary behind a (pretend) load balancer with
//! spoofed and honest forwarding headers, an origin that echoes what reached it, and
//! `GET /metrics` on the admin listener scraped after a paid flow on anvil.

mod support;

use alloy::primitives::Address;
use serde_json::{json, Value};
use support::chain::{Anvil, ONE_TOKEN};
use support::origin::Origin;
use support::payer::Payer;
use support::{eventually, funded_chain, PaymentsConfig, TempDir, Tollgate, TEST_KEY};

const CHAIN_ID: u64 = 31337;

/// tollgate with payments in front of `origin`: `/movies/*` priced, `claim_rate`
/// per client, and `server_extra` lines in `[server]`; `rest` appends sections.
fn start(
    anvil: &Anvil,
    token: Address,
    origin: &Origin,
    claim_rate: &str,
    server_extra: &str,
    rest: &str,
    env: &[(&str, &str)],
) -> Tollgate {
    let rest = format!(
        r#"
[payments]
claim_rate = "{claim_rate}"
[[route]]
path = "/movies/*"
price = "0.5"
{rest}
"#
    );
    let config = PaymentsConfig {
        secrets_extra: "postback_key_env = \"TOLLGATE_POSTBACK_KEY\"",
        ..PaymentsConfig::local(origin.addr, anvil.rpc_url(), CHAIN_ID, token, &rest)
    }
    .render()
    .replace(
        "grace_period = \"1s\"",
        &format!("grace_period = \"1s\"\n{server_extra}"),
    );
    let dir = TempDir::new("ops");
    let mut tg = Tollgate::start_in(dir.path(), &config, env);
    tg.dir = Some(dir);
    tg
}

const POSTBACK_KEY: &str = "5f5e5d5c5b5a595857565554535251504f4e4d4c4b4a49484746454443424140";

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("TOLLGATE_TEST_KEY", TEST_KEY),
        ("TOLLGATE_POSTBACK_KEY", POSTBACK_KEY),
    ]
}

/// GET a free path with `headers`; the headers the origin received (lower-case
/// name, value), in order.
async fn origin_view(tg: &Tollgate, headers: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut req = reqwest::Client::new().get(tg.url("/free/page"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let echo: Value = r.json().await.unwrap();
    echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_string(),
                h[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// A fresh 402 for `/movies/{n}` and `POST /pay` of it with `headers`: the status.
async fn claim_with(tg: &Tollgate, n: usize, headers: &[(&str, &str)]) -> u16 {
    claim_answer(tg, n, headers).await.0
}

/// As [`claim_with`]: the status and the `Retry-After` header, if any.
async fn claim_answer(tg: &Tollgate, n: usize, headers: &[(&str, &str)]) -> (u16, Option<u64>) {
    let payer = Payer::new();
    let token = payer.contract(tg, &format!("/movies/{n}")).await;
    let mut req = payer
        .http
        .post(tg.url("/_tollgate/pay"))
        .json(&json!({ "contract": token }));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (r.status().as_u16(), retry)
}

// Rules out: a client choosing its own address (for the per-IP budgets, for the
// origin's logs) by sending forwarding headers straight to tollgate.
#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let anvil = Anvil::start(CHAIN_ID);
    let token = anvil.deploy_token().await;
    let origin = Origin::start();
    let tg = start(&anvil, token, &origin, "2/min", "", "", &env());
    let seen = origin_view(
        &tg,
        &[
            ("X-Forwarded-For", "1.2.3.4, 10.0.0.1"),
            ("Forwarded", "for=5.6.7.8;proto=https"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "evil.test"),
        ],
    )
    .await;
    // The real peer replaces the spoofed chain; the spoofed Forwarded is dropped.
    assert_eq!(values(&seen, "x-forwarded-for"), ["127.0.0.1"], "{seen:?}");
    assert!(values(&seen, "forwarded").is_empty(), "{seen:?}");
    // The scheme of public_url, and the Host the client asked for.
    assert_eq!(values(&seen, "x-forwarded-proto"), ["http"], "{seen:?}");
    assert_eq!(
        values(&seen, "x-forwarded-host"),
        [tg.addr.to_string().as_str()],
        "{seen:?}"
    );
    // Without any forwarding header: the same.
    let seen = origin_view(&tg, &[]).await;
    assert_eq!(values(&seen, "x-forwarded-for"), ["127.0.0.1"], "{seen:?}");

    // The claim budget (2/min) counts the real peer, whatever each request claims.
    let spoofs = [
        ("X-Forwarded-For", "198.51.100.1"),
        ("X-Forwarded-For", "198.51.100.2"),
        ("Forwarded", "for=198.51.100.3"),
    ];
    let mut statuses = Vec::new();
    for (i, (k, v)) in spoofs.iter().enumerate() {
        statuses.push(claim_with(&tg, i, &[(k, v)]).await);
    }
    assert_eq!(statuses, [201, 201, 429]);
}

// Rules out: a fleet behind a load balancer sharing one budget (its address), and
// a trusted balancer's chain being lost toward the origin.
#[tokio::test]
async fn forwarding_headers_from_a_trusted_proxy_are_honoured() {
    let anvil = Anvil::start(CHAIN_ID);
    let token = anvil.deploy_token().await;
    let origin = Origin::start();
    let tg = start(
        &anvil,
        token,
        &origin,
        "2/min",
        "trusted_proxies = [\"127.0.0.1/32\"]",
        "",
        &env(),
    );
    let seen = origin_view(
        &tg,
        &[
            ("X-Forwarded-For", "1.1.1.1, 198.51.100.7"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "shop.example"),
            ("Forwarded", "for=198.51.100.7;proto=https"),
        ],
    )
    .await;
    // The balancer's chain is kept and the peer appended, as nginx and Caddy do.
    assert_eq!(
        values(&seen, "x-forwarded-for"),
        ["1.1.1.1, 198.51.100.7, 127.0.0.1"],
        "{seen:?}"
    );
    assert_eq!(values(&seen, "x-forwarded-proto"), ["https"], "{seen:?}");
    assert_eq!(
        values(&seen, "x-forwarded-host"),
        ["shop.example"],
        "{seen:?}"
    );
    assert_eq!(values(&seen, "forwarded"), ["for=198.51.100.7;proto=https"]);

    // The budget follows the forwarded client: 2 each for .7 (with a spoofed
    // left part) and for an IPv6 client named in Forwarded; .7's third is refused.
    let a = [("X-Forwarded-For", "9.9.9.9, 198.51.100.7")];
    let b = [("Forwarded", "for=\"[2001:db8::1]:4711\"")];
    let mut statuses = Vec::new();
    for (i, h) in [&a, &a, &b, &b, &a].iter().enumerate() {
        statuses.push(claim_with(&tg, i, &h[..]).await);
    }
    assert_eq!(statuses, [201, 201, 201, 201, 429]);
    // Another address in the same IPv6 /64 is the same client: no fresh budget,
    // and the refusal says when to come back.
    let rotated = [("Forwarded", "for=\"[2001:db8::beef:1]\"")];
    let (status, retry) = claim_answer(&tg, 7, &rotated).await;
    assert_eq!(status, 429);
    assert!(retry.is_some_and(|s| (1..=60).contains(&s)), "{retry:?}");
    // The next /64 is someone else.
    let other = [("Forwarded", "for=\"[2001:db8:0:1::1]\"")];
    assert_eq!(claim_with(&tg, 8, &other).await, 201);
    // With no forwarding header the balancer itself is the client: its own budget.
    assert_eq!(claim_with(&tg, 10, &[]).await, 201);
}

/// Parses the exposition into `series{labels} -> value` lines.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

// Rules out: metrics that do not add up after a real payment, and /metrics reachable
// from outside the admin allowlist or without its token.
#[tokio::test]
async fn metrics_count_a_paid_flow() {
    let (anvil, token) = funded_chain(CHAIN_ID).await;
    let origin = Origin::start();
    let mut env = env();
    env.push(("TOLLGATE_ADMIN_TOKEN", "metrics-admin-token"));
    let admin = r#"
[admin]
listen = "127.0.0.1:0"
allow = ["127.0.0.1/32"]
token_env = "TOLLGATE_ADMIN_TOKEN"
[gateway]
listen = "127.0.0.1:0"
"#;
    let tg = start(&anvil, token, &origin, "100/min", "", admin, &env);
    let http = reqwest::Client::new();
    let metrics_url = format!("http://{}/metrics", tg.admin.unwrap());
    // The token guards it like the rest of admin; the gateway listener has none.
    assert_eq!(http.get(&metrics_url).send().await.unwrap().status(), 401);
    let r = http
        .get(format!("http://{}/metrics", tg.gateway.unwrap()))
        .bearer_auth("metrics-admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let authed = |url: &str| http.get(url).bearer_auth("metrics-admin-token");

    // One of each outcome, then a paid flow.
    let payer = Payer::new();
    assert_eq!(
        http.get(tg.url("/free/page"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = http.get(tg.url("/movies%2fx")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let claim = payer.claim(&tg, "/movies/x").await; // a 402, then an endpoint
    let to: Address = claim["address"].as_str().unwrap().parse().unwrap();
    anvil.transfer(token, 1, to, ONE_TOKEN / 2).await;
    payer.wait_state(&tg, &claim, "paid").await;
    let r = payer.receipt(&tg, &claim).await;
    assert_eq!(r.status(), 200);
    let receipt: Value = r.json().await.unwrap();
    let r = http
        .get(tg.url("/movies/x"))
        .header(
            "Authorization",
            format!("Tollgate {}", receipt["receipt"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let text = eventually("the metrics of the flow", || async {
        let r = authed(&metrics_url).send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        let ok = status == 200
            && sample(&text, "tollgate_requests_total{outcome=\"unlocked\"}") == Some(1.0)
            && sample(&text, "tollgate_payments{state=\"paid\"}") == Some(1.0);
        if ok {
            Ok(text)
        } else {
            Err(format!("{status}: {text}"))
        }
    })
    .await;
    let r = authed(&metrics_url).send().await.unwrap();
    let content_type = r.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let get = |s: &str| sample(&text, s).unwrap_or_else(|| panic!("{s} missing:\n{text}"));
    assert_eq!(get("tollgate_requests_total{outcome=\"forwarded\"}"), 1.0);
    assert_eq!(get("tollgate_requests_total{outcome=\"unlocked\"}"), 1.0);
    assert_eq!(get("tollgate_requests_total{outcome=\"challenged\"}"), 1.0);
    assert_eq!(get("tollgate_requests_total{outcome=\"refused\"}"), 1.0);
    assert_eq!(get("tollgate_requests_total{outcome=\"dry_run\"}"), 0.0);
    // The claim, the status polls and the receipt.
    let endpoint = get("tollgate_requests_total{outcome=\"endpoint\"}");
    assert!(endpoint >= 3.0, "{text}");
    let total = 4.0 + endpoint;
    // Requests still in flight are not counted yet; none are.
    assert_eq!(get("tollgate_request_duration_seconds_count"), total);
    assert_eq!(
        get("tollgate_request_duration_seconds_bucket{le=\"+Inf\"}"),
        total
    );
    assert_eq!(get("tollgate_payments{state=\"paid\"}"), 1.0);
    assert_eq!(get("tollgate_payments{state=\"new\"}"), 0.0);
    assert_eq!(get("tollgate_revenue_base_units_total"), 50_000_000.0);
    assert_eq!(get("tollgate_rpc_errors_total"), 0.0);
    assert_eq!(get("tollgate_chain_head_lag_blocks"), 0.0);
    assert_eq!(get("tollgate_postback_backlog"), 0.0);
    assert!(get("tollgate_cache_entries") >= 0.0);
    assert!(text.contains("# TYPE tollgate_request_duration_seconds histogram"));
    // HELP texts never quote a secret.
    assert!(!text.contains("metrics-admin-token"));
    drop(tg);

    // Outside the allowlist: 403, as for the rest of admin.
    let admin = r#"
[admin]
listen = "127.0.0.1:0"
allow = ["10.0.0.0/8"]
"#;
    let tg = start(&anvil, token, &origin, "100/min", "", admin, &self::env());
    let r = http
        .get(format!("http://{}/metrics", tg.admin.unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

// Rules out: a dry-run route (`enforce = false`) charging anyone, or rolling out
// without showing what it would have charged (log, metric, `check`).
#[tokio::test]
async fn dry_run_routes_serve_the_content_and_count_what_they_would_charge() {
    let (anvil, token) = funded_chain(CHAIN_ID).await;
    let origin = Origin::start();
    let mut env = env();
    env.push(("RUST_LOG", "info"));
    let rest = r#"
[[route]]
path = "/preview/*"
price = "0.25"
enforce = false
[admin]
listen = "127.0.0.1:0"
allow = ["127.0.0.1/32"]
"#;
    let tg = start(&anvil, token, &origin, "100/min", "", rest, &env);
    let http = reqwest::Client::new();
    for (path, auth) in [
        ("/preview/a", None),
        ("/preview/b", Some("Tollgate tg1.not-a-receipt")),
    ] {
        let mut req = http.get(tg.url(path));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers().get("x-taler-contract-hash").is_none());
    }
    // The origin was reached for both; the enforced route still challenges.
    let hits = origin.hits();
    assert!(hits.iter().any(|h| h == "/preview/a"), "{hits:?}");
    assert!(hits.iter().any(|h| h == "/preview/b"), "{hits:?}");
    assert_eq!(
        http.get(tg.url("/movies/x")).send().await.unwrap().status(),
        402
    );
    // Logged with the price, counted as dry_run.
    let log = tg.stderr();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("would_challenge"))
        .collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(
        lines[0].contains("price=0.25") && lines[0].contains("price_base_units=25000000"),
        "{}",
        lines[0]
    );
    let text = http
        .get(format!("http://{}/metrics", tg.admin.unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        sample(&text, "tollgate_requests_total{outcome=\"dry_run\"}"),
        Some(2.0),
        "{text}"
    );
    // `check` marks the route.
    let dir = tg.dir.as_ref().unwrap().path();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["check", "--config", "tollgate.toml"])
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let row = table.lines().find(|l| l.contains("/preview/*")).unwrap();
    assert!(row.contains("0.25 (dry run)"), "{table}");
}
