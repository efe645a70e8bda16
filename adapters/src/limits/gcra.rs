//! The generic cell rate algorithm, pure: no clock, no storage, integer microseconds.
//!
//! A key's whole state is its theoretical arrival time (TAT). A request is admitted when, after
//! adding one emission interval to the TAT, the TAT is no further ahead of `now` than the
//! tolerance (`burst` intervals). So `burst` requests pass at once, then one per interval.
//!
//! `gcra.lua` runs the same arithmetic on Redis; keep the two in step.

/// One key's parameters, derived from a validated [`super::Quota`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cell {
    /// Microseconds between two requests at the sustained rate (1 / rate).
    pub interval_us: u64,
    /// How far the TAT may run ahead of now: `burst * interval_us`.
    pub tolerance_us: u64,
}

/// Checks every key and admits only if all admit. `stored` reads a key's TAT (`None`: never
/// seen or expired). On admission returns the new TAT of each distinct key, to be written back;
/// on refusal returns the microseconds to wait, the largest over the refusing keys, and nothing
/// must be written. A key listed twice is consumed twice.
pub(crate) fn admit_all<K: PartialEq + Copy>(
    now_us: u64,
    keys: &[(K, Cell)],
    stored: impl Fn(K) -> Option<u64>,
) -> Result<Vec<(K, u64)>, u64> {
    let mut pending: Vec<(K, u64)> = Vec::with_capacity(keys.len());
    let mut max_wait = 0;
    for &(key, cell) in keys {
        let slot = pending.iter().position(|(k, _)| *k == key);
        let tat = match slot {
            Some(i) => pending[i].1,
            None => stored(key).unwrap_or(0),
        };
        let new_tat = tat.max(now_us).saturating_add(cell.interval_us);
        let wait = new_tat
            .saturating_sub(cell.tolerance_us)
            .saturating_sub(now_us);
        max_wait = max_wait.max(wait);
        match slot {
            Some(i) => pending[i].1 = new_tat,
            None => pending.push((key, new_tat)),
        }
    }
    if max_wait > 0 {
        Err(max_wait)
    } else {
        Ok(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// 10 per second, burst 5.
    const CELL: Cell = Cell {
        interval_us: 100_000,
        tolerance_us: 500_000,
    };

    /// Runs `admit_all` against a map and writes back on admission, like both limiters do.
    fn check(
        table: &mut HashMap<&'static str, u64>,
        now: u64,
        keys: &[(&'static str, Cell)],
    ) -> Result<(), u64> {
        let admitted = admit_all(now, keys, |k| table.get(k).copied())?;
        table.extend(admitted);
        Ok(())
    }

    #[test]
    fn a_fresh_key_admits_exactly_the_burst_then_asks_for_one_interval() {
        let mut table = HashMap::new();
        for _ in 0..5 {
            assert_eq!(check(&mut table, 1_000, &[("a", CELL)]), Ok(()));
        }
        assert_eq!(check(&mut table, 1_000, &[("a", CELL)]), Err(100_000));
        // A refusal writes nothing, so the answer does not grow with retries.
        assert_eq!(check(&mut table, 1_000, &[("a", CELL)]), Err(100_000));
    }

    #[test]
    fn the_wait_shrinks_as_time_passes_and_then_one_more_is_admitted() {
        let mut table = HashMap::new();
        for _ in 0..5 {
            check(&mut table, 0, &[("a", CELL)]).ok();
        }
        assert_eq!(check(&mut table, 40_000, &[("a", CELL)]), Err(60_000));
        assert_eq!(check(&mut table, 100_000, &[("a", CELL)]), Ok(()));
        assert_eq!(check(&mut table, 100_000, &[("a", CELL)]), Err(100_000));
    }

    #[test]
    fn an_idle_key_refills_to_the_burst_and_no_further() {
        let mut table = HashMap::new();
        check(&mut table, 0, &[("a", CELL)]).ok();
        let later = 60_000_000;
        for _ in 0..5 {
            assert_eq!(check(&mut table, later, &[("a", CELL)]), Ok(()));
        }
        assert!(check(&mut table, later, &[("a", CELL)]).is_err());
    }

    #[test]
    fn one_refusing_key_refuses_all_and_consumes_none() {
        let mut table = HashMap::new();
        let tight = Cell {
            interval_us: 1_000_000,
            tolerance_us: 1_000_000,
        };
        check(&mut table, 0, &[("b", tight)]).ok();
        let before = table.clone();
        assert_eq!(
            check(&mut table, 0, &[("a", CELL), ("b", tight)]),
            Err(1_000_000)
        );
        assert_eq!(table, before);
        // "a" still has its whole burst.
        for _ in 0..5 {
            assert_eq!(check(&mut table, 0, &[("a", CELL)]), Ok(()));
        }
    }

    #[test]
    fn the_wait_is_the_largest_over_the_refusing_keys() {
        let mut table = HashMap::new();
        let slow = Cell {
            interval_us: 2_000_000,
            tolerance_us: 2_000_000,
        };
        for _ in 0..5 {
            check(&mut table, 0, &[("a", CELL)]).ok();
        }
        check(&mut table, 0, &[("b", slow)]).ok();
        assert_eq!(
            check(&mut table, 0, &[("a", CELL), ("b", slow)]),
            Err(2_000_000)
        );
    }

    #[test]
    fn a_key_listed_twice_is_consumed_twice() {
        let mut table = HashMap::new();
        for _ in 0..2 {
            assert_eq!(check(&mut table, 0, &[("a", CELL), ("a", CELL)]), Ok(()));
        }
        assert_eq!(check(&mut table, 0, &[("a", CELL)]), Ok(()));
        assert_eq!(check(&mut table, 0, &[("a", CELL)]), Err(100_000));
    }
}
