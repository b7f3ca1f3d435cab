//! Routing: canonical paths and the most-specific route table.

pub mod canonical;
pub mod table;

pub use canonical::{
    canonicalize, has_other_readings, lenient_readings, CanonicalTarget, Hazards, TargetError,
};
pub use table::{pattern_covers, patterns_overlap, Pattern, PatternError, RouteTable};
