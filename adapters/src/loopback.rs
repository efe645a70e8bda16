//! Loopback voice and SMS: no network, no carrier. A dialled call reports `initiated`,
//! `ringing` and then `no-answer`, with Twilio's status words and sequence numbers, after the
//! configured delays. One task owns every pending report and sleeps until the next is due, so
//! nothing is spawned per call and dropping the channel stops it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A status report for a call placed with [`LoopbackVoice::dial`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport<C> {
    pub correlation: C,
    pub call_sid: String,
    /// Twilio's spelling: `initiated`, `ringing`, `no-answer`.
    pub status: &'static str,
    pub sequence: u64,
}

struct Pending<C> {
    due: Instant,
    seq: u64,
    report: StatusReport<C>,
}

impl<C> PartialEq for Pending<C> {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl<C> Eq for Pending<C> {}
impl<C> PartialOrd for Pending<C> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<C> Ord for Pending<C> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

pub struct LoopbackVoice<C> {
    dials: mpsc::UnboundedSender<(C, String)>,
    counter: Arc<AtomicU64>,
}

impl<C> Clone for LoopbackVoice<C> {
    fn clone(&self) -> Self {
        Self {
            dials: self.dials.clone(),
            counter: self.counter.clone(),
        }
    }
}

impl<C: Clone + Send + 'static> LoopbackVoice<C> {
    /// Returns the channel, the receiver of its status reports, and the task that owns the
    /// pending reports (abort it to stop early).
    pub fn start(
        ring_after: Duration,
        no_answer_after: Duration,
    ) -> (
        Self,
        mpsc::UnboundedReceiver<StatusReport<C>>,
        JoinHandle<()>,
    ) {
        let (dials_tx, mut dials_rx) = mpsc::unbounded_channel::<(C, String)>();
        let (reports_tx, reports_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut heap: BinaryHeap<Reverse<Pending<C>>> = BinaryHeap::new();
            let mut seq = 0u64;
            loop {
                let next_due = heap.peek().map(|Reverse(p)| p.due);
                tokio::select! {
                    dial = dials_rx.recv() => {
                        let Some((correlation, sid)) = dial else { break };
                        let now = Instant::now();
                        for (i, (status, after)) in [
                            ("initiated", Duration::ZERO),
                            ("ringing", ring_after),
                            ("no-answer", ring_after + no_answer_after),
                        ]
                        .into_iter()
                        .enumerate()
                        {
                            seq += 1;
                            heap.push(Reverse(Pending {
                                due: now + after,
                                seq,
                                report: StatusReport {
                                    correlation: correlation.clone(),
                                    call_sid: sid.clone(),
                                    status,
                                    sequence: i as u64,
                                },
                            }));
                        }
                    }
                    _ = sleep_until(next_due) => {
                        while heap.peek().is_some_and(|Reverse(p)| p.due <= Instant::now()) {
                            if let Some(Reverse(p)) = heap.pop() {
                                if reports_tx.send(p.report).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                }
            }
        });
        (
            Self {
                dials: dials_tx,
                counter: Arc::new(AtomicU64::new(0)),
            },
            reports_rx,
            task,
        )
    }

    /// Places a call and returns its call sid (`CA` + 32 hex digits, like Twilio's).
    pub fn dial(&self, correlation: C) -> Result<String, ChannelClosed> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let sid = format!(
            "CA{:032x}",
            (u128::from(std::process::id()) << 64) | u128::from(n)
        );
        self.dials
            .send((correlation, sid.clone()))
            .map_err(|_| ChannelClosed)?;
        Ok(sid)
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the loopback channel has stopped")]
pub struct ChannelClosed;

/// A message id for a loopback SMS (`SM` + 32 hex digits).
pub fn sms_sid(n: u64) -> String {
    format!(
        "SM{:032x}",
        (u128::from(std::process::id()) << 64) | u128::from(n)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_dialled_call_rings_then_goes_unanswered_in_order() {
        let (voice, mut reports, _task) =
            LoopbackVoice::start(Duration::from_millis(200), Duration::from_secs(1));
        let sid = voice.dial("lead-1").unwrap();
        let mut got = Vec::new();
        for _ in 0..3 {
            let r = reports.recv().await.unwrap();
            assert_eq!(r.call_sid, sid);
            assert_eq!(r.correlation, "lead-1");
            got.push((r.status, r.sequence));
        }
        assert_eq!(
            got,
            vec![("initiated", 0), ("ringing", 1), ("no-answer", 2)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn reports_wait_for_their_delay() {
        let (voice, mut reports, _task) =
            LoopbackVoice::start(Duration::from_secs(5), Duration::from_secs(5));
        voice.dial(1u32).unwrap();
        assert_eq!(reports.recv().await.unwrap().status, "initiated");
        let started = Instant::now();
        assert_eq!(reports.recv().await.unwrap().status, "ringing");
        assert!(started.elapsed() >= Duration::from_secs(5));
    }

    #[test]
    fn sids_look_like_twilios() {
        assert_eq!(sms_sid(1).len(), 34);
        assert!(sms_sid(1).starts_with("SM"));
    }
}
