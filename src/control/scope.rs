//! Team scope, the one rule: a key bound to a team reaches only what is bound to that team;
//! a tenant-wide key reaches everything in its tenant. Every team check (opportunities, keys,
//! principals, tenant-wide settings) asks this module, so the rule is written once.

use uuid::Uuid;

use super::keys::Identity;
use super::{Action, ControlError};

/// How far a caller reaches inside its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Tenant,
    Team(Uuid),
}

impl Scope {
    pub fn of(who: &Identity) -> Self {
        match &who.team {
            Some(team) => Scope::Team(team.id),
            None => Scope::Tenant,
        }
    }

    /// Whether this scope reaches an object bound to `object_team` (`None`: bound to no team,
    /// which only a tenant-wide caller reaches).
    pub fn reaches(self, object_team: Option<Uuid>) -> bool {
        match self {
            Scope::Tenant => true,
            Scope::Team(own) => object_team == Some(own),
        }
    }

    /// The team a list is narrowed to: `None` lists the whole tenant.
    pub fn team(self) -> Option<Uuid> {
        match self {
            Scope::Tenant => None,
            Scope::Team(t) => Some(t),
        }
    }

    /// Whether this scope may take `action` at all. Actions that change what the whole tenant
    /// shares (its carrier account, say) are for tenant-wide keys only: a team's admin runs
    /// its team, not the tenant.
    pub fn permits(self, action: Action) -> bool {
        match self {
            Scope::Tenant => true,
            Scope::Team(_) => !matches!(action, Action::ManageChannels),
        }
    }
}

/// The team a request by `who` names (in `field`): a team-limited key names its own team only,
/// and gets it when it names none; a tenant-wide key names whatever it asks for. Keys,
/// principals, new opportunities and bulk filters all ask this.
pub fn requested_team<'a>(
    who: &'a Identity,
    field: &'static str,
    requested: Option<&'a str>,
) -> Result<Option<&'a str>, ControlError> {
    match (&who.team, requested) {
        (None, requested) => Ok(requested),
        (Some(own), None) => Ok(Some(own.name.as_str())),
        (Some(own), Some(name)) if name.trim() == own.name => Ok(Some(own.name.as_str())),
        (Some(own), Some(_)) => Err(ControlError::invalid(
            field,
            format!("this key is limited to team {:?}", own.name),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_team_reaches_its_own_objects_only() {
        let (west, east) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert!(Scope::Team(west).reaches(Some(west)));
        assert!(!Scope::Team(west).reaches(Some(east)));
        assert!(
            !Scope::Team(west).reaches(None),
            "an unbound object is the tenant's, not the team's"
        );
        for t in [Some(west), Some(east), None] {
            assert!(Scope::Tenant.reaches(t));
        }
    }

    #[test]
    fn tenant_wide_settings_need_a_tenant_wide_key() {
        let team = Scope::Team(Uuid::from_u128(1));
        assert!(!team.permits(Action::ManageChannels));
        assert!(Scope::Tenant.permits(Action::ManageChannels));
        for a in [Action::Read, Action::Operate, Action::ManageAccess] {
            assert!(team.permits(a), "{a:?}");
        }
    }
}
