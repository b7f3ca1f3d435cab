//! `GET {pay_prefix}/tollgate.js`: the browser wallet library (SPEC section 9),
//! compiled into the binary, with a strong ETag and a short public cache lifetime.

use std::sync::LazyLock;

use sha2::{Digest, Sha256};

use crate::reply::Reply;

/// The library, exactly as served.
pub const SCRIPT: &str = include_str!("../../assets/tollgate.js");

/// `Content-Type` of the library.
pub const CONTENT_TYPE: &str = "application/javascript; charset=utf-8";

/// `Cache-Control` of the library: caches revalidate after five minutes (a new
/// tollgate version is picked up quickly; an unchanged one answers 304).
pub const CACHE_CONTROL: &str = "public, max-age=300";

/// The strong ETag of [`SCRIPT`]: the first 128 bits of its SHA-256, computed once.
static ETAG: LazyLock<String> = LazyLock::new(|| etag_of(SCRIPT.as_bytes()));

/// A strong entity tag (quoted) for `content`.
pub fn etag_of(content: &[u8]) -> String {
    let digest = Sha256::digest(content);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

/// True when an `If-None-Match` value matches `etag`: `*`, or any listed tag equal
/// to it under the weak comparison RFC 9110 prescribes for If-None-Match (a `W/`
/// prefix is ignored).
pub fn none_match(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|tag| {
        tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag.trim_start_matches("W/")
    })
}

/// The reply for `GET`/`HEAD {pay_prefix}/tollgate.js` given the request's
/// `If-None-Match`.
pub fn serve(if_none_match: Option<&str>) -> Reply {
    respond(SCRIPT, &ETAG, if_none_match)
}

/// The library reply for `script` with `etag`: 304 without a body when the client's
/// copy is current, else 200 with the script.
fn respond(script: &'static str, etag: &str, if_none_match: Option<&str>) -> Reply {
    let headers = vec![
        ("ETag", etag.to_string()),
        ("Cache-Control", CACHE_CONTROL.to_string()),
        ("X-Content-Type-Options", "nosniff".to_string()),
    ];
    if if_none_match.is_some_and(|v| none_match(v, etag)) {
        return Reply {
            status: 304,
            headers,
            content_type: CONTENT_TYPE,
            body: bytes::Bytes::new(),
        };
    }
    Reply {
        status: 200,
        headers,
        content_type: CONTENT_TYPE,
        body: bytes::Bytes::from_static(script.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn etag_is_strong_stable_and_tracks_the_content() {
        let tag = etag_of(SCRIPT.as_bytes());
        assert!(tag.starts_with('"') && tag.ends_with('"') && !tag.starts_with("W/"));
        assert_eq!(tag.len(), 2 + 32);
        assert_eq!(tag, *ETAG, "computed once, the same every time");
        assert_ne!(etag_of(b"console.log(1)"), tag);
    }

    #[test]
    fn serves_the_script_with_its_validators() {
        let r = serve(None);
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, "application/javascript; charset=utf-8");
        assert_eq!(&r.body[..], SCRIPT.as_bytes());
        assert_eq!(header(&r, "ETag"), Some(ETAG.as_str()));
        assert_eq!(header(&r, "Cache-Control"), Some("public, max-age=300"));
        assert!(SCRIPT.contains("window.tollgate"));
    }

    #[test]
    fn matching_if_none_match_is_304_without_a_body() {
        let etag = ETAG.as_str();
        for inm in [
            etag.to_string(),
            format!("W/{etag}"),
            format!("\"old\", {etag}"),
            format!("\"old\",{etag} , \"older\""),
            "*".to_string(),
        ] {
            let r = serve(Some(&inm));
            assert_eq!(r.status, 304, "If-None-Match: {inm}");
            assert!(r.body.is_empty(), "If-None-Match: {inm}");
            assert_eq!(header(&r, "ETag"), Some(etag));
            assert_eq!(header(&r, "Cache-Control"), Some("public, max-age=300"));
        }
    }

    #[test]
    fn other_if_none_match_values_get_the_script() {
        let etag = ETAG.as_str();
        let unquoted = etag.trim_matches('"').to_string();
        for inm in [
            "\"0123\"".to_string(),
            unquoted,
            format!("{etag}x"),
            String::new(),
            format!("\"{}\"", &etag[2..]),
        ] {
            let r = serve(Some(&inm));
            assert_eq!(r.status, 200, "If-None-Match: {inm:?}");
            assert_eq!(&r.body[..], SCRIPT.as_bytes());
        }
    }

    #[test]
    fn a_changed_script_gets_a_new_tag_and_old_copies_revalidate_to_200() {
        const NEW: &str = "/* v2 */";
        let new_tag = etag_of(NEW.as_bytes());
        let r = respond(NEW, &new_tag, Some(ETAG.as_str()));
        assert_eq!(r.status, 200);
        assert_eq!(&r.body[..], NEW.as_bytes());
        assert_eq!(respond(NEW, &new_tag, Some(&new_tag)).status, 304);
    }
}
