//! The `neuronx` command: the product's commands (`serve`, `migrate`, `tenant`, `secrets`,
//! `carrier-sim`) from the `neuronx` library, the demo and the benchmarks from `neuronx-bench`.
//! A package of its own so that the binary can depend on both while the benchmarks depend on
//! the product (ADR 0034).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use neuronx::app::{self, App};
use neuronx::config::{self, LogFormat, Settings};
use neuronx::control::cli::TenantCommand;
use neuronx::control::numbers::cli::NumberCommand;
use neuronx::control::reps::cli::RepCommand;
use neuronx_bench::{backlog, demo, engine, failover, fairness, ring, twiml, webhooks};

/// mimalloc rather than the system allocator: profiles of the engine under load spent about
/// 40 % of its CPU in glibc's malloc and free (ADR 0026).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "neuronx",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("NEURONX_GIT_COMMIT"), ")"),
    about = "Real-time orchestration engine for sales conversations",
    after_help = "Settings: the embedded default, then --config FILE, then NEURONX_* environment \
                  variables (see `neuronx serve --help` and docs/configuration.md)."
)]
struct Cli {
    /// A TOML file overriding the embedded default configuration; environment variables
    /// override both.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine and its HTTP API until SIGTERM or Ctrl-C.
    #[command(after_help = env_help())]
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Manage tenants, their teams, principals and API keys.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Reps (users who take calls): set their phone and hours, their status, list them.
    Rep {
        #[command(subcommand)]
        command: RepCommand,
    },
    /// The tenant's numbers (caller id per team and area code): add, remove, list.
    Number {
        #[command(subcommand)]
        command: NumberCommand,
    },
    /// The engine and the carrier simulator in one process, on a temporary database: a batch
    /// of leads called, texted and escalated, with live counters and a summary.
    Demo(demo::DemoArgs),
    /// Serve the Twilio-compatible carrier simulator (for tests and load runs).
    CarrierSim {
        /// Address to listen on (port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:8090", value_name = "ADDR")]
        listen: String,
        /// A TOML file with the simulator's settings (outcome mix, timing, replies, disorder).
        #[arg(long, value_name = "FILE")]
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
    Engine(engine::BenchArgs),
    /// Signed Twilio voice-status callbacks against a bare axum baseline; print one JSON object.
    Webhooks(webhooks::WebhookBenchArgs),
    /// The call flow's answer to a lead picking up (TwiML), paced, against a bare axum server
    /// answering the same requests; print one JSON object.
    Twiml(twiml::TwimlBenchArgs),
    /// A rep's phone ringing: from a lead's create (agent first) or its answer (lead first),
    /// through the carrier simulator, paced, beside the simulator's own create; print one JSON
    /// object.
    Ring(ring::RingBenchArgs),
    /// Instances killed with `kill -9` under a steady stream of due timers: time to the first
    /// timer fired by the new owner, and cross-instance pause latency; print one JSON object.
    Failover(failover::FailoverArgs),
    /// A takeover of queued inputs and overdue timers by an engine in a process of its own:
    /// drain time and rate, and that engine's peak memory; print one JSON object.
    Backlog(backlog::BacklogArgs),
    /// One tenant imports leads while another creates one every 100 ms: the second's
    /// lead-to-dial and the first's throughput; print one JSON object.
    Fairness(fairness::FairnessArgs),
}

/// The end of `serve --help`: every variable the settings read, from the table the loader
/// uses, so the two cannot drift apart.
fn env_help() -> String {
    let line = |var: &str, what: &str| format!("  {var:<28} {what}\n");
    let mut text = String::from(
        "Environment variables (they override --config FILE, which overrides the embedded \
         default):\n",
    );
    text += &line(
        "NEURONX_<SECTION>__<KEY>",
        "any key, e.g. NEURONX_ENGINE__SHARD_COUNT=64 or",
    );
    text += &line(
        "",
        "NEURONX_CHANNELS__LOOPBACK__RING_AFTER_MS=100; list keys take",
    );
    text += &line(
        "",
        "comma-separated entries (NEURONX_OUTBOUND__ALLOW=127.0.0.0/8,::1)",
    );
    text += "Short names (the NEURONX_<SECTION>__<KEY> form wins when both are set):\n";
    for (var, key) in config::SHORT_NAMES {
        text += &line(var, key);
    }
    text += "Logging:\n";
    text += &line(
        "NEURONX_LOG",
        "log filter, tracing EnvFilter syntax (default info,sqlx=warn)",
    );
    text += &line("NEURONX_LOG_FORMAT", "text (default) or json");
    text += "Empty variables are ignored; a bad value is refused, naming its variable.\n\
             Every key and its variable: docs/configuration.md";
    text
}

/// The command line: every command and argument documents itself (a test checks it).
fn command() -> clap::Command {
    Cli::command()
}

fn init_tracing(filter: tracing_subscriber::EnvFilter, format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Read once: the log variables here, the settings from the same map in `run`.
    let env: BTreeMap<String, String> = std::env::vars().collect();
    // The demo and benchmarks draw on the terminal: only warnings interrupt them.
    let quiet = matches!(cli.command, Command::Demo(_) | Command::Bench { .. });
    let default_filter = if quiet {
        "warn,sqlx=error"
    } else {
        "info,sqlx=warn"
    };
    match config::log_settings(&env, default_filter) {
        Ok((filter, format)) => init_tracing(filter, format),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
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
    match runtime.block_on(run(cli, env)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, env: BTreeMap<String, String>) -> anyhow::Result<()> {
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
        Command::Rep { command } => {
            let store = app::open_store(&settings).await?;
            let result = neuronx::control::reps::cli::run(&store, command).await;
            store.close().await;
            println!("{}", result?);
            Ok(())
        }
        Command::Number { command } => {
            let store = app::open_store(&settings).await?;
            let result = neuronx::control::numbers::cli::run(&store, command).await;
            store.close().await;
            println!("{}", result?);
            Ok(())
        }
        Command::Demo(args) => {
            let summary = demo::run(settings, args).await?;
            demo::print(&summary);
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
            let report = webhooks::run(settings, args).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Bench {
            command: BenchCommand::Twiml(args),
        } => {
            let report = twiml::run(settings, args).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Bench {
            command: BenchCommand::Ring(args),
        } => {
            let report = ring::run(settings, args).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Bench {
            command: BenchCommand::Failover(args),
        } => {
            let report = failover::run(settings, args).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Bench {
            command: BenchCommand::Engine(args),
        } => {
            let report = engine::run(settings, args).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Bench {
            command: BenchCommand::Backlog(args),
        } => {
            let report = backlog::run(settings, args).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Bench {
            command: BenchCommand::Fairness(args),
        } => {
            let report = fairness::run(settings, args).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every subcommand has an about and every argument a help text (clap's own `--help`
    /// and `--version` aside).
    #[test]
    fn every_command_and_flag_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if cmd.get_about().is_none() {
                missing.push(path.to_owned());
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if !matches!(id, "help" | "version") && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&command(), "neuronx", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn serve_help_ends_with_the_environment() {
        let mut cmd = command();
        let serve = cmd.find_subcommand_mut("serve").unwrap();
        let help = serve.render_long_help().to_string();
        let tail = &help[help.find("Environment variables").unwrap()..];
        for var in config::SHORT_NAMES.iter().map(|(var, _)| *var).chain([
            "NEURONX_<SECTION>__<KEY>",
            "NEURONX_LOG ",
            "NEURONX_LOG_FORMAT",
        ]) {
            assert!(tail.contains(var), "{var} missing from:\n{help}");
        }
    }
}
