//! The `logboard` command: `serve` (the default), `hash-password`, `check-config`, `healthcheck`,
//! `create-state-table`.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use logboard::config::{Config, config_path};

#[derive(Parser)]
#[command(version, about = "One place for the logs of every project and environment")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve {
        /// Config file; else $LOGBOARD_CONFIG, else ./config.toml.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Read a password from stdin and print its Argon2id PHC string.
    HashPassword,
    /// Load and validate the config; print every problem with its key.
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// GET /healthz of the service this config describes (on loopback); exit 0 on 200, else 1.
    /// A container's health check, so the image needs no curl.
    Healthcheck {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Create the `[state]` DynamoDB table (on-demand, TTL on); exit 0 when it exists already.
    CreateStateTable {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// mimalloc: ingest allocates and frees many small strings and vectors per event, and glibc's
/// allocator took ~14 % of its CPU (see BENCHMARKS.md, "Search at 10M events").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve { config: None }) {
        Command::Serve { config } => serve(config),
        Command::HashPassword => hash_password(),
        Command::CheckConfig { config } => check_config(config),
        Command::Healthcheck { config } => healthcheck(config),
        Command::CreateStateTable { config } => create_state_table(config),
    }
}

fn serve(flag: Option<PathBuf>) -> ExitCode {
    init_tracing();
    let Some(config) = load_config(flag) else { return ExitCode::FAILURE };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(logboard::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "logboard stopped");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn create_state_table(flag: Option<PathBuf>) -> ExitCode {
    let Some(config) = load_config(flag) else { return ExitCode::FAILURE };
    let created = tokio::runtime::Runtime::new().map_err(anyhow::Error::from).and_then(|runtime| {
        runtime.block_on(async {
            let table = logboard::dynamo::Table::connect(&config).await;
            table.create().await.map(|created| (table.name, created))
        })
    });
    match created {
        Ok((name, true)) => {
            println!("created the table {name}");
            ExitCode::SUCCESS
        }
        Ok((name, false)) => {
            println!("the table {name} exists already");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The config from `--config`, `$LOGBOARD_CONFIG` or `./config.toml`; its problems on stderr.
fn load_config(flag: Option<PathBuf>) -> Option<Config> {
    let path = config_path(flag);
    Config::load(&path).map_err(|errors| eprint!("{} is not valid:\n{errors}", path.display())).ok()
}

fn hash_password() -> ExitCode {
    if std::io::stdin().is_terminal() {
        eprint!("Password (input is shown; end with Enter): ");
    }
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("cannot read stdin: {e}");
        return ExitCode::FAILURE;
    }
    let password = input.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        eprintln!("the password is empty");
        return ExitCode::FAILURE;
    }
    match logboard::web::auth::hash_password(password) {
        Ok(phc) => {
            println!("{phc}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(flag: Option<PathBuf>) -> ExitCode {
    let path = config_path(flag);
    match Config::load(&path) {
        Ok(_) => {
            println!("{} is valid", path.display());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            print!("{errors}");
            ExitCode::FAILURE
        }
    }
}

fn healthcheck(flag: Option<PathBuf>) -> ExitCode {
    let Some(config) = load_config(flag) else { return ExitCode::FAILURE };
    let Ok(listen) = config.server.listen.parse() else {
        eprintln!("server.listen `{}` is not an address", config.server.listen);
        return ExitCode::FAILURE;
    };
    let address = logboard::healthcheck::probe_address(listen);
    match logboard::healthcheck::probe(address, logboard::healthcheck::PROBE_TIMEOUT) {
        Ok(200) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("http://{address}/healthz answered {status}");
            ExitCode::FAILURE
        }
        Err(why) => {
            eprintln!("{why}");
            ExitCode::FAILURE
        }
    }
}

/// The service's own logs: JSON lines on stdout, level from $RUST_LOG (default info).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn"));
    tracing_subscriber::fmt().json().with_env_filter(filter).with_current_span(false).init();
}
