//! One SQL text for both backends, where they agree (the product crate's `on_db!` does the same
//! for its own tables).

/// Runs `$body` on whichever backend `$store` is. Inside it, `$db` is the pool and `$id` turns a
/// UUID into that backend's column type (UUID on PostgreSQL, TEXT on SQLite). The body is
/// compiled once per backend, so one SQL text with `$1`-style parameters serves both; UUIDs and
/// JSON are read back as `CAST(.. AS TEXT)` (see `rows.rs`).
macro_rules! on_both {
    ($store:expr, |$db:ident, $id:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Postgres(pg) => {
                let $db = &pg.pool;
                #[allow(unused_variables)]
                let $id = |u: uuid::Uuid| u;
                $body
            }
            $crate::store::Store::Sqlite(lite) => {
                let $db = &lite.pool;
                #[allow(unused_variables)]
                let $id = |u: uuid::Uuid| u.to_string();
                $body
            }
        }
    };
}
pub(super) use on_both;
