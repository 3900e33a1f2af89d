//! SQLite database files for tests, each in a temporary directory of its own that is deleted
//! (with the file, its write-ahead log and shared memory) when the test drops it.

/// A fresh path for a SQLite database, and the directory that holds it.
pub struct DbFile {
    _dir: tempfile::TempDir,
    path: String,
}

impl DbFile {
    /// A new empty directory under the system's temporary directory; nothing is created in
    /// it until a store opens [`path`](Self::path).
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pushgate-test-db-")
            .tempdir()
            .expect("a temporary directory can be created");
        let path = dir.path().join("store.db").to_string_lossy().into_owned();
        Self { _dir: dir, path }
    }

    /// The database file's path, for `SqliteStore::open`.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Default for DbFile {
    fn default() -> Self {
        Self::new()
    }
}
