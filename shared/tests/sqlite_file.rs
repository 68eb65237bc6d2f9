//! The embedded backend's database file on disk.
#![cfg(all(feature = "local", unix))]

use std::os::unix::fs::PermissionsExt;

use sluice::local::SqliteStore;

/// It holds `db:` secrets: the file, its WAL and its shared-memory index
/// are the owner's alone, whatever the umask.
#[tokio::test]
async fn the_database_file_and_its_wal_are_created_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.db");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.event_count().await.unwrap(), 0);
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", path.display());
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}: {mode:o}");
    }
    drop(store);
    // Opening it again leaves the mode as it is.
    let _again = SqliteStore::open(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}
