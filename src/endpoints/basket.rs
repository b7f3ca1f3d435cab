//! `{pay_prefix}/basket…` (SPEC section 8): routing and replies over
//! [`crate::basket::service`].

use http::Method;

use crate::app::App;
use crate::basket::checkout;
use crate::basket::service::{self, Caller};
use crate::basket::BasketError;
use crate::reply::Reply;

use super::{is_pid, method_not_allowed, EndpointRequest};

fn reply(r: Result<serde_json::Value, BasketError>) -> Reply {
    match r {
        Ok(v) => Reply::json(200, &v),
        Err(e) => error(e),
    }
}

fn error(e: BasketError) -> Reply {
    let r = Reply::error(e.status, e.code, &e.message);
    match e.status {
        429 => r.with_header(
            "Retry-After",
            e.retry_after.unwrap_or(60).max(1).to_string(),
        ),
        503 => r.with_header("Retry-After", "5".into()),
        _ => r,
    }
}

/// Answers a basket call; `rest` is the path below `/basket`.
pub async fn handle(app: &App, req: &EndpointRequest<'_>, rest: &[&str]) -> Reply {
    let caller = Caller {
        authorization: req.authorization,
        cookies: req.cookies,
        ip: req.client_ip,
    };
    let m = req.method;
    match rest {
        [] | [""] => match *m {
            Method::POST => match service::create(app, caller, req.body).await {
                Ok((v, cookie)) => Reply::json(201, &v).with_header("Set-Cookie", cookie),
                Err(e) => error(e),
            },
            _ => method_not_allowed("POST"),
        },
        [id] if is_pid(id) => match *m {
            Method::GET | Method::HEAD => reply(service::read(app, id, caller).await),
            Method::DELETE => reply(service::release(app, id, caller).await),
            _ => method_not_allowed("GET, HEAD, DELETE"),
        },
        [id, call] if is_pid(id) => {
            if *m != Method::POST {
                return method_not_allowed("POST");
            }
            reply(match *call {
                "items" => service::add_item(app, id, caller, req.body).await,
                "update" => service::update(app, id, caller).await,
                "checkout" => checkout::checkout(app, id, caller, req.body).await,
                "challenge" => checkout::answer_challenge(app, id, caller, req.body).await,
                _ => return Reply::error(404, "not_found", "no such basket call"),
            })
        }
        // A malformed id is no basket anyone holds.
        [_, ..] => Reply::error(404, "basket_not_open", &BasketError::not_open().message),
    }
}
