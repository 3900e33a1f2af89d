//! The configuration example of the README is a working configuration.

use std::path::Path;

use pushgate_emulator::{Emulator, EmulatorConfig};
use pushgate_gateway::config::{ChannelKind, ConfigFile};

fn readme_example() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README.md");
    let start = readme
        .find("```toml\n")
        .expect("a toml block in the README")
        + "```toml\n".len();
    let end = start + readme[start..].find("```").expect("the block ends");
    readme[start..end].to_string()
}

#[tokio::test]
async fn the_readme_configuration_resolves() {
    // A real service-account key file where the example names one.
    let emulator = Emulator::start(EmulatorConfig {
        http: "127.0.0.1:0".parse().unwrap(),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let key = reqwest::get(format!(
        "{}/emulator/projects/pushgate-emulator/key",
        emulator.base_url()
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key.json");
    std::fs::write(&key_file, key).unwrap();
    let text = readme_example().replace(
        "/etc/pushgate/shop-firebase.json",
        &key_file.to_string_lossy(),
    );
    for (var, value) in [
        ("SHOP_API_KEY", "readme-shop-key-0123456789"),
        ("SHOP_WEBHOOK_SECRET", "readme-webhook-secret-0123"),
        ("SHOP_SERVER_KEY", "readme-server-key"),
        ("SHOP_C2DM_PASSWORD", "readme-password"),
    ] {
        // SAFETY: this test binary has one test, and nothing else reads these variables.
        unsafe { std::env::set_var(var, value) };
    }
    let spec = ConfigFile::from_toml(&text).unwrap().resolve().unwrap();
    let app = &spec.apps[0];
    assert_eq!(app.name, "shop");
    assert!(app.is_default);
    let kinds: Vec<ChannelKind> = app.channels.iter().map(|c| c.kind()).collect();
    assert_eq!(kinds.len(), 4);
    for k in [
        ChannelKind::FcmV1,
        ChannelKind::Legacy,
        ChannelKind::Ccs,
        ChannelKind::C2dm,
    ] {
        assert!(kinds.contains(&k), "{k:?}");
    }
    assert_eq!(app.c2dm_flow.channel, "old");
    assert_eq!(
        app.webhook.as_ref().unwrap().url,
        "https://shop.example/pushgate"
    );
    assert_eq!(spec.delivery.default_ttl.as_secs(), 28 * 24 * 3600);
    assert!(!format!("{spec:?}").contains("readme-server-key"));
    emulator.shutdown().await;
}

#[test]
fn the_readme_postgresql_settings_resolve() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README.md");
    let block = readme
        .split("```toml\n")
        .skip(1)
        .map(|rest| &rest[..rest.find("```").expect("the block ends")])
        .find(|b| b.contains("pool_max_connections"))
        .expect("the README's PostgreSQL block");
    let service = ConfigFile::from_toml(block)
        .unwrap()
        .resolve_service()
        .unwrap();
    assert!(service.database.starts_with("postgres://"));
    assert_eq!(
        pushgate_store::Backend::of(&service.database),
        pushgate_store::Backend::Postgres
    );
    let store = service.storage.store_settings();
    assert_eq!(store.pool_max_connections, 16);
    assert_eq!(
        store.pool_acquire_timeout,
        std::time::Duration::from_secs(10)
    );
}
