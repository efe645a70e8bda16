//! State shared by the HTTP handlers and the scheduler, and the seeded randomness helpers.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::calls::Call;
use super::config::SimConfig;
use super::faults::Draws;
use super::flow_config::CalleeMix;
use super::messages::Message;
use super::scheduler::Job;
use super::stats::SimStats;

/// Work for the scheduler: each job runs at its instant.
pub(crate) type Scheduled = Vec<(Instant, Job)>;

pub(crate) struct Shared {
    pub config: SimConfig,
    state: Mutex<State>,
    pub http: reqwest::Client,
    cmds: mpsc::UnboundedSender<Scheduled>,
    /// The draws of `config.rest_faults`.
    pub faults: Draws,
}

#[derive(Default)]
pub(crate) struct State {
    pub calls: HashMap<String, Call>,
    pub call_order: Vec<String>,
    pub messages: HashMap<String, Message>,
    pub message_order: Vec<String>,
    pub stats: SimStats,
    /// `(lead, our number)` pairs where the lead texted STOP (and not START/YES since).
    pub opted_out: HashSet<(String, String)>,
    /// Dialled number → legs placed to it so far (the ordinal of its next leg's generator).
    pub legs_per_number: HashMap<String, u64>,
    /// Callee answer mixes set at run time (`PUT /sim/callees/{number}`), over `flow.callees`.
    pub callees: HashMap<String, CalleeMix>,
    /// Gather digits set at run time (`PUT /sim/digits/{number}`), over `flow.digits`.
    pub digits: HashMap<String, Vec<String>>,
    /// Recordings of recorded bridges, by sid.
    pub recordings: HashMap<String, super::recordings::Recording>,
    next_id: u64,
    /// Random per simulator run, so SIDs never repeat across restarts (an engine that persists
    /// SIDs would otherwise mistake a new call for an old one). Outcomes stay seeded.
    sid_nonce: u64,
}

impl Shared {
    pub fn new(
        config: SimConfig,
        http: reqwest::Client,
        cmds: mpsc::UnboundedSender<Scheduled>,
    ) -> Self {
        Self {
            faults: Draws::new(config.seed),
            config,
            state: Mutex::new(State {
                sid_nonce: rand::random(),
                ..State::default()
            }),
            http,
            cmds,
        }
    }

    /// Locks the state. A panic elsewhere while holding it leaves counters that are still
    /// worth reading, so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn bump(&self, f: impl FnOnce(&mut SimStats)) {
        f(&mut self.lock().stats);
    }

    /// Hands jobs to the scheduler; after shutdown they are dropped, which is what we want.
    pub fn schedule(&self, jobs: Scheduled) {
        if !jobs.is_empty() {
            let _ = self.cmds.send(jobs);
        }
    }
}

impl State {
    /// A fresh SID: prefix + 32 hex digits, unique within this run and (by the nonce) across runs.
    pub fn new_sid(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:016x}{:016x}", self.sid_nonce, self.next_id)
    }
}

/// FNV-1a over `bytes`, folded with `seed`: stable across runs and platforms.
pub(crate) fn mix(seed: u64, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.rotate_left(17);
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The generator for the `nth` (0-based) call or message to `number`: the same seed plays the
/// same lead the same way whatever order concurrent creates arrive in.
pub(crate) fn rng_for(seed: u64, kind: &str, number: &str, nth: u64) -> StdRng {
    let key = format!("{kind}\u{0}{number}\u{0}{nth}");
    StdRng::seed_from_u64(mix(seed, key.as_bytes()))
}

/// Picks by weight; `None` when every weight is 0.
pub(crate) fn pick<T: Copy>(rng: &mut StdRng, weighted: &[(T, u32)]) -> Option<T> {
    let total: u64 = weighted.iter().map(|(_, w)| u64::from(*w)).sum();
    if total == 0 {
        return None;
    }
    let mut roll = rng.gen_range(0..total);
    for (item, w) in weighted {
        let w = u64::from(*w);
        if roll < w {
            return Some(*item);
        }
        roll -= w;
    }
    None
}

/// `base_ms` stretched by a random factor within `±spread_pct` percent.
pub(crate) fn stretch(rng: &mut StdRng, base_ms: u64, spread_pct: u32) -> Duration {
    let spread = f64::from(spread_pct.min(90)) / 100.0;
    let factor = if spread > 0.0 {
        rng.gen_range((1.0 - spread)..=(1.0 + spread))
    } else {
        1.0
    };
    Duration::from_secs_f64(base_ms as f64 * factor / 1000.0)
}

/// Twilio's E.164 check: `+`, a non-zero digit, at most 15 digits in all.
pub(crate) fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Value of query parameter `name` in `url`, decoded.
pub(crate) fn query_value(url: &str, name: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let value = parsed
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned());
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164() {
        assert!(is_e164("+15005550006"));
        assert!(is_e164("+447700900123"));
        for bad in [
            "15005550006",
            "+",
            "+0123",
            "+1500555000612345",
            "+1 500",
            "abc",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    #[test]
    fn rng_is_stable_per_number_and_ordinal() {
        let a: u64 = rng_for(9, "call", "+15551230000", 0).gen();
        let b: u64 = rng_for(9, "call", "+15551230000", 0).gen();
        let c: u64 = rng_for(9, "call", "+15551230000", 1).gen();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn pick_respects_zero_weights() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..100 {
            assert_eq!(pick(&mut rng, &[("a", 0), ("b", 5), ("c", 0)]), Some("b"));
        }
        assert_eq!(pick::<u8>(&mut rng, &[(1, 0)]), None);
    }

    #[test]
    fn effect_query_is_decoded() {
        let url = "http://127.0.0.1:9/cb?x=1&effect=call%3Aabc";
        assert_eq!(query_value(url, "effect").as_deref(), Some("call:abc"));
        assert_eq!(query_value(url, "none"), None);
    }
}
