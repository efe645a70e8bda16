//! Fair shares of the shards among live instances: a pure rule every instance computes alike
//! from the same membership, so they agree without talking to each other.

use crate::store::Membership;

/// How many shards instance `me` should hold: with `n` live instances, the first
/// `shard_count % n` of them (by id) hold one more than the others, so every instance ends
/// within one of the fair share and the shares sum to `shard_count`. An instance missing from
/// the live list (its heartbeat is late) aims at an equal share of the rest's count plus it.
pub fn fair_share(shard_count: u32, live_ids: &[&str], me: &str) -> u32 {
    let mut ids: Vec<&str> = live_ids.to_vec();
    if !ids.contains(&me) {
        ids.push(me);
    }
    ids.sort_unstable();
    ids.dedup();
    let n = ids.len() as u32;
    let rank = ids.iter().position(|i| *i == me).unwrap_or(0) as u32;
    shard_count / n + u32::from(rank < shard_count % n)
}

/// The share of `me` given a membership read and the heartbeat TTL.
pub fn target(
    shard_count: u32,
    membership: &Membership,
    ttl: std::time::Duration,
    me: &str,
) -> u32 {
    let live: Vec<&str> = membership.live(ttl).iter().map(|i| i.id.as_str()).collect();
    fair_share(shard_count, &live, me)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::InstanceRow;
    use proptest::prelude::*;

    #[test]
    fn alone_holds_everything() {
        assert_eq!(fair_share(256, &["a"], "a"), 256);
        assert_eq!(fair_share(256, &[], "a"), 256);
    }

    #[test]
    fn three_instances_split_within_one() {
        let ids = ["a", "b", "c"];
        let shares: Vec<u32> = ids.iter().map(|me| fair_share(256, &ids, me)).collect();
        assert_eq!(shares, vec![86, 85, 85]);
    }

    #[test]
    fn stale_heartbeats_do_not_count() {
        let m = Membership {
            now_ms: 10_000,
            instances: vec![
                InstanceRow {
                    id: "a".into(),
                    started_at_ms: 0,
                    heartbeat_at_ms: 9_500,
                    shared_limits: true,
                },
                InstanceRow {
                    id: "b".into(),
                    started_at_ms: 0,
                    heartbeat_at_ms: 6_000,
                    shared_limits: true,
                },
            ],
        };
        let ttl = std::time::Duration::from_secs(3);
        assert_eq!(target(64, &m, ttl, "a"), 64);
    }

    proptest! {
        #[test]
        fn shares_sum_to_the_shard_count_and_differ_by_at_most_one(
            shards in 1u32..2048,
            n in 1usize..12,
        ) {
            let names: Vec<String> = (0..n).map(|i| format!("i{i:02}")).collect();
            let ids: Vec<&str> = names.iter().map(String::as_str).collect();
            let shares: Vec<u32> = ids.iter().map(|me| fair_share(shards, &ids, me)).collect();
            prop_assert_eq!(shares.iter().sum::<u32>(), shards);
            let (min, max) = (shares.iter().min().copied(), shares.iter().max().copied());
            prop_assert!(max.unwrap_or(0) - min.unwrap_or(0) <= 1);
        }
    }
}
