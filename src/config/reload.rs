//! What a reload may change (SPEC section 11): the pure comparison of the running
//! configuration with a newly loaded one.
//!
//! Routes, prices, the basket catalogue, the origin, the paywall's texts and the
//! postback and admin policies are read per request, so a new config changes them
//! for every request that starts after the swap. What was built once at start —
//! listeners and threads, the store and its cache, the keys, the chain watcher, the
//! Open Payments client, the claim budget — cannot change without a restart, and a
//! reload that changes any of it is refused with each such setting named.

use super::Config;

/// The settings that differ between `running` (as loaded at start, before port 0
/// was resolved) and `new` but need a restart; empty when `new` may replace it.
pub fn restart_only_changes(running: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (running, new);
    let checks: [(&'static str, bool); 25] = [
        ("server.listen", a.server.listen != b.server.listen),
        ("server.threads", a.server.threads != b.server.threads),
        (
            "server.grace_period",
            a.server.grace_period_secs != b.server.grace_period_secs,
        ),
        ("server.pid_file", a.server.pid_file != b.server.pid_file),
        (
            "server.header_timeout/idle_timeout/max_connections",
            a.server.limits != b.server.limits,
        ),
        (
            "server.upstream_case_insensitive",
            a.server.upstream_case_insensitive != b.server.upstream_case_insensitive,
        ),
        ("[admin]", a.admin.is_some() != b.admin.is_some()),
        (
            "admin.listen",
            matches!((&a.admin, &b.admin), (Some(x), Some(y)) if x.listen != y.listen),
        ),
        ("[gateway]", a.gateway.is_some() != b.gateway.is_some()),
        (
            "gateway.start_rate",
            matches!((&a.gateway, &b.gateway), (Some(x), Some(y)) if x.start_rate != y.start_rate),
        ),
        (
            "gateway.listen",
            matches!((&a.gateway, &b.gateway), (Some(x), Some(y)) if x.listen != y.listen),
        ),
        ("store.url", a.store.backend != b.store.backend),
        (
            "store.cache_capacity",
            a.store.cache_capacity != b.store.cache_capacity,
        ),
        (
            "secrets.receipt_key",
            a.secrets.receipt_key != b.secrets.receipt_key,
        ),
        (
            "secrets.postback_key",
            a.secrets.postback_key != b.secrets.postback_key,
        ),
        ("chain.rpc_urls", a.chain.rpc_urls != b.chain.rpc_urls),
        ("chain.chain_id", a.chain.chain_id != b.chain.chain_id),
        ("chain.token", a.chain.token != b.chain.token),
        ("chain.decimals", a.chain.decimals != b.chain.decimals),
        ("chain.xpub", a.chain.xpub != b.chain.xpub),
        (
            "chain.start_block",
            a.chain.start_block != b.chain.start_block,
        ),
        (
            "chain.poll_interval",
            a.chain.poll_interval_ms != b.chain.poll_interval_ms,
        ),
        (
            "payments.claim_rate",
            a.payments.claim_rate != b.payments.claim_rate,
        ),
        (
            "[web_monetization]",
            a.web_monetization != b.web_monetization,
        ),
        (
            "postback.allow_networks",
            a.postback.allow_networks != b.postback.allow_networks,
        ),
    ];
    checks
        .into_iter()
        .filter_map(|(name, differs)| differs.then_some(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(extra_server: &str, rest: &str) -> Config {
        let toml = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://shop.example\"\nupstream = \"127.0.0.1:3000\"\n{extra_server}\n\
             [secrets]\nreceipt_key_env = \"K\"\n{rest}"
        );
        let key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        crate::config::parse(std::path::Path::new("t.toml"), &toml, &|_| {
            Some(key.to_string())
        })
        .unwrap_or_else(|p| panic!("{p}"))
    }

    #[test]
    fn prices_routes_and_the_origin_may_change() {
        let old = load("", "[[route]]\npath = \"/a/*\"\nprice = \"0.1\"\n");
        let new = load(
            "",
            "[[route]]\npath = \"/a/*\"\nprice = \"0.2\"\n[[route]]\npath = \"/b\"\nprice = \"1\"\n",
        );
        assert!(restart_only_changes(&old, &new).is_empty());
        let moved = load("", "").clone();
        let mut origin = moved.clone();
        origin.server.upstream_name = "127.0.0.1:4000".into();
        origin.server.upstream = "127.0.0.1:4000".parse().unwrap();
        assert!(restart_only_changes(&moved, &origin).is_empty());
    }

    #[test]
    fn listeners_threads_store_and_keys_are_named() {
        let old = load("threads = 2", "");
        let mut new = load("threads = 4", "");
        new.server.listen = "127.0.0.1:9".parse().unwrap();
        new.store.backend = crate::config::StoreBackend::Postgres("postgres://x/y".into());
        new.secrets.receipt_key.0[0] ^= 1;
        assert_eq!(
            restart_only_changes(&old, &new),
            [
                "server.listen",
                "server.threads",
                "store.url",
                "secrets.receipt_key"
            ]
        );
    }
}
