//! Which number a lead is dialled and texted from (local presence): a pure rule, no I/O. The
//! effect handlers load the pool (`super::pool_for`) and record the choice with the attempt.

use neuronx_actors::domain::area_codes::{area_code, state_of_area_code};
use serde::Serialize;
use uuid::Uuid;

/// A pool number as the choice reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolNumber {
    /// E.164.
    pub number: String,
    /// The team whose pool it is; `None`: tenant-wide.
    pub team_id: Option<Uuid>,
    pub area_code: Option<u16>,
    pub state: Option<String>,
}

/// Why a number was chosen, recorded with the attempt (`caller_id` in the effect's result).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChosenBy {
    /// A pool number in the lead's area code.
    AreaCode,
    /// A pool number in the lead's state or province.
    State,
    /// No local number: one of the pool's, the same one for the same lead.
    Pool,
    /// No pool: the account's `from` number.
    Account,
}

impl ChosenBy {
    pub fn as_str(self) -> &'static str {
        match self {
            ChosenBy::AreaCode => "area_code",
            ChosenBy::State => "state",
            ChosenBy::Pool => "pool",
            ChosenBy::Account => "account",
        }
    }
}

/// The chosen caller id and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallerId {
    pub from: String,
    pub by: ChosenBy,
}

/// FNV-1a: a hash that is the same on every instance and every release (std's is not), so a
/// lead keeps its number across attempts, restarts and a rolling upgrade.
fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One of `candidates`, the same for the same lead and the same candidates: sorted by number,
/// then picked by the lead's phone's hash. Sticky per lead (a lead called twice sees the same
/// number, and its reply reaches the same pool), spread over the pool across leads.
fn sticky<'a>(lead: &str, candidates: &mut [&'a PoolNumber]) -> Option<&'a PoolNumber> {
    if candidates.is_empty() {
        return None;
    }
    candidates.sort_by(|a, b| a.number.cmp(&b.number));
    let n = u64::try_from(candidates.len()).unwrap_or(1);
    let i = usize::try_from(stable_hash(lead) % n).unwrap_or(0);
    candidates.get(i).copied()
}

/// The caller id for a lead at `lead` (E.164) whose opportunity's pool is `pool`: its team's
/// numbers and the tenant-wide ones (anything else in `pool` is another team's and ignored
/// unless the opportunity has no team). The team's numbers when it has any, else the
/// tenant-wide ones, else `account_from`; within them, one in the lead's area code, else in its
/// state, else any (each choice sticky per lead).
pub fn choose(lead: &str, team: Option<Uuid>, pool: &[PoolNumber], account_from: &str) -> CallerId {
    let of_team: Vec<&PoolNumber> = match team {
        Some(t) => pool.iter().filter(|n| n.team_id == Some(t)).collect(),
        None => vec![],
    };
    let candidates = if of_team.is_empty() {
        pool.iter().filter(|n| n.team_id.is_none()).collect()
    } else {
        of_team
    };
    if candidates.is_empty() {
        return CallerId {
            from: account_from.to_owned(),
            by: ChosenBy::Account,
        };
    }
    let npa = area_code(lead);
    let state = npa.and_then(state_of_area_code);
    let fits = |by: ChosenBy, n: &PoolNumber| match by {
        ChosenBy::AreaCode => npa.is_some() && n.area_code == npa,
        ChosenBy::State => state.is_some() && n.state.as_deref() == state,
        ChosenBy::Pool | ChosenBy::Account => true,
    };
    for by in [ChosenBy::AreaCode, ChosenBy::State, ChosenBy::Pool] {
        let mut fitting: Vec<&PoolNumber> =
            candidates.iter().copied().filter(|n| fits(by, n)).collect();
        if let Some(n) = sticky(lead, &mut fitting) {
            return CallerId {
                from: n.number.clone(),
                by,
            };
        }
    }
    // Unreachable: the last tier takes any candidate, and there is one.
    CallerId {
        from: account_from.to_owned(),
        by: ChosenBy::Account,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "+14155550000";

    fn n(number: &str, team: Option<u128>) -> PoolNumber {
        let npa = area_code(number);
        PoolNumber {
            number: number.to_owned(),
            team_id: team.map(Uuid::from_u128),
            area_code: npa,
            state: npa.and_then(state_of_area_code).map(str::to_owned),
        }
    }

    fn pick(lead: &str, team: Option<u128>, pool: &[PoolNumber]) -> (String, ChosenBy) {
        let c = choose(lead, team.map(Uuid::from_u128), pool, ACCOUNT);
        (c.from, c.by)
    }

    #[test]
    fn the_area_code_first_then_the_state_then_the_pool() {
        // 512 Austin and 214 Dallas are Texas; 212 is New York; 303 is Colorado.
        let pool = [n("+15125550100", Some(1)), n("+12125550100", Some(1))];
        assert_eq!(
            pick("+15125551234", Some(1), &pool),
            ("+15125550100".into(), ChosenBy::AreaCode)
        );
        assert_eq!(
            pick("+12145551234", Some(1), &pool),
            ("+15125550100".into(), ChosenBy::State)
        );
        let (from, by) = pick("+13035551234", Some(1), &pool);
        assert_eq!(by, ChosenBy::Pool);
        assert!(pool.iter().any(|p| p.number == from), "{from}");
    }

    #[test]
    fn the_team_pool_then_the_tenant_wide_numbers_then_the_account() {
        let pool = [
            n("+15125550100", Some(1)),
            n("+15125550200", None),
            n("+12125550100", Some(2)),
        ];
        // Team 1 has a number: the tenant-wide one in the same area code is not used.
        assert_eq!(pick("+15125551234", Some(1), &pool).0, "+15125550100");
        // Team 3 has none: the tenant-wide numbers.
        assert_eq!(pick("+15125551234", Some(3), &pool).0, "+15125550200");
        // No team: the tenant-wide numbers, never another team's local one.
        assert_eq!(pick("+12125551234", None, &pool).0, "+15125550200");
        // Nothing at all: the account's number.
        assert_eq!(
            pick("+15125551234", Some(2), &[n("+12125550100", Some(1))]),
            (ACCOUNT.into(), ChosenBy::Account)
        );
        assert_eq!(pick("+15125551234", None, &[]).1, ChosenBy::Account);
    }

    #[test]
    fn a_lead_keeps_its_number_whatever_the_pool_order() {
        let pool = [
            n("+15125550100", None),
            n("+15125550101", None),
            n("+15125550102", None),
        ];
        let mut reversed = pool.clone();
        reversed.reverse();
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..40 {
            let lead = format!("+1512555{:04}", 2000 + i);
            let a = pick(&lead, None, &pool);
            assert_eq!(a, pick(&lead, None, &reversed), "sticky for {lead}");
            assert_eq!(a.1, ChosenBy::AreaCode);
            seen.insert(a.0);
        }
        assert_eq!(
            seen.len(),
            3,
            "leads spread over the local numbers: {seen:?}"
        );
    }

    #[test]
    fn numbers_outside_the_plan_match_no_area_code_or_state() {
        // A UK lead and a UK pool number: no area code or state on either side.
        let pool = [n("+442071838750", None)];
        assert_eq!(pool[0].area_code, None);
        assert_eq!(
            pick("+442079460000", None, &pool),
            ("+442071838750".into(), ChosenBy::Pool)
        );
        // A toll-free pool number has no state: a Texas lead gets it only as the pool's.
        let pool = [n("+18005550100", None)];
        assert_eq!(pick("+15125551234", None, &pool).1, ChosenBy::Pool);
    }

    #[test]
    fn the_hash_is_stable_across_releases() {
        // FNV-1a's published test vector: a changed hash would move every lead's number.
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
