//! The store's error type.

/// Why a store operation failed; callers map these to API statuses (404, 409, 500).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The app, device, message or delivery named by the caller does not exist.
    #[error("not found")]
    NotFound,
    /// The change would break a uniqueness rule (e.g. a token already held by an active device).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller asked for something the store's rules forbid (e.g. setting a device
    /// `invalid` by hand); the text says what.
    #[error("{0}")]
    InvalidInput(String),
    /// The configuration asks for something this build cannot do (e.g. a backend that does
    /// not exist yet); the text says what.
    #[error("{0}")]
    Unsupported(String),
    /// The database refused or failed the operation.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// A schema migration failed; the store is unusable until it is fixed.
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        /// Version number of the failing migration.
        version: i64,
        /// Its name.
        name: &'static str,
        /// What the database said.
        #[source]
        source: sqlx::Error,
    },
    /// A stored value could not be read back (unknown state name, bad timestamp, bad JSON).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// A message would queue a delivery on a channel outside its
    /// [`NewMessage::channels`](crate::model::NewMessage::channels); nothing was stored.
    #[error("a delivery would be queued on channel {0:?}, which the message may not use")]
    UnlistedChannel(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            // A token's uniqueness among an app's live SQLite devices is kept by triggers
            // (migration 0008), which say so in the words of a unique index.
            sqlx::Error::Database(db)
                if db.is_unique_violation()
                    || db.message().starts_with("UNIQUE constraint failed") =>
            {
                StoreError::Conflict(db.message().to_owned())
            }
            // A stored value of the wrong type fails the same way on every read: the row is
            // damaged, not the database away.
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(err.to_string())
            }
            _ => StoreError::Database(err),
        }
    }
}

/// Shorthand for results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
