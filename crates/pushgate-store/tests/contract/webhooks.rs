//! Webhook cursors: leased to one sender, fenced against a sender that lost the lease.

use super::*;

contract_cases! {
    async fn webhook_cursors_are_leased_and_fenced(s: Arc<dyn Store>) {
        assert!(s.webhook_state("app").await.unwrap().is_none());
        s.webhook_init("app", 7, t0()).await.unwrap();
        s.webhook_init("app", 99, t0()).await.unwrap();
        let state = s.webhook_state("app").await.unwrap().unwrap();
        assert_eq!(
            (state.delivered_seq, state.attempts),
            (7, 0),
            "init keeps an existing cursor"
        );
        let a = s.webhook_claim("app", "a", secs(1), LEASE).await.unwrap();
        assert_eq!(a.unwrap().delivered_seq, 7);
        assert!(
            s.webhook_claim("app", "b", secs(2), LEASE)
                .await
                .unwrap()
                .is_none(),
            "leased to a"
        );
        assert!(
            s.webhook_failed("app", "a", "HTTP 500", secs(10), secs(3))
                .await
                .unwrap()
        );
        let failed = s.webhook_state("app").await.unwrap().unwrap();
        assert_eq!(
            (failed.attempts, failed.last_error.as_deref()),
            (1, Some("HTTP 500"))
        );
        assert_eq!(failed.next_attempt_at, secs(10));
        assert!(
            s.webhook_claim("app", "a", secs(5), LEASE)
                .await
                .unwrap()
                .is_none(),
            "not due yet"
        );
        // The lease ran out: b takes over; a's late answer is refused.
        let b = s.webhook_claim("app", "b", secs(40), LEASE).await.unwrap();
        assert!(b.is_some());
        assert!(!s.webhook_done("app", "a", 20, secs(41)).await.unwrap());
        assert!(s.webhook_done("app", "b", 12, secs(41)).await.unwrap());
        let done = s.webhook_state("app").await.unwrap().unwrap();
        assert_eq!(
            (done.delivered_seq, done.attempts, done.last_error),
            (12, 0, None)
        );
        // The cursor never moves back.
        assert!(s.webhook_done("app", "b", 9, secs(42)).await.unwrap());
        assert_eq!(
            s.webhook_state("app").await.unwrap().unwrap().delivered_seq,
            12
        );
    }
}
