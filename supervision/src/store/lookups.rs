//! Lookups: names under which an actor can be found (`entity::Lookup`), written by the commit of
//! the transition that gives them, and read by name. Also the batched status read that callers
//! checking many actors at once (the dispatcher's precheck) use instead of joining `actors`.

use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use uuid::Uuid;

use super::both::on_both;
use super::types::CommitRecord;
use super::{Store, StoreError};
use crate::entity::KeyType;
use crate::key::{ActorKind, TenantId};

/// Writes the lookups of a batch of transitions (PostgreSQL: one statement for the batch).
/// A name already given to the actor is kept with its first time.
pub(super) async fn write_pg(
    tx: &mut PgConnection,
    live: &[&CommitRecord],
) -> Result<(), StoreError> {
    let rows: Vec<(&CommitRecord, &crate::entity::Lookup)> = live
        .iter()
        .flat_map(|r| r.lookups.iter().map(move |l| (*r, l)))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO lookups (tenant_id, kind, key_type, key, actor_id, created_at)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::bigint[])
         ON CONFLICT DO NOTHING",
    )
    .bind(rows.iter().map(|(r, _)| r.key.tenant.0).collect::<Vec<_>>())
    .bind(rows.iter().map(|(r, _)| r.key.kind.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, l)| l.key_type.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, l)| l.key.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(r, _)| r.key.id).collect::<Vec<_>>())
    .bind(rows.iter().map(|(r, _)| r.now_ms).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Writes one transition's lookups (SQLite, inside the record's savepoint).
pub(super) async fn write_sqlite(
    conn: &mut SqliteConnection,
    r: &CommitRecord,
) -> Result<(), StoreError> {
    for l in &r.lookups {
        sqlx::query(
            "INSERT INTO lookups (tenant_id, kind, key_type, key, actor_id, created_at)
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(r.key.tenant.0.to_string())
        .bind(r.key.kind.as_str())
        .bind(l.key_type.as_str())
        .bind(&l.key)
        .bind(r.key.id.to_string())
        .bind(r.now_ms)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

impl Store {
    /// The actors of `kind` found under `key`, newest name first, at most `limit`.
    pub async fn find(
        &self,
        tenant: TenantId,
        kind: ActorKind,
        key_type: KeyType,
        key: &str,
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError> {
        let sql = "SELECT CAST(actor_id AS TEXT) FROM lookups
             WHERE tenant_id = $1 AND kind = $2 AND key_type = $3 AND key = $4
             ORDER BY created_at DESC, actor_id LIMIT $5";
        let found: Vec<String> = on_both!(self, |db, uid| sqlx::query_scalar(sql)
            .bind(uid(tenant.0))
            .bind(kind.as_str())
            .bind(key_type.as_str())
            .bind(key)
            .bind(limit)
            .fetch_all(db)
            .await?);
        found
            .iter()
            .map(|s| Uuid::parse_str(s).map_err(|_| StoreError::Corrupt(format!("actor id {s:?}"))))
            .collect()
    }

    /// The indexed status and paused flag of each `(tenant, id)` of `kind`, in order; `None`
    /// where there is no such actor. PostgreSQL answers in one round trip; SQLite is in process.
    pub async fn actor_statuses(
        &self,
        kind: ActorKind,
        ids: &[(TenantId, Uuid)],
    ) -> Result<Vec<Option<(String, bool)>>, StoreError> {
        match self {
            Store::Postgres(pg) => {
                let rows: Vec<(i64, Option<String>, Option<bool>)> = sqlx::query_as(
                    "SELECT u.ord, a.status, a.paused
                     FROM UNNEST($1::uuid[], $2::uuid[]) WITH ORDINALITY u(t, i, ord)
                     LEFT JOIN actors a ON a.tenant_id = u.t AND a.kind = $3 AND a.id = u.i
                     ORDER BY u.ord",
                )
                .bind(ids.iter().map(|(t, _)| t.0).collect::<Vec<_>>())
                .bind(ids.iter().map(|(_, i)| *i).collect::<Vec<_>>())
                .bind(kind.as_str())
                .fetch_all(pg.pool())
                .await?;
                Ok(rows.into_iter().map(|(_, s, p)| s.zip(p)).collect())
            }
            Store::Sqlite(_) => {
                let mut out = Vec::with_capacity(ids.len());
                for (tenant, id) in ids {
                    out.push(self.actor_status(*tenant, kind.as_str(), *id).await?);
                }
                Ok(out)
            }
        }
    }
}
