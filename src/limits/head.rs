//! Where a request head ends (pure): the limits read a head before pingora parses
//! it, so they can bound its size and the time it takes to arrive.

/// The length of the request head at the start of `buf` (through the blank line
/// that ends it), or `None` while it is incomplete.
///
/// Lines may end in CRLF or a bare LF, as the parser behind tollgate (httparse)
/// accepts both: a head ends at the first LF followed by an optional CR and an LF.
/// Empty lines before the request line (RFC 9112 section 2.2 lets a server skip
/// them) are not an end.
pub fn head_len(buf: &[u8]) -> Option<usize> {
    // Skip leading empty lines (CRLF or LF) before the request line.
    let mut start = 0;
    loop {
        match buf.get(start..) {
            Some([b'\r', b'\n', ..]) => start += 2,
            Some([b'\n', ..]) => start += 1,
            _ => break,
        }
    }
    let mut i = start;
    while let Some(off) = memchr::memchr(b'\n', buf.get(i..)?) {
        let lf = i + off;
        match buf.get(lf + 1..) {
            Some([b'\n', ..]) => return Some(lf + 2),
            Some([b'\r', b'\n', ..]) => return Some(lf + 3),
            _ => i = lf + 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::head_len;

    #[test]
    fn heads_end_at_the_first_blank_line() {
        assert_eq!(head_len(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody"), Some(27));
        assert_eq!(head_len(b"GET / HTTP/1.1\nHost: a\n\nbody"), Some(24));
        assert_eq!(head_len(b"GET / HTTP/1.1\r\nHost: a\n\r\n"), Some(26));
        assert_eq!(head_len(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n"), Some(22));
        assert_eq!(head_len(b"GET / HTTP/1.1\r\n\r\n"), Some(18));
    }

    #[test]
    fn incomplete_heads_have_no_end() {
        for h in [
            &b""[..],
            b"\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r",
            b"GET / HTTP/1.1\r\nHost: a\r",
        ] {
            assert_eq!(head_len(h), None, "{:?}", String::from_utf8_lossy(h));
        }
    }

    #[test]
    fn a_head_split_anywhere_ends_in_the_same_place() {
        let h = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab";
        let end = head_len(h).unwrap();
        for cut in 0..h.len() {
            let got = head_len(&h[..cut]);
            assert_eq!(got, (cut >= end).then_some(end), "cut at {cut}");
        }
    }
}
