//! Device-group management and group sends against the in-process emulator, over real
//! sockets.
//!
//! Expected values come from docs/protocols.md, "Device groups" (operations, `project_id` header,
//! 20-member
//! cap, `{"error": …}` answers, group send response in "Legacy HTTP: device-group responses"), not
//! from the code under test.

mod common;

use std::collections::BTreeSet;

use common::Emu;
use pushgate_client::HttpConfig;
use pushgate_client::groups::{GroupError, GroupManager};
use pushgate_client::legacy::JsonMessage;
use pushgate_emulator::{DEFAULT_API_KEY, DEFAULT_SENDER_ID};

fn manager(emu: &Emu, sender_id: &str) -> GroupManager {
    GroupManager::new(
        DEFAULT_API_KEY,
        sender_id,
        HttpConfig::new().with_endpoint(emu.url("/fcm/notification")),
    )
    .unwrap()
}

async fn inbox_count(emu: &Emu, token: &str) -> usize {
    emu.inbox(token).await.len()
}

#[tokio::test]
async fn create_add_remove_get_and_send_to_the_group() {
    let emu = Emu::start().await;
    let devices = emu.devices(4).await;
    let groups = manager(&emu, DEFAULT_SENDER_ID);

    let key = groups.create("appUser-Chris", &devices[..2]).await.unwrap();
    assert!(!key.is_empty());
    assert_eq!(groups.get("appUser-Chris").await.unwrap(), key);
    let after_add = groups
        .add(Some("appUser-Chris"), &key, &devices[2..4])
        .await
        .unwrap();
    assert_eq!(after_add, key);
    groups
        .remove(Some("appUser-Chris"), &key, &devices[3..4])
        .await
        .unwrap();

    // Members now: devices 0, 1, 2; the uninstalled one fails and is reported.
    emu.uninstall(&devices[2]).await;
    let result = emu
        .legacy("/fcm/send")
        .send(&JsonMessage::to_notification_key(key.clone()).data("k", "group"))
        .await
        .unwrap();
    let group = result.group().expect("a device-group answer");
    assert_eq!((group.success, group.failure), (2, 1));
    assert_eq!(result.failed_registration_ids(), &devices[2..3]);
    let reached: BTreeSet<usize> = {
        let mut reached = BTreeSet::new();
        for (i, d) in devices.iter().enumerate() {
            if inbox_count(&emu, d).await > 0 {
                reached.insert(i);
            }
        }
        reached
    };
    assert_eq!(reached, BTreeSet::from([0, 1]));
    emu.shutdown().await;
}

#[tokio::test]
async fn refusals_carry_the_server_text() {
    let emu = Emu::start().await;
    let devices = emu.devices(1).await;
    let groups = manager(&emu, DEFAULT_SENDER_ID);
    groups.create("dup", &devices).await.unwrap();

    match groups.create("dup", &devices).await {
        Err(GroupError::Server { status, error }) => {
            assert!((400..500).contains(&status), "{status}");
            assert!(error.contains("already exists"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        groups.get("nobody").await,
        Err(GroupError::Server { .. })
    ));
    // The project_id header must name the key's sender.
    let wrong = manager(&emu, "999");
    assert!(matches!(
        wrong.create("other", &devices).await,
        Err(GroupError::Server { status: 401, .. })
    ));
    // 21 members in one request never leave the process.
    let many = vec![devices[0].clone(); 21];
    assert!(matches!(
        groups.create("big", &many).await,
        Err(GroupError::Invalid(_))
    ));
    emu.shutdown().await;
}
