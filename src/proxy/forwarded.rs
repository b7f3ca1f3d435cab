//! Who the client is behind a load balancer (SPEC section 11), as pure functions.
//!
//! Forwarding headers are believed only from a TCP peer inside `[server]
//! trusted_proxies`. From such a peer the client is the right-most address of the
//! chain that is not itself a trusted proxy: every hop appends the peer it saw, so
//! whatever lies left of the first untrusted address was written by someone we do
//! not trust. `X-Forwarded-For` is read when present, `Forwarded: for=` otherwise.
//! An element that is not an address (garbage, `unknown`, an obfuscated name) ends
//! the walk: the client is then the last trusted hop reached. From any other peer
//! the headers are ignored and the client is the peer.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;

/// The most chain elements walked; a longer chain ends at the last trusted hop.
pub const MAX_HOPS: usize = 64;

/// `ip` with an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) read as IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// True when `ip` lies in one of `trusted`.
pub fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = canonical_ip(ip);
    trusted.iter().any(|n| n.contains(&ip))
}

/// Parses one node of a forwarding chain: `1.2.3.4`, `1.2.3.4:80`, `::1`,
/// `[::1]`, `[::1]:80`, optionally in double quotes (as `Forwarded` writes IPv6).
/// `None` for anything else.
pub fn parse_node(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let s = s
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(s)
        .trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        let port_ok = after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !port_ok {
            return None;
        }
        return inner
            .parse::<Ipv6Addr>()
            .ok()
            .map(IpAddr::V6)
            .map(canonical_ip);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical_ip(ip));
    }
    // IPv4 with a port (a bare IPv6 with a port must be bracketed).
    let (host, port) = s.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || host.contains(':') {
        return None;
    }
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The `for=` value of one `Forwarded` element (`for=1.2.3.4;proto=https`), if any.
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then_some(v)
    })
}

/// Walks a chain right to left (`rev_nodes` yields the right-most first).
fn walk<'a>(
    peer: IpAddr,
    trusted: &[IpNet],
    rev_nodes: impl Iterator<Item = Option<&'a str>>,
) -> IpAddr {
    let mut last = peer;
    for node in rev_nodes.take(MAX_HOPS) {
        match node.and_then(parse_node) {
            Some(ip) if is_trusted(ip, trusted) => last = ip,
            Some(ip) => return ip,
            None => return last,
        }
    }
    last
}

/// The client address of a request that arrived from TCP peer `peer`, given
/// `[server] trusted_proxies` and the request's `X-Forwarded-For` and `Forwarded`
/// header values, in the order they arrived (see the module documentation).
pub fn client_address<'a>(
    peer: IpAddr,
    trusted: &[IpNet],
    xff: &[&'a [u8]],
    forwarded: &[&'a [u8]],
) -> IpAddr {
    let peer = canonical_ip(peer);
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let text = |v: &&'a [u8]| std::str::from_utf8(v).ok();
    if !xff.is_empty() {
        // Header lines in reverse, and each line's elements in reverse.
        let nodes = xff.iter().rev().flat_map(move |v| match text(v) {
            Some(s) => s.rsplit(',').map(Some).collect::<Vec<_>>(),
            None => vec![None],
        });
        return walk(peer, trusted, nodes);
    }
    if !forwarded.is_empty() {
        let nodes = forwarded.iter().rev().flat_map(move |v| match text(v) {
            Some(s) => s.rsplit(',').map(forwarded_for).collect::<Vec<_>>(),
            None => vec![None],
        });
        return walk(peer, trusted, nodes);
    }
    peer
}

/// The `X-Forwarded-Proto` a trusted peer sent (or `proto=` of its right-most
/// `Forwarded` element): `http` or `https` only.
pub fn forwarded_proto(xfp: Option<&[u8]>, forwarded: &[&[u8]]) -> Option<&'static str> {
    let pick = |s: &str| match s.trim().trim_matches('"') {
        p if p.eq_ignore_ascii_case("https") => Some("https"),
        p if p.eq_ignore_ascii_case("http") => Some("http"),
        _ => None,
    };
    if let Some(v) = xfp {
        // A chain of protos: the left-most is what the client used.
        return std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.split(',').next())
            .and_then(pick);
    }
    let last = std::str::from_utf8(forwarded.last()?)
        .ok()?
        .rsplit(',')
        .next()?;
    last.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("proto") {
            pick(v)
        } else {
            None
        }
    })
}

/// The `X-Forwarded-For` value toward the origin: a trusted peer's chain (its
/// header lines joined) with the peer appended; from anyone else, the peer alone
/// (their claims are dropped).
pub fn upstream_xff(peer: IpAddr, trusted_peer: bool, xff: &[&[u8]]) -> String {
    let peer = canonical_ip(peer);
    let mut out = String::new();
    if trusted_peer {
        for v in xff {
            if let Ok(s) = std::str::from_utf8(v) {
                let s = s.trim();
                if !s.is_empty() {
                    out.push_str(s);
                    out.push_str(", ");
                }
            }
        }
    }
    out.push_str(&peer.to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn client(peer: &str, trusted: &[&str], xff: &[&str], fwd: &[&str]) -> IpAddr {
        let xff: Vec<&[u8]> = xff.iter().map(|s| s.as_bytes()).collect();
        let fwd: Vec<&[u8]> = fwd.iter().map(|s| s.as_bytes()).collect();
        client_address(ip(peer), &nets(trusted), &xff, &fwd)
    }

    #[test]
    fn untrusted_peers_headers_are_ignored() {
        // Default: nobody is trusted.
        assert_eq!(
            client("203.0.113.9", &[], &["1.1.1.1"], &[]),
            ip("203.0.113.9")
        );
        assert_eq!(
            client(
                "203.0.113.9",
                &["10.0.0.0/8"],
                &["1.1.1.1"],
                &["for=2.2.2.2"]
            ),
            ip("203.0.113.9")
        );
        // A mapped IPv4 peer is its IPv4 address.
        assert_eq!(
            client("::ffff:203.0.113.9", &[], &[], &[]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_peer_gives_the_right_most_untrusted_address() {
        let t = &["10.0.0.0/8"];
        assert_eq!(
            client("10.0.0.1", t, &["198.51.100.7"], &[]),
            ip("198.51.100.7")
        );
        // A spoofed chain: the client wrote 1.1.1.1, the balancer appended the real one.
        assert_eq!(
            client("10.0.0.1", t, &["1.1.1.1, 198.51.100.7"], &[]),
            ip("198.51.100.7")
        );
        // Trusted hops on the right are skipped.
        assert_eq!(
            client(
                "10.0.0.1",
                t,
                &["1.1.1.1, 198.51.100.7, 10.0.0.5, 10.9.9.9"],
                &[]
            ),
            ip("198.51.100.7")
        );
        // Several header lines are one list, in order.
        assert_eq!(
            client("10.0.0.1", t, &["1.1.1.1", "198.51.100.7, 10.0.0.5"], &[]),
            ip("198.51.100.7")
        );
        // No header: the peer.
        assert_eq!(client("10.0.0.1", t, &[], &[]), ip("10.0.0.1"));
        // Only trusted hops: the left-most of them.
        assert_eq!(
            client("10.0.0.1", t, &["10.1.1.1, 10.2.2.2"], &[]),
            ip("10.1.1.1")
        );
    }

    #[test]
    fn forwarded_for_is_read_when_there_is_no_x_forwarded_for() {
        let t = &["10.0.0.0/8", "fd00::/8"];
        assert_eq!(
            client(
                "10.0.0.1",
                t,
                &[],
                &["for=1.1.1.1;proto=https, For=\"[2001:db8:cafe::17]:4711\";by=10.0.0.1"]
            ),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(
            client(
                "fd00::1",
                t,
                &[],
                &["for=192.0.2.60:8080;proto=http", "for=10.3.3.3"]
            ),
            ip("192.0.2.60")
        );
        // X-Forwarded-For wins when both are present.
        assert_eq!(
            client("10.0.0.1", t, &["198.51.100.7"], &["for=1.1.1.1"]),
            ip("198.51.100.7")
        );
        // An element without for= (or `unknown`) ends the walk at the last trusted hop.
        assert_eq!(client("10.0.0.1", t, &[], &["proto=https"]), ip("10.0.0.1"));
        assert_eq!(
            client("10.0.0.1", t, &[], &["for=unknown, for=10.4.4.4"]),
            ip("10.4.4.4")
        );
        assert_eq!(client("10.0.0.1", t, &[], &["for=_hidden"]), ip("10.0.0.1"));
    }

    #[test]
    fn ipv6_nodes_with_brackets_and_ports() {
        for (s, want) in [
            ("2001:db8::1", Some("2001:db8::1")),
            ("[2001:db8::1]", Some("2001:db8::1")),
            ("[2001:db8::1]:443", Some("2001:db8::1")),
            ("\"[2001:db8::1]:443\"", Some("2001:db8::1")),
            (" 192.0.2.1:80 ", Some("192.0.2.1")),
            ("::ffff:192.0.2.1", Some("192.0.2.1")),
            ("[2001:db8::1]:", None),
            ("[2001:db8::1]x", None),
            ("[2001:db8::1", None),
            ("2001:db8::1:80:x", None),
            ("192.0.2.1:", None),
            ("192.0.2.1:8a", None),
            ("300.1.1.1", None),
            ("unknown", None),
            ("", None),
            ("\"", None),
            ("[]", None),
        ] {
            assert_eq!(parse_node(s), want.map(ip), "{s:?}");
        }
        let t = &["fd00::/8"];
        assert_eq!(
            client("fd00::2", t, &["[2001:db8::9]:5555, fd00::3"], &[]),
            ip("2001:db8::9")
        );
    }

    #[test]
    fn garbage_never_becomes_the_client() {
        let t = &["10.0.0.0/8"];
        // Garbage right after the trusted peer: the peer is all we know.
        for junk in ["not-an-ip", "", " , ", "1.2.3.4.5", "\u{0}", ",,,,"] {
            assert_eq!(
                client("10.0.0.1", t, &[junk], &[]),
                ip("10.0.0.1"),
                "{junk:?}"
            );
        }
        // Garbage further left does not matter once an untrusted address is found.
        assert_eq!(
            client("10.0.0.1", t, &["junk, 198.51.100.7"], &[]),
            ip("198.51.100.7")
        );
        // Garbage behind a trusted hop: that hop.
        assert_eq!(
            client("10.0.0.1", t, &["junk, 10.7.7.7"], &[]),
            ip("10.7.7.7")
        );
        // Bytes that are not UTF-8.
        let xff: Vec<&[u8]> = vec![b"\xff\xfe"];
        assert_eq!(
            client_address(ip("10.0.0.1"), &nets(t), &xff, &[]),
            ip("10.0.0.1")
        );
        // A very long chain of trusted hops stops after MAX_HOPS.
        let long = vec!["10.1.1.1"; 10_000].join(",");
        assert_eq!(client("10.0.0.1", t, &[&long], &[]), ip("10.1.1.1"));
        let long = format!("198.51.100.7,{}", vec!["10.1.1.1"; 100].join(","));
        assert_eq!(client("10.0.0.1", t, &[&long], &[]), ip("10.1.1.1"));
    }

    #[test]
    fn proto_and_upstream_chain() {
        assert_eq!(forwarded_proto(Some(b"https"), &[]), Some("https"));
        assert_eq!(forwarded_proto(Some(b"HTTP, https"), &[]), Some("http"));
        assert_eq!(forwarded_proto(Some(b"gopher"), &[]), None);
        assert_eq!(
            forwarded_proto(None, &[b"for=1.1.1.1;proto=https"]),
            Some("https")
        );
        assert_eq!(forwarded_proto(None, &[b"for=1.1.1.1"]), None);
        assert_eq!(forwarded_proto(None, &[]), None);
        let peer = ip("10.0.0.1");
        assert_eq!(
            upstream_xff(peer, true, &[b"1.1.1.1", b" 198.51.100.7 "]),
            "1.1.1.1, 198.51.100.7, 10.0.0.1"
        );
        assert_eq!(upstream_xff(peer, false, &[b"1.1.1.1"]), "10.0.0.1");
        assert_eq!(upstream_xff(ip("::1"), false, &[]), "::1");
    }
}
