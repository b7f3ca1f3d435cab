//! # tollgate
//!
//! A payment-gating reverse proxy on Pingora. A request on the public listener goes:
//!
//! 1. **canonicalise** the request-target ([`routes::canonical`]): one canonical
//!    path is used for matching and for forwarding;
//! 2. **own endpoint?** paths under `pay_prefix` are answered by [`endpoints`] (the
//!    payment calls, and the shopping [`basket`]) and never reach the origin;
//! 3. **decide** ([`gate::decide`]): free/unmatched → forward; ambiguous path that
//!    could reach priced content → 400; priced → receipt or 402;
//! 4. **challenge** ([`challenge`]): a 402 with a freshly minted [`contract::Offer`]
//!    (nothing is written anywhere), or the same offer again for a fulfillment URL;
//! 5. **respond**: a forwarded HTML response of an `inject_link` route gets the Web
//!    Monetization link after its `<head>` as it streams ([`monetization::inject`]).
//!
//! ## Invariants (each has a test named after it)
//!
//! 1. *Price what you forward*: the canonical path is both matched and forwarded;
//!    a path a lenient origin could read (in any combination of decoding, `;` stripping,
//!    `\` as `/`, NUL cuts, dots) as one priced by another route → 400
//!    (`path_tricks_never_reach_priced_content_for_free`,
//!    `generated_spellings_never_reach_priced_content_for_free`).
//! 2. *Default deny*: every method is priced unless the route lists methods; HEAD
//!    is priced like GET (`head_is_priced_like_get`).
//! 3. *A 402 writes nothing and contacts no origin*
//!    (`priced_path_gets_402_without_touching_origin`).
//! 4. *Terms are rebuilt, not stored*: the contract token carries the parameters
//!    under a MAC, so the terms and hash can be re-derived and forged tokens fail
//!    (`contract_hash_matches_contract_url`, `tampered_tokens_are_rejected`).
//! 5. *Money is integers*: amounts are base units ([`amount::Amount`]); no floats.
//! 6. *Secrets never print*: [`config::SecretKey`] redacts itself, and every log line
//!    and error message passes through [`redact::redact`]
//!    (`secrets_never_reach_logs_or_error_bodies`).
//! 7. *A receipt opens exactly what was bought*: a resource scope is one path, taken
//!    literally; a route scope opens a path only when that very route prices it
//!    ([`receipt::scope_covers`]; `literal_star_resource_receipt_opens_only_that_path`,
//!    `route_scope_unlocks_the_whole_route`).
//! 8. *A claim's secret belongs to the claimer*: a repeat claim gets the claim token
//!    only with that token or the claim cookie; nothing public yields it
//!    (`shared_fulfillment_url_gives_a_stranger_nothing`,
//!    `concurrent_first_claims_give_the_secret_to_one`).
//! 9. *The chain is what an up-to-date endpoint says*: one watcher tick reads head,
//!    hashes and logs from one view; a lagging or truncating endpoint never decides a
//!    reorg or a scanned range ([`chain::rpc::choose_views`],
//!    [`chain::watcher::check_range`]; `lagging_node_is_never_authoritative`,
//!    `truncating_node_never_advances_the_checkpoint`).
//! 10. *A basket's bill is the catalogue's*: nothing a client sends sets an amount;
//!     `itemPrice` is read from its JSON text and must be the catalogue price or its
//!     negative ([`basket::item`]; `prices_are_read_exactly_from_the_text`), and the
//!     bill is integer arithmetic checked against a plain reference
//!     (`prop_total_tax_and_rebates_match_the_reference`).
//! 11. *A purchase is refunded once, and only as a credit*: the refund hold is a store
//!     constraint, final only when the refunding basket is paid
//!     (`a_purchase_is_refunded_once`, `concurrent_refunds_of_one_purchase_credit_it_once`,
//!     `exchange_refunds_one_product_and_keeps_the_rest_unlocked`).
//! 12. *A transaction hash is never proof*: a challenge answer's transfers are recorded
//!     provisionally and count only once the scanner finds them on the canonical
//!     chain (`provisional_transfers_wait_for_the_scanner`,
//!     `challenge_answers_need_a_transfer_to_this_payment`).
//! 13. *A monetization event is never proof*: only an incoming payment read
//!     authenticated from the receiver's own Open Payments server, paying into the
//!     configured wallet in its asset, unlocks; its units are credited once
//!     ([`monetization::verify`]; `received_money_unlocks_once_per_unit`,
//!     `foreign_payments_other_wallets_and_assets_are_refused`,
//!     `wm_units_are_credited_once`).
//! 14. *Injection changes only what it may*: the monetization link goes into HTML
//!     heads of configured routes, streaming with bounded memory; anything else passes
//!     byte-exact ([`monetization::inject`]; `non_html_on_the_same_route_is_byte_exact`,
//!     `fifty_megabyte_html_streams_with_bounded_memory`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod amount;
pub mod app;
pub mod basket;
pub mod chain;
pub mod challenge;
pub mod clock;
pub mod config;
pub mod contract;
pub mod endpoints;
pub mod fetch;
pub mod gate;
pub mod gateway;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod monetization;
pub mod pages;
pub mod payments;
pub mod postback;
pub mod proxy;
pub mod receipt;
pub mod redact;
pub mod reload;
pub mod reply;
pub mod routes;
pub mod server;
pub mod store;
