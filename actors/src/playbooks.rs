//! The playbooks the actors may use, by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::domain::playbook::Playbook;

#[derive(Debug, Clone)]
pub struct Playbooks {
    by_name: Arc<BTreeMap<String, Playbook>>,
    default: String,
}

impl Playbooks {
    /// `default` must name one of `by_name` (the config loader checks it).
    pub fn new(by_name: BTreeMap<String, Playbook>, default: String) -> Self {
        Self {
            by_name: Arc::new(by_name),
            default,
        }
    }

    /// The named playbook. A name that has disappeared from the configuration since the actor
    /// was created falls back to the default, so a config change never strands live actors.
    pub fn get(&self, name: &str) -> Option<&Playbook> {
        self.by_name
            .get(name)
            .or_else(|| self.by_name.get(&self.default))
    }

    /// The playbook an actor runs: its state's (once created) or its creating input's.
    /// `None` for both means the actor does not exist and the input is not a creation.
    pub fn resolve(
        &self,
        from_state: Option<&str>,
        from_input: Option<&str>,
    ) -> Result<&Playbook, neuronx_supervision::Rejected> {
        let Some(name) = from_state.or(from_input) else {
            return Err(crate::convert::rejected("not_found", "not found"));
        };
        self.get(name).ok_or_else(|| {
            crate::convert::rejected("unknown_playbook", format!("no playbook named {name:?}"))
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }
}
