//! A text the carrier refused: on the timeline, and a refused opt-out confirmation is not
//! counted as sent.

use super::fixtures::{created, run};
use super::*;
use crate::domain::timeline::TimelineKind;

fn refused(purpose: Purpose, code: Option<u32>) -> OppInput {
    OppInput::SmsRefused {
        purpose,
        code,
        reason: "twilio rejected the request".into(),
    }
}

#[test]
fn a_refused_text_is_on_the_timeline() {
    let opp = created();
    let d = run(&opp, refused(Purpose::Marketing, Some(21211)), 5);
    assert_eq!(d.timeline.len(), 1);
    let e = &d.timeline[0];
    assert_eq!(e.kind, TimelineKind::MessageStatus);
    assert_eq!(e.data["status"], "refused");
    assert_eq!(e.data["code"], 21211);
    assert!(e.reason.contains("refused"), "{}", e.reason);
    assert!(d.effects.is_empty());
}

#[test]
fn a_refused_opt_out_confirmation_is_not_counted_as_sent() {
    let opp = created();
    let stop = OppInput::Replied {
        body: "STOP".into(),
    };
    let stopped = run(&opp, stop.clone(), 5).state;
    assert!(stopped.opt_out_confirmed);
    let d = run(
        &stopped,
        refused(Purpose::OptOutConfirmation, Some(21610)),
        6,
    );
    assert!(!d.state.opt_out_confirmed);
    assert!(d.timeline[0].reason.contains("unsubscribed at the carrier"));
    // The next STOP may confirm again.
    let again = run(&d.state, stop, 7);
    assert!(again.effects.iter().any(|e| matches!(
        e,
        OppEffect::SendSms {
            purpose: Purpose::OptOutConfirmation,
            ..
        }
    )));
    // A refused marketing text leaves the confirmation alone.
    let other = run(&stopped, refused(Purpose::Marketing, None), 6);
    assert!(other.state.opt_out_confirmed);
}
