//! A call's status and what follows from it (terminal or not, the SIP code reported).

/// A call's status, in Twilio's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallState {
    Queued,
    Initiated,
    Ringing,
    InProgress,
    Completed,
    Busy,
    NoAnswer,
    Failed,
    Canceled,
}

impl CallState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Initiated => "initiated",
            Self::Ringing => "ringing",
            Self::InProgress => "in-progress",
            Self::Completed => "completed",
            Self::Busy => "busy",
            Self::NoAnswer => "no-answer",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    pub fn rank(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Initiated => 1,
            Self::Ringing => 2,
            Self::InProgress => 3,
            _ => 4,
        }
    }

    pub fn is_terminal(self) -> bool {
        self.rank() == 4
    }

    pub fn sip_code(self) -> &'static str {
        match self {
            Self::Busy => "486",
            Self::NoAnswer | Self::Canceled => "487",
            Self::Failed => "404",
            _ => "200",
        }
    }
}
