//! django-c2dm's registration flow: a registration id becomes a token only once confirmed.

use super::*;

contract_cases! {
    async fn c2dm_flow_confirms_before_sending(s: Arc<dyn Store>) {
        let reg = |device: &str, registration: &str, secret: &str| C2dmFlowRegistration {
            device_id: device.into(),
            registration_id: registration.into(),
            confirmation_token: secret.into(),
            channel: "c2dm".into(),
            message: msg(600),
        };
        let first = reg("phone-0001", "reg-1", "secret-1");
        let out = s
            .c2dm_flow_register("app", first.clone(), t0())
            .await
            .unwrap();
        assert_eq!(
            (out.message_id, out.deliveries, out.queued),
            (first.message.id, 1, 1)
        );
        let device = s.get_device("app", "phone-0001").await.unwrap().unwrap();
        assert_eq!(device.token, None);
        assert!(!device.is_confirmed());
        assert_eq!(device.pending_token.as_deref(), Some("reg-1"));
        assert_eq!(device.channel.as_deref(), Some("c2dm"));
        // The confirmation message goes to the registration id; nothing else reaches the device.
        assert_eq!(
            shape(&*s, first.message.id).await,
            [row("phone-0001", "reg-1", DeliveryState::Queued, "")]
        );
        let broadcast = send(
            &*s,
            Targets {
                all: true,
                device_ids: ids(&["phone-0001"]),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            shape(&*s, broadcast).await,
            [row(
                "phone-0001",
                "",
                DeliveryState::Failed,
                "device_unconfirmed"
            )]
        );
        // Wrong and missing confirmations.
        assert_eq!(
            s.c2dm_flow_confirm("app", "phone-0001", "secret-2", secs(1))
                .await
                .unwrap(),
            Confirmation::WrongToken
        );
        assert_eq!(
            s.c2dm_flow_confirm("app", "phone-9999", "secret-1", secs(1))
                .await
                .unwrap(),
            Confirmation::NothingPending
        );
        assert_eq!(
            s.c2dm_flow_confirm("other", "phone-0001", "secret-1", secs(1))
                .await
                .unwrap(),
            Confirmation::NothingPending
        );
        assert_eq!(
            s.c2dm_flow_confirm("app", "phone-0001", "secret-1", secs(1))
                .await
                .unwrap(),
            Confirmation::Confirmed
        );
        let device = s.get_device("app", "phone-0001").await.unwrap().unwrap();
        assert_eq!(
            (device.token.as_deref(), device.pending_token.as_deref()),
            (Some("reg-1"), None)
        );
        assert_eq!(
            s.c2dm_flow_confirm("app", "phone-0001", "secret-1", secs(2))
                .await
                .unwrap(),
            Confirmation::NothingPending
        );
        // A new registration id only replaces the confirmed one once it is confirmed too.
        s.c2dm_flow_register("app", reg("phone-0001", "reg-2", "secret-3"), secs(3))
            .await
            .unwrap();
        let device = s.get_device("app", "phone-0001").await.unwrap().unwrap();
        assert_eq!(
            (device.token.as_deref(), device.pending_token.as_deref()),
            (Some("reg-1"), Some("reg-2"))
        );
        let now_reachable = send(
            &*s,
            to_devices(&["phone-0001"]),
        )
        .await;
        assert_eq!(
            shape(&*s, now_reachable).await,
            [row("phone-0001", "reg-1", DeliveryState::Queued, "")]
        );
        // Another device holding reg-2 loses it when phone-0001 confirms (proof of possession).
        s.put_device("app", dev("tablet", "reg-2"), secs(3))
            .await
            .unwrap();
        assert_eq!(
            s.c2dm_flow_confirm("app", "phone-0001", "secret-3", secs(4))
                .await
                .unwrap(),
            Confirmation::Confirmed
        );
        let device = s.get_device("app", "phone-0001").await.unwrap().unwrap();
        assert_eq!(device.token.as_deref(), Some("reg-2"));
        let tablet = s.get_device("app", "tablet").await.unwrap().unwrap();
        assert_eq!(tablet.state, DeviceState::Invalid);
        // Work that was waiting for reg-1 follows the confirmed id.
        let queued: Vec<_> = deliveries_of(&*s, now_reachable).await;
        assert_eq!(queued[0].token, "reg-2");
    }
}
