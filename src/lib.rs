//! NeuronX: a real-time orchestration engine for sales conversations.
//!
//! This library is the product: settings (`config`), the HTTP API (`http`), the use cases
//! (`usecases`), the wiring of the parts (`app`, `channels`), tenants and API keys (`tenants`),
//! the embedded engine's lock (`lock`) and the `tenant` command's functions (`control::cli`).
//! The runtime lives in `neuronx-supervision`, the sales domain in `neuronx-actors`, the outside
//! world in `neuronx-adapters`. The `neuronx` binary is `neuronx-cli` (`cli/`), the demo and the
//! benchmarks `neuronx-bench` (`bench/`): they drive this library and are no part of it
//! (ADR 0034).

pub mod app;
pub mod channels;
pub mod config;
pub mod contacts;
pub mod control;
pub mod http;
pub mod inbound_email;
pub mod input;
pub mod lead_email;
pub mod lock;
pub mod notifications;
pub mod schema;
pub mod secrets;
pub mod send_limits;
pub mod tenant_data;
pub mod tenants;
pub mod twilio_channel;
pub mod usecases;
