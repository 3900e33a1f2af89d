//! Gateway instances sharing the database, counted by heartbeat.

use super::*;

contract_cases! {
    async fn instances_are_counted_while_they_beat_and_forgotten_after(s: Arc<dyn Store>) {
        let ttl = Duration::from_secs(15);
        assert_eq!(s.heartbeat("a", t0(), ttl).await.unwrap(), 1);
        assert_eq!(s.heartbeat("b", secs(1), ttl).await.unwrap(), 2);
        assert_eq!(s.heartbeat("c", secs(2), ttl).await.unwrap(), 3);
        // a beats again; b and c fall silent (b was killed, c stops gracefully).
        s.leave("c").await.unwrap();
        assert_eq!(s.heartbeat("a", secs(10), ttl).await.unwrap(), 2);
        assert_eq!(s.heartbeat("a", secs(17), ttl).await.unwrap(), 1, "b is past its ttl");
        // A returning instance counts again.
        assert_eq!(s.heartbeat("b", secs(18), ttl).await.unwrap(), 2);
        s.leave("never-seen").await.unwrap();
        assert_eq!(s.heartbeat("b", secs(19), ttl).await.unwrap(), 2);
    }
}
