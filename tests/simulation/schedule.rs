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
    /// Engine `engine` dies without releasing anything and starts again.
    Crash {
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
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub seed: u64,
    pub leads: usize,
    pub engines: usize,
    pub carrier: CarrierFaults,
    pub steps: Vec<Step>,
}

const REPLIES: [&str; 3] = ["Sounds good, call me tomorrow", "HELP", "yes"];
const STAGES: [&str; 5] = ["nurture", "contacting", "lost", "booked", "engaged"];

impl Schedule {
    pub fn generate(seed: u64, engines: usize) -> Schedule {
        let mut rng = StdRng::seed_from_u64(seed);
        let leads = rng.gen_range(3..=6);
        let carrier = CarrierFaults {
            swap: rng.gen_range(0.0..0.4),
            duplicate: rng.gen_range(0.0..0.4),
            failed_calls: rng.gen_range(0..3),
            failed_texts: rng.gen_range(0..3),
        };
        // Every lead is created first (some later duplicated), so that every later step has
        // an opportunity to act on.
        let mut steps: Vec<Step> = (0..leads).map(|lead| Step::Create { lead }).collect();
        let mut crashes = 0;
        let mut stopped = vec![false; leads];
        for _ in 0..rng.gen_range(8..=16) {
            let lead = rng.gen_range(0..leads);
            let step = match rng.gen_range(0..100) {
                0..=14 => Step::Create { lead },
                15..=34 => Step::Reply {
                    lead,
                    body: REPLIES[rng.gen_range(0..REPLIES.len())],
                },
                // One STOP per number: a second is not an input the model follows yet.
                35..=44 if !stopped[lead] => {
                    stopped[lead] = true;
                    Step::Stop { lead }
                }
                35..=44 => Step::Wait { ms: 50 },
                45..=54 => Step::Pause { lead },
                55..=64 => Step::Resume { lead },
                65..=76 => Step::SetStage {
                    lead,
                    stage: STAGES[rng.gen_range(0..STAGES.len())],
                },
                // At most one crash per schedule keeps a schedule within a few seconds.
                77..=84 if crashes == 0 => {
                    crashes += 1;
                    Step::Crash {
                        engine: rng.gen_range(0..engines),
                    }
                }
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
            steps,
        }
    }

    /// The lead's phone number: distinct per lead within a schedule.
    pub fn phone(&self, lead: usize) -> String {
        format!("+1415556{:04}", lead)
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
        let a = Schedule::generate(42, 3);
        let b = Schedule::generate(42, 3);
        assert_eq!(a.steps, b.steps);
        assert_eq!(a.carrier, b.carrier);
        let c = Schedule::generate(43, 3);
        assert!(a.steps != c.steps || a.carrier != c.carrier);
    }
}
