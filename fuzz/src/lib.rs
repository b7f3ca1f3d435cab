//! tollgate's fuzz targets as a library: the property checks (shared with the
//! normal test suite's corpus replay, `tests/fuzz_corpus.rs`).

pub mod checks;
