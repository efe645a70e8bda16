//! A PostgreSQL test database that is dropped when its guard goes: at the end of a test, and
//! while a panicking test unwinds. Shared by the product's tests (`tests/common`) and the
//! runtime's (`supervision/tests/common`, through `#[path]`).

/// Dropped with `DROP DATABASE ... WITH (FORCE)` (PostgreSQL 13+: whatever is still connected,
/// such as a server the test left running, is cut off). `NEURONX_TEST_KEEP_DB=1` keeps it, to
/// look into one; a test killed from outside leaves it to `scripts/test.sh`'s clean-up.
pub struct DroppedDatabase {
    pub admin_url: String,
    pub name: String,
}

impl Drop for DroppedDatabase {
    fn drop(&mut self) {
        let name = &self.name;
        if std::env::var_os("NEURONX_TEST_KEEP_DB").is_some() {
            eprintln!("test database {name} kept (NEURONX_TEST_KEEP_DB)");
            return;
        }
        // Never panic here (this may run while a test unwinds, or in a thread-local's
        // destructor, where a panic aborts): a database left behind is only reported.
        if let Err(e) = drop_database(&self.admin_url, name) {
            eprintln!("warning: test database {name} was not dropped: {e}");
        }
    }
}

/// Drops `name` on a connection, thread and runtime of its own: the test's runtime is gone by
/// now, or is blocked on this very call.
fn drop_database(admin_url: &str, name: &str) -> Result<(), String> {
    let (admin_url, sql) = (
        admin_url.to_owned(),
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
    let dropping = std::thread::Builder::new().spawn(move || -> Result<(), String> {
        use sqlx::Connection;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&admin_url)
                .await
                .map_err(|e| e.to_string())?;
            sqlx::query(&sql)
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            let _ = conn.close().await;
            Ok(())
        })
    });
    dropping
        .map_err(|e| e.to_string())?
        .join()
        .map_err(|_| "the dropping thread panicked".to_owned())?
}
