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
