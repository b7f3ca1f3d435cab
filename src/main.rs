//! The `tollgate` command line (SPEC section 2).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use tollgate::config::{self, Config, Scope};

#[derive(Parser)]
#[command(name = "tollgate", version, about = "A payment-gating reverse proxy")]
struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Serve {
        /// The config file.
        #[arg(long, default_value = "config/tollgate.toml")]
        config: PathBuf,
    },
    /// Validate the config and print the route table; exit 0 or 1.
    Check {
        /// The config file.
        #[arg(long, default_value = "config/tollgate.toml")]
        config: PathBuf,
    },
    /// Print the receiving address at derivation index N of the configured xpub.
    Address {
        /// The config file.
        #[arg(long, default_value = "config/tollgate.toml")]
        config: PathBuf,
        /// The child index (non-hardened, < 2^31).
        #[arg(long)]
        index: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match cli.command {
        Command::Check { config } => match load(&config) {
            Ok(cfg) => {
                print_routes(&cfg);
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Address { config, index } => match load(&config) {
            Ok(cfg) => print_address(&cfg, index),
            Err(code) => code,
        },
        Command::Serve { config } => match load(&config) {
            Ok(cfg) => tollgate::server::run(cfg),
            Err(code) => code,
        },
    }
}

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    let problems = match config::load(path) {
        Ok(cfg) => {
            let unsupported = cfg.unsupported();
            if unsupported.is_empty() {
                return Ok(cfg);
            }
            unsupported
        }
        Err(p) => p.0,
    };
    eprintln!(
        "tollgate: {} problem{} in {}:",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        path.display()
    );
    for p in &problems {
        eprintln!("  {p}");
    }
    Err(ExitCode::from(1))
}

fn print_address(cfg: &Config, index: u32) -> ExitCode {
    let Some(xpub) = &cfg.chain.xpub else {
        eprintln!(
            "tollgate: {}: chain.xpub: not configured",
            cfg.file.display()
        );
        return ExitCode::from(1);
    };
    match tollgate::chain::xpub::AccountXpub::parse(xpub).and_then(|x| x.address(index)) {
        Ok(a) => {
            println!("{a}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tollgate: {}: chain.xpub: {e}", cfg.file.display());
            ExitCode::from(1)
        }
    }
}

fn print_routes(cfg: &Config) {
    let s = &cfg.server;
    println!("{}: OK", cfg.file.display());
    println!(
        "public {} on {} -> origin {}{}; tollgate endpoints under {}",
        s.public_url,
        s.listen,
        s.upstream_name,
        if s.upstream_tls { " (TLS)" } else { "" },
        s.pay_prefix
    );
    println!("routes, most specific first:");
    println!(
        "  {:<32} {:<16} {:>16}  {:<8} {:>9}",
        "PATTERN", "METHODS", "PRICE (0xBTC)", "SCOPE", "ACCESS"
    );
    for (_, r) in cfg.routes.iter_by_specificity() {
        let methods = match &r.methods {
            None => "*".to_string(),
            Some(ms) => ms.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(","),
        };
        let price = if r.price.is_zero() {
            "free".to_string()
        } else {
            r.price.to_decimal(cfg.chain.decimals)
        };
        let scope = match r.scope {
            Scope::Resource => "resource",
            Scope::Route => "route",
        };
        println!(
            "  {:<32} {:<16} {:>16}  {:<8} {:>9}",
            r.pattern,
            methods,
            price,
            scope,
            human_secs(r.access_ttl_secs)
        );
    }
    if cfg.routes.is_empty() {
        println!("  (none: every path is proxied for free)");
    }
}

fn human_secs(s: u64) -> String {
    for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if s >= n && s % n == 0 {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
