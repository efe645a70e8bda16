//! Who owns which shard, read from the `shards` table by the database clock, and the waits
//! built on it: balance, takeover. On failure they print what the database is doing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;

impl Cluster {
    /// What the database is doing for this cluster: every other session, its state, what it
    /// waits on and for how long its transaction has been open (evidence for a stuck takeover).
    pub async fn sessions(&self) -> String {
        type Session = (
            i32,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<f64>,
            String,
        );
        let rows: Vec<Session> = sqlx::query_as(
            "SELECT pid, state, wait_event_type, wait_event,
                        extract(epoch FROM clock_timestamp() - xact_start)::float8,
                        left(regexp_replace(query, '\\s+', ' ', 'g'), 140)
                 FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()
                 ORDER BY xact_start NULLS LAST",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap_or_default();
        rows.iter()
            .map(|(pid, st, wt, we, age, q)| {
                format!("  pid {pid} {st:?} wait {wt:?}/{we:?} xact {age:?}s: {q}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Shard → (owner, epoch, lease remaining ms), by the database clock.
    pub async fn ownership(&self) -> BTreeMap<i32, (Option<String>, i64, i64)> {
        let rows: Vec<(i32, Option<String>, i64, i64)> = sqlx::query_as(
            "SELECT id, owner, epoch,
                    lease_until - (extract(epoch FROM clock_timestamp()) * 1000)::bigint
             FROM shards ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap();
        rows.into_iter()
            .map(|(s, o, e, r)| (s, (o, e, r)))
            .collect()
    }

    /// Shards (with epochs) leased by instance `i` now.
    pub async fn shards_of(&self, i: usize) -> Vec<(i32, i64)> {
        let id = &self.nodes[i].id;
        self.ownership()
            .await
            .into_iter()
            .filter(|(_, (o, _, r))| o.as_ref() == Some(id) && *r > 0)
            .map(|(s, (_, e, _))| (s, e))
            .collect()
    }

    /// Waits until every shard is leased by one of `live` and each holds its fair share.
    pub async fn wait_balanced(&self, live: &[usize], within: Duration) -> Duration {
        let started = Instant::now();
        let ids: Vec<&String> = live.iter().map(|&i| &self.nodes[i].id).collect();
        let s = self.spec.shard_count as usize;
        let (lo, hi) = (s / ids.len(), s.div_ceil(ids.len()));
        loop {
            let own = self.ownership().await;
            let mut counts: BTreeMap<&str, usize> = ids.iter().map(|i| (i.as_str(), 0)).collect();
            let mut ok = true;
            for (owner, _, remaining) in own.values() {
                match owner.as_deref().and_then(|o| counts.get_mut(o)) {
                    Some(n) if *remaining > 0 => *n += 1,
                    _ => ok = false,
                }
            }
            ok &= counts.values().all(|n| (lo..=hi).contains(n));
            if ok {
                return started.elapsed();
            }
            if started.elapsed() > within {
                panic!(
                    "shards not balanced over {ids:?} within {within:?}: {counts:?}; \
                     shards {own:?}\ndatabase sessions:\n{}",
                    self.sessions().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every shard in `held` is leased by another instance at a later epoch.
    pub async fn wait_taken_over(
        &self,
        victim: usize,
        held: &[(i32, i64)],
        within: Duration,
    ) -> Duration {
        let started = Instant::now();
        let victim = &self.nodes[victim].id;
        loop {
            let own = self.ownership().await;
            let pending: Vec<_> = held
                .iter()
                .filter(|(s, e)| {
                    let (o, epoch, r) = &own[s];
                    o.is_none() || o.as_ref() == Some(victim) || *epoch <= *e || *r <= 0
                })
                .map(|(s, _)| (s, own[s].clone()))
                .collect();
            if pending.is_empty() {
                return started.elapsed();
            }
            if started.elapsed() > within {
                panic!(
                    "shards of {victim} not taken over within {within:?}: {pending:?}\n\
                     all shards (owner, epoch, lease ms left): {own:?}\n\
                     database sessions:\n{}",
                    self.sessions().await
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
