//! NeuronX: a real-time orchestration engine for sales conversations.
//!
//! This package is the program: CLI (`main.rs`), settings (`config`), the HTTP API (`http`),
//! the wiring of the parts (`app`, `channels`), tenants and API keys (`tenants`), the embedded
//! engine's lock (`lock`) and the benchmark (`bench`). The runtime lives in `neuronx-supervision`,
//! the sales domain in `neuronx-actors`, the outside world in `neuronx-adapters`.

pub mod app;
pub mod bench;
pub mod bench_failover;
pub mod bench_webhooks;
pub mod channels;
pub mod config;
pub mod control;
pub mod demo;
pub mod http;
pub mod input;
pub mod lock;
pub mod schema;
pub mod secrets;
pub mod send_limits;
pub mod tenant_data;
pub mod tenants;
pub mod twilio_channel;
pub mod usecases;
