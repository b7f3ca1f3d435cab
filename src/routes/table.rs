//! The route table: most-specific match of a canonical path (SPEC section 3 `[[route]]`).
//!
//! Built once at config load; the request path only looks things up. Order:
//! exact > `{segment}` template > prefix `/*`, and within a class the longer pattern
//! wins. It never canonicalises: callers pass an already canonical path.

use std::collections::HashMap;

/// A parsed route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// `"/a/b"`: this path only.
    Exact(String),
    /// `"/a/{id}/b"`: one entry per segment, `None` for a `{name}` placeholder.
    Template(Vec<Option<String>>),
    /// `"/a/*"`: the literal segments before `/*`; matches `/a`, `/a/` and everything below.
    Prefix(Vec<String>),
}

/// Why a route pattern is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Does not start with '/'.
    #[error("must start with '/'")]
    NoLeadingSlash,
    /// Not already canonical.
    #[error("is not canonical (write it as {0:?})")]
    NotCanonical(String),
    /// `*` somewhere other than a final `/*`.
    #[error("'*' is only allowed as the final segment \"/*\"")]
    BadWildcard,
    /// A `{…}` that is not a whole segment.
    #[error("'{{name}}' must be a whole segment")]
    BadPlaceholder,
    /// A template that also ends in `/*`.
    #[error("a pattern cannot mix '{{name}}' segments with a final '/*'")]
    Mixed,
}

impl Pattern {
    /// Parses a pattern as written in the config.
    pub fn parse(s: &str) -> Result<Pattern, PatternError> {
        if !s.starts_with('/') {
            return Err(PatternError::NoLeadingSlash);
        }
        let (body, is_prefix) = match s.strip_suffix("/*") {
            Some(b) => (if b.is_empty() { "/" } else { b }, true),
            None => (s, false),
        };
        if body.contains('*') {
            return Err(PatternError::BadWildcard);
        }
        let canonical = super::canonical::canonicalize(body.as_bytes())
            .map(|t| t.path)
            .unwrap_or_default();
        let braces_ok = !body.contains('{') && !body.contains('}');
        if braces_ok && canonical != body {
            return Err(PatternError::NotCanonical(if is_prefix {
                format!("{}/*", canonical.trim_end_matches('/'))
            } else {
                canonical
            }));
        }
        let segments: Vec<&str> = if body == "/" {
            Vec::new()
        } else {
            body[1..].split('/').collect()
        };
        let mut template = Vec::with_capacity(segments.len());
        let mut has_placeholder = false;
        for seg in &segments {
            if seg.starts_with('{') && seg.ends_with('}') && seg.len() > 2 {
                let name = &seg[1..seg.len() - 1];
                if name.contains('{') || name.contains('}') {
                    return Err(PatternError::BadPlaceholder);
                }
                has_placeholder = true;
                template.push(None);
            } else if seg.contains('{') || seg.contains('}') {
                return Err(PatternError::BadPlaceholder);
            } else {
                template.push(Some((*seg).to_string()));
            }
        }
        if has_placeholder && !braces_ok {
            // check the literal parts are canonical too
            let probe: Vec<String> = template
                .iter()
                .map(|s| s.clone().unwrap_or_else(|| "x".into()))
                .collect();
            let probe = format!("/{}", probe.join("/"));
            let c = super::canonical::canonicalize(probe.as_bytes())
                .map(|t| t.path)
                .unwrap_or_default();
            if c != probe {
                return Err(PatternError::NotCanonical(s.to_string()));
            }
        }
        match (is_prefix, has_placeholder) {
            (true, true) => Err(PatternError::Mixed),
            (true, false) => Ok(Pattern::Prefix(
                template
                    .into_iter()
                    .map(|s| s.unwrap_or_default())
                    .collect(),
            )),
            (false, true) => Ok(Pattern::Template(template)),
            (false, false) => Ok(Pattern::Exact(body.to_string())),
        }
    }

    /// True when this pattern matches the canonical `path`.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            Pattern::Exact(p) => p == path,
            Pattern::Template(t) => {
                let mut segs = path[1..].split('/');
                for want in t {
                    match (segs.next(), want) {
                        (Some(""), None) | (None, _) => return false,
                        (Some(_), None) => {}
                        (Some(got), Some(lit)) => {
                            if got != lit {
                                return false;
                            }
                        }
                    }
                }
                // "/a/1/" is the same resource as "/a/1" to most origins
                matches!(segs.next(), None | Some("")) && segs.next().is_none()
            }
            Pattern::Prefix(p) => {
                let mut segs = path[1..].split('/');
                p.iter().all(|lit| segs.next() == Some(lit.as_str()))
            }
        }
    }
}

/// One segment constraint of a pattern, for [`patterns_overlap`] and [`pattern_covers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seg<'a> {
    /// Exactly this segment.
    Lit(&'a str),
    /// Any non-empty segment (a `{name}` placeholder).
    NonEmpty,
}

/// What a pattern accepts after its segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// Nothing, or one empty segment (a trailing `/`): exact paths (as the route table
    /// prices `/a/b/` like `/a/b`) and templates (as [`Pattern::matches`]).
    Slash,
    /// Any number of further segments: prefixes.
    Any,
}

/// The pattern as segment constraints over `path[1..].split('/')` and a tail.
fn shape(p: &Pattern) -> (Vec<Seg<'_>>, Tail) {
    match p {
        Pattern::Exact(e) => (
            e.strip_prefix('/')
                .unwrap_or(e)
                .split('/')
                .map(Seg::Lit)
                .collect(),
            Tail::Slash,
        ),
        Pattern::Template(t) => (
            t.iter()
                .map(|s| s.as_deref().map_or(Seg::NonEmpty, Seg::Lit))
                .collect(),
            Tail::Slash,
        ),
        Pattern::Prefix(p) => (p.iter().map(|s| Seg::Lit(s.as_str())).collect(), Tail::Any),
    }
}

/// True when some segment satisfies both constraints.
fn compatible(a: Seg<'_>, b: Seg<'_>) -> bool {
    match (a, b) {
        (Seg::Lit(x), Seg::Lit(y)) => x == y,
        (Seg::Lit(x), Seg::NonEmpty) | (Seg::NonEmpty, Seg::Lit(x)) => !x.is_empty(),
        (Seg::NonEmpty, Seg::NonEmpty) => true,
    }
}

/// True when every segment `inner` allows is allowed by `outer`.
fn within(inner: Seg<'_>, outer: Seg<'_>) -> bool {
    match (inner, outer) {
        (Seg::Lit(x), Seg::Lit(y)) => x == y,
        (Seg::Lit(x), Seg::NonEmpty) => !x.is_empty(),
        (Seg::NonEmpty, Seg::NonEmpty) => true,
        (Seg::NonEmpty, Seg::Lit(_)) => false,
    }
}

/// True when some canonical path matches both patterns (as [`Pattern::matches`] does,
/// with an exact pattern also standing for its path with a trailing `/`, as the route
/// table prices it). Used to refuse two basket products unlocking the same path; when
/// in doubt it answers true.
pub fn patterns_overlap(a: &Pattern, b: &Pattern) -> bool {
    let (sa, ta) = shape(a);
    let (sb, tb) = shape(b);
    if !sa.iter().zip(&sb).all(|(x, y)| compatible(*x, *y)) {
        return false;
    }
    // The shorter one decides whether it reaches as far as the longer one's segments.
    let (short, short_tail, long) = if sa.len() <= sb.len() {
        (&sa, ta, &sb)
    } else {
        (&sb, tb, &sa)
    };
    if short.len() == long.len() {
        return true;
    }
    match short_tail {
        // Any further segments: the longer one's own segments are one such path.
        Tail::Any => true,
        // At most one more, empty, segment.
        Tail::Slash => {
            long.len() == short.len() + 1 && long.get(short.len()) == Some(&Seg::Lit(""))
        }
    }
}

/// True when every canonical path `inner` matches is also matched by `outer` (with
/// the same reading of exact patterns as [`patterns_overlap`]): `outer == inner`, or
/// `outer` a prefix whose segments lead `inner`'s, or a template whose placeholders
/// stand where `inner` has a placeholder or a non-empty literal. A placeholder in
/// `inner` under a literal in `outer` is not covered.
pub fn pattern_covers(outer: &Pattern, inner: &Pattern) -> bool {
    let (so, to) = shape(outer);
    let (si, ti) = shape(inner);
    if so.len() > si.len() || !si.iter().zip(&so).all(|(i, o)| within(*i, *o)) {
        // `inner` matches a path with fewer segments than `outer` needs, or one
        // whose segment `outer` refuses.
        return false;
    }
    match (to, ti) {
        (Tail::Any, _) => true,
        (Tail::Slash, Tail::Slash) => so.len() == si.len(),
        (Tail::Slash, Tail::Any) => false,
    }
}

/// A table of `T` (route data) keyed by pattern, answering most-specific-first.
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    entries: Vec<(Pattern, T)>,
    exact: HashMap<String, usize>,
    /// Indexes of templates then prefixes, most specific first.
    ordered: Vec<usize>,
}

impl<T> RouteTable<T> {
    /// Builds the table; the order of `entries` does not matter.
    pub fn new(entries: Vec<(Pattern, T)>) -> Self {
        let mut exact = HashMap::new();
        let mut ordered = Vec::new();
        for (i, (p, _)) in entries.iter().enumerate() {
            match p {
                Pattern::Exact(s) => {
                    exact.entry(s.clone()).or_insert(i);
                }
                _ => ordered.push(i),
            }
        }
        ordered.sort_by_key(|&i| specificity(&entries[i].0));
        RouteTable {
            entries,
            exact,
            ordered,
        }
    }

    /// The most specific entry matching the canonical `path`, if any.
    pub fn lookup(&self, path: &str) -> Option<&T> {
        if let Some(&i) = self.exact.get(path) {
            return Some(&self.entries[i].1);
        }
        // "/a/b/" is the same resource as "/a/b" to most origins: price it alike.
        if path.len() > 1 {
            if let Some(&i) = path.strip_suffix('/').and_then(|p| self.exact.get(p)) {
                return Some(&self.entries[i].1);
            }
        }
        self.ordered
            .iter()
            .find(|&&i| self.entries[i].0.matches(path))
            .map(|&i| &self.entries[i].1)
    }

    /// All entries in specificity order (exact first), for printing.
    pub fn iter_by_specificity(&self) -> impl Iterator<Item = &(Pattern, T)> {
        let mut exact: Vec<usize> = self.exact.values().copied().collect();
        exact.sort_by(|a, b| {
            let (Pattern::Exact(x), Pattern::Exact(y)) = (&self.entries[*a].0, &self.entries[*b].0)
            else {
                return std::cmp::Ordering::Equal;
            };
            y.len().cmp(&x.len()).then(x.cmp(y))
        });
        exact
            .into_iter()
            .chain(self.ordered.iter().copied())
            .map(move |i| &self.entries[i])
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Sort key, smaller is more specific: templates before prefixes; more segments,
/// then more literal segments, then literals earlier, first.
fn specificity(p: &Pattern) -> (u8, usize, usize, Vec<bool>) {
    match p {
        Pattern::Exact(_) => (0, 0, 0, Vec::new()),
        Pattern::Template(t) => {
            let literals = t.iter().filter(|s| s.is_some()).count();
            (
                1,
                usize::MAX - t.len(),
                usize::MAX - literals,
                t.iter().map(|s| s.is_none()).collect(),
            )
        }
        Pattern::Prefix(p) => (2, usize::MAX - p.len(), 0, Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pats: &[&str]) -> RouteTable<String> {
        RouteTable::new(
            pats.iter()
                .map(|p| (Pattern::parse(p).unwrap(), p.to_string()))
                .collect(),
        )
    }

    #[test]
    fn most_specific_wins() {
        let t = table(&[
            "/*",
            "/movies/*",
            "/movies/{id}",
            "/movies/free",
            "/movies/a/*",
        ]);
        let at = |p: &str| t.lookup(p).cloned();
        assert_eq!(at("/movies/free").as_deref(), Some("/movies/free"));
        assert_eq!(at("/movies/free/").as_deref(), Some("/movies/free"));
        assert_eq!(at("/movies/x").as_deref(), Some("/movies/{id}"));
        assert_eq!(at("/movies/a/b").as_deref(), Some("/movies/a/*"));
        assert_eq!(at("/movies/a").as_deref(), Some("/movies/{id}"));
        assert_eq!(at("/movies/x/y").as_deref(), Some("/movies/*"));
        assert_eq!(at("/movies").as_deref(), Some("/movies/*"));
        assert_eq!(at("/movies/").as_deref(), Some("/movies/*"));
        assert_eq!(at("/moviesX").as_deref(), Some("/*"));
        assert_eq!(at("/").as_deref(), Some("/*"));
    }

    #[test]
    fn templates_need_a_non_empty_segment() {
        let t = table(&["/a/{id}", "/a/{id}/b"]);
        assert!(t.lookup("/a/").is_none());
        assert!(t.lookup("/a").is_none());
        assert_eq!(t.lookup("/a/1").map(String::as_str), Some("/a/{id}"));
        assert_eq!(t.lookup("/a/1/b").map(String::as_str), Some("/a/{id}/b"));
        assert!(t.lookup("/a/1/c").is_none());
        assert_eq!(t.lookup("/a/1/").map(String::as_str), Some("/a/{id}"));
        assert!(t.lookup("/a/1//").is_none());
    }

    fn pat(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    /// As the route table prices a path: `matches`, and an exact pattern also
    /// with a trailing `/`.
    fn prices(p: &Pattern, path: &str) -> bool {
        p.matches(path) || matches!(p, Pattern::Exact(e) if path.strip_suffix('/') == Some(e))
    }

    const SAMPLES: &[&str] = &[
        "/",
        "/*",
        "/a",
        "/a/",
        "/b",
        "/a/*",
        "/a/b",
        "/a/b/",
        "/a/b/*",
        "/a/c/*",
        "/b/*",
        "/a/b/c",
        "/{id}",
        "/{id}/",
        "/a/{id}",
        "/{id}/b",
        "/{x}/{y}",
        "/a/{id}/b",
        "/a/{id}/c",
        "/c/{id}",
    ];

    /// Every path of up to four segments over a small alphabet (some not canonical).
    fn paths() -> Vec<String> {
        let mut out = vec![String::new()];
        let mut all = Vec::new();
        for _ in 0..4 {
            out = out
                .iter()
                .flat_map(|p| ["a", "b", "c", "x", ""].map(|s| format!("{p}/{s}")))
                .collect();
            all.extend(out.iter().cloned());
        }
        all
    }

    #[test]
    fn overlap_is_exactly_a_shared_path() {
        let paths = paths();
        for a in SAMPLES {
            for b in SAMPLES {
                let (pa, pb) = (pat(a), pat(b));
                let shared = paths.iter().find(|p| prices(&pa, p) && prices(&pb, p));
                assert_eq!(
                    patterns_overlap(&pa, &pb),
                    shared.is_some(),
                    "{a} vs {b}: {shared:?}"
                );
                assert_eq!(patterns_overlap(&pa, &pb), patterns_overlap(&pb, &pa));
            }
        }
    }

    #[test]
    fn covers_is_exactly_path_inclusion() {
        let paths = paths();
        for outer in SAMPLES {
            for inner in SAMPLES {
                let (o, i) = (pat(outer), pat(inner));
                let escaped = paths.iter().find(|p| prices(&i, p) && !prices(&o, p));
                assert_eq!(
                    pattern_covers(&o, &i),
                    escaped.is_none(),
                    "{outer} over {inner}: {escaped:?}"
                );
            }
        }
    }

    #[test]
    fn overlap_examples() {
        let yes = [
            ("/a/b", "/a/b"),
            ("/a/b", "/a/b/"),
            ("/a/b", "/a/*"),
            ("/a/b", "/a/{id}"),
            ("/a/*", "/a/b/*"),
            ("/*", "/x/y"),
            ("/a/*", "/{id}/b"),
            ("/a/{id}", "/{x}/b"),
            ("/a/{id}", "/a/*"),
            ("/a/b/*", "/a/{id}"),
            ("/a/b/*", "/a/{id}/c"),
        ];
        for (a, b) in yes {
            assert!(patterns_overlap(&pat(a), &pat(b)), "{a} {b}");
        }
        let no = [
            ("/a/b", "/a/c"),
            ("/a/*", "/b/*"),
            ("/a/*", "/ab/*"),
            ("/a/b/*", "/a/c/*"),
            ("/a/{id}", "/a/{id}/b"),
            ("/a/{id}", "/b/{id}"),
            ("/a", "/a/{id}"),
            ("/a/b/c", "/a/{id}"),
        ];
        for (a, b) in no {
            assert!(!patterns_overlap(&pat(a), &pat(b)), "{a} {b}");
        }
    }

    #[test]
    fn cover_examples() {
        let yes = [
            ("/a/*", "/a/*"),
            ("/a/*", "/a/b/*"),
            ("/a/*", "/a"),
            ("/a/*", "/a/{id}"),
            ("/*", "/{x}/{y}"),
            ("/a/{id}", "/a/b"),
            ("/a/{id}", "/a/{x}"),
            ("/a/b", "/a/b"),
        ];
        for (o, i) in yes {
            assert!(pattern_covers(&pat(o), &pat(i)), "{o} over {i}");
        }
        let no = [
            ("/a/b/*", "/a/*"),
            ("/a/b/*", "/a/{id}/c"),
            ("/a/b", "/a/{id}"),
            ("/a/{id}", "/a/*"),
            ("/a/{id}", "/a/b/c"),
            ("/a/b", "/a/b/*"),
            ("/a/*", "/b"),
            ("/x/*", "/*"),
        ];
        for (o, i) in no {
            assert!(!pattern_covers(&pat(o), &pat(i)), "{o} over {i}");
        }
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert_eq!(Pattern::parse("a"), Err(PatternError::NoLeadingSlash));
        assert_eq!(Pattern::parse("/a*"), Err(PatternError::BadWildcard));
        assert_eq!(Pattern::parse("/a/*/b"), Err(PatternError::BadWildcard));
        assert_eq!(
            Pattern::parse("/a/x{id}"),
            Err(PatternError::BadPlaceholder)
        );
        assert_eq!(Pattern::parse("/{id}/*"), Err(PatternError::Mixed));
        assert!(matches!(
            Pattern::parse("/a/../b"),
            Err(PatternError::NotCanonical(_))
        ));
        assert!(matches!(
            Pattern::parse("//a/*"),
            Err(PatternError::NotCanonical(_))
        ));
        assert_eq!(Pattern::parse("/*"), Ok(Pattern::Prefix(vec![])));
    }
}
