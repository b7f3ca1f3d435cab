//! Postbacks to shops: signing, SSRF-checked targets, and the durable delivery loop.
//!
//! Owns what leaves tollgate toward a shop's `postback_url`. A URL is checked when
//! `start_payment` accepts it and again at every delivery: http/https only, no
//! credentials, and every address it resolves to must be public unless the
//! operator allowed that network in `[postback] allow_networks`. Each delivery is
//! signed `X-Tollgate-Signature: t=<unix>,v1=<hex hmac-sha256(key, "<t>.<body>")>`
//! and carries a stable `X-Tollgate-Delivery` id. It never logs a key or a body.

pub mod sender;

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::keys::mac;

/// The signature header value for `body` sent at UNIX time `t`.
pub fn signature(key: &[u8], t: u64, body: &str) -> String {
    let tag = mac(key, &[t.to_string().as_bytes(), b".", body.as_bytes()]);
    format!("t={t},v1={}", hex::encode(tag))
}

/// Why a postback URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not an absolute http(s) URL.
    #[error("must be an absolute http:// or https:// URL")]
    Scheme,
    /// `user:pass@` in the URL.
    #[error("must not carry credentials")]
    Credentials,
    /// No host, or a malformed one.
    #[error("has no valid host")]
    Host,
    /// DNS failed.
    #[error("host does not resolve")]
    Unresolvable,
    /// Resolves to a loopback/private/link-local/metadata address not allowed by config.
    #[error(
        "resolves to a non-public address ({0}); allow it in [postback] allow_networks if intended"
    )]
    NotPublic(IpAddr),
}

/// A postback URL split into what delivery needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `http` or `https`.
    pub https: bool,
    /// Host as written (for SNI and the Host header).
    pub host: String,
    /// Port.
    pub port: u16,
}

/// Parses and checks the syntax of a postback URL (no DNS).
pub fn parse_url(url: &str) -> Result<Target, UrlError> {
    if url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlError::Host);
    }
    let (https, rest) = if let Some(r) = strip_prefix_ci(url, "https://") {
        (true, r)
    } else if let Some(r) = strip_prefix_ci(url, "http://") {
        (false, r)
    } else {
        return Err(UrlError::Scheme);
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(UrlError::Credentials);
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or(UrlError::Host)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| UrlError::Host)?,
            None if after.is_empty() => default_port(https),
            None => return Err(UrlError::Host),
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().map_err(|_| UrlError::Host)?),
            None => (authority.to_string(), default_port(https)),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    if !host_ok || port == 0 {
        return Err(UrlError::Host);
    }
    Ok(Target { https, host, port })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

fn default_port(https: bool) -> u16 {
    if https {
        443
    } else {
        80
    }
}

/// True for addresses a postback must not reach by default: loopback, private,
/// link-local (incl. cloud metadata 169.254.169.254), CGNAT, unique-local,
/// unspecified, multicast, broadcast, documentation, and IPv4-mapped forms of those.
pub fn is_non_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xC0) == 64) // 100.64.0.0/10
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24
                || (o[0] == 198 && (o[1] & 0xFE) == 18) // 198.18.0.0/15
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_non_public(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xFE00) == 0xFC00 // fc00::/7 unique local
                || (seg[0] & 0xFFC0) == 0xFE80 // fe80::/10 link local
                || (seg[0] == 0x2001 && seg[1] == 0x0DB8) // documentation
                || (seg[0] == 0x0064 && seg[1] == 0xFF9B) // NAT64 (may reach IPv4 private)
        }
    }
}

/// Resolves `target` and checks every address. Returns the address to connect to
/// (the first one), so the connection goes exactly where the check looked.
pub async fn resolve_checked(target: &Target, allow: &[IpNet]) -> Result<SocketAddr, UrlError> {
    let host = target
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => tokio::net::lookup_host((host.as_str(), target.port))
            .await
            .map_err(|_| UrlError::Unresolvable)?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(UrlError::Unresolvable);
    }
    for a in &addrs {
        if is_non_public(a.ip()) && !allow.iter().any(|n| n.contains(&a.ip())) {
            return Err(UrlError::NotPublic(a.ip()));
        }
    }
    Ok(addrs[0])
}

/// Full check of a postback URL: syntax, resolution, address policy.
pub async fn check_url(url: &str, allow: &[IpNet]) -> Result<SocketAddr, UrlError> {
    let target = parse_url(url)?;
    resolve_checked(&target, allow).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_of_t_dot_body() {
        let s = signature(&[7u8; 32], 1700000000, "{\"id\":\"x\"}");
        assert!(s.starts_with("t=1700000000,v1="));
        assert_eq!(s.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(s, signature(&[7u8; 32], 1700000001, "{\"id\":\"x\"}"));
    }

    #[test]
    fn url_syntax() {
        assert_eq!(parse_url("https://shop.example/pb").unwrap().port, 443);
        assert_eq!(
            parse_url("http://shop.example:8080/x?y").unwrap().port,
            8080
        );
        assert_eq!(parse_url("http://[::1]:9/x").unwrap().host, "::1");
        assert_eq!(parse_url("ftp://x/"), Err(UrlError::Scheme));
        assert_eq!(parse_url("javascript:alert(1)"), Err(UrlError::Scheme));
        assert_eq!(
            parse_url("http://user:pw@shop.example/"),
            Err(UrlError::Credentials)
        );
        assert_eq!(parse_url("http:///x"), Err(UrlError::Host));
        assert_eq!(parse_url("http://a b/"), Err(UrlError::Host));
        assert_eq!(parse_url("http://x:0/"), Err(UrlError::Host));
    }

    #[test]
    fn non_public_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(is_non_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_non_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn resolution_is_checked_and_allowlist_opens_exceptions() {
        assert_eq!(
            check_url("http://127.0.0.1:9/x", &[]).await,
            Err(UrlError::NotPublic("127.0.0.1".parse().unwrap()))
        );
        assert!(matches!(
            check_url("http://localhost:9/x", &[]).await,
            Err(UrlError::NotPublic(_))
        ));
        let allow = vec!["127.0.0.1/32".parse().unwrap()];
        assert_eq!(
            check_url("http://127.0.0.1:9/x", &allow)
                .await
                .unwrap()
                .port(),
            9
        );
        assert!(check_url("http://169.254.169.254/latest/meta-data", &allow)
            .await
            .is_err());
    }
}
