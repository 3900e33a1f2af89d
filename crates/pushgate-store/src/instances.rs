//! Which gateway instances share the database: each one beats every few seconds, and an
//! instance not seen for a while counts as gone. The count divides cluster-wide budgets (a
//! provider's per-project rate) between the instances alive. The statements are the same on
//! every backend.

/// Records a beat: (id, now) — inserts the instance or moves its `last_seen`.
pub(crate) const BEAT: &str = "INSERT INTO instances (id, last_seen, started_at) VALUES ($1, $2, $2) \
     ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen";

/// Forgets the instances last seen before $1.
pub(crate) const FORGET_STALE: &str = "DELETE FROM instances WHERE last_seen < $1";

/// The instances alive.
pub(crate) const COUNT: &str = "SELECT COUNT(*) FROM instances";

/// Forgets one instance ($1) at once: a graceful stop.
pub(crate) const LEAVE: &str = "DELETE FROM instances WHERE id = $1";
