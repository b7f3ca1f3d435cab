//! The shopping basket (SPEC section 8, the webinos Payment API).
//!
//! * [`bill`]: the pure bill arithmetic (items, rebates, tax, shipping, total) in
//!   signed integer base units.
//!
//! Endpoints stay thin over this module; baskets and their items live in the store.

pub mod bill;
