//! Executing TwiML on one leg: the call's own document at answer (its `Url`, fetched and signed
//! like every webhook, or its inline `Twiml`), or a whisper on a `<Dial>` leg. Verbs run in
//! document order; a verb that answers with a new document (Gather/Record/Dial action,
//! Redirect) replaces the rest of the current one, as on Twilio.
//!
//! Every wait and every fetch races the leg's `ended` signal, so a hang-up (over REST, by the
//! lead, by the other party) stops the flow where it is.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::call_request::FlowSource;
use super::calls::CallState;
use super::config::ms;
use super::dial;
use super::fetch::{fetch_text, until_ended};
use super::legs::{self, digits_for, resolve, take_digits};
use super::state::Shared;
use super::twiml::{self, Gather, Method, Record, Verb, VerbKind};
use super::views::{DocPurpose, DocumentView, FlowEnd};
use super::webhook::Outgoing;

/// Which leg a flow runs on, which decides the verbs it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The call created over REST: every verb.
    Parent,
    /// A `<Number url>` on the callee's leg: Say, Play, Pause, Gather, Hangup, Redirect only
    /// (Twilio never lets a whisper `<Dial>`).
    Whisper,
}

/// A document ready to run, and the URL it came from (relative URLs and Gather's default action
/// resolve against it; `None` for inline TwiML).
pub(crate) struct Doc {
    pub verbs: Vec<Verb>,
    pub url: Option<String>,
}

/// What a verb leaves behind.
pub(crate) enum Next {
    Continue,
    Replace(Doc),
    End(FlowEnd),
}

/// The flow on one leg.
pub(crate) struct LegRun {
    pub shared: Arc<Shared>,
    pub sid: String,
    role: Role,
    /// The party on this leg: whose digits `<Gather>` reads.
    number: String,
    pub ended: watch::Receiver<bool>,
    gathers: usize,
    documents: u32,
    /// Answered by a machine: Say/Play count as voicemail plays.
    machine: bool,
}

/// Runs the TwiML of the REST call `sid`, which has just been answered. Spawned by the
/// scheduler, so stopping the simulator aborts it.
pub(crate) async fn run(shared: Arc<Shared>, sid: String) {
    let found = shared.lock().calls.get(&sid).map(|call| {
        (
            call.flow.clone(),
            call.ended.subscribe(),
            // The party on this leg: the caller of an inbound call, else the one we called.
            if call.inbound {
                call.from.clone()
            } else {
                call.to.clone()
            },
            call.machine_answered(),
        )
    });
    let Some((Some(source), ended, number, machine)) = found else {
        return;
    };
    let mut leg = LegRun::new(shared.clone(), sid.clone(), Role::Parent, number, ended);
    leg.machine = machine;
    let inline = matches!(source, FlowSource::Inline(_));
    let end = match source {
        FlowSource::Url { url, method } => {
            match leg.fetch(DocPurpose::Url, &url, method, Vec::new()).await {
                Ok(doc) => leg.run(doc).await,
                Err(end) => end,
            }
        }
        FlowSource::Inline(xml) => match leg.inline(&xml) {
            Ok(doc) => leg.run(doc).await,
            Err(end) => end,
        },
    };
    let mut guard = shared.lock();
    let state = &mut *guard;
    let Some(call) = state.calls.get_mut(&sid) else {
        return;
    };
    call.log.end = Some(end);
    // Inline TwiML keeps the answer mix's timeline: running out of verbs leaves the call to end
    // when the lead hangs up, as the engine's `<Pause>` placeholder always has. Anything else
    // (a fetched document ending, `<Hangup/>`, an application error) hangs up now, as Twilio
    // does.
    let hang_up = match end {
        FlowEnd::Ended => false,
        FlowEnd::Exhausted => !inline,
        FlowEnd::Hangup | FlowEnd::Reject | FlowEnd::Error => true,
    };
    if hang_up {
        let now = tokio::time::Instant::now();
        let jobs = super::calls::advance(
            call,
            CallState::Completed,
            &shared.config,
            &mut state.stats,
            now,
        );
        drop(guard);
        shared.schedule(jobs);
    }
}

impl LegRun {
    pub fn new(
        shared: Arc<Shared>,
        sid: String,
        role: Role,
        number: String,
        ended: watch::Receiver<bool>,
    ) -> Self {
        Self {
            shared,
            sid,
            role,
            number,
            ended,
            gathers: 0,
            documents: 0,
            machine: false,
        }
    }

    /// Runs `doc` (and whatever documents its verbs lead to) to its end.
    pub async fn run(&mut self, mut doc: Doc) -> FlowEnd {
        let mut next = 0;
        loop {
            if self.is_ended() {
                return FlowEnd::Ended;
            }
            let Some(verb) = doc.verbs.get(next).cloned() else {
                return FlowEnd::Exhausted;
            };
            next += 1;
            match self.verb(&verb, doc.url.as_deref()).await {
                Next::Continue => {}
                Next::Replace(new) => {
                    doc = new;
                    next = 0;
                }
                Next::End(end) => return end,
            }
        }
    }

    fn is_ended(&self) -> bool {
        *self.ended.borrow()
    }

    /// Boxed because a `<Dial>` runs whispers, which run verbs: the future would contain itself.
    fn verb<'a>(
        &'a mut self,
        verb: &'a Verb,
        base: Option<&'a str>,
    ) -> Pin<Box<dyn Future<Output = Next> + Send + 'a>> {
        Box::pin(async move {
            let Some(kind) = verb.kind() else {
                return self.error(format!("unknown verb {verb:?}"));
            };
            let allowed = match self.role {
                Role::Parent => true,
                Role::Whisper => matches!(
                    kind,
                    VerbKind::Say
                        | VerbKind::Play
                        | VerbKind::Pause
                        | VerbKind::Gather
                        | VerbKind::Hangup
                        | VerbKind::Redirect
                ),
            };
            if !allowed {
                return self.error(format!("<{kind:?}> is not allowed in a whisper"));
            }
            self.count(kind);
            let shared = self.shared.clone();
            let flow = &shared.config.flow;
            match verb {
                Verb::Say { loops, text } => {
                    self.said(text);
                    self.wait(ms(flow.say_ms * u64::from(*loops))).await
                }
                Verb::Play { loops } => self.wait(ms(flow.play_ms * u64::from(*loops))).await,
                Verb::Pause { secs } => self.wait(ms(flow.second_ms.saturating_mul(*secs))).await,
                Verb::Gather(g) => self.gather(g, base).await,
                Verb::Record(r) => self.record(r, base).await,
                Verb::Dial(d) => dial::run(self, d, base).await,
                Verb::Hangup => Next::End(FlowEnd::Hangup),
                Verb::Reject => Next::End(FlowEnd::Reject),
                Verb::Redirect { url, method } => {
                    self.follow(DocPurpose::Redirect, base, url, *method, Vec::new())
                        .await
                }
                // Refused above (it has no kind).
                Verb::Unknown(_) => Next::Continue,
            }
        })
    }

    fn said(&self, text: &str) {
        if let Some(call) = self.shared.lock().calls.get_mut(&self.sid) {
            call.log.said.push(text.to_string());
        }
    }

    fn count(&self, kind: VerbKind) {
        let machine = self.machine && matches!(kind, VerbKind::Say | VerbKind::Play);
        let mut state = self.shared.lock();
        *state
            .stats
            .verbs_executed
            .entry(kind.as_str().to_string())
            .or_insert(0) += 1;
        if machine {
            state.stats.voicemail_plays += 1;
        }
        if let Some(call) = state.calls.get_mut(&self.sid) {
            call.log.verbs.push(kind);
        }
    }

    /// An application error: counted, and the flow stops.
    pub fn fail(&self, why: String) -> FlowEnd {
        tracing::debug!(sid = %self.sid, %why, "simulated application error");
        self.shared.bump(|s| s.twiml_errors += 1);
        FlowEnd::Error
    }

    fn error(&self, why: String) -> Next {
        Next::End(self.fail(why))
    }

    /// Waits `d`, or less if the leg ends meanwhile.
    pub async fn wait(&mut self, d: Duration) -> Next {
        match until_ended(&mut self.ended, tokio::time::sleep(d)).await {
            Some(()) => Next::Continue,
            None => Next::End(FlowEnd::Ended),
        }
    }

    async fn gather(&mut self, g: &Gather, base: Option<&str>) -> Next {
        for prompt in &g.prompts {
            match self.verb(prompt, base).await {
                Next::Continue => {}
                other => return other,
            }
        }
        let nth = self.gathers;
        self.gathers += 1;
        let shared = self.shared.clone();
        let config = &shared.config;
        let pressed = digits_for(&shared.lock(), config, &self.number, nth);
        let (digits, complete) = match pressed {
            Some(keys) => take_digits(&keys, g.num_digits, &g.finish_on_key),
            None => (String::new(), false),
        };
        if !complete {
            // Twilio waits `timeout` seconds for (more) input before giving up.
            let timeout = ms(config.flow.second_ms.saturating_mul(g.timeout_secs));
            if let Next::End(end) = self.wait(timeout).await {
                return Next::End(end);
            }
        }
        if digits.is_empty() && !g.action_on_empty_result {
            // No input: fall through to the next verb, no request.
            return Next::Continue;
        }
        if !digits.is_empty() {
            let mut state = self.shared.lock();
            state.stats.gathers_with_digits += 1;
            if let Some(call) = state.calls.get_mut(&self.sid) {
                call.log.digits.push(digits.clone());
            }
        }
        // Without `action` Twilio posts to the current document's URL; inline TwiML has none.
        let Some(action) = g.action.as_deref().or(base) else {
            return Next::Continue;
        };
        let extra = vec![("Digits".to_string(), digits)];
        self.follow(DocPurpose::GatherAction, base, action, g.method, extra)
            .await
    }

    async fn record(&mut self, r: &Record, base: Option<&str>) -> Next {
        let shared = self.shared.clone();
        let config = &shared.config;
        let secs = config.flow.record_secs.min(r.max_length_secs);
        if let Next::End(end) = self
            .wait(ms(config.flow.second_ms.saturating_mul(secs)))
            .await
        {
            return Next::End(end);
        }
        let Some(action) = r.action.as_deref() else {
            return Next::Continue;
        };
        let account = &config.account_sid;
        let rec_sid = shared.lock().new_sid("RE");
        let extra = vec![
            (
                "RecordingUrl".to_string(),
                format!(
                    "https://api.twilio.com/2010-04-01/Accounts/{account}/Recordings/{rec_sid}"
                ),
            ),
            ("RecordingSid".to_string(), rec_sid),
            ("RecordingDuration".to_string(), secs.to_string()),
        ];
        self.follow(DocPurpose::RecordAction, base, action, r.method, extra)
            .await
    }

    /// Requests `target` (resolved against `base`) and goes on with the document it answers.
    pub async fn follow(
        &mut self,
        purpose: DocPurpose,
        base: Option<&str>,
        target: &str,
        method: Method,
        extra: Vec<(String, String)>,
    ) -> Next {
        let Some(url) = resolve(base, target) else {
            return self.error(format!("cannot resolve {target:?} against {base:?}"));
        };
        match self.fetch(purpose, &url, method, extra).await {
            Ok(doc) => Next::Replace(doc),
            Err(end) => Next::End(end),
        }
    }

    /// The create's inline document, parsed.
    fn inline(&mut self, xml: &str) -> Result<Doc, FlowEnd> {
        self.documents += 1;
        let parsed = twiml::parse(xml);
        legs::log_document(
            &self.shared,
            &self.sid,
            DocumentView {
                purpose: DocPurpose::Inline,
                url: None,
                method: None,
                http_status: None,
                ok: parsed.is_ok(),
                error: parsed.as_ref().err().cloned(),
            },
        );
        parsed
            .map(|verbs| Doc { verbs, url: None })
            .map_err(|why| self.fail(why))
    }

    /// Fetches a document with this leg's request parameters plus `extra`, signed. Errors (and
    /// the leg ending meanwhile) come back as the flow's end.
    pub async fn fetch(
        &mut self,
        purpose: DocPurpose,
        url: &str,
        method: Method,
        extra: Vec<(String, String)>,
    ) -> Result<Doc, FlowEnd> {
        self.documents += 1;
        if self.documents > self.shared.config.flow.max_documents {
            return Err(self.fail("too many documents (a redirect loop?)".into()));
        }
        let Some(out) = self.signed(url, method, extra) else {
            return Err(FlowEnd::Ended);
        };
        self.shared.bump(|s| s.twiml_fetches += 1);
        let shared = self.shared.clone();
        let answer = until_ended(&mut self.ended, fetch_text(&shared, &out)).await;
        let Some((http_status, body)) = answer else {
            return Err(FlowEnd::Ended);
        };
        let parsed = body.and_then(|text| twiml::parse(&text));
        legs::log_document(
            &self.shared,
            &self.sid,
            DocumentView {
                purpose,
                url: Some(url.to_string()),
                method: legs::method_name(method),
                http_status,
                ok: parsed.is_ok(),
                error: parsed.as_ref().err().cloned(),
            },
        );
        parsed
            .map(|verbs| Doc {
                verbs,
                url: Some(url.to_string()),
            })
            .map_err(|why| self.fail(why))
    }

    /// Requests `url` and ignores the answer: a Dial `action` after the parent hung up (Twilio
    /// still requests it; there is no call left to run its TwiML on).
    pub async fn notify(
        &mut self,
        purpose: DocPurpose,
        url: &str,
        method: Method,
        extra: Vec<(String, String)>,
    ) {
        let Some(out) = self.signed(url, method, extra) else {
            return;
        };
        self.shared.bump(|s| s.twiml_fetches += 1);
        let (http_status, body) = fetch_text(&self.shared, &out).await;
        legs::log_document(
            &self.shared,
            &self.sid,
            DocumentView {
                purpose,
                url: Some(url.to_string()),
                method: legs::method_name(method),
                http_status,
                ok: body.is_ok(),
                error: body.err(),
            },
        );
    }

    /// The signed request for this leg's parameters plus `extra`; `None` if the call is gone.
    fn signed(&self, url: &str, method: Method, extra: Vec<(String, String)>) -> Option<Outgoing> {
        let config = &self.shared.config;
        let mut params = self
            .shared
            .lock()
            .calls
            .get(&self.sid)?
            .request_params(&config.account_sid);
        params.extend(extra);
        Some(Outgoing::signed_with(
            method,
            &config.auth_token,
            url,
            params,
        ))
    }
}
