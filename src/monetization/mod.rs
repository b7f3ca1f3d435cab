//! Web Monetization (SPEC section 10).
//!
//! * [`inject`] (over the codecs of [`codec`]): the `<link rel="monetization">` put
//!   into the HTML tollgate proxies, as it streams; pure, the proxy shell feeds it;
//! * [`op`]: tollgate as an authenticated Open Payments client (wallet address,
//!   GNAP `read-all` grant, RFC 9421 signatures);
//! * [`verify`]: `POST {pay_prefix}/wm/verify`: an incoming payment, read and
//!   credited once per unit, unlocks a route with a `wm_price`.

pub mod codec;
pub mod inject;
pub mod op;
pub mod verify;
