//! One clock for the runtime: every transition's `now`, every timer's firing and every time the
//! runtime compares in SQL read it, so no instance acts on a wall clock that runs ahead of the
//! database (ADR 0037).
//!
//! The real clock is the database's time without a round trip per read: a monotonic clock (the
//! wall clock read once, at start, then only `Instant`s) plus the offset to the database,
//! measured at each lease renewal from one `SELECT`, taking the database's reading to have been
//! made at the end of the round trip: the clock is then never ahead of the database's (it is
//! behind by at most the round trip), so nothing the engine does "at" a time happens before the
//! database reaches it. A step of the wall clock (NTP, a resumed VM) therefore never moves it;
//! the next measurement follows the database. A simulated clock is set and advanced by a test;
//! it is the truth by definition and measures nothing.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};

/// Cheap to clone: clones share one clock.
#[derive(Clone, Debug)]
pub struct Clock(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    source: Source,
    /// Database time minus local time, in milliseconds (always 0 for a simulated clock).
    offset_ms: AtomicI64,
    /// An offset has been measured: until then `now` is the local clock.
    synced: AtomicBool,
}

#[derive(Debug)]
enum Source {
    /// Monotonic from `origin`, which stands for the wall clock's reading at start plus a fixed
    /// error: 0 in production; tests give an instance a wall clock that is wrong by that much,
    /// to show the offset corrects it.
    System { origin: Instant, origin_us: i64 },
    /// Set by a test. `moved` tells waiters (`sleep_until`, `moved`) that it was set.
    Simulated {
        now_ms: AtomicI64,
        moved: tokio::sync::watch::Sender<()>,
    },
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    /// The production clock: the system clock corrected to the database's.
    pub fn system() -> Self {
        Self::skewed(0)
    }

    /// The system clock as an instance whose wall clock is `skew_ms` off would read it (the
    /// offset measured against the database corrects it like any other error).
    pub fn skewed(skew_ms: i64) -> Self {
        Self::with_source(Source::System {
            origin: Instant::now(),
            origin_us: Utc::now().timestamp_micros() + skew_ms * 1_000,
        })
    }

    /// A clock that stands still at `now_ms` until a test moves it.
    pub fn simulated(now_ms: i64) -> Self {
        Self::with_source(Source::Simulated {
            now_ms: AtomicI64::new(now_ms),
            moved: tokio::sync::watch::Sender::new(()),
        })
    }

    fn with_source(source: Source) -> Self {
        Self(Arc::new(Inner {
            source,
            offset_ms: AtomicI64::new(0),
            synced: AtomicBool::new(false),
        }))
    }

    /// Milliseconds since the Unix epoch, by the database's clock.
    pub fn now_ms(&self) -> i64 {
        self.local_ms() + self.0.offset_ms.load(Ordering::Relaxed)
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.now_ms())
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// This machine's reading, before the offset.
    pub fn local_ms(&self) -> i64 {
        match &self.0.source {
            Source::System { origin, origin_us } => {
                // Summed in microseconds, then floored: adding whole milliseconds would lose
                // up to one (the two floors), reading a millisecond behind the wall clock.
                // Microseconds since start fit an i64 for 292,000 years.
                (origin_us + origin.elapsed().as_micros() as i64).div_euclid(1_000)
            }
            Source::Simulated { now_ms, .. } => now_ms.load(Ordering::Relaxed),
        }
    }

    /// Records one measurement: the local clock read just before (`sent_ms`) and just after
    /// (`received_ms`) a query that answered the database's time `db_ms`. A simulated clock
    /// ignores it. Returns the offset now used.
    pub fn observe(&self, sent_ms: i64, db_ms: i64, received_ms: i64) -> i64 {
        if self.is_simulated() {
            return 0;
        }
        let offset = offset_from(sent_ms, db_ms, received_ms);
        self.0.offset_ms.store(offset, Ordering::Relaxed);
        self.0.synced.store(true, Ordering::Relaxed);
        offset
    }

    /// The offset to the database in use (0 until measured).
    pub fn offset_ms(&self) -> i64 {
        self.0.offset_ms.load(Ordering::Relaxed)
    }

    /// Whether an offset has been measured (the simulated clock needs none).
    pub fn synced(&self) -> bool {
        self.is_simulated() || self.0.synced.load(Ordering::Relaxed)
    }

    /// Moves a simulated clock forward, waking whatever waits on it; does nothing to a real one.
    pub fn advance(&self, by_ms: i64) {
        if let Source::Simulated { now_ms, moved } = &self.0.source {
            now_ms.fetch_add(by_ms, Ordering::Relaxed);
            moved.send_replace(());
        }
    }

    /// Sets a simulated clock, waking whatever waits on it; does nothing to a real one.
    pub fn set(&self, to_ms: i64) {
        if let Source::Simulated { now_ms, moved } = &self.0.source {
            now_ms.store(to_ms, Ordering::Relaxed);
            moved.send_replace(());
        }
    }

    pub fn is_simulated(&self) -> bool {
        matches!(self.0.source, Source::Simulated { .. })
    }

    /// Returns once this clock reads `at_ms` or later. On the real clock that is a sleep; on a
    /// simulated one it is when a test moves the clock there, however little real time passed,
    /// so a test fires a timer due in an hour without waiting an hour.
    pub async fn sleep_until(&self, at_ms: i64) {
        match &self.0.source {
            Source::System { .. } => {
                let wait = (at_ms - self.now_ms()).max(0) as u64;
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            }
            Source::Simulated { moved, .. } => {
                // Subscribed before reading the time: a move between the two still wakes us.
                let mut rx = moved.subscribe();
                while self.now_ms() < at_ms {
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Returns the next time a simulated clock is moved; never, for the real clock.
    pub async fn moved(&self) {
        match &self.0.source {
            Source::System { .. } => std::future::pending().await,
            Source::Simulated { moved, .. } => {
                let mut rx = moved.subscribe();
                // The sender lives as long as this clock, which outlives the call.
                let _ = rx.changed().await;
            }
        }
    }
}

/// The database's time minus the local time, taking the database's reading to have been made
/// when its answer arrived: the reading was made somewhere in the round trip, so this offset is
/// the smallest it can be, and a clock that uses it is never ahead of the database's. (The
/// round trip's midpoint, used before, is off by up to half the round trip either way: ahead,
/// a timer fired before the database's clock reached it, which the fault simulation caught,
/// seed 100606 on SQLite, 1 ms early.) `sent_ms` only checks the order.
pub fn offset_from(sent_ms: i64, db_ms: i64, received_ms: i64) -> i64 {
    debug_assert!(sent_ms <= received_ms);
    db_ms - received_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_is_taken_at_the_round_trips_end() {
        assert_eq!(offset_from(1_000, 6_010, 1_020), 4_990);
        assert_eq!(offset_from(1_000, 990, 1_020), -30);
    }

    /// Wherever in the round trip the database read its clock, the corrected local clock never
    /// reads later than the database's at the same instant, and at most a round trip earlier.
    #[test]
    fn the_corrected_clock_is_never_ahead_of_the_database() {
        let skew = 5_000; // database minus local
        for (sent, received) in [(1_000, 1_000), (1_000, 1_001), (1_000, 1_040)] {
            for read_at in sent..=received {
                let offset = offset_from(sent, read_at + skew, received);
                for later in received..received + 50 {
                    let ours = later + offset;
                    let theirs = later + skew;
                    assert!(ours <= theirs, "ahead: {ours} > {theirs}");
                    assert!(
                        theirs - ours <= received - sent,
                        "behind by more than the trip"
                    );
                }
            }
        }
    }

    #[test]
    fn a_skewed_clock_reads_the_database_time_once_measured() {
        let clock = Clock::skewed(5_000);
        assert!(!clock.synced());
        let local = clock.local_ms();
        let real = Utc::now().timestamp_millis();
        assert!((local - real - 5_000).abs() < 1_000);
        // The database says the real time: the offset cancels the skew.
        clock.observe(local, real, local);
        assert!(clock.synced());
        assert!((clock.now_ms() - Utc::now().timestamp_millis()).abs() < 1_000);
    }

    #[test]
    fn the_clock_never_goes_back_between_readings() {
        let clock = Clock::system();
        let mut last = clock.now_ms();
        for _ in 0..10_000 {
            let now = clock.now_ms();
            assert!(now >= last);
            last = now;
        }
    }

    #[test]
    fn a_simulated_clock_moves_only_when_told() {
        let clock = Clock::simulated(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance(250);
        assert_eq!(clock.now_ms(), 1_250);
        assert_eq!(clock.observe(0, 99_999, 0), 0, "measures nothing");
        assert_eq!(clock.now_ms(), 1_250);
        clock.set(5);
        assert_eq!(clock.now(), Utc.timestamp_millis_opt(5).single().unwrap());
    }

    /// A sleeper on the simulated clock wakes when the clock is moved past its time, not before,
    /// and without real time passing.
    #[tokio::test]
    async fn a_sleeper_on_the_simulated_clock_wakes_when_it_is_moved_there() {
        let clock = Clock::simulated(1_000);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(61_000).await }
        });
        let started = Instant::now();
        clock.advance(30_000);
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "woke before its time");
        clock.advance(30_000);
        tokio::time::timeout(std::time::Duration::from_secs(5), sleeper)
            .await
            .expect("woke when the clock got there")
            .expect("sleeper");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // Already past: returns at once.
        clock.sleep_until(0).await;
    }
}
