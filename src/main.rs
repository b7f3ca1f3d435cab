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
    /// Validate the config and print the route table (and the basket catalogue); exit 0 or 1.
    Check {
        /// The config file.
        #[arg(long, default_value = "config/tollgate.toml")]
        config: PathBuf,
    },
    /// List every derivation index handed out, with address, payment, state and
    /// amount received (for importing into the merchant's wallet).
    Addresses {
        /// The config file.
        #[arg(long, default_value = "config/tollgate.toml")]
        config: PathBuf,
        /// Only indexes that were handed out (the only listing there is).
        #[arg(long)]
        used: bool,
    },
    /// Re-read the config of the running `serve` (signals the pid in `[server]
    /// pid_file`); FILE is checked first and nothing is signalled when it is invalid.
    Reload {
        /// The config file (the one `serve` was started with).
        #[arg(long, default_value = "config/tollgate.toml")]
        config: PathBuf,
    },
    /// Fetch a URL, paying tollgate's 402 (within --max) with the key in
    /// TOLLGATE_PAYER_KEY, keeping receipts in a wallet file to replay later.
    /// Exit codes: 0 ok, 1 usage/wallet, 3 price above --max, 4 payment failed or
    /// expired, 5 network/RPC, 6 HTTP error, 7 contract refused, 130 interrupted.
    Fetch {
        /// The URL (with --prices: the site's prices.json, or any URL whose 402 links it).
        url: String,
        /// The most to pay, in 0xBTC as a decimal string ("0.5"); without it nothing is paid.
        #[arg(long, value_name = "AMOUNT")]
        max: Option<String>,
        /// The JSON-RPC endpoint of the contract's chain to pay through.
        #[arg(long, value_name = "URL")]
        rpc: Option<String>,
        /// Trust the ERC-20 at ADDR as 0xBTC (repeatable; without it only 0xBTC on
        /// Ethereum mainnet, 0xb6ed…5b31, is paid).
        #[arg(long = "token", value_name = "ADDR")]
        token: Vec<String>,
        /// The wallet file (default: $XDG_DATA_HOME/tollgate/wallet.json, else
        /// ~/.local/share/tollgate/wallet.json).
        #[arg(long, value_name = "FILE")]
        wallet: Option<PathBuf>,
        /// Write the body to FILE instead of stdout.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
        /// A machine-readable summary (or error) as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// An extra request header, 'Name: value' (repeatable).
        #[arg(short = 'H', long = "header", value_name = "HEADER")]
        header: Vec<String>,
        /// The request method (default GET; POST with --data).
        #[arg(short = 'X', long = "request", value_name = "METHOD")]
        method: Option<String>,
        /// The request body (@FILE reads a file).
        #[arg(long, value_name = "DATA")]
        data: Option<String>,
        /// Print the site's price manifest (a table; JSON with --json) instead.
        #[arg(long)]
        prices: bool,
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
        Command::Fetch {
            url,
            max,
            rpc,
            token,
            wallet,
            output,
            json,
            header,
            method,
            data,
            prices,
        } => ExitCode::from(tollgate::fetch::run::run(tollgate::fetch::run::Args {
            url,
            max,
            rpc,
            tokens: token,
            wallet,
            output,
            json,
            headers: header,
            method,
            data,
            prices,
        })),
        Command::Check { config } => match load(&config) {
            Ok(cfg) => {
                print_routes(&cfg);
                print_catalogue(&cfg);
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Address { config, index } => match load(&config) {
            Ok(cfg) => print_address(&cfg, index),
            Err(code) => code,
        },
        Command::Addresses { config, used: _ } => match load(&config) {
            Ok(cfg) => print_used_addresses(&cfg),
            Err(code) => code,
        },
        Command::Reload { config } => match load(&config) {
            Ok(cfg) => signal_reload(&cfg),
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

fn signal_reload(cfg: &Config) -> ExitCode {
    let Some(pid_file) = &cfg.server.pid_file else {
        eprintln!(
            "tollgate: {}: server.pid_file is not set, so there is no pid to signal \
             (set it, or send SIGHUP to the serve process yourself)",
            cfg.file.display()
        );
        return ExitCode::from(1);
    };
    match tollgate::reload::signal_reload(pid_file) {
        Ok(pid) => {
            println!(
                "tollgate: {} is valid; asked process {pid} to reload it \
                 (its log says \"config reloaded\" or why it was refused)",
                cfg.file.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tollgate: {e}");
            ExitCode::from(1)
        }
    }
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

fn print_used_addresses(cfg: &Config) -> ExitCode {
    if let config::StoreBackend::Sqlite(path) = &cfg.store.backend {
        if !path.exists() {
            eprintln!(
                "tollgate: {}: no store yet (nothing handed out)",
                path.display()
            );
            return ExitCode::from(1);
        }
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tollgate: {e}");
            return ExitCode::from(1);
        }
    };
    let store = match rt.block_on(tollgate::store::open(&cfg.store.backend)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tollgate: store.url: {e}");
            return ExitCode::from(1);
        }
    };
    let payments = match rt.block_on(store.all_payments()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("tollgate: {e}");
            return ExitCode::from(1);
        }
    };
    let d = cfg.chain.decimals;
    println!(
        "{:>6}  {:<42}  {:<16}  {:<10}  {:>14}  {:>14}",
        "INDEX", "ADDRESS", "PAYMENT", "STATE", "RECEIVED", "AMOUNT"
    );
    for p in &payments {
        println!(
            "{:>6}  {:<42}  {:<16}  {:<10}  {:>14}  {:>14}",
            p.derivation_index,
            p.address,
            p.id,
            p.state.as_str(),
            p.received.to_decimal(d),
            p.amount.to_decimal(d)
        );
    }
    eprintln!(
        "{} addresses handed out (derivation path of the xpub: child 0..{})",
        payments.len(),
        payments.len()
    );
    ExitCode::SUCCESS
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
        "  {:<32} {:<16} {:>26}  {:<8} {:>9}",
        "PATTERN", "METHODS", "PRICE (0xBTC)", "SCOPE", "ACCESS"
    );
    for (_, r) in cfg.routes.iter_by_specificity() {
        let methods = match &r.methods {
            None => "*".to_string(),
            Some(ms) => ms.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(","),
        };
        let price = if r.price.is_zero() {
            "free".to_string()
        } else if !r.enforce {
            format!("{} (dry run)", r.price.to_decimal(cfg.chain.decimals))
        } else {
            r.price.to_decimal(cfg.chain.decimals)
        };
        let scope = match r.scope {
            Scope::Resource => "resource",
            Scope::Route => "route",
        };
        println!(
            "  {:<32} {:<16} {:>26}  {:<8} {:>9}",
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

/// The basket catalogue, in config order (nothing when there are no products).
fn print_catalogue(cfg: &Config) {
    if cfg.products.is_empty() {
        return;
    }
    let d = cfg.chain.decimals;
    println!(
        "products (basket API under {}/basket):",
        cfg.server.pay_prefix
    );
    for p in &cfg.products {
        println!(
            "  {}  {} 0xBTC  {:?}  ships={}  max_count={}  unlocks={}",
            p.id,
            p.price.to_decimal(d),
            p.description,
            if p.ships { "yes" } else { "no" },
            p.max_count,
            p.unlocks.join(",")
        );
    }
    let b = &cfg.basket;
    println!(
        "basket: shop_id={:?}  tax_rate={}  shipping={} 0xBTC  max_total={} 0xBTC  ttl={}",
        b.shop_id,
        b.tax_rate.to_decimal(),
        b.shipping.to_decimal(d),
        b.max_total.to_decimal(d),
        human_secs(b.ttl_secs)
    );
    if cfg.rebates.is_empty() {
        println!("rebates: none");
    } else {
        println!("rebates:");
        for r in &cfg.rebates {
            println!("  {} for {} on {}", r.buy, r.pay, r.product);
        }
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
    // Every line, whoever wrote it (pingora logs malformed heads), loses its secrets.
    // Colours only for a terminal: journald and log files get plain text.
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .with_writer(tollgate::redact::RedactingStderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
