//! Apps and their recorded channels.

use super::*;

contract_cases! {
    async fn apps_and_channels_are_recorded(s: Arc<dyn Store>) {
        let apps = s.apps().await.unwrap();
        let names: Vec<_> = apps
            .iter()
            .map(|a| (a.name.as_str(), a.is_default))
            .collect();
        assert_eq!(names, [("app", true), ("other", false)]);
        s.upsert_app("other", true).await.unwrap();
        let apps = s.apps().await.unwrap();
        assert_eq!(apps.iter().filter(|a| a.is_default).count(), 1);
        assert!(apps.iter().find(|a| a.name == "other").unwrap().is_default);
        let ch = |name: &str, default: bool| ChannelRecord {
            name: name.into(),
            kind: "legacy".into(),
            is_default: default,
            endpoint: "http://127.0.0.1:1/gcm/send".into(),
            credential_ref: "env:KEY".into(),
            credential_fingerprint: "sha256:0011".into(),
        };
        s.sync_channels("app", &[ch("b", false), ch("a", true)], t0())
            .await
            .unwrap();
        assert_eq!(
            s.list_channels("app").await.unwrap(),
            [ch("a", true), ch("b", false)]
        );
        s.sync_channels("app", &[ch("c", true)], secs(1))
            .await
            .unwrap();
        assert_eq!(s.list_channels("app").await.unwrap(), [ch("c", true)]);
        assert!(s.list_channels("other").await.unwrap().is_empty());
        assert!(matches!(
            s.sync_channels("nope", &[], t0()).await,
            Err(StoreError::NotFound)
        ));
    }
}
