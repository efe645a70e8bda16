//! The embedded engine's exclusive lock: a file beside the SQLite database, locked with the
//! operating system's advisory lock, so a second `serve` on the same file refuses at once while
//! short admin commands (which take no lock) still work. The OS drops the lock when the process
//! dies, even by `kill -9`, so a crash never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another NeuronX engine is already serving {db} (lock file {lock} is held); stop it first, or point NEURONX_DATABASE_URL at another file")]
    Held { db: String, lock: String },
    #[error("cannot open lock file {lock}: {source}")]
    Io {
        lock: String,
        source: std::io::Error,
    },
}

/// Held for the life of the engine.
#[derive(Debug)]
pub struct EngineLock {
    _file: File,
}

/// The database file of a `sqlite:` URL (`sqlite://x.db`, `sqlite:x.db`, with options).
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

fn canonical(path: &std::path::Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    match (std::fs::canonicalize(parent), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

pub fn acquire(url: &str) -> Result<Option<EngineLock>, LockError> {
    let Some(db) = sqlite_path(url) else {
        return Ok(None);
    };
    // One file, one lock, however the URL spells its path (relative, absolute, via a link).
    let db = canonical(&db);
    let mut lock = db.clone().into_os_string();
    lock.push(".lock");
    let lock = PathBuf::from(lock);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|source| LockError::Io {
            lock: lock.display().to_string(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(Some(EngineLock { _file: file })),
        Err(TryLockError::WouldBlock) => Err(LockError::Held {
            db: db.display().to_string(),
            lock: lock.display().to_string(),
        }),
        Err(TryLockError::Error(source)) => Err(LockError::Io {
            lock: lock.display().to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("n.db").display());
        let first = acquire(&url).unwrap();
        assert!(first.is_some());
        let err = acquire(&url).unwrap_err();
        assert!(err.to_string().contains("already serving"), "{err}");
        // The same file spelled another way is the same lock.
        let dotted = format!("sqlite://{}/./n.db", dir.path().display());
        assert!(acquire(&dotted).is_err());
        drop(first);
        assert!(acquire(&url).unwrap().is_some());
    }

    #[test]
    fn sqlite_paths_are_read_from_urls() {
        assert_eq!(
            sqlite_path("sqlite://a/b.db?mode=rwc"),
            Some(PathBuf::from("a/b.db"))
        );
        assert_eq!(sqlite_path("sqlite:x.db"), Some(PathBuf::from("x.db")));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x"), None);
    }
}
