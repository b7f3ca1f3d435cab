//! A payer's HTTP steps against a running tollgate whose `public_url` is
//! `http://tollgate.test` (URLs it hands out are mapped back to its real address):
//! the 402, the claim, status polling, the receipt. Shared by every payment test.

use alloy::primitives::{Address, B256};
use serde_json::{json, Value};

use super::chain::Anvil;
use super::{eventually, Tollgate};

/// The `public_url` every payment test configures.
pub const PUBLIC_URL: &str = "http://tollgate.test";

/// Talks to a running tollgate the way a payer (a program) does.
#[derive(Clone, Default)]
pub struct Payer {
    pub http: reqwest::Client,
}

impl Payer {
    pub fn new() -> Payer {
        Payer::default()
    }

    /// The local URL for a URL tollgate handed out under [`PUBLIC_URL`].
    pub fn local(tg: &Tollgate, public: &str) -> String {
        tg.url(public.strip_prefix(PUBLIC_URL).expect("a public URL"))
    }

    /// GET a priced path as a program: the 402's JSON body.
    pub async fn challenge(&self, tg: &Tollgate, path: &str) -> Value {
        let r = self
            .http
            .get(tg.url(path))
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 402, "GET {path}");
        r.json().await.unwrap()
    }

    /// GET a priced path: its contract token.
    pub async fn contract(&self, tg: &Tollgate, path: &str) -> String {
        let v = self.challenge(tg, path).await;
        v["contract_token"].as_str().unwrap().to_string()
    }

    /// `POST /pay` for `token`, a first claim (200 is accepted for a restarted
    /// tollgate replaying its answer): the instructions.
    pub async fn claim_contract(&self, tg: &Tollgate, token: &str) -> Value {
        let r = self
            .http
            .post(tg.url("/_tollgate/pay"))
            .json(&json!({ "contract": token }))
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 201 || r.status() == 200,
            "claim: {}",
            r.status()
        );
        r.json().await.unwrap()
    }

    /// 402 → contract → claim for `path`: the instructions (`address`, `status_url`, …).
    pub async fn claim(&self, tg: &Tollgate, path: &str) -> Value {
        let token = self.contract(tg, path).await;
        self.claim_contract(tg, &token).await
    }

    /// status.json of a claim.
    pub async fn status(&self, tg: &Tollgate, claim: &Value) -> Value {
        let url = Self::local(tg, claim["status_url"].as_str().unwrap());
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Polls status.json until `state` (bounded, see [`eventually`]).
    pub async fn wait_state(&self, tg: &Tollgate, claim: &Value, state: &str) -> Value {
        eventually(&format!("state {state}"), || async {
            let s = self.status(tg, claim).await;
            if s["state"] == state {
                Ok(s)
            } else {
                Err(format!("{s}\n{}", tg.stderr()))
            }
        })
        .await
    }

    /// `POST /{id}/receipt` with the claim's own claim token.
    pub async fn receipt(&self, tg: &Tollgate, claim: &Value) -> reqwest::Response {
        let url = Self::local(tg, claim["receipt_url"].as_str().unwrap());
        self.http
            .post(url)
            .json(&json!({ "claim_token": claim["claim_token"] }))
            .send()
            .await
            .unwrap()
    }
}

/// The payer (dev account 1) transfers `amount` base units of `token` to the
/// address of `claim`; returns the transaction hash (mined with automine on).
pub async fn pay(anvil: &Anvil, token: Address, claim: &Value, amount: u128) -> B256 {
    let to: Address = claim["address"].as_str().unwrap().parse().unwrap();
    anvil.transfer(token, 1, to, amount).await
}
