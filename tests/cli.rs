//! The command line: `check` on the shipped configs, every problem reported at
//! once, and `serve` refusing a bad config before anything listens.

mod support;

use support::{run_cli, TempDir, TEST_KEY};

const KEY_ENV: &[(&str, &str)] = &[("TOLLGATE_RECEIPT_KEY", TEST_KEY)];

// Rules out: shipping example or demo configs that do not load.
#[test]
fn example_and_demo_configs_pass_check() {
    for file in [
        "config/demo.toml",
        "config/demo-chain.toml",
        "config/tollgate.example.toml",
    ] {
        let (code, out, err) = run_cli(&["check", "--config", file], KEY_ENV);
        assert_eq!(code, 0, "{file}: {err}");
        assert!(out.contains(": OK"), "{out}");
        assert!(out.contains("PATTERN"), "{out}");
        assert!(out.contains("/movies/*"), "{out}");
    }
    // The demo's table: most specific first, free routes marked.
    let (_, out, _) = run_cli(&["check", "--config", "config/demo.toml"], KEY_ENV);
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("  /")).collect();
    assert!(rows[0].starts_with("  /articles/{slug}"), "{out}");
    assert!(
        rows[1].starts_with("  /movies/trailers/*") && rows[1].contains("free"),
        "{out}"
    );
    assert!(
        rows[2].starts_with("  /movies/*")
            && rows[2].contains("GET,HEAD")
            && rows[2].contains("0.5"),
        "{out}"
    );
}

// Rules out: a check that stops at the first problem or hides which key is wrong.
#[test]
fn check_reports_every_problem_and_exits_1() {
    let dir = TempDir::new("cli");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "https://shop.example"
upstream = "127.0.0.1:3000"
[secrets]
receipt_key_env = "TOLLGATE_RECEIPT_KEY"
[[route]]
path = "/a"
price = "0.123456789"
[[route]]
path = "/b/*"
price = "1"
access_ttl = "forever"
"#,
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let (code, _, err) = run_cli(&["check", "--config", p], KEY_ENV);
    assert_eq!(code, 1);
    assert!(err.contains("2 problems"), "{err}");
    assert!(err.contains(&format!("{p}: route[0].price")), "{err}");
    assert!(err.contains(&format!("{p}: route[1].access_ttl")), "{err}");
    // Without the key the key is a problem too, and its value never appears.
    let (code, _, err) = run_cli(&["check", "--config", p], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("TOLLGATE_RECEIPT_KEY is not set"), "{err}");
}

// Rules out: a catalogue that loads but is shown differently from what the basket sells.
#[test]
fn check_prints_the_basket_catalogue() {
    let dir = TempDir::new("cli");
    let path = dir.path().join("shop.toml");
    std::fs::write(
        &path,
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "https://shop.example:8443"
upstream = "127.0.0.1:3000"
[secrets]
receipt_key_env = "TOLLGATE_RECEIPT_KEY"
[[route]]
path = "/albums/*"
price = "1"
[[product]]
id = "DCD2346233"
description = "Best of Ladytron 00-10 (Deluxe Edition)"
price = "17.98"
unlocks = ["/albums/ladytron/*", "/albums/ladytron-live"]
ships = true
[[product]]
id = "DCD2346232"
description = "Best of Ladytron 00-10"
price = "14.98"
unlocks = ["/albums/ladytron-std/*"]
max_count = 3
[basket]
tax_rate = "0.20"
shipping = "0.5"
[[rebate]]
product = "DCD2346232"
buy = 3
pay = 2
"#,
    )
    .unwrap();
    let (code, out, err) = run_cli(&["check", "--config", path.to_str().unwrap()], KEY_ENV);
    assert_eq!(code, 0, "{err}");
    let tail: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("products"))
        .collect();
    assert_eq!(
        tail,
        [
            "products (basket API under /_tollgate/basket):",
            "  DCD2346233  17.98 0xBTC  \"Best of Ladytron 00-10 (Deluxe Edition)\"  ships=yes  max_count=100  unlocks=/albums/ladytron/*,/albums/ladytron-live",
            "  DCD2346232  14.98 0xBTC  \"Best of Ladytron 00-10\"  ships=no  max_count=3  unlocks=/albums/ladytron-std/*",
            "basket: shop_id=\"shop.example:8443\"  tax_rate=0.2  shipping=0.5 0xBTC  max_total=1000 0xBTC  ttl=1h",
            "rebates:",
            "  3 for 2 on DCD2346232",
        ],
        "{out}"
    );
    // Without products nothing of the basket is printed.
    let (_, out, _) = run_cli(
        &["check", "--config", "config/tollgate.example.toml"],
        KEY_ENV,
    );
    assert!(!out.contains("products"), "{out}");
    // The demo sells its album pages.
    let (_, out, _) = run_cli(&["check", "--config", "config/demo.toml"], KEY_ENV);
    assert!(out.contains("  DCD2346233  17.98 0xBTC"), "{out}");
}

// Rules out: serve coming up (or half up) on a config it cannot honour.
#[test]
fn serve_with_bad_config_exits_before_listening() {
    let dir = TempDir::new("cli");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"https://x.example\"\nupstream = \"127.0.0.1:1\"\n[secrets]\nreceipt_key_env = \"TOLLGATE_RECEIPT_KEY\"\n[gateway]\nlisten = \"127.0.0.1:0\"\n"
        ),
    )
    .unwrap();
    let (code, out, err) = run_cli(&["serve", "--config", path.to_str().unwrap()], KEY_ENV);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("gateway: needs payments"), "{err}");
    assert!(!out.contains("tollgate ready"));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    let (code, _, err) = run_cli(
        &["serve", "--config", "/nonexistent/tollgate.toml"],
        KEY_ENV,
    );
    assert_eq!(code, 1);
    assert!(err.contains("cannot read"), "{err}");
}

/// The account xpub of m/44'/60'/0'/0 of the standard test mnemonic.
const TEST_XPUB: &str = "xpub6DyUKdwoLWmUJ4Tn9Bbsdtx7B5Ws18mEN19e5HT52ikE53FiUheSQXrZUNPovqfyKmw4579A1Mm3GXXKM39N64uooBfJ4tNAzFsEbodRTx4";

// Rules out: printing an address other than the one the merchant's wallet derives.
#[test]
fn address_prints_the_eip55_child_of_the_xpub() {
    let dir = TempDir::new("cli");
    let path = dir.path().join("t.toml");
    std::fs::write(
        &path,
        format!("[server]\npublic_url = \"https://x.example\"\nupstream = \"127.0.0.1:1\"\n[secrets]\nreceipt_key_env = \"TOLLGATE_RECEIPT_KEY\"\n[chain]\nrpc_urls = [\"http://127.0.0.1:8545\"]\nxpub = \"{TEST_XPUB}\"\n"),
    )
    .unwrap();
    let p = path.to_str().unwrap();
    for (i, want) in [
        (0, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
        (1, "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
        (2, "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
    ] {
        let (code, out, err) = run_cli(
            &["address", "--config", p, "--index", &i.to_string()],
            KEY_ENV,
        );
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.trim(), want);
    }
    let (code, _, err) = run_cli(
        &["address", "--config", p, "--index", "2147483648"],
        KEY_ENV,
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("hardened") || err.contains("2147483648"),
        "{err}"
    );
    // A private key in the xpub slot is refused and never echoed.
    let xprv = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi";
    std::fs::write(&path, format!("[server]\npublic_url = \"https://x.example\"\nupstream = \"127.0.0.1:1\"\n[secrets]\nreceipt_key_env = \"TOLLGATE_RECEIPT_KEY\"\n[chain]\nrpc_urls = [\"http://127.0.0.1:8545\"]\nxpub = \"{xprv}\"\n")).unwrap();
    let (code, _, err) = run_cli(&["check", "--config", p], KEY_ENV);
    assert_eq!(code, 1);
    assert!(err.contains("never accepts private keys"), "{err}");
    assert!(!err.contains(xprv));
}
