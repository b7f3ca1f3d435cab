//! Load and fault campaigns (issue 13), a program that prints one table, not a
//! test:
//!
//! ```sh
//! cargo bench --bench campaigns                      # all four, full scale
//! CAMPAIGN_ONLY=faults,kills cargo bench --bench campaigns
//! ```
//!
//! It runs the release `tollgate` (cargo bench builds it) through the campaigns of
//! `benches/campaign/` (the same code the CI smoke `tests/campaigns.rs` runs at
//! small scale): a keep-alive flood, slowloris with oversized heads and bodies,
//! payment flows while the chain RPC flaps and the store's disk fills up, and
//! payment flows across `kill -9`s. The markdown table (campaign, thrown, held,
//! broke, key numbers) goes to stdout, progress to stderr; the exit status is 1
//! when anything broke. Settings: `CAMPAIGN_*` variables (`benches/README.md`).
//!
//! Everything listens on 127.0.0.1 with ephemeral ports; every process started here
//! is stopped by pid, and the tmpfs unmounted, when the run ends, panics or gets
//! Ctrl-C.

#[path = "campaign/mod.rs"]
mod campaign;

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench -- FILTER` passes arguments meant for the libtest harness; a
    // `--list` (from tools enumerating benchmarks) lists nothing and exits.
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let s = campaign::Settings::from_env();
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let broken = rt.block_on(async {
        tokio::select! {
            report = campaign::run_all(&s) => {
                println!("{}", report.table());
                report.broken()
            }
            _ = tokio::signal::ctrl_c() => {
                campaign::log("interrupted: stopping everything started");
                0
            }
        }
    });
    drop(rt);
    campaign::log(&format!(
        "done in {:.0} s; {broken} things broke",
        started.elapsed().as_secs_f64()
    ));
    if broken > 0 {
        std::process::exit(1);
    }
}
