//! TwiML documents we answer Twilio with: the handful of verbs the call flow uses, rendered
//! with every text and attribute escaped (a lead's name or a playbook's message may hold `<`,
//! `&` or quotes, and must never change the document's shape).

use std::fmt::Write;

/// One verb of a `<Response>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// Text to speech.
    Say(String),
    /// An audio file by URL.
    Play(String),
    Pause {
        seconds: u32,
    },
    Dial(Dial),
    Gather(Gather),
    Hangup,
    /// Fetch the next document from this URL (POST); the verbs after it never run.
    Redirect(String),
}

/// `<Gather>`: play a prompt and collect keys. Twilio posts `Digits` to `action` once
/// `num_digits` keys were pressed; with no key within `timeout_seconds` it goes on with the
/// verbs after the `<Gather>` (the action is not called).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gather {
    pub action: String,
    pub num_digits: u32,
    pub timeout_seconds: u32,
    /// Said while waiting for the keys.
    pub prompt: String,
}

/// `<Dial>`: ring one or more numbers and connect the first to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    /// Where Twilio posts the dial's result (`DialCallStatus`, `DialCallSid`, …); its answer
    /// continues the call.
    pub action: String,
    /// Seconds each number rings before it counts as no answer (Twilio allows 5–600).
    pub timeout_seconds: u32,
    pub caller_id: Option<String>,
    pub numbers: Vec<Number>,
    /// Record the bridged conversation (both sides, from the answer) and post its status here.
    pub record: Option<DialRecording>,
}

/// `record="record-from-answer-dual"` with its status callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialRecording {
    /// Where `completed` (with `RecordingSid`) and `absent` are posted.
    pub status_callback: String,
}

/// `<Number>` inside a `<Dial>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number {
    /// E.164.
    pub number: String,
    /// TwiML run on the callee's leg once it answers, before the parties are connected
    /// (the whisper). A document that ends normally connects them; `<Hangup/>` declines.
    pub url: Option<String>,
    /// Where the callee leg's own progress (`answered`, `completed`) is posted.
    pub status_callback: Option<String>,
}

/// A whole TwiML document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response(pub Vec<Verb>);

impl Response {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn say(mut self, text: impl Into<String>) -> Self {
        self.0.push(Verb::Say(text.into()));
        self
    }

    pub fn play(mut self, url: impl Into<String>) -> Self {
        self.0.push(Verb::Play(url.into()));
        self
    }

    pub fn dial(mut self, dial: Dial) -> Self {
        self.0.push(Verb::Dial(dial));
        self
    }

    pub fn gather(mut self, gather: Gather) -> Self {
        self.0.push(Verb::Gather(gather));
        self
    }

    pub fn hangup(mut self) -> Self {
        self.0.push(Verb::Hangup);
        self
    }

    pub fn redirect(mut self, url: impl Into<String>) -> Self {
        self.0.push(Verb::Redirect(url.into()));
        self
    }

    /// The document as Twilio reads it.
    pub fn render(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>");
        for verb in &self.0 {
            match verb {
                Verb::Say(text) => {
                    let _ = write!(out, "<Say>{}</Say>", escape(text));
                }
                Verb::Play(url) => {
                    let _ = write!(out, "<Play>{}</Play>", escape(url));
                }
                Verb::Pause { seconds } => {
                    let _ = write!(out, "<Pause length=\"{seconds}\"/>");
                }
                Verb::Hangup => out.push_str("<Hangup/>"),
                Verb::Redirect(url) => {
                    let _ = write!(out, "<Redirect method=\"POST\">{}</Redirect>", escape(url));
                }
                Verb::Dial(d) => render_dial(&mut out, d),
                Verb::Gather(g) => {
                    let _ = write!(
                        out,
                        "<Gather action=\"{}\" method=\"POST\" numDigits=\"{}\" \
                         timeout=\"{}\"><Say>{}</Say></Gather>",
                        escape(&g.action),
                        g.num_digits,
                        g.timeout_seconds,
                        escape(&g.prompt)
                    );
                }
            }
        }
        out.push_str("</Response>");
        out
    }
}

fn render_dial(out: &mut String, d: &Dial) {
    let _ = write!(
        out,
        "<Dial action=\"{}\" method=\"POST\" timeout=\"{}\"",
        escape(&d.action),
        d.timeout_seconds
    );
    if let Some(id) = &d.caller_id {
        let _ = write!(out, " callerId=\"{}\"", escape(id));
    }
    if let Some(rec) = &d.record {
        let _ = write!(
            out,
            " record=\"record-from-answer-dual\" recordingStatusCallback=\"{}\" \
             recordingStatusCallbackMethod=\"POST\" \
             recordingStatusCallbackEvent=\"completed absent\"",
            escape(&rec.status_callback)
        );
    }
    out.push('>');
    for n in &d.numbers {
        out.push_str("<Number");
        if let Some(url) = &n.url {
            let _ = write!(out, " url=\"{}\" method=\"POST\"", escape(url));
        }
        if let Some(cb) = &n.status_callback {
            let _ = write!(
                out,
                " statusCallback=\"{}\" statusCallbackMethod=\"POST\" \
                 statusCallbackEvent=\"answered completed\"",
                escape(cb)
            );
        }
        let _ = write!(out, ">{}</Number>", escape(&n.number));
    }
    out.push_str("</Dial>");
}

/// XML text and attribute escaping; control characters other than tab and newline are
/// dropped (XML 1.0 cannot carry them).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_redirect_escaped() {
        let doc = Response::new()
            .say("Hello")
            .redirect("https://x/voice/inbound?ring=1&a=<b>");
        assert_eq!(
            doc.render(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>Hello</Say>\
             <Redirect method=\"POST\">https://x/voice/inbound?ring=1&amp;a=&lt;b&gt;</Redirect>\
             </Response>"
        );
    }

    #[test]
    fn renders_a_dial_with_whisper_and_callbacks() {
        let doc = Response::new()
            .say("Hold on")
            .dial(Dial {
                action: "https://x/a?call=1&opp=2".into(),
                timeout_seconds: 20,
                caller_id: Some("+14155550100".into()),
                record: None,
                numbers: vec![Number {
                    number: "+14155550111".into(),
                    url: Some("https://x/w?rep=ana".into()),
                    status_callback: Some("https://x/l".into()),
                }],
            })
            .render();
        assert_eq!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>Hold on</Say>\
             <Dial action=\"https://x/a?call=1&amp;opp=2\" method=\"POST\" timeout=\"20\" \
             callerId=\"+14155550100\"><Number url=\"https://x/w?rep=ana\" method=\"POST\" \
             statusCallback=\"https://x/l\" statusCallbackMethod=\"POST\" \
             statusCallbackEvent=\"answered completed\">+14155550111</Number></Dial></Response>"
        );
    }

    #[test]
    fn a_recorded_dial_names_its_status_callback() {
        let doc = Response::new()
            .dial(Dial {
                action: "https://x/a".into(),
                timeout_seconds: 20,
                caller_id: None,
                record: Some(DialRecording {
                    status_callback: "https://x/r?call=1&consent=all_party".into(),
                }),
                numbers: vec![Number {
                    number: "+14155550111".into(),
                    url: None,
                    status_callback: None,
                }],
            })
            .render();
        assert!(
            doc.contains(
                " record=\"record-from-answer-dual\" \
                 recordingStatusCallback=\"https://x/r?call=1&amp;consent=all_party\""
            ),
            "{doc}"
        );
    }

    #[test]
    fn renders_a_gather_around_its_prompt() {
        let doc = Response::new()
            .gather(Gather {
                action: "https://x/accept?call=1&rep=ana".into(),
                num_digits: 1,
                timeout_seconds: 8,
                prompt: "Press 1 for <Ana>".into(),
            })
            .hangup()
            .render();
        assert_eq!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>\
             <Gather action=\"https://x/accept?call=1&amp;rep=ana\" method=\"POST\" \
             numDigits=\"1\" timeout=\"8\"><Say>Press 1 for &lt;Ana&gt;</Say></Gather>\
             <Hangup/></Response>"
        );
    }

    #[test]
    fn text_cannot_break_out_of_its_element() {
        let doc = Response::new()
            .say("Ana </Say><Dial>+1900</Dial> & \"co\"\u{1}")
            .hangup()
            .render();
        assert!(doc.contains(
            "<Say>Ana &lt;/Say&gt;&lt;Dial&gt;+1900&lt;/Dial&gt; &amp; &quot;co&quot;</Say>"
        ));
        assert!(doc.ends_with("<Hangup/></Response>"));
        assert_eq!(doc.matches("<Dial").count(), 0);
    }
}
