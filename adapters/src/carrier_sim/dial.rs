//! `<Dial>`: places a child leg per `<Number>` (all at once, or one after another with
//! `sequential="true"`), runs each answered leg's whisper, bridges the first leg that answers and
//! passes its whisper, cancels the others, holds the conversation for the callee's talk time
//! (capped by `timeLimit`), and reports to the `action`.
//!
//! Choices where Twilio's behaviour is not documented (voice-call-flows.md §2, UNVERIFIED): the
//! other legs keep ringing while one leg's whisper runs, and a declined whisper lets another leg
//! still win; a Dial whose legs were answered but all declined reports
//! `DialCallStatus=completed` with `DialBridged=false`.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::calls::CallState;
use super::config::ms;
use super::fetch::until_ended;
use super::flow::{LegRun, Next, Role};
use super::flow_config::{CalleeFate, HangupSide};
use super::legs::{self, resolve, set_status, stop, Placed};
use super::state::Shared;
use super::twiml::{Dial, DialNumber, Method};
use super::views::{DialCallStatus, DialView, DocPurpose, FlowEnd};

/// How one leg's dialling ended.
#[derive(Debug)]
enum LegEnd {
    /// Busy, failed or no answer within the timeout.
    Unanswered,
    /// Answered, then its whisper hung up (or failed): the leg is completed, not bridged.
    Declined,
    /// Answered and its whisper (if any) ended normally: ready to bridge, still in progress.
    Passed { talk: Duration },
    /// Ended from outside: the parent hung up, another leg won, or a REST hang-up of the leg.
    Stopped,
}

struct LegDone {
    sid: String,
    to: String,
    end: LegEnd,
}

#[derive(Clone)]
struct Winner {
    sid: String,
    to: String,
    talk: Duration,
}

/// The state of one Dial across its legs.
#[derive(Default)]
struct Race {
    winner: Option<Winner>,
    /// The leg that finished last (`DialCallSid` when nobody won).
    last: Option<String>,
    /// The parent call ended (REST hang-up, or the lead hung up after talking).
    parent_gone: bool,
}

/// Runs `dial` on the parent leg `leg`; returns what the parent does next.
pub(crate) async fn run(leg: &mut LegRun, dial: &Dial, base: Option<&str>) -> Next {
    let shared = leg.shared.clone();
    let config = &shared.config;
    let timeout = ms(config.flow.second_ms.saturating_mul(dial.timeout_secs));
    let mut parent_ended = leg.ended.clone();
    let mut race = Race::default();
    if dial.sequential {
        for number in &dial.numbers {
            if race.winner.is_some() || race.parent_gone {
                break;
            }
            let one = std::slice::from_ref(number);
            race.dial(
                &shared,
                &leg.sid,
                one,
                dial,
                base,
                timeout,
                &mut parent_ended,
            )
            .await;
        }
    } else {
        race.dial(
            &shared,
            &leg.sid,
            &dial.numbers,
            dial,
            base,
            timeout,
            &mut parent_ended,
        )
        .await;
    }
    let mut bridged = false;
    if let Some(winner) = race.winner.clone() {
        if race.parent_gone {
            stop(&shared, &winner.sid);
        } else {
            bridged = true;
            race.parent_gone = bridge(&shared, &leg.sid, &winner, dial, &mut parent_ended).await;
        }
    }
    let view = outcome(&shared, &race, dial, bridged);
    // A recorded bridge keeps a recording; its status callback follows the dial's action.
    let recording = (dial.record && view.bridged).then(|| {
        let secs = view.dial_call_duration.unwrap_or(0);
        super::recordings::keep(&shared, &leg.sid, secs)
    });
    let extra = action_params(&view, recording.as_ref(), &config.account_sid);
    {
        let mut state = shared.lock();
        let key = view.dial_call_status.as_str().to_string();
        *state.stats.dial_outcomes.entry(key).or_insert(0) += 1;
        if let Some(call) = state.calls.get_mut(&leg.sid) {
            call.log.dials.push(view);
        }
    }
    if let (Some(rec), Some(cb)) = (&recording, &dial.recording_status_callback) {
        if let Some(url) = resolve(base, cb) {
            let params = super::recordings::status_params(&config.account_sid, rec);
            leg.notify(DocPurpose::RecordingStatus, &url, Method::Post, params)
                .await;
        }
    }
    let parent_gone = race.parent_gone || *leg.ended.borrow();
    match (&dial.action, parent_gone) {
        (Some(action), false) => {
            leg.follow(DocPurpose::DialAction, base, action, dial.method, extra)
                .await
        }
        (Some(action), true) => {
            // Twilio still requests the action after the caller hung up; its answer has no call
            // left to run on.
            if let Some(url) = resolve(base, action) {
                leg.notify(DocPurpose::DialAction, &url, dial.method, extra)
                    .await;
            }
            Next::End(FlowEnd::Ended)
        }
        (None, false) => Next::Continue,
        (None, true) => Next::End(FlowEnd::Ended),
    }
}

impl Race {
    /// Places a leg per number and waits until every one of them has ended or won.
    #[allow(clippy::too_many_arguments)]
    async fn dial(
        &mut self,
        shared: &Arc<Shared>,
        parent: &str,
        numbers: &[DialNumber],
        dial: &Dial,
        base: Option<&str>,
        timeout: Duration,
        parent_ended: &mut tokio::sync::watch::Receiver<bool>,
    ) {
        let mut legs = JoinSet::new();
        let mut live = Vec::new();
        for number in numbers {
            let callback = number
                .status_callback
                .as_deref()
                .and_then(|url| resolve(base, url));
            let Some((placed, jobs)) =
                legs::place(shared, parent, number, dial.caller_id.as_deref(), callback)
            else {
                continue;
            };
            shared.schedule(jobs);
            live.push(placed.sid.clone());
            // `Some(None)`: a whisper URL that does not resolve, an application error at answer.
            let whisper = number.url.as_deref().map(|url| resolve(base, url));
            let ring = Ring {
                whisper,
                whisper_method: number.method,
                send_digits: number.send_digits.clone(),
                timeout,
            };
            legs.spawn(ring.run(shared.clone(), placed));
        }
        while !legs.is_empty() {
            tokio::select! {
                joined = legs.join_next() => {
                    // A leg task that panicked has nothing to report; the others go on.
                    let Some(Ok(done)) = joined else { continue };
                    self.last = Some(done.sid.clone());
                    if let LegEnd::Passed { talk } = done.end {
                        if self.winner.is_none() && !self.parent_gone {
                            for other in live.iter().filter(|sid| **sid != done.sid) {
                                stop(shared, other);
                            }
                            self.winner = Some(Winner { sid: done.sid, to: done.to, talk });
                        } else {
                            stop(shared, &done.sid);
                        }
                    }
                }
                _ = parent_ended.wait_for(|gone| *gone), if !self.parent_gone => {
                    self.parent_gone = true;
                    for sid in &live {
                        stop(shared, sid);
                    }
                }
            }
        }
    }
}

/// What one leg does between being placed and winning or losing.
struct Ring {
    /// `None`: no whisper; `Some(None)`: a whisper URL that does not resolve.
    whisper: Option<Option<String>>,
    whisper_method: Method,
    send_digits: Option<String>,
    timeout: Duration,
}

impl Ring {
    async fn run(self, shared: Arc<Shared>, placed: Placed) -> LegDone {
        let sid = placed.sid.clone();
        let to = placed.to.clone();
        let end = self.play(&shared, placed).await;
        LegDone { sid, to, end }
    }

    async fn play(self, shared: &Arc<Shared>, placed: Placed) -> LegEnd {
        let Placed {
            sid,
            to,
            fate,
            ring_after,
            answer_after,
            reject_after,
            talk,
            mut ended,
        } = placed;
        let timeout = self.timeout;
        // Each step waits for its moment unless the leg is ended from outside meanwhile.
        macro_rules! wait {
            ($d:expr) => {
                if until_ended(&mut ended, tokio::time::sleep($d))
                    .await
                    .is_none()
                {
                    return LegEnd::Stopped;
                }
            };
        }
        match fate {
            CalleeFate::Busy | CalleeFate::Failed => {
                let at = reject_after.min(timeout);
                wait!(at);
                let status = match fate {
                    _ if at < reject_after => CallState::NoAnswer,
                    CalleeFate::Busy => CallState::Busy,
                    _ => CallState::Failed,
                };
                set_status(shared, &sid, status);
                return LegEnd::Unanswered;
            }
            CalleeFate::Answer | CalleeFate::NoAnswer => {
                if ring_after >= timeout {
                    wait!(timeout);
                    set_status(shared, &sid, CallState::NoAnswer);
                    return LegEnd::Unanswered;
                }
                wait!(ring_after);
                set_status(shared, &sid, CallState::Ringing);
                if fate == CalleeFate::NoAnswer || ring_after + answer_after >= timeout {
                    wait!(timeout.saturating_sub(ring_after));
                    set_status(shared, &sid, CallState::NoAnswer);
                    return LegEnd::Unanswered;
                }
                wait!(answer_after);
                set_status(shared, &sid, CallState::InProgress);
            }
        }
        if *ended.borrow() {
            return LegEnd::Stopped;
        }
        if let Some(digits) = &self.send_digits {
            if let Some(call) = shared.lock().calls.get_mut(&sid) {
                call.log.sent_digits = Some(digits.clone());
            }
        }
        let Some(whisper) = self.whisper else {
            return LegEnd::Passed { talk };
        };
        shared.bump(|s| s.whispers += 1);
        let mut run = LegRun::new(shared.clone(), sid.clone(), Role::Whisper, to, ended);
        let end = match whisper {
            Some(url) => match run
                .fetch(DocPurpose::Whisper, &url, self.whisper_method, Vec::new())
                .await
            {
                Ok(doc) => run.run(doc).await,
                Err(end) => end,
            },
            None => run.fail("whisper url does not resolve".into()),
        };
        if let Some(call) = shared.lock().calls.get_mut(&sid) {
            call.log.end = Some(end);
        }
        match end {
            FlowEnd::Exhausted => LegEnd::Passed { talk },
            FlowEnd::Ended => LegEnd::Stopped,
            FlowEnd::Hangup | FlowEnd::Reject | FlowEnd::Error => {
                shared.bump(|s| s.whisper_declines += 1);
                set_status(shared, &sid, CallState::Completed);
                LegEnd::Declined
            }
        }
    }
}

/// Holds the bridged conversation until the talk time is over or a side hangs up. Returns
/// whether the parent is gone afterwards.
async fn bridge(
    shared: &Arc<Shared>,
    parent: &str,
    winner: &Winner,
    dial: &Dial,
    parent_ended: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    let config = &shared.config;
    let limit = ms(config.flow.second_ms.saturating_mul(dial.time_limit_secs));
    let talk = winner.talk.min(limit);
    let child_ended = {
        let mut guard = shared.lock();
        let state = &mut *guard;
        let lead = state.calls.get_mut(parent).map(|call| {
            call.log.bridged_to = Some(winner.to.clone());
            call.to.clone()
        });
        let child = state.calls.get_mut(&winner.sid);
        let ended = child.map(|call| {
            call.log.bridged_to = lead;
            call.ended.subscribe()
        });
        state.stats.bridged_calls += 1;
        ended
    };
    let Some(mut child_ended) = child_ended else {
        return false;
    };
    let started = Instant::now();
    let side = tokio::select! {
        biased;
        _ = parent_ended.wait_for(|gone| *gone) => HangupSide::Lead,
        _ = child_ended.wait_for(|gone| *gone) => HangupSide::Callee,
        () = tokio::time::sleep(talk) => config.flow.bridge_hangup,
    };
    let secs = u64::try_from(started.elapsed().as_millis().div_ceil(1000)).unwrap_or(u64::MAX);
    {
        let mut state = shared.lock();
        state.stats.talk_seconds += secs;
        for sid in [parent, winner.sid.as_str()] {
            if let Some(call) = state.calls.get_mut(sid) {
                call.log.talk_secs += secs;
            }
        }
    }
    match side {
        HangupSide::Lead => {
            set_status(shared, parent, CallState::Completed);
            stop(shared, &winner.sid);
            true
        }
        HangupSide::Callee => {
            stop(shared, &winner.sid);
            false
        }
    }
}

/// The Dial as its action sees it.
fn outcome(shared: &Shared, race: &Race, dial: &Dial, bridged: bool) -> DialView {
    let sid = race
        .winner
        .as_ref()
        .map(|w| w.sid.clone())
        .or_else(|| race.last.clone());
    let (status, duration) = sid
        .as_deref()
        .and_then(|sid| {
            let state = shared.lock();
            state.calls.get(sid).map(|c| (c.status, c.duration_secs))
        })
        .unwrap_or((CallState::Canceled, None));
    let dial_call_status = match status {
        CallState::Completed | CallState::InProgress => DialCallStatus::Completed,
        // Nobody answered before the parent went away: Twilio reports the Dial canceled.
        _ if race.parent_gone => DialCallStatus::Canceled,
        CallState::Busy => DialCallStatus::Busy,
        CallState::NoAnswer => DialCallStatus::NoAnswer,
        CallState::Canceled => DialCallStatus::Canceled,
        _ => DialCallStatus::Failed,
    };
    let answered = dial_call_status == DialCallStatus::Completed;
    DialView {
        dial_call_status,
        dial_call_sid: sid,
        dial_call_duration: duration.filter(|_| answered),
        bridged,
        numbers: dial.numbers.iter().map(|n| n.number.clone()).collect(),
    }
}

/// `DialCallStatus`, `DialCallSid`, `DialCallDuration`, `DialBridged` (and the recording's
/// `RecordingSid`, `RecordingUrl`, `RecordingDuration` for a recorded bridge), added to the
/// parent's request parameters.
fn action_params(
    view: &DialView,
    recording: Option<&super::recordings::Recording>,
    account: &str,
) -> Vec<(String, String)> {
    let mut p = vec![
        (
            "DialCallStatus".to_string(),
            view.dial_call_status.as_str().to_string(),
        ),
        ("DialBridged".to_string(), view.bridged.to_string()),
    ];
    if let Some(sid) = &view.dial_call_sid {
        p.push(("DialCallSid".to_string(), sid.clone()));
    }
    if let Some(secs) = view.dial_call_duration {
        p.push(("DialCallDuration".to_string(), secs.to_string()));
    }
    if let Some(rec) = recording {
        p.extend(super::recordings::params(account, rec));
    }
    p
}
