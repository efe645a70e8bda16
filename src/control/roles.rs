//! Roles and what each may do: one pure function, so the whole policy reads in one place and
//! the role-matrix test can check every route against it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A principal's or key's role. Ordered from most to least powerful for granting (see
/// [`Role::can_grant`]); `Integration` sits apart: it writes data but never operates actors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Operator,
    Viewer,
    Integration,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Operator,
        Role::Viewer,
        Role::Integration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Integration => "integration",
        }
    }

    /// Whether a caller with this role may create a key or principal with `other`. An admin
    /// may hand out anything but owner, so no admin can promote itself to owner; nobody else
    /// manages access at all.
    pub fn can_grant(self, other: Role) -> bool {
        match self {
            Role::Owner => true,
            Role::Admin => other != Role::Owner,
            Role::Operator | Role::Viewer | Role::Integration => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}: expected owner, admin, operator, viewer or integration")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// Everything the API lets a caller do, grouped by who may do it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Opportunities, their timelines and calls; teams and principals (to pick an assignee).
    Read,
    /// Create opportunities.
    CreateOpportunity,
    /// Add to or remove from the do-not-call list.
    WriteDnc,
    /// Pause, resume, reassign, escalate, cancel a timer, bulk pause/resume.
    Operate,
    /// Read dead letters and the audit log.
    ReadOps,
    /// Retry or discard dead letters.
    HandleDeadLetters,
    /// Channel credentials.
    ManageChannels,
    /// Teams, principals and API keys.
    ManageAccess,
}

impl Action {
    /// How a refusal names the action, after "role viewer may not ...".
    pub fn describe(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::CreateOpportunity => "create opportunities",
            Action::WriteDnc => "change the do-not-call list",
            Action::Operate => "operate actors",
            Action::ReadOps => "read dead letters or the audit log",
            Action::HandleDeadLetters => "retry or discard dead letters",
            Action::ManageChannels => "manage channel credentials",
            Action::ManageAccess => "manage teams, principals and keys",
        }
    }
}

/// The whole policy. Viewers only read; operators read and act on actors; integrations feed
/// data in (opportunities, do-not-call) and read what they fed, but never operate; admins and
/// owners do everything, owners alone may grant owner (`Role::can_grant`).
pub fn allows(role: Role, action: Action) -> bool {
    use Action as A;
    match role {
        Role::Owner | Role::Admin => true,
        Role::Operator => matches!(
            action,
            A::Read | A::WriteDnc | A::Operate | A::ReadOps | A::HandleDeadLetters
        ),
        Role::Viewer => matches!(action, A::Read | A::ReadOps),
        Role::Integration => matches!(action, A::Read | A::CreateOpportunity | A::WriteDnc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIONS: [Action; 8] = [
        Action::Read,
        Action::CreateOpportunity,
        Action::WriteDnc,
        Action::Operate,
        Action::ReadOps,
        Action::HandleDeadLetters,
        Action::ManageChannels,
        Action::ManageAccess,
    ];

    #[test]
    fn owners_and_admins_may_do_everything() {
        for a in ACTIONS {
            assert!(allows(Role::Owner, a), "{a:?}");
            assert!(allows(Role::Admin, a), "{a:?}");
        }
    }

    #[test]
    fn viewers_only_read() {
        let allowed: Vec<_> = ACTIONS
            .into_iter()
            .filter(|a| allows(Role::Viewer, *a))
            .collect();
        assert_eq!(allowed, vec![Action::Read, Action::ReadOps]);
    }

    #[test]
    fn integrations_feed_data_but_never_operate() {
        assert!(allows(Role::Integration, Action::CreateOpportunity));
        assert!(allows(Role::Integration, Action::WriteDnc));
        assert!(!allows(Role::Integration, Action::Operate));
        assert!(!allows(Role::Integration, Action::ReadOps));
        assert!(!allows(Role::Integration, Action::ManageAccess));
    }

    #[test]
    fn operators_act_on_actors_but_manage_no_access() {
        assert!(allows(Role::Operator, Action::Operate));
        assert!(allows(Role::Operator, Action::HandleDeadLetters));
        assert!(!allows(Role::Operator, Action::CreateOpportunity));
        assert!(!allows(Role::Operator, Action::ManageAccess));
        assert!(!allows(Role::Operator, Action::ManageChannels));
    }

    #[test]
    fn only_an_owner_grants_owner() {
        for r in Role::ALL {
            assert!(Role::Owner.can_grant(r));
            assert_eq!(Role::Admin.can_grant(r), r != Role::Owner);
            for lesser in [Role::Operator, Role::Viewer, Role::Integration] {
                assert!(!lesser.can_grant(r));
            }
        }
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        assert!("root".parse::<Role>().is_err());
    }
}
