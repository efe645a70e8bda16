//! The registered entity kinds, and how to spawn a host actor for each.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ractor::{Actor, ActorCell, SpawnErr};

use crate::entity::Entity;
use crate::entity_actor::{Args, EntityActor};
use crate::key::{ActorKey, ActorKind};
use crate::protocol::EntityRef;
use crate::runtime::Runtime;
use crate::store::RowKey;

type SpawnFuture = Pin<Box<dyn Future<Output = Result<EntityRef, SpawnErr>> + Send>>;

/// Spawns the host actor of one entity kind. Each registered [`Entity`] gets one through a
/// blanket implementation, so the shard host needs no knowledge of the concrete types.
pub trait Spawner: Send + Sync {
    fn kind(&self) -> ActorKind;
    fn spawn(&self, rt: Arc<Runtime>, args: Args, supervisor: ActorCell) -> SpawnFuture;
}

struct Factory<E: Entity>(Arc<E>);

impl<E: Entity> Spawner for Factory<E> {
    fn kind(&self) -> ActorKind {
        self.0.kind()
    }

    fn spawn(&self, rt: Arc<Runtime>, args: Args, supervisor: ActorCell) -> SpawnFuture {
        let entity = self.0.clone();
        Box::pin(async move {
            let (actor, _handle) =
                Actor::spawn_linked(None, EntityActor::new(entity, rt), args, supervisor).await?;
            Ok(actor)
        })
    }
}

#[derive(Clone, Default)]
pub struct Kinds {
    spawners: HashMap<&'static str, Arc<dyn Spawner>>,
}

impl Kinds {
    pub fn register<E: Entity>(&mut self, entity: E) {
        let kind = entity.kind();
        self.spawners
            .insert(kind.as_str(), Arc::new(Factory(Arc::new(entity))));
    }

    /// The registered kind of that name (kinds read back from the store arrive as text).
    pub fn resolve(&self, name: &str) -> Option<ActorKind> {
        self.spawners.get(name).map(|s| s.kind())
    }

    /// Every registered kind, in name order. The timer service reads only timers of these: a
    /// row of any other kind could never fire here and must not take room in its reads.
    pub fn registered(&self) -> Vec<ActorKind> {
        let mut kinds: Vec<ActorKind> = self.spawners.values().map(|s| s.kind()).collect();
        kinds.sort_by_key(|k| k.as_str());
        kinds
    }

    pub fn spawner(&self, kind: ActorKind) -> Option<Arc<dyn Spawner>> {
        self.spawners.get(kind.as_str()).cloned()
    }
}

/// The key of an actor named by a stored row, if its kind is registered here.
pub fn resolve_key(kinds: &Kinds, key: &RowKey) -> Option<ActorKey> {
    let kind = kinds.resolve(&key.kind)?;
    Some(ActorKey {
        tenant: key.tenant,
        kind,
        id: key.id,
        group: key.group,
    })
}
