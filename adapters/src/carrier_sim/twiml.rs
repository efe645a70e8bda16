//! TwiML documents: XML into a `<Response>` of typed verbs. Attributes are read by their
//! lowerCamelCase names with Twilio's defaults; malformed values fall back to the default (Twilio
//! is lenient the same way), while malformed XML, a root other than `<Response>` or a `<Dial>`
//! with nothing to dial is a parse error (Twilio's 12100, "document parse failure").
//! An element that is not a verb we know becomes [`Verb::Unknown`], so execution stops at it
//! rather than refusing the whole document.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use serde::{Deserialize, Serialize};

/// `GET` or `POST`, for the `method` attributes; anything else means `POST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
}

impl Method {
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some(v) if v.eq_ignore_ascii_case("GET") => Self::Get,
            _ => Self::Post,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// The kinds of verb, as counted in `/sim/stats` (`verbs_executed`) and logged per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerbKind {
    Say,
    Play,
    Pause,
    Gather,
    Dial,
    Record,
    Hangup,
    Redirect,
    Reject,
}

impl VerbKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Say => "say",
            Self::Play => "play",
            Self::Pause => "pause",
            Self::Gather => "gather",
            Self::Dial => "dial",
            Self::Record => "record",
            Self::Hangup => "hangup",
            Self::Redirect => "redirect",
            Self::Reject => "reject",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verb {
    /// `voice` and `language` are accepted and not checked.
    Say {
        loops: u32,
        /// What is said (kept so a test can tell what a party heard).
        text: String,
    },
    Play {
        loops: u32,
    },
    Pause {
        secs: u64,
    },
    Gather(Gather),
    Dial(Dial),
    Record(Record),
    Hangup,
    Redirect {
        url: String,
        method: Method,
    },
    Reject,
    /// An element we do not know: execution stops there with an application error.
    Unknown(String),
}

impl Verb {
    pub fn kind(&self) -> Option<VerbKind> {
        Some(match self {
            Self::Say { .. } => VerbKind::Say,
            Self::Play { .. } => VerbKind::Play,
            Self::Pause { .. } => VerbKind::Pause,
            Self::Gather(_) => VerbKind::Gather,
            Self::Dial(_) => VerbKind::Dial,
            Self::Record(_) => VerbKind::Record,
            Self::Hangup => VerbKind::Hangup,
            Self::Redirect { .. } => VerbKind::Redirect,
            Self::Reject => VerbKind::Reject,
            Self::Unknown(_) => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Gather {
    pub num_digits: Option<usize>,
    pub timeout_secs: u64,
    pub finish_on_key: String,
    pub action: Option<String>,
    pub method: Method,
    pub action_on_empty_result: bool,
    /// Nested `<Say>`, `<Play>`, `<Pause>`, played before waiting for digits.
    pub prompts: Vec<Verb>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub action: Option<String>,
    pub method: Method,
    pub max_length_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dial {
    pub action: Option<String>,
    pub method: Method,
    pub timeout_secs: u64,
    pub caller_id: Option<String>,
    /// Any `record` value other than `do-not-record`/`false`.
    pub record: bool,
    /// Where the recording's `completed` status is posted.
    pub recording_status_callback: Option<String>,
    pub sequential: bool,
    /// Accepted; the parent leg is already answered in this simulator, so it changes nothing.
    pub answer_on_bridge: bool,
    pub time_limit_secs: u64,
    pub numbers: Vec<DialNumber>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DialNumber {
    pub number: String,
    /// Whisper TwiML run on the callee's leg before bridging.
    pub url: Option<String>,
    pub method: Method,
    pub status_callback: Option<String>,
    /// The raw space-separated `statusCallbackEvent` (default `completed`).
    pub status_callback_events: Vec<String>,
    pub status_callback_method: Method,
    pub send_digits: Option<String>,
}

/// Parses a whole document into the verbs of its `<Response>`.
pub(crate) fn parse(xml: &str) -> Result<Vec<Verb>, String> {
    let root = parse_tree(xml)?;
    if root.name != "Response" {
        return Err(format!("root element is <{}>, not <Response>", root.name));
    }
    root.elements().map(verb).collect()
}

fn verb(el: &Element) -> Result<Verb, String> {
    Ok(match el.name.as_str() {
        "Say" => Verb::Say {
            loops: loops(el.attr("loop")),
            text: el.text().trim().to_string(),
        },
        "Play" => Verb::Play {
            loops: loops(el.attr("loop")),
        },
        "Pause" => Verb::Pause {
            secs: num(el.attr("length"), 1),
        },
        "Gather" => Verb::Gather(Gather {
            num_digits: el.attr("numDigits").and_then(|v| v.trim().parse().ok()),
            timeout_secs: num(el.attr("timeout"), 5),
            finish_on_key: el.attr("finishOnKey").unwrap_or("#").to_string(),
            action: non_empty(el.attr("action")),
            method: Method::parse(el.attr("method")),
            action_on_empty_result: el.attr("actionOnEmptyResult") == Some("true"),
            prompts: el
                .elements()
                .map(|child| match child.name.as_str() {
                    "Say" | "Play" | "Pause" => verb(child),
                    other => Ok(Verb::Unknown(format!("Gather/{other}"))),
                })
                .collect::<Result<_, _>>()?,
        }),
        "Dial" => Verb::Dial(dial(el)?),
        "Record" => Verb::Record(Record {
            action: non_empty(el.attr("action")),
            method: Method::parse(el.attr("method")),
            max_length_secs: num(el.attr("maxLength"), 3600),
        }),
        "Hangup" => Verb::Hangup,
        "Redirect" => Verb::Redirect {
            url: el.text().trim().to_string(),
            method: Method::parse(el.attr("method")),
        },
        "Reject" => Verb::Reject,
        other => Verb::Unknown(other.to_string()),
    })
}

fn dial(el: &Element) -> Result<Dial, String> {
    let mut numbers = Vec::new();
    for child in el.elements() {
        if child.name != "Number" {
            // <Client>, <Sip>, <Conference>, <Queue>: nouns this simulator does not connect.
            return Err(format!("<Dial><{}> is not supported", child.name));
        }
        numbers.push(DialNumber {
            number: child.text().trim().to_string(),
            url: non_empty(child.attr("url")),
            method: Method::parse(child.attr("method")),
            status_callback: non_empty(child.attr("statusCallback")),
            status_callback_events: child
                .attr("statusCallbackEvent")
                .unwrap_or("completed")
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            status_callback_method: Method::parse(child.attr("statusCallbackMethod")),
            send_digits: non_empty(child.attr("sendDigits")),
        });
    }
    if numbers.is_empty() {
        let bare = el.text().trim().to_string();
        if !bare.is_empty() {
            numbers.push(DialNumber {
                number: bare,
                url: None,
                method: Method::Post,
                status_callback: None,
                status_callback_events: Vec::new(),
                status_callback_method: Method::Post,
                send_digits: None,
            });
        }
    }
    if numbers.is_empty() {
        return Err("<Dial> has nothing to dial".into());
    }
    let record = el
        .attr("record")
        .is_some_and(|r| !matches!(r, "do-not-record" | "false" | ""));
    Ok(Dial {
        action: non_empty(el.attr("action")),
        method: Method::parse(el.attr("method")),
        timeout_secs: num(el.attr("timeout"), 30).max(1),
        caller_id: non_empty(el.attr("callerId")),
        record,
        recording_status_callback: non_empty(el.attr("recordingStatusCallback")),
        sequential: el.attr("sequential") == Some("true"),
        answer_on_bridge: el.attr("answerOnBridge") == Some("true"),
        time_limit_secs: num(el.attr("timeLimit"), 14_400),
        numbers,
    })
}

/// `loop`: default 1; 0 means "repeat" (forever for Say, up to 1000 for Play), which a
/// simulation caps at 1000 so a document always ends.
fn loops(value: Option<&str>) -> u32 {
    match value.and_then(|v| v.trim().parse::<u32>().ok()) {
        Some(0) => 1000,
        Some(n) => n.min(1000),
        None => 1,
    }
}

fn num(value: Option<&str>, default: u64) -> u64 {
    value.and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

// ---------------------------------------------------------------------------------------------
// A minimal element tree over quick-xml's events.

#[derive(Debug, Default)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
}

#[derive(Debug)]
enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }
}

fn start(e: &BytesStart<'_>) -> Result<Element, String> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|err| format!("bad attribute in <{name}>: {err}"))?;
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|err| format!("bad value of {key} in <{name}>: {err}"))?;
        attrs.push((key, value.into_owned()));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
    })
}

fn parse_tree(xml: &str) -> Result<Element, String> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut add = |stack: &mut Vec<Element>, node: Node| -> Result<(), String> {
        match (stack.last_mut(), node) {
            (Some(parent), node) => parent.children.push(node),
            (None, Node::Text(t)) if t.trim().is_empty() => {}
            (None, Node::Text(_)) => return Err("text outside the root element".into()),
            (None, Node::Element(e)) => {
                if root.is_some() {
                    return Err("more than one root element".into());
                }
                root = Some(e);
            }
        }
        Ok(())
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) => stack.push(start(&e)?),
            Event::Empty(e) => add(&mut stack, Node::Element(start(&e)?))?,
            Event::End(_) => {
                let Some(done) = stack.pop() else {
                    return Err("unbalanced end tag".into());
                };
                add(&mut stack, Node::Element(done))?;
            }
            Event::Text(t) => {
                let text = t.xml10_content().map_err(|e| e.to_string())?;
                add(&mut stack, Node::Text(text.into_owned()))?;
            }
            Event::CData(t) => {
                let text = t.decode().map_err(|e| e.to_string())?;
                add(&mut stack, Node::Text(text.into_owned()))?;
            }
            Event::GeneralRef(r) => {
                let text = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| e.to_string())?;
                        resolve_predefined_entity(&name)
                            .ok_or_else(|| format!("unknown entity &{name};"))?
                            .to_string()
                    }
                };
                add(&mut stack, Node::Text(text))?;
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err("document ends inside an element".into());
    }
    root.ok_or_else(|| "empty document".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_verbs_neuronx_emits() {
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
            <Response>
              <Say voice="Polly.Joanna" loop="2">Hi &amp; welcome</Say>
              <Gather numDigits="1" timeout="3" action="/accept"><Say>Press 1</Say></Gather>
              <Dial action="/dial-done" timeout="25" callerId="+15005550001" sequential="true"
                    record="record-from-answer" timeLimit="600">
                <Number url="/whisper" statusCallback="/leg"
                        statusCallbackEvent="initiated ringing answered completed">+15550001</Number>
                <Number>+15550002</Number>
              </Dial>
              <Pause/>
              <Hangup/>
            </Response>"#;
        let verbs = parse(doc).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(verbs.len(), 5);
        assert!(matches!(verbs[0], Verb::Say { loops: 2, .. }));
        let Verb::Gather(g) = &verbs[1] else {
            panic!("{verbs:?}")
        };
        assert_eq!(g.num_digits, Some(1));
        assert_eq!(g.timeout_secs, 3);
        assert_eq!(g.finish_on_key, "#");
        assert_eq!(g.action.as_deref(), Some("/accept"));
        assert!(matches!(g.prompts[..], [Verb::Say { loops: 1, .. }]));
        let Verb::Dial(d) = &verbs[2] else {
            panic!("{verbs:?}")
        };
        assert!(d.sequential && d.record);
        assert_eq!((d.timeout_secs, d.time_limit_secs), (25, 600));
        assert_eq!(d.numbers[0].number, "+15550001");
        assert_eq!(d.numbers[0].status_callback_events.len(), 4);
        assert_eq!(d.numbers[1].status_callback_events, ["completed"]);
        assert_eq!(verbs[3], Verb::Pause { secs: 1 });
        assert_eq!(verbs[4], Verb::Hangup);
    }

    #[test]
    fn bare_dial_unknown_verbs_and_errors() {
        let verbs = parse("<Response><Dial> +15550003 </Dial><Enqueue>x</Enqueue></Response>")
            .unwrap_or_else(|e| panic!("{e}"));
        let Verb::Dial(d) = &verbs[0] else {
            panic!("{verbs:?}")
        };
        assert_eq!(d.numbers[0].number, "+15550003");
        assert_eq!(d.timeout_secs, 30);
        assert_eq!(verbs[1], Verb::Unknown("Enqueue".into()));
        assert!(parse("<Response/>").is_ok_and(|v| v.is_empty()));
        for bad in [
            "",
            "<html><body>oops</body></html>",
            "<Response><Say>unclosed</Response>",
            "<Response><Dial></Dial></Response>",
            "Internal Server Error",
            "<Response/><Response/>",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
