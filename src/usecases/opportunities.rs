//! Opportunities: create (idempotent on the external id), read, list, and the timeline.

use neuronx_adapters::smtp::parse_address;
use std::collections::BTreeMap;

use base64::Engine as _;
use neuronx_actors::domain::opportunity::{
    normalize_phone, validate_address, Contact, ContactHistory, OppInput, OppReply, SlaOverride,
    Stage,
};
use neuronx_actors::domain::playbook::Playbook;
use neuronx_actors::opportunity as opp;
use neuronx_supervision::store::ListQuery;
use neuronx_supervision::{EngineHandle, SubmitOutcome, TenantId};
use uuid::Uuid;

use super::views::{ms_to_time, Accepted, OpportunityView, Page, TimelineItem, TimerView};
use super::{authorize, sees, submit, visible, Error};
use crate::contacts::{self, Claim, ContactKey, DuplicateContacts, Taken};
use crate::control::binding::{self, Binding};
use crate::control::keys::Identity;
use crate::control::{access, Action, Scope};
use crate::input::{self, Lines};

/// A new lead, as a caller describes it.
pub struct NewOpportunity {
    pub external_id: String,
    pub contact: Contact,
    pub playbook: Option<String>,
    pub first_touch_seconds: Option<u64>,
    pub assignee: Option<String>,
    pub team: Option<String>,
}

/// How a create ended.
pub enum Created {
    /// A new opportunity (201).
    New(Box<OpportunityView>),
    /// The external id existed: the opportunity as it is (200).
    Existing(Box<OpportunityView>),
    /// Durable; another instance creates it (202).
    Accepted(Accepted),
    /// The contact already had a live opportunity and the lead joined it (merge mode, ADR
    /// 0046): that opportunity as it is (200).
    Merged(Box<OpportunityView>),
}

/// The playbooks a create may name, and the one it gets when it names none.
pub struct Playbooks<'a> {
    pub all: &'a BTreeMap<String, Playbook>,
    pub default: &'a str,
}

/// Checks a new lead field by field; answers its contact with the phone in E.164 form.
fn validate(new: &NewOpportunity, playbooks: &Playbooks<'_>) -> Result<Contact, Error> {
    input::check("external_id", &new.external_id, Lines::One, 1, 200)?;
    let c = &new.contact;
    input::check("contact.name", &c.name, Lines::One, 1, 200)?;
    let phone = c
        .phone
        .as_deref()
        .map(|p| normalize_phone(p).map_err(|e| Error::invalid("contact.phone", e.to_string())))
        .transpose()?;
    // One person, one cadence matches leads by phone, then email: a lead needs one of them.
    if phone.is_none() && c.email.is_none() {
        return Err(Error::invalid(
            "contact.phone",
            "a lead needs a phone or an email",
        ));
    }
    if let Some(tz) = &c.timezone {
        tz.parse::<chrono_tz::Tz>().map_err(|_| {
            Error::invalid("contact.timezone", format!("unknown IANA time zone {tz:?}"))
        })?;
    }
    // Read as the SMTP client reads it, so an address consented for email is one we can mail.
    // Without email consent it is only a CRM field: one the client cannot read (a comment in
    // parentheses, say) is kept as written rather than costing the lead its calls and texts.
    let email = match &c.email {
        Some(email) => {
            input::check("contact.email", email, Lines::One, 3, 320)?;
            match parse_address(email) {
                Ok(parsed) => Some(parsed),
                Err(e) if c.consent.email => return Err(Error::invalid("contact.email", e)),
                Err(e) => {
                    validate_address(email.trim())
                        .map_err(|_| Error::invalid("contact.email", e))?;
                    Some(email.trim().to_owned())
                }
            }
        }
        None => None,
    };
    if let Some(p) = &new.playbook {
        if !playbooks.all.contains_key(p) {
            return Err(Error::invalid(
                "playbook",
                format!("unknown playbook {p:?}"),
            ));
        }
    }
    if let Some(s) = new.first_touch_seconds {
        if !(1..=30 * 86_400).contains(&s) {
            return Err(Error::invalid(
                "sla.first_touch_seconds",
                "must be between 1 and 2592000",
            ));
        }
    }
    if let Some(a) = &new.assignee {
        input::check("assignee", a, Lines::One, 1, 200)?;
    }
    if let Some(t) = &new.team {
        input::check("team", t, Lines::One, 1, 100)?;
    }
    Ok(Contact {
        name: c.name.trim().to_owned(),
        phone,
        email,
        ..c.clone()
    })
}

/// Creates an opportunity, or answers the existing one for a repeated external id. Binds it to
/// its team (taking a round-robin turn only when new) before it exists.
pub async fn create(
    engine: &EngineHandle,
    playbooks: &Playbooks<'_>,
    who: &Identity,
    new: NewOpportunity,
) -> Result<Created, Error> {
    let tenant = authorize(who, Action::CreateOpportunity)?;
    let contact = validate(&new, playbooks)?;
    let external_id = new.external_id.trim().to_owned();
    let id = opp::id_for(tenant, &external_id);
    // One person, one cadence (ADR 0046): claim the contact's phone, then its email, before
    // anything else, unless this external id exists already (a repeated create answers it as
    // it is, even when another opportunity holds the contact now).
    let store = engine.store();
    let exists = store.actor_exists(tenant, opp::KIND.as_str(), id).await?;
    let claim = if exists {
        Claim::Held {
            prior: ContactHistory::default(),
            taken: Taken::default(),
        }
    } else {
        let keys = ContactKey::of(contact.phone.as_deref(), contact.email.as_deref());
        contacts::claim(store, tenant, &keys, id).await?
    };
    let (history, taken) = match claim {
        // The caps count every attempt to the number: the closed opportunity's too.
        Claim::Held { prior, taken } => (prior, taken),
        Claim::Busy => {
            return Err(Error::Conflict {
                code: "contact_busy".into(),
                message: "another lead of this contact is being created; retry in a moment".into(),
            })
        }
        // Joined by phone or by email alike; the skipped lead holds no claim (the live one
        // keeps the contact).
        Claim::Live { holder: live, by } => {
            tracing::debug!(%live, matched_by = by, "the lead's contact has a live opportunity");
            match contacts::duplicate_contacts(store, tenant).await? {
                DuplicateContacts::Merge => return merge(engine, who, live, external_id).await,
                DuplicateContacts::Skip => (
                    ContactHistory {
                        duplicate_of: Some(live),
                        ..ContactHistory::default()
                    },
                    Taken::default(),
                ),
            }
        }
    };
    // A create refused before it reaches the engine (an unknown team or assignee) gives the
    // contact back at once, so the person's next lead is not held for the claim's 30 s.
    let release = || async {
        if let Err(e) = contacts::give_back(store, tenant, id, &taken).await {
            tracing::warn!(error = %e, "a refused create's contact claims were not given back");
        }
    };
    let binding = binding::bind_new(
        engine.store(),
        who,
        id,
        new.team.as_deref(),
        new.assignee.as_deref(),
    )
    .await;
    let Binding { team, assignee } = match binding {
        Ok(binding) => binding,
        Err(e) => {
            release().await;
            return Err(e.into());
        }
    };
    let input = OppInput::Create {
        id,
        external_id,
        contact,
        playbook: new.playbook.unwrap_or_else(|| playbooks.default.to_owned()),
        sla: new.first_touch_seconds.map(|s| SlaOverride {
            first_touch_seconds: Some(s),
        }),
        assignee,
        team: team.map(|t| t.name),
        history: Box::new(history),
    };
    let outcome = submit(engine, tenant, id, &input, None).await?;
    // The transition that creates it indexes its phone in the same commit (`Lookup`), so a
    // number always finds its conversation.
    let created =
        matches!(&outcome, SubmitOutcome::Applied(r) if OppReply::of(r) == Some(OppReply::Created));
    match outcome {
        SubmitOutcome::Accepted => return Ok(Created::Accepted(Accepted::new(id))),
        // Refused by the transition: nothing was created. (A dead-lettered create keeps its
        // claim: an operator may retry it.)
        SubmitOutcome::Rejected(r) => {
            release().await;
            return Err(Error::Conflict {
                code: r.code,
                message: r.message,
            });
        }
        SubmitOutcome::DeadLettered(reason) => return Err(super::dead_lettered(&reason)),
        SubmitOutcome::Applied(_) | SubmitOutcome::Duplicate => {}
    }
    // A repeated external id of an opportunity the caller may not see (a create racing its
    // binding): like any other team's id, it is not found.
    if !sees(engine, who, id).await? {
        return Err(Error::NotFound("opportunity"));
    }
    let view = Box::new(load(engine, tenant, id).await?);
    Ok(if created {
        Created::New(view)
    } else {
        Created::Existing(view)
    })
}

/// Merge mode: the lead joins the contact's live opportunity, which notes it once; the create
/// answers the live one as it is (200). A caller that may not see it (a team key, the contact
/// live in another team) gets 409 `contact_in_other_team`.
async fn merge(
    engine: &EngineHandle,
    who: &Identity,
    live: Uuid,
    external_id: String,
) -> Result<Created, Error> {
    let tenant = who.tenant;
    if !sees(engine, who, live).await? {
        // The lead is not dropped silently: the caller learns why, not whose it is.
        return Err(Error::Conflict {
            code: "contact_in_other_team".into(),
            message: "this contact already has a live opportunity in another team".into(),
        });
    }
    let note = OppInput::ContactReturned {
        external_id,
        skipped_as: None,
    };
    match submit(engine, tenant, live, &note, None).await? {
        SubmitOutcome::Accepted => return Ok(Created::Accepted(Accepted::new(live))),
        SubmitOutcome::Rejected(r) => {
            return Err(Error::Conflict {
                code: r.code,
                message: r.message,
            })
        }
        SubmitOutcome::DeadLettered(reason) => return Err(super::dead_lettered(&reason)),
        SubmitOutcome::Applied(_) | SubmitOutcome::Duplicate => {}
    }
    Ok(Created::Merged(Box::new(load(engine, tenant, live).await?)))
}

/// The opportunity with its armed timers.
pub(crate) async fn load(
    engine: &EngineHandle,
    tenant: TenantId,
    id: Uuid,
) -> Result<OpportunityView, Error> {
    let store = engine.store();
    let row = store
        .get_actor(tenant, opp::KIND.as_str(), id)
        .await?
        .ok_or(Error::NotFound("opportunity"))?;
    let timers = store
        .timers_of(tenant, opp::KIND.as_str(), id)
        .await?
        .into_iter()
        .map(|t| TimerView {
            name: t.name,
            due_at: ms_to_time(t.due_at_ms),
        })
        .collect();
    OpportunityView::of(&row, timers)
}

pub async fn get(
    engine: &EngineHandle,
    who: &Identity,
    id: &str,
) -> Result<OpportunityView, Error> {
    let tenant = authorize(who, Action::Read)?;
    let id = visible(engine, who, id).await?;
    load(engine, tenant, id).await
}

/// What a list asks for; every field as the caller wrote it, checked here.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub stage: Option<String>,
    pub paused: Option<String>,
    pub team: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

fn encode_cursor(at: i64, id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{at}:{id}"))
}

fn decode_cursor(c: &str) -> Option<(i64, Uuid)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (at, id) = text.split_once(':')?;
    Some((at.parse().ok()?, Uuid::parse_str(id).ok()?))
}

/// A page of opportunities, oldest first. Filtering by team (or listing with a team-scoped key)
/// filters each page after reading it, so such a page may hold fewer than `limit` items;
/// `next_cursor` still walks every one.
pub async fn list(
    engine: &EngineHandle,
    who: &Identity,
    f: ListFilter,
) -> Result<Page<OpportunityView>, Error> {
    let tenant = authorize(who, Action::Read)?;
    let store = engine.store();
    let team = match (Scope::of(who).team(), &f.team) {
        (Some(own), _) => Some(own),
        (None, Some(name)) => Some(
            access::find_team(store, tenant, name)
                .await?
                .ok_or_else(|| Error::invalid("team", format!("no team named {name:?}")))?
                .id,
        ),
        (None, None) => None,
    };
    let stage = f
        .stage
        .map(|s| {
            s.parse::<Stage>()
                .map(|st| st.as_str().to_owned())
                .map_err(|e| Error::invalid("stage", e.to_string()))
        })
        .transpose()?;
    let paused = f
        .paused
        .map(|v| match v.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(Error::invalid("paused", "must be true or false")),
        })
        .transpose()?;
    let limit = match f.limit {
        None => 50,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=500).contains(l))
            .ok_or_else(|| Error::invalid("limit", "must be a whole number from 1 to 500"))?,
    };
    let after = f
        .cursor
        .map(|c| {
            decode_cursor(&c).ok_or_else(|| Error::invalid("cursor", "not a cursor from this API"))
        })
        .transpose()?;
    let rows = store
        .list_actors(&ListQuery {
            tenant,
            kind: opp::KIND.as_str().into(),
            status: stage,
            paused,
            after,
            limit,
        })
        .await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| {
            rows.last()
                .map(|r| encode_cursor(r.created_at_ms, r.key.id))
        })
        .flatten();
    let members = match team {
        Some(team) => Some(access::opportunities_of(store, tenant, team).await?),
        None => None,
    };
    let items = rows
        .iter()
        .filter(|r| members.as_ref().is_none_or(|m| m.contains(&r.key.id)))
        .map(|r| OpportunityView::of(r, Vec::new()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page { items, next_cursor })
}

/// `limit` (1 to 1000, default 100) and `cursor` (an id to resume after) of any id-paged list.
pub fn page_bounds(limit: Option<&str>, cursor: Option<&str>) -> Result<(i64, i64), Error> {
    let limit = match limit {
        None => 100,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| Error::invalid("limit", "must be a whole number from 1 to 1000"))?,
    };
    let after = match cursor {
        None => 0,
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|c| *c >= 0)
            .ok_or_else(|| Error::invalid("cursor", "not a cursor from this API"))?,
    };
    Ok((limit, after))
}

/// A page of the opportunity's timeline, oldest first, each entry with its why.
pub async fn timeline(
    engine: &EngineHandle,
    who: &Identity,
    id: &str,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<Page<TimelineItem>, Error> {
    let tenant = authorize(who, Action::Read)?;
    let (limit, after) = page_bounds(limit, cursor)?;
    let id = visible(engine, who, id).await?;
    let rows = engine
        .store()
        .timeline(tenant, opp::KIND.as_str(), id, after, limit)
        .await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(Page {
        items: rows.into_iter().map(TimelineItem::of).collect(),
        next_cursor,
    })
}

/// One row of the operator's board: the opportunity, its next SLA timer and its last event.
pub struct BoardRow {
    pub view: OpportunityView,
    /// The soonest armed SLA timer: its name and when it fires.
    pub next_sla: Option<TimerView>,
    /// The last timeline entry: its kind and reason.
    pub last_event: Option<(String, String)>,
    /// Snoozed out of the queue until then (`usecases::snooze`); the board still lists it.
    pub snoozed_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// The console's list: one page (up to 200) of opportunities with what a row shows.
pub async fn board(
    engine: &EngineHandle,
    who: &Identity,
    f: ListFilter,
) -> Result<Vec<BoardRow>, Error> {
    let page = list(engine, who, f).await?;
    let store = engine.store();
    let mut rows = Vec::with_capacity(page.items.len());
    for view in page.items {
        let next_sla = store
            .timers_of(who.tenant, opp::KIND.as_str(), view.id)
            .await?
            .into_iter()
            .filter(|t| t.name.ends_with("_sla"))
            .min_by_key(|t| t.due_at_ms)
            .map(|t| TimerView {
                name: t.name,
                due_at: ms_to_time(t.due_at_ms),
            });
        let last_event = crate::control::sessions::last_event(store, who.tenant, view.id)
            .await?
            .map(|(kind, reason, _)| (kind, reason));
        rows.push(BoardRow {
            view,
            next_sla,
            last_event,
            snoozed_until: None,
        });
    }
    Ok(rows)
}
