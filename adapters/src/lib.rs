//! The outside world. For now the loopback channels, which stand in for a carrier until a
//! Twilio-compatible account is configured; the Twilio REST adapter and webhook signatures come
//! next.

pub mod carrier_sim;
pub mod inbound_mail;
pub mod limits;
pub mod loopback;
pub mod mail_relay_sim;
pub mod outbound;
pub mod smtp;
pub mod twilio;
