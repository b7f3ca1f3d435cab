//! Web Monetization (SPEC section 10).
//!
//! Owns what tollgate does for Web Monetization: putting the `<link rel="monetization">`
//! into the HTML it proxies ([`inject`], over the codecs of [`codec`]). The modules here
//! decide and transform bytes; they do no IO (the proxy shell feeds them).

pub mod codec;
pub mod inject;
