//! Payments: the state machine and the service that claims, reports and issues receipts.

pub mod listener;
pub mod service;
pub mod state;
