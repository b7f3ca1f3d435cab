//! JSON-RPC 2.0 framing for the 0xbtcpay-compatible gateway (pure).
//!
//! Parses a request body into calls, validates `start_payment` params, and shapes
//! responses with the standard error codes: -32700 parse error, -32600 invalid
//! request, -32601 method not found, -32602 invalid params. Batches are answered
//! per JSON-RPC 2.0 (notifications get no answer).

use serde_json::{json, Value};

use crate::amount::Amount;

/// Parse error.
pub const PARSE_ERROR: i64 = -32700;
/// Invalid request.
pub const INVALID_REQUEST: i64 = -32600;
/// Method not found.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid params.
pub const INVALID_PARAMS: i64 = -32602;
/// Server error (store unavailable).
pub const SERVER_ERROR: i64 = -32000;
/// A client's budget is spent (EIP-1474 "limit exceeded").
pub const LIMIT_EXCEEDED: i64 = -32005;

/// Most calls in one batch.
pub const MAX_BATCH: usize = 32;

/// A JSON-RPC error object with the request id it answers.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The request id (`null` when it could not be read).
    pub id: Value,
    /// The code.
    pub code: i64,
    /// A message naming what is wrong.
    pub message: String,
}

/// One validated call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The id; `None` for a notification.
    pub id: Option<Value>,
    /// The method name.
    pub method: String,
    /// The params (object or array; `Null` when absent).
    pub params: Value,
}

/// What a body holds.
#[derive(Debug)]
pub enum Parsed {
    /// One call (or a single error).
    Single(Result<Call, RpcError>),
    /// A batch of calls and per-item errors, in order.
    Batch(Vec<Result<Call, RpcError>>),
}

/// Parses a request body.
pub fn parse(body: &[u8]) -> Parsed {
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Parsed::Single(Err(RpcError {
                id: Value::Null,
                code: PARSE_ERROR,
                message: format!("parse error: {e}"),
            }))
        }
    };
    match v {
        Value::Array(items) if items.is_empty() => {
            Parsed::Single(Err(invalid(Value::Null, "empty batch")))
        }
        Value::Array(items) if items.len() > MAX_BATCH => Parsed::Single(Err(invalid(
            Value::Null,
            &format!("batch of {} calls; at most {MAX_BATCH}", items.len()),
        ))),
        Value::Array(items) => Parsed::Batch(items.into_iter().map(call).collect()),
        other => Parsed::Single(call(other)),
    }
}

fn invalid(id: Value, msg: &str) -> RpcError {
    RpcError {
        id,
        code: INVALID_REQUEST,
        message: format!("invalid request: {msg}"),
    }
}

fn call(v: Value) -> Result<Call, RpcError> {
    let Value::Object(mut o) = v else {
        return Err(invalid(Value::Null, "expected a JSON object"));
    };
    let id = o.remove("id");
    let id_for_errors = match &id {
        Some(i @ (Value::String(_) | Value::Number(_) | Value::Null)) => i.clone(),
        Some(_) => return Err(invalid(Value::Null, "id must be a string, number or null")),
        None => Value::Null,
    };
    if o.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return Err(invalid(id_for_errors, "\"jsonrpc\" must be \"2.0\""));
    }
    let method = match o.remove("method") {
        Some(Value::String(m)) => m,
        _ => return Err(invalid(id_for_errors, "\"method\" must be a string")),
    };
    let params = o.remove("params").unwrap_or(Value::Null);
    if !(params.is_object() || params.is_array() || params.is_null()) {
        return Err(invalid(
            id_for_errors,
            "\"params\" must be an object or an array",
        ));
    }
    Ok(Call { id, method, params })
}

/// Validated `start_payment` params.
#[derive(Debug, Clone, PartialEq)]
pub struct StartPayment {
    /// The amount exactly as the shop sent it (echoed back).
    pub amount_text: String,
    /// The amount in base units.
    pub amount: Amount,
    /// Opaque shop data.
    pub data: Option<Value>,
    /// Where to post when paid.
    pub postback_url: Option<String>,
}

/// Checks `start_payment` params; the error message names the field.
pub fn start_payment_params(params: &Value, decimals: u32) -> Result<StartPayment, String> {
    let Value::Object(o) = params else {
        return Err("params must be an object {amount, data?, postback_url?}".into());
    };
    if let Some(k) = o
        .keys()
        .find(|k| !matches!(k.as_str(), "amount" | "data" | "postback_url"))
    {
        return Err(format!(
            "unknown parameter {k:?} (expected amount, data, postback_url)"
        ));
    }
    let amount_text = match o.get("amount") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(_)) => {
            return Err(
                "amount must be a decimal string like \"222.333\", not a JSON number".into(),
            )
        }
        Some(_) => return Err("amount must be a decimal string like \"222.333\"".into()),
        None => return Err("amount is required".into()),
    };
    let amount = Amount::parse_decimal(&amount_text, decimals)
        .map_err(|e| format!("amount {amount_text:?}: {e}"))?;
    if amount.is_zero() {
        return Err("amount must be greater than zero".into());
    }
    let postback_url = match o.get("postback_url") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("postback_url must be a string".into()),
    };
    let data = o.get("data").filter(|d| !d.is_null()).cloned();
    Ok(StartPayment {
        amount_text,
        amount,
        data,
        postback_url,
    })
}

/// A success response.
pub fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "result": result, "id": id})
}

/// An error response.
pub fn error(e: &RpcError) -> Value {
    // Messages quote the caller's input: never echo a credential.
    let message = crate::redact::redact(&e.message);
    json!({"jsonrpc": "2.0", "error": {"code": e.code, "message": message}, "id": e.id})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(b: &str) -> Result<Call, RpcError> {
        match parse(b.as_bytes()) {
            Parsed::Single(r) => r,
            Parsed::Batch(_) => panic!("batch"),
        }
    }

    #[test]
    fn framing_errors_use_standard_codes() {
        assert_eq!(single("{").unwrap_err().code, PARSE_ERROR);
        assert_eq!(single("[]").unwrap_err().code, INVALID_REQUEST);
        assert_eq!(single("42").unwrap_err().code, INVALID_REQUEST);
        assert_eq!(
            single(r#"{"id":1,"method":"start_payment"}"#)
                .unwrap_err()
                .code,
            INVALID_REQUEST
        );
        let e = single(r#"{"jsonrpc":"2.0","id":7,"method":3}"#).unwrap_err();
        assert_eq!((e.code, e.id), (INVALID_REQUEST, json!(7)));
        assert_eq!(
            single(r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#)
                .unwrap_err()
                .id,
            Value::Null
        );
        let c = single(
            r#"{"jsonrpc":"2.0","id":111,"method":"start_payment","params":{"amount":"1"}}"#,
        )
        .unwrap();
        assert_eq!(c.id, Some(json!(111)));
        let Parsed::Batch(b) = parse(br#"[{"jsonrpc":"2.0","id":1,"method":"a"}, 5]"#) else {
            panic!()
        };
        assert!(b[0].is_ok() && b[1].is_err());
    }

    #[test]
    fn start_payment_params_name_the_field() {
        let ok = start_payment_params(&json!({"amount":"222.333","data":{"order_id":"444"}}), 8)
            .unwrap();
        assert_eq!(ok.amount, Amount(22_233_300_000));
        assert_eq!(ok.amount_text, "222.333");
        for (p, field) in [
            (json!({"amount": 222.333}), "amount"),
            (json!({"amount": "0"}), "amount"),
            (json!({"amount": "1.123456789"}), "amount"),
            (json!({}), "amount"),
            (json!({"amount": "1", "postback_url": 5}), "postback_url"),
            (json!({"amount": "1", "colour": "red"}), "colour"),
            (json!(["1"]), "params"),
        ] {
            let e = start_payment_params(&p, 8).unwrap_err();
            assert!(e.contains(field), "{p}: {e}");
        }
    }
}
