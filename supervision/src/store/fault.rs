//! What a failed write says about its batch: one bad item (split the batch to find it), a
//! failure that may pass (try the whole batch again after a pause), or neither (fail it).
//!
//! Every batch path decides through `StoreError::class` (the `Batcher` behind commits, inbox
//! writes, effect completions, loads and polls, and `Batcher::submit_retrying`). Until issue #13
//! any error the database answered counted as one bad item, so a failover (an administrator
//! shutdown, too many connections, a read-only standby) split every batch and cost each record a
//! failed write of its own.

use sqlx::error::DatabaseError;

use super::StoreError;

/// How a failed write is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The database refused a value or a constraint: one item of a batch may be the cause,
    /// so the batch is written again item by item and only the culprit fails.
    Item,
    /// The database, or the way to it, failed (a lost connection, a restart, a failover, too
    /// many connections, a deadlock): the whole batch is tried again after a pause.
    Transient,
    /// Neither helps (a bug in a statement, a permission, a stopped pool): the batch fails.
    Fatal,
}

/// A failure as the classification sees it: the database's own code, or how the driver failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure<'a> {
    /// A PostgreSQL SQLSTATE.
    Postgres(&'a str),
    /// A SQLite extended result code.
    Sqlite(i32),
    /// A database error of neither backend, or one without a code.
    OtherDatabase,
    /// The connection broke (io, TLS) or the exchange went wrong (protocol).
    Connection,
    /// No connection came free in time.
    PoolTimedOut,
    /// The pool was closed: the engine is stopping.
    PoolClosed,
    /// Stored data could not be read back as expected.
    Corrupt,
    /// Anything else: configuration, decoding, a missing row, a migration.
    Other,
}

/// The one classification (a pure function of the failure).
pub fn classify(failure: Failure<'_>) -> ErrorClass {
    match failure {
        Failure::Postgres(code) => postgres(code),
        Failure::Sqlite(code) => sqlite(code),
        Failure::OtherDatabase | Failure::Corrupt => ErrorClass::Item,
        Failure::Connection | Failure::PoolTimedOut => ErrorClass::Transient,
        Failure::PoolClosed | Failure::Other => ErrorClass::Fatal,
    }
}

fn postgres(code: &str) -> ErrorClass {
    match code {
        // An idle session ended by the server, a standby (or a database set read-only) refusing
        // writes, a lock not granted: the next session or try may succeed.
        "25P03" | "25006" | "55P03" | "55006" => ErrorClass::Transient,
        // The database is being dropped: nothing to retry.
        "57P04" => ErrorClass::Fatal,
        _ => match code.get(..2) {
            // Data exception (a NUL in JSON, a value out of range), integrity constraint,
            // program limit (a row or statement too large): the data itself.
            Some("22" | "23" | "54") => ErrorClass::Item,
            // Connection exception, transaction rollback (serialization failure, deadlock),
            // insufficient resources (too many connections, disk full, out of memory),
            // operator intervention (administrator or crash shutdown, cannot connect now,
            // query cancelled), system error (io).
            Some("08" | "40" | "53" | "57" | "58") => ErrorClass::Transient,
            _ => ErrorClass::Fatal,
        },
    }
}

fn sqlite(code: i32) -> ErrorClass {
    // The primary result code is the low byte of the extended one.
    match code & 0xff {
        // CONSTRAINT, TOOBIG, MISMATCH: the data itself.
        18..=20 => ErrorClass::Item,
        // BUSY, LOCKED, NOMEM, IOERR, FULL, PROTOCOL (a locking race).
        5 | 6 | 7 | 10 | 13 | 15 => ErrorClass::Transient,
        _ => ErrorClass::Fatal,
    }
}

fn database_failure(e: &dyn DatabaseError) -> Failure<'_> {
    if let Some(pg) = e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        return Failure::Postgres(pg.code());
    }
    if e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        if let Some(code) = e.code().and_then(|c| c.parse().ok()) {
            return Failure::Sqlite(code);
        }
    }
    Failure::OtherDatabase
}

impl StoreError {
    /// How a batch that failed with this error is handled (`classify`).
    pub fn class(&self) -> ErrorClass {
        let failure = match self {
            StoreError::Db(sqlx::Error::Database(e)) => database_failure(e.as_ref()),
            StoreError::Db(sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_)) => {
                Failure::Connection
            }
            StoreError::Db(sqlx::Error::PoolTimedOut) => Failure::PoolTimedOut,
            StoreError::Db(sqlx::Error::PoolClosed) => Failure::PoolClosed,
            StoreError::Corrupt(_) => Failure::Corrupt,
            _ => Failure::Other,
        };
        classify(failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorClass::*;

    #[test]
    fn postgres_codes_split_only_for_data_and_retry_server_failures() {
        let table = [
            // data: split the batch
            ("22P05", Item), // untranslatable character (NUL in JSON)
            ("22003", Item), // numeric value out of range
            ("22001", Item), // string too long
            ("23505", Item), // unique violation
            ("23503", Item), // foreign key violation
            ("23502", Item), // not null violation
            ("54000", Item), // program limit exceeded (row too big)
            // server and connection: retry the whole batch
            ("57P01", Transient), // admin shutdown (a failover, a restart)
            ("57P02", Transient), // crash shutdown
            ("57P03", Transient), // cannot connect now (starting up)
            ("57014", Transient), // query cancelled
            ("53300", Transient), // too many connections
            ("53100", Transient), // disk full
            ("53200", Transient), // out of memory
            ("25006", Transient), // read-only transaction (a standby, or read-only set)
            ("25P03", Transient), // idle-in-transaction timeout ended the session
            ("40P01", Transient), // deadlock
            ("40001", Transient), // serialization failure
            ("08006", Transient), // connection failure
            ("08001", Transient), // cannot establish a connection
            ("58030", Transient), // io error
            ("55P03", Transient), // lock not available
            // neither: fail
            ("42P01", Fatal), // undefined table (a bug, or a missing migration)
            ("42601", Fatal), // syntax error
            ("28P01", Fatal), // wrong password
            ("3D000", Fatal), // no such database
            ("57P04", Fatal), // database dropped
            ("XX000", Fatal), // internal error
        ];
        for (code, class) in table {
            assert_eq!(classify(Failure::Postgres(code)), class, "SQLSTATE {code}");
        }
    }

    #[test]
    fn sqlite_codes_split_only_for_constraints_and_retry_busy_and_io() {
        let table = [
            (19, Item),        // CONSTRAINT
            (2067, Item),      // CONSTRAINT_UNIQUE
            (787, Item),       // CONSTRAINT_FOREIGNKEY
            (18, Item),        // TOOBIG
            (5, Transient),    // BUSY
            (517, Transient),  // BUSY_SNAPSHOT
            (6, Transient),    // LOCKED
            (10, Transient),   // IOERR
            (3338, Transient), // IOERR_FSYNC
            (13, Transient),   // FULL
            (1, Fatal),        // ERROR (a bad statement)
            (8, Fatal),        // READONLY (a read-only file)
            (11, Fatal),       // CORRUPT
        ];
        for (code, class) in table {
            assert_eq!(classify(Failure::Sqlite(code)), class, "SQLite code {code}");
        }
    }

    #[test]
    fn driver_failures_retry_when_a_new_connection_may_help() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let table = [
            (StoreError::Db(sqlx::Error::Io(io)), Transient),
            (StoreError::Db(sqlx::Error::PoolTimedOut), Transient),
            (
                StoreError::Db(sqlx::Error::Protocol("unexpected message".into())),
                Transient,
            ),
            (StoreError::Db(sqlx::Error::PoolClosed), Fatal),
            (StoreError::Db(sqlx::Error::RowNotFound), Fatal),
            (StoreError::Corrupt("bad json".into()), Item),
            (StoreError::UnsupportedUrl("mysql://".into()), Fatal),
        ];
        for (error, class) in table {
            assert_eq!(error.class(), class, "{error}");
        }
    }
}
