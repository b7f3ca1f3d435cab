//! Reloading the config of the real binary (SPEC section 11): `tollgate reload`
//! and `SIGHUP` under load on keep-alive connections, with prices changing each
//! time; refusals of invalid files and of settings that need a restart.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::Value;
use support::origin::Origin;
use support::{eventually, Tollgate, TEST_KEY};

/// The config of these tests: `/movies/*` at `price`, `/free/*` free, a pid file.
fn config(origin: &Origin, listen: &str, price: &str) -> String {
    support::config(
        origin.addr,
        &format!(
            "[[route]]\npath = \"/movies/*\"\nprice = \"{price}\"\n\
             [[route]]\npath = \"/free/*\"\nprice = \"0\"\n"
        ),
    )
    .replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"{listen}\"\npid_file = \"tollgate.pid\""),
    )
}

fn start(dir: &Path, config: &str) -> Tollgate {
    Tollgate::start_in(
        dir,
        config,
        &[("TOLLGATE_TEST_KEY", TEST_KEY), ("RUST_LOG", "info")],
    )
}

/// `tollgate reload --config FILE` in `dir` (where the pid file is).
fn reload_cli(dir: &Path) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["reload", "--config", "tollgate.toml"])
        .current_dir(dir)
        .env("TOLLGATE_TEST_KEY", TEST_KEY)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits until tollgate's log holds `n` lines containing `what`.
async fn logged(tg: &Tollgate, what: &str, n: usize) {
    eventually(&format!("{n}× {what:?} in the log"), || async {
        let err = tg.stderr();
        let seen = err.matches(what).count();
        if seen >= n {
            Ok(())
        } else {
            Err(format!("{seen} so far"))
        }
    })
    .await
}

async fn amount_of_402(client: &reqwest::Client, tg: &Tollgate, path: &str) -> String {
    let r = client
        .get(tg.url(path))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    let body: Value = r.json().await.unwrap();
    body["contract"]["amount"].as_str().unwrap().to_string()
}

async fn wait_pid_file(dir: &Path) {
    eventually("the pid file", || async {
        std::fs::read_to_string(dir.join("tollgate.pid"))
            .map_err(|e| e.to_string())
            .and_then(|s| if s.ends_with('\n') { Ok(()) } else { Err(s) })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_reloads_under_load_drop_nothing_and_new_prices_apply_at_once() {
    let origin = Origin::start();
    let dir = support::TempDir::new("reload");
    let tg = start(dir.path(), &config(&origin, "127.0.0.1:0", "0.5"));
    wait_pid_file(dir.path()).await;
    let pid: u32 = std::fs::read_to_string(dir.path().join("tollgate.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, tg.child.id());

    // A contract issued before the reloads.
    let client = reqwest::Client::new();
    let first = client.get(tg.url("/movies/old")).send().await.unwrap();
    let old_hash = first.headers()["x-taler-contract-hash"]
        .to_str()
        .unwrap()
        .to_string();
    let old_url = first.headers()["x-taler-contract-url"]
        .to_str()
        .unwrap()
        .to_string();
    let token = old_url.rsplit('/').next().unwrap().to_string();

    // Load: four clients on keep-alive connections, free and priced paths.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut loaders = Vec::new();
    for i in 0..4 {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let (free, priced) = (tg.url("/free/a"), tg.url("/movies/m"));
        loaders.push(tokio::spawn(async move {
            let c = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let (url, want) = if i % 2 == 0 {
                    (&free, 200)
                } else {
                    (&priced, 402)
                };
                let outcome = match c.get(url).send().await {
                    Ok(r) if r.status() == want => {
                        r.bytes().await.map(|_| ()).map_err(|e| e.to_string())
                    }
                    Ok(r) => Err(format!("status {}", r.status())),
                    Err(e) => Err(e.to_string()),
                };
                match outcome {
                    Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        errors.push(e);
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            errors
        }));
    }

    for i in 1..=10u32 {
        let price = format!("0.{i}1");
        std::fs::write(
            dir.path().join("tollgate.toml"),
            config(&origin, "127.0.0.1:0", &price),
        )
        .unwrap();
        let before = ok.load(Ordering::Relaxed);
        if i % 2 == 0 {
            let (code, out, err) = reload_cli(dir.path());
            assert_eq!(code, 0, "{out}{err}");
            assert!(out.contains(&format!("process {pid}")), "{out}");
        } else {
            let hup = std::process::Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status()
                .unwrap();
            assert!(hup.success());
        }
        logged(&tg, "config reloaded", i as usize).await;
        // The very next 402 carries the new price.
        assert_eq!(amount_of_402(&client, &tg, "/movies/n").await, price);
        // Load kept flowing through this reload.
        eventually("requests served after the reload", || async {
            if ok.load(Ordering::Relaxed) > before + 20 {
                Ok(())
            } else {
                Err("no progress".into())
            }
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        let errors = l.await.unwrap();
        assert!(errors.is_empty(), "failed requests: {errors:?}");
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(ok.load(Ordering::Relaxed) > 200);

    // The contract issued at 0.5 still is what it was: same hash, same terms.
    let again = client
        .get(tg.url(&format!("/movies/old?tollgate_contract={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 402);
    assert_eq!(again.headers()["x-taler-contract-hash"], old_hash.as_str());
    let terms: Value = client
        .get(old_url.replace("https://shop.test", &tg.url("")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(terms["amount"], "0.5", "{terms}");
    assert!(!tg.stderr().contains("refused"));
}

#[tokio::test]
async fn invalid_and_restart_only_changes_are_refused_and_the_old_config_kept() {
    let origin = Origin::start();
    let dir = support::TempDir::new("reload-refused");
    let tg = start(dir.path(), &config(&origin, "127.0.0.1:0", "0.5"));
    wait_pid_file(dir.path()).await;
    let pid = tg.child.id().to_string();
    let client = reqwest::Client::new();
    let hup = || {
        assert!(std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success())
    };

    // Two problems at once: both logged, nothing applied.
    let bad = config(&origin, "127.0.0.1:0", "-1").replace(
        "[[route]]\npath = \"/free/*\"",
        "[[route]]\npath = \"free\"",
    );
    std::fs::write(dir.path().join("tollgate.toml"), &bad).unwrap();
    // The command checks first and signals nothing.
    let (code, out, err) = reload_cli(dir.path());
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("route[0].price") && err.contains("route[1].path"),
        "{err}"
    );
    hup();
    logged(&tg, "config reload refused", 1).await;
    let log = tg.stderr();
    assert!(log.contains("route[0].price"), "{log}");
    assert!(log.contains("route[1].path"), "{log}");
    assert_eq!(amount_of_402(&client, &tg, "/movies/a").await, "0.5");
    assert_eq!(
        client.get(tg.url("/free/x")).send().await.unwrap().status(),
        200
    );

    // Valid, but the listen address and thread count need a restart: named, refused.
    let moved = config(&origin, "127.0.0.1:1", "0.7").replace("threads = 2", "threads = 3");
    std::fs::write(dir.path().join("tollgate.toml"), &moved).unwrap();
    hup();
    logged(&tg, "config reload refused", 2).await;
    let log = tg.stderr();
    let line = log
        .lines()
        .filter(|l| l.contains("config reload refused"))
        .nth(1)
        .unwrap();
    assert!(
        line.contains("server.listen") && line.contains("server.threads"),
        "{line}"
    );
    assert_eq!(amount_of_402(&client, &tg, "/movies/a").await, "0.5");

    // Fixed again: applies.
    std::fs::write(
        dir.path().join("tollgate.toml"),
        config(&origin, "127.0.0.1:0", "0.7"),
    )
    .unwrap();
    hup();
    logged(&tg, "config reloaded", 1).await;
    assert_eq!(amount_of_402(&client, &tg, "/movies/a").await, "0.7");
    // The price manifest follows at once.
    let doc: Value = client
        .get(tg.url("/_tollgate/prices.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["routes"][0]["price"], "0.7", "{doc}");
}

#[test]
fn reload_never_signals_a_stranger_or_without_a_pid_file() {
    let dir = support::TempDir::new("reload-cli");
    let origin_addr = "127.0.0.1:9";
    let base = support::config(origin_addr.parse().unwrap(), "");
    // No pid_file configured.
    std::fs::write(dir.path().join("tollgate.toml"), &base).unwrap();
    let (code, _, err) = reload_cli(dir.path());
    assert_eq!(code, 1);
    assert!(err.contains("server.pid_file is not set"), "{err}");

    // A stale pid file naming a process that is not tollgate.
    let with_pid = base.replace(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\npid_file = \"tollgate.pid\"",
    );
    std::fs::write(dir.path().join("tollgate.toml"), &with_pid).unwrap();
    let mut stranger = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    std::fs::write(
        dir.path().join("tollgate.pid"),
        format!("{}\n", stranger.id()),
    )
    .unwrap();
    let (code, _, err) = reload_cli(dir.path());
    assert_eq!(code, 1);
    assert!(err.contains("is not tollgate"), "{err}");
    // Still alive: it was not signalled (SIGHUP would have ended `sleep`).
    assert!(stranger.try_wait().unwrap().is_none());
    let _ = stranger.kill();
    let _ = stranger.wait();

    // Garbage in the pid file.
    std::fs::write(dir.path().join("tollgate.pid"), "twelve\n").unwrap();
    let (code, _, err) = reload_cli(dir.path());
    assert_eq!(code, 1);
    assert!(err.contains("not a process id"), "{err}");
}
