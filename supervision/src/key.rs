//! Identities: tenants, actor keys, shards and epochs.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A customer organisation. Every row and every request belongs to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(pub Uuid);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The kind of an actor, e.g. `opportunity` or `call`. The runtime treats it as an opaque name;
/// the set of kinds is fixed by the entities registered with the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorKind(pub &'static str);

impl ActorKind {
    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for ActorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// `(tenant, kind, id)` plus the group it is sharded by.
///
/// The group lets a child (a call) live on the same shard as its parent (the opportunity), so
/// that parent and child are always owned by the same instance and their messages to each other
/// never cross instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorKey {
    pub tenant: TenantId,
    pub kind: ActorKind,
    pub id: Uuid,
    pub group: Uuid,
}

impl ActorKey {
    /// A key that is its own group (a root actor such as an opportunity).
    pub fn root(tenant: TenantId, kind: ActorKind, id: Uuid) -> Self {
        Self {
            tenant,
            kind,
            id,
            group: id,
        }
    }

    pub fn child(parent: &ActorKey, kind: ActorKind, id: Uuid) -> Self {
        Self {
            tenant: parent.tenant,
            kind,
            id,
            group: parent.group,
        }
    }

    /// The shard this key lives on among `shard_count` shards.
    ///
    /// FNV-1a over the tenant and group bytes: stable across processes and releases, which
    /// `std`'s `DefaultHasher` does not promise.
    pub fn shard(&self, shard_count: u32) -> ShardId {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.tenant.0.as_bytes().iter().chain(self.group.as_bytes()) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        // The modulo result is below shard_count, which is a u32.
        ShardId((hash % u64::from(shard_count.max(1))) as i32)
    }
}

impl fmt::Display for ActorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.tenant, self.kind, self.id)
    }
}

/// One of the fixed number of shards that actors hash to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShardId(pub i32);

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The fencing token of a shard: it grows by one on every change of owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Epoch(pub i64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_lands_on_its_parents_shard() {
        let tenant = TenantId(Uuid::new_v4());
        let parent = ActorKey::root(tenant, ActorKind("opportunity"), Uuid::new_v4());
        let child = ActorKey::child(&parent, ActorKind("call"), Uuid::new_v4());
        assert_eq!(parent.shard(256), child.shard(256));
    }

    #[test]
    fn shards_spread_over_the_whole_range() {
        let tenant = TenantId(Uuid::new_v4());
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let key = ActorKey::root(tenant, ActorKind("opportunity"), Uuid::new_v4());
            let shard = key.shard(64);
            assert!((0..64).contains(&shard.0));
            seen.insert(shard);
        }
        assert_eq!(seen.len(), 64);
    }

    #[test]
    fn the_shard_of_a_key_is_stable() {
        let key = ActorKey::root(
            TenantId(Uuid::from_u128(7)),
            ActorKind("opportunity"),
            Uuid::from_u128(42),
        );
        assert_eq!(key.shard(256), key.shard(256));
        assert_eq!(key.shard(1), ShardId(0));
    }
}
