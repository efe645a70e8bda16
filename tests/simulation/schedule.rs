//! A schedule of inputs and faults drawn from one seed. The same seed draws the same schedule
//! (and seeds the carrier simulator's own choices); what the engine makes of it under real time
//! and real threads may still differ between runs.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One step the driver takes, in order. `lead` indexes the schedule's leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Creates the lead (again, with the same external id, if it exists: a duplicate create).
    Create {
        lead: usize,
    },
    /// The lead texts back through the signed inbound webhook.
    Reply {
        lead: usize,
        body: &'static str,
    },
    /// The lead texts STOP.
    Stop {
        lead: usize,
    },
    Pause {
        lead: usize,
    },
    Resume {
        lead: usize,
    },
    /// An operator sets the stage with a reason (legal or not: the gate answers).
    SetStage {
        lead: usize,
        stage: &'static str,
    },
    /// The lead texts START (after a STOP: it opts back in).
    Start {
        lead: usize,
    },
    /// Engine `engine` dies without releasing anything and starts again.
    Crash {
        engine: usize,
    },
    /// Engine `engine` stands still for `ms` (every worker thread of its runtime blocked, as
    /// under SIGSTOP or a long GC pause): longer than the lease TTL, its shards go to the others
    /// (or wait for it, alone) and it must not act on them when it comes back.
    Stall {
        engine: usize,
        ms: u64,
    },
    /// Every database connection of engine `engine` is terminated (PostgreSQL only:
    /// `pg_terminate_backend`); its pool reconnects.
    CutConnections {
        engine: usize,
    },
    /// The driver lets the engines run this long before the next step.
    Wait {
        ms: u64,
    },
}

/// Faults of the carrier, drawn once per schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct CarrierFaults {
    /// Chance that a status callback is held back and sent after the next one.
    pub swap: f64,
    /// Chance that a callback is sent twice.
    pub duplicate: f64,
    /// Relative weight of calls that fail at the carrier (an effect failure).
    pub failed_calls: u32,
    /// Relative weight of texts that end undelivered or failed.
    pub failed_texts: u32,
    /// Chances that a create is refused with 429 / 503 (retried: nothing was done), answered
    /// 500 without acting, or acted on and its answer cut off (both unknown outcomes).
    pub rate_limited: f64,
    pub unavailable: f64,
    pub server_error: f64,
    pub cut_after_create: f64,
}

/// What a lead consented to (the compliance gate's facts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consent {
    pub voice: bool,
    pub sms: bool,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub seed: u64,
    pub leads: usize,
    pub engines: usize,
    pub carrier: CarrierFaults,
    /// Each engine's wall clock error in ms (`engine.clock_skew_ms`).
    pub skew_ms: Vec<i64>,
    pub consent: Vec<Consent>,
    /// Whether the backend has connections to cut (PostgreSQL).
    #[allow(dead_code)]
    pub cuts: bool,
    pub steps: Vec<Step>,
}

const REPLIES: [&str; 3] = ["Sounds good, call me tomorrow", "HELP", "yes"];
const STAGES: [&str; 5] = ["nurture", "contacting", "lost", "booked", "engaged"];

impl Schedule {
    /// `cuts`: the backend has server connections to cut (PostgreSQL).
    pub fn generate(seed: u64, engines: usize, cuts: bool) -> Schedule {
        let mut rng = StdRng::seed_from_u64(seed);
        let leads = rng.gen_range(3..=6);
        let carrier = CarrierFaults {
            swap: rng.gen_range(0.0..0.4),
            duplicate: rng.gen_range(0.0..0.4),
            failed_calls: rng.gen_range(0..3),
            failed_texts: rng.gen_range(0..3),
            // About half the schedules meet REST faults at all.
            rate_limited: rng.gen_range(-0.1f64..0.15).max(0.0),
            unavailable: rng.gen_range(-0.1f64..0.1).max(0.0),
            server_error: rng.gen_range(-0.1f64..0.1).max(0.0),
            cut_after_create: rng.gen_range(-0.1f64..0.1).max(0.0),
        };
        // Up to three seconds either way per engine; some engines exact.
        let skew_ms = (0..engines)
            .map(|_| {
                if rng.gen_bool(0.3) {
                    0
                } else {
                    rng.gen_range(-3_000..=3_000)
                }
            })
            .collect();
        let consent = (0..leads)
            .map(|_| Consent {
                voice: rng.gen_bool(0.85),
                sms: rng.gen_bool(0.85),
            })
            .collect();
        // Every lead is created first (some later duplicated), so that every later step has
        // an opportunity to act on.
        let mut steps: Vec<Step> = (0..leads).map(|lead| Step::Create { lead }).collect();
        // Engine faults are rationed: each costs up to a few seconds of takeover.
        let mut faults = 0;
        let max_faults = rng.gen_range(1..=3);
        let mut stopped = vec![false; leads];
        for _ in 0..rng.gen_range(8..=16) {
            let lead = rng.gen_range(0..leads);
            let engine = rng.gen_range(0..engines);
            let step = match rng.gen_range(0..100) {
                0..=11 => Step::Create { lead },
                12..=29 => Step::Reply {
                    lead,
                    body: REPLIES[rng.gen_range(0..REPLIES.len())],
                },
                // A second STOP, and START after STOP, are inputs like any other.
                30..=39 => {
                    stopped[lead] = true;
                    Step::Stop { lead }
                }
                40..=43 if stopped[lead] => Step::Start { lead },
                40..=43 => Step::Stop { lead },
                44..=52 => Step::Pause { lead },
                53..=61 => Step::Resume { lead },
                62..=72 => Step::SetStage {
                    lead,
                    stage: STAGES[rng.gen_range(0..STAGES.len())],
                },
                73..=78 if faults < max_faults => {
                    faults += 1;
                    Step::Crash { engine }
                }
                79..=84 if faults < max_faults => {
                    faults += 1;
                    // Mostly past the lease TTL (1.5 s), sometimes within it.
                    let ms = if rng.gen_bool(0.75) {
                        rng.gen_range(1_700..=3_000)
                    } else {
                        rng.gen_range(200..=1_200)
                    };
                    Step::Stall { engine, ms }
                }
                85..=89 if cuts => Step::CutConnections { engine },
                _ => Step::Wait {
                    ms: rng.gen_range(20..400),
                },
            };
            steps.push(step);
        }
        Schedule {
            seed,
            leads,
            engines,
            carrier,
            skew_ms,
            consent,
            cuts,
            steps,
        }
    }

    /// The lead's phone number: distinct per lead within a schedule, in the place where it is
    /// day now (the gate holds a call to the number's own zone as well as the contact's).
    pub fn phone(&self, lead: usize) -> String {
        crate::common::day_phone(&format!("556{:04}", lead))
    }

    pub fn external_id(&self, lead: usize) -> String {
        format!("sim-{}-{lead}", self.seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_the_same_schedule() {
        let a = Schedule::generate(42, 3, true);
        let b = Schedule::generate(42, 3, true);
        assert_eq!(a.steps, b.steps);
        assert_eq!(a.carrier, b.carrier);
        assert_eq!(a.skew_ms, b.skew_ms);
        let c = Schedule::generate(43, 3, true);
        assert!(a.steps != c.steps || a.carrier != c.carrier);
    }
}
