//! The `neuronx` command.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use neuronx::app::{self, App};
use neuronx::bench::{self, BenchArgs};
use neuronx::config::Settings;

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
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Benchmarks (not tests): figures for docs/benchmarks.md.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant and print its id and first API key as JSON.
    Create { name: String },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Drive opportunities through create, call, result and SLA timer; print one JSON object.
    Engine(BenchArgs),
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NEURONX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
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
    init_tracing();
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
        Command::Tenant {
            command: TenantCommand::Create { name },
        } => {
            let store = app::open_store(&settings).await?;
            let created = neuronx::tenants::create(&store, &name)
                .await
                .context("creating the tenant")?;
            store.close().await;
            println!(
                "{}",
                serde_json::json!({"tenant_id": created.tenant_id, "api_key": created.api_key})
            );
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
