//! The pure gate decision for one request on the public listener (SPEC section 4).
//!
//! `decide` answers "what happens to this request?" from the method, the canonical
//! target and the route table alone: forward it, refuse it as ambiguous, or treat it
//! as priced. It does no IO and never looks at receipts (the caller does).

use http::Method;

use crate::config::Route;
use crate::routes::{has_other_readings, lenient_readings, CanonicalTarget, RouteTable};

/// What to do with a request.
#[derive(Debug)]
pub enum Decision<'a> {
    /// Free or unmatched: proxy to the origin.
    Forward,
    /// The path could be read as a priced resource by a lenient origin: 400.
    Ambiguous(&'static str),
    /// Priced: forward only with a valid receipt, otherwise 402.
    Priced(&'a Route),
}

/// Decides for `method` on `target` (invariants 1 and 2). `case_insensitive`: the
/// origin matches paths without regard to ASCII case (the caller has already
/// lower-cased `target.path`; other readings are lower-cased too).
///
/// A path that a lenient origin could read as another path (see
/// [`lenient_readings`]) is refused when any of its readings is priced by another
/// route than the path itself (or priced while the path is free): whichever reading
/// the origin picks, it must not serve priced content for free, nor a pricier route's
/// content for a cheaper route's receipt. Readings that stay within the path's own
/// route (`/movies/caf%C3%A9` read as UTF-8, `/movies/x;v=1` with `;v=1` stripped)
/// are priced as that route.
pub fn decide<'a>(
    routes: &'a RouteTable<Route>,
    method: &Method,
    target: &CanonicalTarget,
    case_insensitive: bool,
) -> Decision<'a> {
    let priced = |path: &str| routes.lookup(path).filter(|r| r.prices(method));
    let direct = priced(&target.path);
    if has_other_readings(&target.path) {
        let Some(others) = lenient_readings(&target.path, case_insensitive) else {
            return Decision::Ambiguous("too many possible readings");
        };
        let elsewhere = |r: &Route| !direct.is_some_and(|d| std::ptr::eq(d, r));
        if others.iter().any(|p| priced(p).is_some_and(elsewhere)) {
            return Decision::Ambiguous(target.hazards.describe());
        }
    }
    match direct {
        Some(route) => Decision::Priced(route),
        None => Decision::Forward,
    }
}

/// The value of query parameter `name` (first occurrence), undecoded.
pub fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The query without any `name=…` parameter; `None` when nothing is left.
pub fn strip_query_param(query: &str, name: &str) -> Option<String> {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| kv.split('=').next() != Some(name))
        .collect();
    let joined = kept.join("&");
    (!joined.is_empty()).then_some(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_helpers() {
        let q = Some("a=1&tollgate_contract=T.x&b");
        assert_eq!(query_param(q, "tollgate_contract"), Some("T.x"));
        assert_eq!(query_param(q, "b"), Some(""));
        assert_eq!(query_param(q, "c"), None);
        assert_eq!(
            strip_query_param("a=1&tollgate_contract=T&b", "tollgate_contract").as_deref(),
            Some("a=1&b")
        );
        assert_eq!(
            strip_query_param("tollgate_contract=T", "tollgate_contract"),
            None
        );
    }
}
