//! The `neuronx` command.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use neuronx::app::{self, App};
use neuronx::bench::{self, BenchArgs};
use neuronx::config::Settings;
use neuronx::control::cli::TenantCommand;

/// mimalloc rather than the system allocator: profiles of the engine under load spent about
/// 40 % of its CPU in glibc's malloc and free (ADR 0026).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "neuronx",
    version,
    about = "Real-time orchestration engine for sales conversations"
)]
struct Cli {
    /// A TOML file overriding the embedded default configuration.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine and its HTTP API until SIGTERM or Ctrl-C.
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Manage tenants, their teams, principals and API keys.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// The engine and the carrier simulator in one process, on a temporary database: a batch
    /// of leads called, texted and escalated, with live counters and a summary.
    Demo(neuronx::demo::DemoArgs),
    /// Serve the Twilio-compatible carrier simulator (for tests and load runs).
    CarrierSim {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: String,
        /// A TOML file with the simulator's settings (outcome mix, timing, replies, disorder).
        #[arg(long)]
        sim_config: Option<PathBuf>,
    },
    /// Provider secrets at rest.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Benchmarks (not tests): figures for docs/benchmarks.md.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Print a new random key entry (`id:base64`) for NEURONX_SECRET_KEYS.
    NewKey {
        /// The key's id, recorded with everything it seals.
        id: String,
    },
    /// Reseal every stored secret under the first key of NEURONX_SECRET_KEYS.
    Rotate,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Drive opportunities through create, call, result and SLA timer; print one JSON object.
    Engine(BenchArgs),
    /// Signed Twilio voice-status callbacks against a bare axum baseline; print one JSON object.
    Webhooks(neuronx::bench_webhooks::WebhookBenchArgs),
    /// Instances killed with `kill -9` under a steady stream of due timers: time to the first
    /// timer fired by the new owner, and cross-instance pause latency; print one JSON object.
    Failover(neuronx::bench_failover::FailoverArgs),
}

/// `default` applies when NEURONX_LOG is unset.
fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NEURONX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let json = std::env::var("NEURONX_LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo and benchmarks draw on the terminal: only warnings interrupt them.
    let quiet = matches!(cli.command, Command::Demo(_) | Command::Bench { .. });
    init_tracing(if quiet {
        "warn,sqlx=error"
    } else {
        "info,sqlx=warn"
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let settings = Settings::load(cli.config.as_deref(), &env)?;
    match cli.command {
        Command::Serve => App::start(settings).await?.run_until_signal().await,
        Command::Migrate => {
            let store = app::open_store(&settings).await?;
            store.close().await;
            println!(
                "{}",
                serde_json::json!({"migrated": app::redact(&settings.server.database_url)})
            );
            Ok(())
        }
        Command::Tenant { command } => {
            let store = app::open_store(&settings).await?;
            let result = neuronx::control::cli::run(&store, command).await;
            store.close().await;
            println!("{}", result?);
            Ok(())
        }
        Command::Demo(args) => {
            let summary = neuronx::demo::run(settings, args).await?;
            neuronx::demo::print(&summary);
            Ok(())
        }
        Command::CarrierSim { listen, sim_config } => {
            let config = match sim_config {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
                }
                None => neuronx_adapters::carrier_sim::SimConfig::default(),
            };
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            let sim = neuronx_adapters::carrier_sim::start(config, listener).await?;
            eprintln!(
                "carrier simulator on {} (stats: {}/sim/stats)",
                sim.base_url, sim.base_url
            );
            let _ = tokio::signal::ctrl_c().await;
            sim.shutdown().await;
            Ok(())
        }
        Command::Secrets {
            command: SecretsCommand::NewKey { id },
        } => {
            if id.is_empty() || id.contains([':', ',']) {
                anyhow::bail!("the key id must be non-empty and contain no ':' or ','");
            }
            println!("{}", neuronx::secrets::Keyring::generate_entry(&id));
            Ok(())
        }
        Command::Secrets {
            command: SecretsCommand::Rotate,
        } => {
            let keyring = settings.keyring()?;
            let store = app::open_store(&settings).await?;
            let changed = neuronx::tenant_data::reseal_all(&store, &keyring).await?;
            store.close().await;
            println!(
                "{}",
                serde_json::json!({"resealed": changed, "key_id": keyring.current_id()})
            );
            Ok(())
        }
        Command::Bench {
            command: BenchCommand::Webhooks(args),
        } => {
            let report = neuronx::bench_webhooks::run(settings, args).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Bench {
            command: BenchCommand::Failover(args),
        } => {
            let report = neuronx::bench_failover::run(settings, args).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Bench {
            command: BenchCommand::Engine(args),
        } => {
            let report = bench::engine(settings, args).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
    }
}
