//! Routing: canonical paths and the most-specific route table.

pub mod canonical;
pub mod table;

pub use canonical::{alternate_reading, canonicalize, CanonicalTarget, Hazards, TargetError};
pub use table::{Pattern, PatternError, RouteTable};
