//! The local Open Payments server (`tests/support/op_server.mjs`) is strict before
//! tollgate is tested against it: what Interledger's own Node client code sends
//! (`@interledger/http-signature-utils` `createHeaders`, as `@interledger/open-payments`
//! signs) is accepted and leaves no violation; an unsigned request, a signature by
//! another key, one that leaves `authorization` uncovered, one over another URL, a
//! body that is not compact JSON and a grant without `read-all` are each refused AND
//! recorded as a violation. Expired tokens and test-induced signature refusals are
//! normal 401s (with `WWW-Authenticate: GNAP as_uri=…`), not violations. Over plain
//! http and over https (a test CA made with rcgen).

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::op_server::{OpServer, TestCa};

/// (mode, method, URL, body, token) for `OpServer::interledger_request`.
type Request<'a> = (&'a str, &'a str, &'a str, Option<Value>, Option<&'a str>);

fn grant_body(op: &OpServer, actions: &[&str]) -> Value {
    json!({
        "access_token": {"access": [{"type": "incoming-payment", "actions": actions}]},
        "client": op.client_wallet(),
    })
}

/// A grant through Interledger's signer: the access token.
fn grant(op: &OpServer) -> String {
    let r = op.interledger_request(
        "sign",
        "POST",
        &format!("{}/auth", op.base()),
        Some(&grant_body(op, &["read-all"])),
        None,
    );
    assert_eq!(r["status"], 200, "{r}");
    let t = &r["body"]["access_token"];
    assert_eq!(t["expires_in"], 600, "{r}");
    assert!(t["manage"].as_str().unwrap().starts_with(op.base()), "{r}");
    assert!(r["body"]["continue"]["uri"].is_string(), "{r}");
    t["value"].as_str().unwrap().to_string()
}

async fn check(https: bool) {
    let ca = https.then(TestCa::new);
    let op = OpServer::start(ca.as_ref());
    assert!(
        op.base().starts_with(if https {
            "https://127.0.0.1:"
        } else {
            "http://127.0.0.1:"
        }),
        "{}",
        op.base()
    );
    let mut http = reqwest::Client::builder();
    if let Some(ca) = &ca {
        let pem = std::fs::read(ca.ca_pem_path()).unwrap();
        http = http.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    let http = http.build().unwrap();
    let get = |url: String| {
        let http = http.clone();
        async move {
            let r = http
                .get(&url)
                .header("Accept", "application/json")
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let www = r
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_string());
            (status, r.json::<Value>().await.unwrap_or(Value::Null), www)
        }
    };

    // Wallet addresses (with or without the trailing slash) and the client's JWKS.
    let (s, alice, _) = get(op.wallet("alice")).await;
    assert_eq!(s, 200);
    assert_eq!(
        alice,
        json!({
            "id": op.wallet("alice"),
            "publicName": "Alice (test receiver)",
            "assetCode": "USD",
            "assetScale": 2,
            "authServer": format!("{}/auth", op.base()),
            "resourceServer": format!("{}/rs", op.base()),
        })
    );
    assert_eq!(get(format!("{}/", op.wallet("alice"))).await.1, alice);
    assert_eq!(get(op.wallet("eur")).await.1["assetCode"], "EUR");
    let (_, jwks, _) = get(format!("{}/jwks.json", op.client_wallet())).await;
    assert_eq!(jwks, json!({"keys": [op.public_jwk()]}));
    assert_eq!(
        get(format!("{}/jwks.json", op.wallet("alice"))).await.1,
        json!({"keys": []})
    );

    // Interledger's own client: a grant and an authenticated read, accepted.
    let token = grant(&op);
    let url = op.create_incoming("alice", "3").await;
    assert!(url.starts_with(&format!("{}/rs/incoming-payments/", op.base())));
    let r = op.interledger_request("sign", "GET", url.as_str(), None, Some(&token));
    assert_eq!(r["status"], 200, "{r}");
    let p = &r["body"];
    assert_eq!(p["id"], url.as_str());
    assert_eq!(p["walletAddress"], op.wallet("alice").as_str());
    assert_eq!(
        p["receivedAmount"],
        json!({"value": "3", "assetCode": "USD", "assetScale": 2})
    );
    assert_eq!(p["completed"], false);
    assert_eq!(p["methods"], json!([]));
    assert_eq!(p["metadata"]["source"], "Web Monetization");

    // Without Authorization: the public view only.
    let (s, public, _) = get(url.clone()).await;
    assert_eq!(s, 200);
    assert_eq!(
        public,
        json!({
            "receivedAmount": {"value": "3", "assetCode": "USD", "assetScale": 2},
            "authServer": format!("{}/auth", op.base()),
        })
    );
    op.set_received(&url, "250").await;
    let r = op.interledger_request("sign", "GET", url.as_str(), None, Some(&token));
    assert_eq!(r["body"]["receivedAmount"]["value"], "250", "{r}");

    op.assert_no_violations().await;
    let c = op.counters().await;
    assert_eq!(c["grants"], 1, "{c}");
    assert_eq!(c["incoming_reads_auth"], 2, "{c}");
    assert_eq!(c["incoming_reads_public"], 1, "{c}");
    assert!(
        c["jwks_reads"].as_u64().unwrap() >= 3,
        "keys fetched per request: {c}"
    );

    // Each wrong request: refused and recorded.
    let auth = format!("{}/auth", op.base());
    let read = |mode| (mode, "GET", url.as_str(), None, Some(token.as_str()));
    let post = |mode, actions: &[&str]| {
        (
            mode,
            "POST",
            auth.as_str(),
            Some(grant_body(&op, actions)),
            None,
        )
    };
    let cases: Vec<(&str, Request, u16, &str)> = vec![
        ("unsigned read", read("unsigned"), 401, "no Signature"),
        ("another key", read("wrong-key"), 401, "does not verify"),
        (
            "authorization not covered",
            read("no-authorization-component"),
            401,
            "does not cover authorization",
        ),
        (
            "signed for another URL",
            read("other-target"),
            401,
            "does not verify",
        ),
        (
            "unsigned grant",
            post("unsigned", &["read-all"]),
            401,
            "no Signature",
        ),
        (
            "pretty-printed grant body",
            post("pretty-body", &["read-all"]),
            401,
            "compact JSON",
        ),
        (
            "grant without read-all",
            post("sign", &["read"]),
            400,
            "read-all",
        ),
        (
            "grant with an action the spec does not know",
            post("sign", &["read-everything"]),
            400,
            "fails the spec",
        ),
    ];
    for (i, (what, (mode, method, target, body, tok), status, why)) in cases.iter().enumerate() {
        let r = op.interledger_request(mode, method, target, body.as_ref(), *tok);
        assert_eq!(r["status"], *status, "{what}: {r}");
        let v = op.violations().await;
        assert_eq!(v.len(), i + 1, "{what} is one violation: {v:?}");
        let last = &v[i];
        assert!(
            last["why"].as_str().unwrap().contains(why),
            "{what}: {last}"
        );
        assert_eq!(last["url"], target.to_string(), "{what}: {last}");
    }
    let recorded = op.violations().await.len();

    // Expired tokens: a 401 with the AS named; a new grant reads again. Not a violation.
    assert_eq!(op.expire_tokens().await, 1);
    let r = op.interledger_request("sign", "GET", url.as_str(), None, Some(&token));
    assert_eq!(r["status"], 401, "{r}");
    assert_eq!(
        r["wwwAuthenticate"],
        format!("GNAP as_uri={}/auth", op.base()),
        "{r}"
    );
    let fresh = grant(&op);
    let r = op.interledger_request("sign", "GET", url.as_str(), None, Some(&fresh));
    assert_eq!(r["status"], 200, "{r}");

    // Broken signatures (a misconfigured key, as the test says): 401, not a violation.
    op.break_signatures().await;
    let r = op.interledger_request("sign", "GET", url.as_str(), None, Some(&fresh));
    assert_eq!(r["status"], 401, "{r}");
    let r = op.interledger_request(
        "sign",
        "POST",
        &auth,
        Some(&grant_body(&op, &["read-all"])),
        None,
    );
    assert_eq!(r["status"], 401, "{r}");
    op.mend_signatures().await;
    let r = op.interledger_request("sign", "GET", url.as_str(), None, Some(&fresh));
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(op.violations().await.len(), recorded);

    // Slowness: every Open Payments answer waits.
    op.set_delay_ms(300).await;
    let t = Instant::now();
    assert_eq!(get(op.wallet("bob")).await.0, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    op.set_delay_ms(0).await;
    // Unknown payments: 404, not a violation.
    let r = op.interledger_request(
        "sign",
        "GET",
        &format!("{}/rs/incoming-payments/nope", op.base()),
        None,
        Some(&fresh),
    );
    assert_eq!(r["status"], 404, "{r}");

    let c = op.counters().await;
    assert_eq!(c["grants"], 2, "{c}");
    assert_eq!(c["grants_refused"], 1, "{c}");
    assert_eq!(c["expired_token_refusals"], 1, "{c}");
    assert_eq!(c["forced_signature_refusals"], 2, "{c}");
    assert_eq!(op.violations().await.len(), recorded, "{}", op.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_over_http() {
    check(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_over_https() {
    check(true).await;
}
