//! Web Monetization (SPEC section 10).
//!
//! * [`op`]: tollgate as an authenticated Open Payments client (wallet address,
//!   GNAP `read-all` grant, RFC 9421 signatures);
//! * [`verify`]: `POST {pay_prefix}/wm/verify`: an incoming payment, read and
//!   credited once per unit, unlocks a route with a `wm_price`.

pub mod op;
pub mod verify;
