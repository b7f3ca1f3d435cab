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
fn later_sections_validate_and_are_refused_as_not_yet_supported() {
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
        "[[product]]\nid = \"A1\"\nprice = \"17.98\"\n[basket]\ntax_rate = \"0.20\"\n[web_monetization]\nwallet_address = \"https://wallet.example/alice\"\n",
    );
    let cfg = parse(Path::new("t"), &rest, &env).unwrap();
    let un: Vec<String> = cfg.unsupported().into_iter().map(|p| p.key).collect();
    assert_eq!(un, vec!["web_monetization"]);
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
