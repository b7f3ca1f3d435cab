#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ (small, meaningful inputs).

Run from anywhere: python3 fuzz/seeds.py. Existing seeds of the same name are
overwritten; inputs AFL finds are not kept here (see fuzz/README.md).
"""
import gzip  # noqa: F401  (the inject target gzips itself; seeds stay plain)
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def s(text):
    b = text.encode() if isinstance(text, str) else text
    assert len(b) < 256
    return bytes([len(b)]) + b


def u64(n):
    return struct.pack(">Q", n)


SEEDS = {
    "canonical": [
        b"/movies/x",
        b"/movies/trailers/t",
        b"/;%5C%00/movies/x",
        b"/free/..%2Fmovies/x",
        b"/MOVIES/x",
        b"/movies/trailers/../x",
        b"http://host/exact/page?tollgate_contract=T.x",
        b"/articles/a;v=1",
        b"/%2e%2e/movies/x",
        b"/a%252fmovies%252fx",
        b"/caf%C3%A9/%FF",
        b"/x\\..\\movies\\x",
        b"/exact/page/.",
        b"/movies%00.html",
        b"/articles/a%3Fb/",
    ],
    "route": [
        b"/movies/*\n/movies/{id}\n/movies/x",
        b"/a/{b}/c\n/a/b/*\n/a/b/c/",
        b"/exact\n/exact/*\n/exact/",
        b"/*\n/{x}\n/",
        b"/a/%2F\n/a/{x}\n/a/%2F/",
    ],
    "receipt": [
        bytes([0]) + s("/movies/x") + s("ab" * 32) + u64(2_000_000_000) + s("0123456789abcdef")
        + u64(1_000) + bytes([2, 0, 10, 1, 1, 0, 0]) + b"tg1.e30.AAAA",
        bytes([1]) + s("/articles/{slug}") + s("00" * 32) + u64(5) + s("p") + u64(6) + bytes([0]),
        bytes([2]) + s("/albums/a/* /singles/1") + s("h") + u64(2**64 - 1) + s("pid") + u64(0)
        + bytes([3, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        bytes([3]) + s('[ "/a" , "/b" ]') + s("") + u64(0) + s("") + u64(0) + bytes([1, 0, 0, 2]),
    ],
    "contract": [
        bytes([0]) + s("/movies/x") + u64(0x0123456789ABCDEF) + u64(1_700_000_000) + bytes([0, 5, 1])
        + b"eyJ1IjoiIn0.AAAA",
        bytes([2]) + s("/articles/hello") + u64(1) + u64(2**64 - 1) + bytes([1, 0, 0x41]),
        bytes([1]) + s("/_tollgate/basket/b1") + u64(7) + u64(1_700_000_000) + bytes([2])
        + s("ALBUM") + s("An album") + u64(3) + s("17.98")
        + s("tollgate:tax") + s("Tax") + u64(1) + s("-3.5")
        + s("/albums/a/*") + u64(0) + u64(5_394_000_000) + s("2 items") + bytes([0, 9, 0xFF]),
    ],
    "accept": [
        b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        b"application/json",
        b"application/json;q=0.5, text/html;q=0.6",
        b"application/problem+json",
        b"text/html;q=0, application/json;q=0.001",
        b"Application/JSON; charset=utf-8; q=1.000, text/html",
        b"text/html;q=1.5,application/json;q=.9",
    ],
    "cookie": [
        b"Tollgate tg1.a.b\nsid=1; tollgate_receipt=tg1.x.y~tg1.z.w; a=b\ntollgate_receipt=\"q\"",
        b"tollgate  tg1.p.q \n tollgate_receipt=;tollgate_receipt=~~x;; ;",
        b"Basket s3cret\ntollgate_basket=\"abc\"; tollgate_claim_0123=tok",
        b"for=192.0.2.1;proto=https\n198.51.100.7, 203.0.113.2\nfor=\"[2001:db8::1]:4711\"",
        b"\nunknown, 10.0.0.1:80,\xff",
    ],
    "config": [],  # filled below from files
    "rpc": [
        bytes([8]) + b'{"jsonrpc":"2.0","id":1,"method":"start_payment","params":{"amount":"222.333","data":{"a":1},"postback_url":"https://shop.example/pb"}}',
        bytes([8]) + b'[{"jsonrpc":"2.0","id":"a","method":"get_payment","params":["p"]},{"jsonrpc":"2.0","method":"n"},1,[]]',
        bytes([0]) + b'{"jsonrpc":"2.0","id":null,"method":"start_payment","params":{"amount":"0"}}',
        bytes([18]) + b'{"jsonrpc":"2.0","id":{},"method":"x"}',
        bytes([8]) + b'{"jsonrpc":"2.0","id":2,"method":"start_payment","params":{"amount":1.5}}',
        bytes([8]) + b"[]",
        bytes([8]) + b'{"jsonrpc":"1.0"',
    ],
    "basket": [
        bytes([0x85]) + b'{"productID":"ALBUM","currency":"0xBTC","itemPrice":17.98,"itemCount":3}\n'
        b'{"productID":"ALBUM","currency":"0xBTC","itemPrice":"-17.98","itemCount":1,"receipt":"tg1.a.b"}\n'
        b'{"productID":"single.1","description":"x","currency":"0xBTC","itemPrice":0.00000001,"itemCount":2,"itemsPrice":1}',
        bytes([0x04]) + b'{"productID":"big","currency":"0xBTC","itemPrice":999999.99999999,"itemCount":4294967295}\n'
        b'{"productID":"big","currency":"0xBTC","itemPrice":999999.99999999,"itemCount":4294967295}',
        bytes([0x81]) + b'{"productID":"ALBUM","currency":"0xBTC","itemPrice":1.798e1,"itemCount":1}\n'
        b'{"productID":"nope","currency":"0xBTC","itemPrice":1,"itemCount":1}\n'
        b'{"productID":"ALBUM","currency":"EUR","itemPrice":17.98,"itemCount":1}',
    ],
    "inject": [
        bytes([0, 0]) + b"<!doctype html><html><head><title>x</title></head><body>hi</body></html>",
        bytes([0, 1]) + b"<!DOCTYPE html>\n<!-- <head> --><HTML lang=en><HEAD data-x='>'><meta charset=utf-8><script>'</head>'</script><link rel=stylesheet href=a.css></head><p>",
        bytes([3, 2]) + b'<html><head><link rel="monetization" href="https://wallet.example/alice"></head></html>',
        bytes([4, 3]) + b'{"json": "<head>"}',
        bytes([5, 4]) + b"<html><body><p>no head</p></body></html>",
        bytes([9, 5]) + b"<head",
        bytes([0, 7]) + b"text/html; charset=utf-8\r\n<head><style>h1{}</style></head>",
    ],
    "op": [
        b'{"id":"https://wallet.example/alice","assetCode":"USD","assetScale":2,"authServer":"https://auth.example","resourceServer":"https://op.example"}',
        b'{"id":"https://op.example/incoming-payments/abc","walletAddress":"https://wallet.example/alice","receivedAmount":{"value":"500","assetCode":"USD","assetScale":2},"completed":true}',
        b"0.01\nhttps://op.example/incoming-payments/x\nhttp://127.0.0.1:8080/x\nhttp://[::1]/\nhttp://10.0.0.1/\nmax-age=60",
        b"12.345678901234567890\npublic, max-age=999999999",
        b"0.5\nno-store, max-age=60",
        b"https://op.example/rs/incoming-payments/abc-1\nhttps://op.example/rs/\nhttps://op.example/rs/incoming-payments/..\nhttps://op.example/rs",
    ],
    "head": [
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody",
        b"GET / HTTP/1.1\nHost: a\n\nbody",
        b"\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab",
        b"GET / HTTP/1.1\r\nHost: a\r",
        b"\n\r\n\r\r\n\n",
    ],
}

CONFIG_MIN = b"""[server]
listen = "127.0.0.1:0"
public_url = "https://shop.example"
upstream = "127.0.0.1:3000"
[secrets]
receipt_key_env = "K"
"""


def main():
    root = os.path.dirname(HERE)
    SEEDS["config"] = [
        CONFIG_MIN,
        CONFIG_MIN + b'\n[[route]]\npath = "/a/{b}"\nprice = "1"\nmethods = ["GET"]\nscope = "route"\n',
        CONFIG_MIN + b'\n[[product]]\nid = "p"\nprice = "0.1"\nunlocks = ["/p/*"]\n[basket]\ntax_rate = "0.2"\n[[rebate]]\nproduct = "p"\nbuy = 3\npay = 2\n',
        CONFIG_MIN.replace(b"listen", b"listn"),
        b"[server\nlisten = 1",
    ]
    for name in ("tollgate.example.toml", "demo.toml"):
        with open(os.path.join(root, "config", name), "rb") as f:
            SEEDS["config"].append(f.read())
    for target, seeds in SEEDS.items():
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for i, seed in enumerate(seeds):
            with open(os.path.join(d, f"seed-{i:02}"), "wb") as f:
                f.write(seed)


if __name__ == "__main__":
    main()
