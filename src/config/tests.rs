//! Every class of config problem is reported, with file, key and reason, all at once.

use std::path::Path;

use super::*;

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn env(name: &str) -> Option<String> {
    match name {
        "K" => Some(KEY.into()),
        "SHORT" => Some("00112233".into()),
        "B64" => Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into()),
        "JUNK" => Some("!!not a key!!".into()),
        _ => None,
    }
}

const BASE: &str = r#"
[server]
listen = "127.0.0.1:0"
public_url = "https://shop.example"
upstream = "127.0.0.1:3000"
[secrets]
receipt_key_env = "K"
"#;

fn problems(text: &str) -> Vec<Problem> {
    match parse(Path::new("t.toml"), text, &env) {
        Ok(_) => Vec::new(),
        Err(p) => p.0,
    }
}

fn keys(text: &str) -> Vec<String> {
    problems(text).into_iter().map(|p| p.key).collect()
}

fn with(extra: &str) -> String {
    format!("{BASE}\n{extra}")
}

#[test]
fn minimal_config_loads_with_defaults() {
    let cfg = parse(Path::new("t.toml"), BASE, &env).unwrap();
    assert_eq!(cfg.server.pay_prefix, "/_tollgate");
    assert_eq!(cfg.chain.chain_id, 1);
    assert_eq!(
        cfg.chain.token,
        "0xb6ed7644c69416d67b522e20bc294a9a9b405b31"
    );
    assert_eq!(cfg.chain.decimals, 8);
    assert_eq!(cfg.payments.expiry_secs, 1800);
    assert_eq!(cfg.payments.access_ttl_secs, 30 * 86400);
    assert_eq!(
        cfg.store.backend,
        StoreBackend::Sqlite("tollgate.db".into())
    );
    assert!(cfg.routes.is_empty());
    assert!(cfg.unsupported().is_empty());
}

#[test]
fn syntax_errors_name_the_line() {
    let p = problems("[server\nlisten = 1");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].key, "(syntax)");
    assert!(p[0].message.contains("line 1"), "{}", p[0].message);
}

#[test]
fn unknown_keys_and_sections_are_errors() {
    assert_eq!(keys(&with("[surver]\nx = 1")), vec!["surver"]);
    let p = problems(&BASE.replace("upstream =", "upstreem = \"x\"\nupstream ="));
    assert_eq!(p[0].key, "server");
    assert!(p[0].message.contains("upstreem"), "{}", p[0].message);
    let p = problems(&with(
        "[[route]]\npath = \"/a\"\nprice = \"1\"\nprise = \"2\"",
    ));
    assert_eq!(p[0].key, "route[0]");
    assert!(p[0].message.contains("prise"));
}

#[test]
fn amounts_are_exact_decimals_with_at_most_eight_places() {
    let p = problems(&with("[[route]]\npath = \"/a\"\nprice = \"0.000000001\""));
    assert_eq!(p[0].key, "route[0].price");
    assert!(p[0].message.contains("more than 8 decimal places"));
    for bad in ["\"-1\"", "\"1e3\"", "\"0.5 \"", "\"abc\""] {
        assert_eq!(
            keys(&with(&format!("[[route]]\npath = \"/a\"\nprice = {bad}"))),
            vec!["route[0].price"],
            "{bad}"
        );
    }
    // A TOML float is a type error, not silently converted.
    assert_eq!(
        keys(&with("[[route]]\npath = \"/a\"\nprice = 0.5")),
        vec!["route[0]"]
    );
    let cfg = parse(
        Path::new("t"),
        &with("[[route]]\npath = \"/a\"\nprice = \"0.00000001\""),
        &env,
    )
    .unwrap();
    assert_eq!(cfg.routes.lookup("/a").unwrap().price.0, 1);
}

#[test]
fn durations_accept_s_m_h_d_only() {
    assert_eq!(parse_duration_secs("30s"), Ok(30));
    assert_eq!(parse_duration_secs("30m"), Ok(1800));
    assert_eq!(parse_duration_secs("12h"), Ok(43200));
    assert_eq!(parse_duration_secs("7d"), Ok(604800));
    for bad in ["", "30", "m", "1.5h", "-1s", "1w", "1 d", "500ms"] {
        assert!(parse_duration_secs(bad).is_err(), "{bad}");
    }
    assert_eq!(parse_duration_ms("500ms"), Ok(500));
    assert_eq!(
        keys(&with("[payments]\nexpiry = \"30 minutes\"")),
        vec!["payments.expiry"]
    );
    assert_eq!(
        keys(&with("[payments]\naccess_ttl = \"0s\"")),
        vec!["payments.access_ttl"]
    );
    assert_eq!(
        keys(&with(
            "[[route]]\npath = \"/a\"\nprice = \"1\"\naccess_ttl = \"1y\""
        )),
        vec!["route[0].access_ttl"]
    );
}

#[test]
fn receipt_key_must_exist_and_be_long_enough() {
    let without = BASE.replace("receipt_key_env = \"K\"", "");
    assert_eq!(keys(&without), vec!["secrets.receipt_key_env"]);
    let missing = BASE.replace("\"K\"", "\"NOT_SET\"");
    let p = problems(&missing);
    assert!(p[0].message.contains("NOT_SET is not set"));
    let short = BASE.replace("\"K\"", "\"SHORT\"");
    let p = problems(&short);
    assert!(p[0].message.contains("at least 32"), "{}", p[0].message);
    // The key's value never appears in a message.
    let junk = BASE.replace("\"K\"", "\"JUNK\"");
    let p = problems(&junk);
    assert!(!p[0].to_string().contains("not a key"), "{}", p[0]);
    assert!(parse(Path::new("t"), &BASE.replace("\"K\"", "\"B64\""), &env).is_ok());
    let cfg = parse(Path::new("t"), BASE, &env).unwrap();
    assert!(!format!("{cfg:?}").contains(KEY));
}

#[test]
fn receipt_key_file_is_read_relative_to_the_config() {
    let dir = std::env::temp_dir().join(format!("tollgate-keyfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("receipt.key"), format!("{KEY}\n")).unwrap();
    let text = BASE.replace(
        "receipt_key_env = \"K\"",
        "receipt_key_file = \"receipt.key\"",
    );
    let cfg = parse(&dir.join("t.toml"), &text, &env).unwrap();
    assert_eq!(hex::encode(&cfg.secrets.receipt_key.0), KEY);
    let both = BASE.replace(
        "receipt_key_env = \"K\"",
        "receipt_key_env = \"K\"\nreceipt_key_file = \"x\"",
    );
    assert_eq!(keys(&both), vec!["secrets.receipt_key_env"]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn route_patterns_are_validated() {
    let cases = [
        ("movies/*", "route[0].path"),
        ("/a/*/b", "route[0].path"),
        ("/a/../b", "route[0].path"),
        ("/a//b", "route[0].path"),
        ("/a/x{id}", "route[0].path"),
        ("/_tollgate/x", "route[0].path"),
    ];
    for (pat, key) in cases {
        assert_eq!(
            keys(&with(&format!(
                "[[route]]\npath = \"{pat}\"\nprice = \"1\""
            ))),
            vec![key],
            "{pat}"
        );
    }
    let dup =
        with("[[route]]\npath = \"/a\"\nprice = \"1\"\n[[route]]\npath = \"/a\"\nprice = \"2\"");
    assert_eq!(keys(&dup), vec!["route[1].path"]);
    let bad_method = with("[[route]]\npath = \"/a\"\nprice = \"1\"\nmethods = [\"get\"]");
    assert_eq!(keys(&bad_method), vec!["route[0].methods"]);
    let bad_scope = with("[[route]]\npath = \"/a\"\nprice = \"1\"\nscope = \"site\"");
    assert_eq!(keys(&bad_scope), vec!["route[0].scope"]);
    let no_price = with("[[route]]\npath = \"/a\"");
    assert_eq!(keys(&no_price), vec!["route[0].price"]);
}

#[test]
fn server_values_are_validated() {
    let bad = r#"
[server]
listen = "everywhere"
public_url = "shop.example/path"
upstream = "no-port"
pay_prefix = "/a/../b"
threads = 0
upstream_tls = true
[secrets]
receipt_key_env = "K"
"#;
    let k = keys(bad);
    for want in [
        "server.listen",
        "server.public_url",
        "server.upstream",
        "server.pay_prefix",
        "server.threads",
        "server.upstream_sni",
    ] {
        assert!(k.contains(&want.to_string()), "{want} missing from {k:?}");
    }
    assert_eq!(keys("[secrets]\nreceipt_key_env = \"K\""), vec!["server"]);
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"
[server]
listen = "127.0.0.1:0"
public_url = "ftp://x"
upstream = "127.0.0.1:3000"
[secrets]
receipt_key_env = "NOPE"
[chain]
token = "0x123"
poll_interval = "soon"
xpub = "xprv-secret"
[payments]
underpayment = "refund"
claim_rate = "lots"
[[route]]
path = "/a"
price = "1.123456789"
[[route]]
path = "b"
price = "1"
"#;
    let k = keys(text);
    for want in [
        "server.public_url",
        "secrets.receipt_key_env",
        "chain.token",
        "chain.poll_interval",
        "chain.xpub",
        "payments.underpayment",
        "payments.claim_rate",
        "route[0].price",
        "route[1].path",
    ] {
        assert!(k.contains(&want.to_string()), "{want} missing from {k:?}");
    }
    let shown = Problems(problems(text)).to_string();
    assert!(shown.lines().all(|l| l.starts_with("t.toml: ")), "{shown}");
}

#[test]
fn later_sections_validate() {
    let later = with(
        r#"
[admin]
allow = ["10.0.0.0/8"]
[gateway]
listen = "127.0.0.1:8888"
[[product]]
id = "A1"
price = "17.98"
unlocks = ["/albums/a/*"]
[basket]
tax_rate = "0.20"
shipping = "0.5"
[web_monetization]
wallet_address = "https://wallet.example/alice"
inject_link = ["/blog/*"]
"#,
    );
    // [admin] and [gateway] run now, but need payments and a postback key.
    let k = keys(&later);
    for want in ["admin", "gateway", "secrets.postback_key_env"] {
        assert!(k.contains(&want.to_string()), "{want} missing from {k:?}");
    }
    let rest = with(
        "[[route]]\npath = \"/albums/*\"\nprice = \"1\"\n[[product]]\nid = \"A1\"\ndescription = \"A\"\nprice = \"17.98\"\nunlocks = [\"/albums/a/*\"]\n[basket]\ntax_rate = \"0.20\"\n[web_monetization]\nwallet_address = \"https://wallet.example/alice\"\n",
    );
    let cfg = parse(Path::new("t"), &rest, &env).unwrap();
    assert!(cfg.unsupported().is_empty());
    let bad = with("[admin]\nallow = [\"10.0.0.0/33\"]\n[[product]]\nid = \"A\"\nprice = \"x\"\n[basket]\ntax_rate = \"2\"\n[web_monetization]\nwallet_address = \"http://w\"");
    let k = keys(&bad);
    for want in [
        "admin.allow[0]",
        "product[0].price",
        "basket.tax_rate",
        "web_monetization.wallet_address",
    ] {
        assert!(k.contains(&want.to_string()), "{want} missing from {k:?}");
    }
}

const CATALOGUE: &str = r#"
[[route]]
path = "/albums/*"
price = "1"
[[route]]
path = "/films/{id}"
price = "0.5"
[[route]]
path = "/free/*"
price = "0"
[[product]]
id = "DCD2346233"
description = "Best of Ladytron 00-10 (Deluxe Edition)"
price = "17.98"
unlocks = ["/albums/ladytron/*", "/films/ladytron"]
ships = true
max_count = 5
[[product]]
id = "DCD2346232"
description = "Best of Ladytron 00-10"
price = "14.98"
unlocks = ["/albums/ladytron-std/*"]
"#;

#[test]
fn a_catalogue_loads_with_its_defaults() {
    let cfg = parse(Path::new("t.toml"), &with(CATALOGUE), &env).unwrap();
    assert_eq!(
        cfg.products,
        vec![
            Product {
                id: "DCD2346233".into(),
                description: "Best of Ladytron 00-10 (Deluxe Edition)".into(),
                price: Amount(1_798_000_000),
                unlocks: vec!["/albums/ladytron/*".into(), "/films/ladytron".into()],
                ships: true,
                max_count: 5,
            },
            Product {
                id: "DCD2346232".into(),
                description: "Best of Ladytron 00-10".into(),
                price: Amount(1_498_000_000),
                unlocks: vec!["/albums/ladytron-std/*".into()],
                ships: false,
                max_count: 100,
            },
        ]
    );
    // No [basket]: every default, the shop id from public_url.
    assert_eq!(
        cfg.basket,
        Basket {
            shop_id: "shop.example".into(),
            tax_rate: crate::basket::bill::TaxRate::ZERO,
            shipping: Amount(0),
            max_total: Amount(1000 * 100_000_000),
            ttl_secs: 3600,
        }
    );
    assert!(cfg.rebates.is_empty());
    assert!(cfg.unsupported().is_empty());

    let text = format!(
        "{}{CATALOGUE}[basket]\nshop_id = \"Ladytron shop\"\ntax_rate = \"0.075\"\nshipping = \"0.5\"\nmax_total = \"50\"\nttl = \"2d\"\n[[rebate]]\nproduct = \"DCD2346232\"\nbuy = 3\npay = 2\n",
        BASE.replace("https://shop.example", "http://shop.example:8080")
    );
    let cfg = parse(Path::new("t.toml"), &text, &env).unwrap();
    assert_eq!(
        cfg.basket,
        Basket {
            shop_id: "Ladytron shop".into(),
            tax_rate: crate::basket::bill::TaxRate { num: 75, den: 1000 },
            shipping: Amount(50_000_000),
            max_total: Amount(50 * 100_000_000),
            ttl_secs: 2 * 86400,
        }
    );
    assert_eq!(
        cfg.rebates,
        vec![Rebate {
            product: "DCD2346232".into(),
            buy: 3,
            pay: 2
        }]
    );
    // The default shop id keeps the port.
    let cfg = parse(
        Path::new("t.toml"),
        &format!(
            "{}{CATALOGUE}",
            BASE.replace("https://shop.example", "http://shop.example:8080")
        ),
        &env,
    )
    .unwrap();
    assert_eq!(cfg.basket.shop_id, "shop.example:8080");
}

#[test]
fn every_catalogue_mistake_is_reported_at_once() {
    let text = with(
        r#"
[[route]]
path = "/albums/*"
price = "1"
[[route]]
path = "/free/*"
price = "0"
[[product]]
id = "tollgate-tax"
description = "reserved id"
price = "0"
unlocks = ["/albums/a/*"]
max_count = 0
[[product]]
id = "B/2"
description = "overlaps product 0, and itself"
price = "1"
unlocks = ["/albums/a/b", "/albums/b/*", "/albums/b/c", "/albums/b/c"]
[[product]]
id = ""
description = ""
price = "1"
unlocks = []
[[product]]
id = "D"
description = "not gated"
price = "1"
unlocks = ["/free/x/*", "/other"]
max_count = 10001
[[product]]
id = "D"
description = "line\tbreak"
price = "1.123456789"
unlocks = ["/albums/e"]
[[product]]
id = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
description = "too long an id"
price = "1"
unlocks = ["albums/f"]
[basket]
tax_rate = "1.5"
shipping = "-1"
max_total = "0"
ttl = "31d"
shop_id = " "
[[rebate]]
product = "NOPE"
buy = 3
pay = 2
[[rebate]]
product = "D"
buy = 1
pay = 1
[[rebate]]
product = "D"
buy = 3
pay = 3
[[rebate]]
product = "B/2"
buy = 2
pay = 0
"#,
    );
    let k = keys(&text);
    let want = [
        "product[0].id",
        "product[0].price",
        "product[0].max_count",
        "product[1].id",
        "product[1].unlocks[0]",
        "product[1].unlocks[2]",
        "product[1].unlocks[3]",
        "product[2].id",
        "product[2].description",
        "product[2].unlocks",
        "product[3].max_count",
        "product[3].unlocks[0]",
        "product[3].unlocks[1]",
        "product[4].id",
        "product[4].description",
        "product[4].price",
        "product[5].id",
        "product[5].unlocks[0]",
        "basket.tax_rate",
        "basket.shipping",
        "basket.max_total",
        "basket.ttl",
        "basket.shop_id",
        "rebate[0].product",
        "rebate[1].buy",
        "rebate[2].product",
        "rebate[2].pay",
        "rebate[3].pay",
    ];
    for w in want {
        assert!(k.contains(&w.to_string()), "{w} missing from {k:?}");
    }
    for k in &k {
        assert!(want.contains(&k.as_str()), "unexpected {k}");
    }
    let shown = Problems(problems(&text)).to_string();
    for w in [
        "product[1].unlocks[0]: \"/albums/a/b\" overlaps product[0].unlocks[0] \"/albums/a/*\" (of \"tollgate-tax\")",
        "product[1].unlocks[2]: \"/albums/b/c\" overlaps unlocks[1] \"/albums/b/*\"",
        "product[1].unlocks[3]: \"/albums/b/c\" is listed twice",
        "product[3].unlocks[0]: \"/free/x/*\" is not under any priced [[route]]: what the basket sells must be what the proxy gates",
        "rebate[0].product: unknown product \"NOPE\"",
        "rebate[2].product: \"D\" already has a rebate (rebate[1])",
        "basket.tax_rate: \"1.5\" must be a decimal fraction between 0 and 1, like \"0.20\"",
    ] {
        assert!(shown.contains(w), "{w:?} missing from\n{shown}");
    }
    // Every malformed rate is refused, exactly.
    for rate in ["1.5", "-0.1", "0.2e1", "", "0,2", " 0.2", "1.0001"] {
        let text = with(&format!(
            "[[route]]\npath = \"/a/*\"\nprice = \"1\"\n[[product]]\nid = \"A\"\ndescription = \"a\"\nprice = \"1\"\nunlocks = [\"/a/*\"]\n[basket]\ntax_rate = \"{rate}\""
        ));
        assert_eq!(keys(&text), vec!["basket.tax_rate"], "{rate:?}");
    }
}

#[test]
fn basket_and_rebates_need_products() {
    let k = keys(&with(
        "[basket]\ntax_rate = \"0.2\"\n[[rebate]]\nproduct = \"A\"\nbuy = 3\npay = 2",
    ));
    assert_eq!(k, vec!["basket", "rebate", "rebate[0].product"]);
    // Unknown keys stay errors in every catalogue section.
    let k = keys(&with(&format!(
        "{CATALOGUE}[basket]\ntax = \"0.2\"\n[[rebate]]\nproduct = \"DCD2346232\"\nbuy = 3\npay = 2\nfree = 1"
    )));
    assert_eq!(k, vec!["basket", "rebate[0]"]);
    let k = keys(&with(
        &CATALOGUE.replace("max_count = 5", "max_count = 5\nstock = 1"),
    ));
    assert_eq!(k, vec!["product[0]"]);
}

#[test]
fn unlocks_follow_a_case_insensitive_origin() {
    let text = format!(
        "{}{}",
        BASE.replace("[server]", "[server]\nupstream_case_insensitive = true"),
        CATALOGUE.replace("/albums/ladytron/*", "/Albums/Ladytron/*")
    );
    let cfg = parse(Path::new("t.toml"), &text, &env).unwrap();
    assert_eq!(cfg.products[0].unlocks[0], "/albums/ladytron/*");
}

#[test]
fn rates_parse() {
    assert_eq!(
        parse_rate("30/min"),
        Ok(Rate {
            count: 30,
            per_secs: 60
        })
    );
    assert_eq!(
        parse_rate("5/s"),
        Ok(Rate {
            count: 5,
            per_secs: 1
        })
    );
    assert!(parse_rate("0/s").is_err());
    assert!(parse_rate("5/day").is_err());
}

/// A directory with an Ed25519 client key (PKCS#8 PEM) and a config file path in it.
fn wm_dir() -> (std::path::PathBuf, std::path::PathBuf) {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let dir = std::env::temp_dir().join(format!("tollgate-wm-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let pem = key
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .unwrap();
    std::fs::write(dir.join("wm-client.pem"), pem.as_bytes()).unwrap();
    std::fs::write(dir.join("not-a-key.pem"), "hello").unwrap();
    (dir.clone(), dir.join("tollgate.toml"))
}

#[test]
fn web_monetization_loads_its_client_identity() {
    let (_dir, file) = wm_dir();
    let text = with(
        r#"
[[route]]
path = "/articles/*"
price = "0.02"
wm_price = "0.05"
[web_monetization]
wallet_address = "https://wallet.example/alice"
inject_link = ["/blog/*"]
client_wallet_address = "http://127.0.0.1:9/tollgate"
client_key_file = "wm-client.pem"
client_key_id = "tollgate-1"
"#,
    );
    let cfg = parse(&file, &text, &env).unwrap();
    let wm = cfg.web_monetization.as_ref().unwrap();
    let client = wm.client.as_ref().unwrap();
    assert_eq!(client.key.0, vec![7u8; 32]);
    assert_eq!(client.key_id, "tollgate-1");
    assert!(!format!("{wm:?}").contains("7, 7"), "the key never prints");
    assert_eq!(
        cfg.routes
            .lookup("/articles/a")
            .unwrap()
            .wm_price
            .as_deref(),
        Some("0.05")
    );
}

#[test]
fn web_monetization_mistakes_are_reported_at_once() {
    let (_dir, file) = wm_dir();
    let text = with(
        r#"
[[route]]
path = "/articles/*"
price = "0.02"
wm_price = "-1"
[[route]]
path = "/free/*"
price = "0"
wm_price = "0.01"
[web_monetization]
wallet_address = "http://wallet.example/alice"
inject_link = ["blog"]
client_wallet_address = "http://10.0.0.1/tollgate"
client_key_file = "not-a-key.pem"
client_key_id = ""
ca_file = "missing.pem"
"#,
    );
    let p = parse(&file, &text, &env).unwrap_err().0;
    let k: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    for want in [
        "route[0].wm_price",
        "route[1].wm_price",
        "web_monetization.wallet_address",
        "web_monetization.inject_link[0]",
        "web_monetization.client_wallet_address",
        "web_monetization.client_key_file",
        "web_monetization.client_key_id",
        "web_monetization.ca_file",
    ] {
        assert!(k.contains(&want), "{want} missing from {k:?}");
    }
    // wm_price needs the section, and the section needs a client to verify.
    let k = keys(&with(
        "[[route]]\npath = \"/a/*\"\nprice = \"1\"\nwm_price = \"1\"\n",
    ));
    assert!(k.contains(&"web_monetization".to_string()), "{k:?}");
    let k = keys(&with("[[route]]\npath = \"/a/*\"\nprice = \"1\"\nwm_price = \"1\"\n[web_monetization]\nwallet_address = \"https://w.example/a\"\n"));
    assert!(
        k.contains(&"web_monetization.client_wallet_address".to_string()),
        "{k:?}"
    );
    // Loopback http is allowed (local testing); other http is not.
    for (url, ok) in [
        ("https://w.example/a", true),
        ("http://127.0.0.1:8000/a", true),
        ("http://[::1]:8000/a", true),
        ("http://localhost/a", true),
        ("http://w.example/a", false),
        ("http://127.0.0.1.evil.example/a", false),
        ("ftp://w.example/a", false),
    ] {
        assert_eq!(super::monetization::op_url_allowed(url), ok, "{url}");
    }
}

#[test]
fn trusted_proxies_are_cidrs_and_default_to_none() {
    let cfg = parse(Path::new("t.toml"), BASE, &env).unwrap();
    assert!(cfg.server.trusted_proxies.is_empty());
    let text = BASE.replace(
        "upstream = \"127.0.0.1:3000\"",
        "upstream = \"127.0.0.1:3000\"\ntrusted_proxies = [\"10.0.0.0/8\", \"fd00::/8\", \"192.168.1.7/32\"]",
    );
    let cfg = parse(Path::new("t.toml"), &text, &env).unwrap();
    let nets: Vec<String> = cfg
        .server
        .trusted_proxies
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(nets, ["10.0.0.0/8", "fd00::/8", "192.168.1.7/32"]);
    // Every bad entry is named, together with the other problems of the file.
    let bad = r#"
[server]
listen = "everywhere"
public_url = "https://shop.example"
upstream = "127.0.0.1:3000"
trusted_proxies = ["10.0.0.0/8", "10.0.0.1", "lb.example/24", "300.0.0.0/8"]
[secrets]
receipt_key_env = "K"
"#;
    let k = keys(bad);
    for want in [
        "server.listen",
        "server.trusted_proxies[1]",
        "server.trusted_proxies[2]",
        "server.trusted_proxies[3]",
    ] {
        assert!(k.contains(&want.to_string()), "{want} missing from {k:?}");
    }
    assert!(!k.contains(&"server.trusted_proxies[0]".to_string()));
}

// Rules out: the fuzzer's config target (and any caller of `parse_offline`) waiting
// on DNS: a host name is refused without a look-up, a literal address passes, and
// `parse` still resolves names.
#[test]
fn parse_offline_resolves_only_literal_addresses() {
    let named = BASE.replace("127.0.0.1:3000", "localhost:3000");
    let offline = parse_offline(Path::new("t.toml"), &named, &env).unwrap_err();
    assert_eq!(
        offline.0.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(),
        ["server.upstream"]
    );
    assert!(parse_offline(Path::new("t.toml"), BASE, &env).is_ok());
    let v6 = BASE.replace("127.0.0.1:3000", "[::1]:3000");
    assert!(parse_offline(Path::new("t.toml"), &v6, &env).is_ok());
    assert!(parse(Path::new("t.toml"), &named, &env).is_ok());
}
