//! The one recipient check every protocol runs before it delivers to, or subscribes, a
//! token: is it well formed, is there a device behind it, is it the expected kind, the
//! sender's own, still installed, of the expected package?
//!
//! The check answers with a typed [`Refusal`]; each protocol maps that to its own wire error
//! (legacy `NotRegistered`, v1 `UNREGISTERED`, IID `NOT_FOUND`, …), so the order of the
//! checks is the same everywhere and lives only here.

use std::sync::Arc;

use crate::devices::{Device, DeviceKind, Devices};
use crate::{c2dm, token};

/// What a recipient must be to receive from one sender.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected<'a> {
    /// GCM/FCM token or C2DM registration id; also decides which form counts as well formed.
    pub kind: DeviceKind,
    /// The sender (project number) that must own the device.
    pub sender_id: &'a str,
    /// The package the message is restricted to, if any.
    pub package: Option<&'a str>,
}

impl<'a> Expected<'a> {
    /// A recipient of `kind` owned by `sender_id`, any package.
    pub(crate) fn new(kind: DeviceKind, sender_id: &'a str) -> Self {
        Self {
            kind,
            sender_id,
            package: None,
        }
    }

    /// Also requires the device's package to be `package` when one is given.
    pub(crate) fn restricted_to(mut self, package: Option<&'a str>) -> Self {
        self.package = package;
        self
    }
}

/// A recipient that passed the check.
#[derive(Debug)]
pub(crate) struct Recipient {
    /// The token as the registry stores it (shared, for stored messages).
    pub token: Arc<str>,
    /// The device behind it.
    pub device: Arc<Device>,
}

/// Why a recipient was refused, in the order the checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No device has it, and it is not in the expected kind's form (truncated, edited, …).
    Malformed,
    /// In the expected form but no device has it.
    Unknown,
    /// A device has it, but of the other kind (a C2DM id sent to GCM or the reverse).
    WrongKind,
    /// A device has it, registered with another sender.
    WrongSender,
    /// The device's app was uninstalled.
    Uninstalled,
    /// The device's package is not the one the message is restricted to.
    WrongPackage,
}

/// Checks `token` against the virtual devices as `expected` says.
pub(crate) fn check(
    devices: &Devices,
    expected: Expected<'_>,
    token: &str,
) -> Result<Recipient, Refusal> {
    let Some((shared, device)) = devices.lookup(token) else {
        return Err(if is_well_formed(expected.kind, token) {
            Refusal::Unknown
        } else {
            Refusal::Malformed
        });
    };
    if device.kind != expected.kind {
        return Err(Refusal::WrongKind);
    }
    if *device.sender_id != *expected.sender_id {
        return Err(Refusal::WrongSender);
    }
    if device.is_uninstalled() {
        return Err(Refusal::Uninstalled);
    }
    if let Some(package) = expected.package
        && *device.package != *package
    {
        return Err(Refusal::WrongPackage);
    }
    Ok(Recipient {
        token: shared,
        device,
    })
}

/// The installed GCM/FCM device behind `token` when `sender_id` owns it: who may be
/// subscribed to a topic or put in a device group.
pub(crate) fn gcm_device(
    devices: &Devices,
    sender_id: &str,
    token: &str,
) -> Result<Arc<Device>, Refusal> {
    check(devices, Expected::new(DeviceKind::Gcm, sender_id), token).map(|found| found.device)
}

fn is_well_formed(kind: DeviceKind, token: &str) -> bool {
    match kind {
        DeviceKind::Gcm => token::is_well_formed(token),
        DeviceKind::C2dm => c2dm::is_well_formed(token),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::DeviceSpec;

    fn one_device(devices: &Devices, kind: DeviceKind, sender_id: &str) -> String {
        let spec = DeviceSpec {
            kind,
            sender_id: Arc::from(sender_id),
            package: Arc::from("com.example.app"),
            rate_limit_per_minute: None,
        };
        let created = devices.create(&spec, 1, |_, _| None);
        created[0].0.to_string()
    }

    #[test]
    fn each_refusal_in_turn() {
        let devices = Devices::default();
        let gcm = one_device(&devices, DeviceKind::Gcm, "111");
        let c2dm_id = one_device(&devices, DeviceKind::C2dm, "111");
        let expect = Expected::new(DeviceKind::Gcm, "111");

        assert_eq!(
            check(&devices, expect, "not-a-token").unwrap_err(),
            Refusal::Malformed
        );
        assert_eq!(
            check(&devices, expect, &token::generate()).unwrap_err(),
            Refusal::Unknown
        );
        assert_eq!(
            check(&devices, expect, &c2dm_id).unwrap_err(),
            Refusal::WrongKind
        );
        assert_eq!(
            check(&devices, Expected::new(DeviceKind::Gcm, "222"), &gcm).unwrap_err(),
            Refusal::WrongSender
        );
        assert_eq!(
            check(&devices, expect.restricted_to(Some("com.other")), &gcm).unwrap_err(),
            Refusal::WrongPackage
        );
        let found = check(
            &devices,
            expect.restricted_to(Some("com.example.app")),
            &gcm,
        )
        .unwrap();
        assert_eq!(&*found.token, gcm.as_str());

        devices.uninstall(&gcm);
        assert_eq!(
            check(&devices, expect, &gcm).unwrap_err(),
            Refusal::Uninstalled
        );
    }

    #[test]
    fn well_formed_means_the_expected_kinds_form() {
        let devices = Devices::default();
        let c2dm_expect = Expected::new(DeviceKind::C2dm, "111");
        // A GCM-form token is not a C2DM registration id, and the reverse.
        assert_eq!(
            check(&devices, c2dm_expect, &token::generate()).unwrap_err(),
            Refusal::Malformed
        );
        let id = c2dm::registration_id(&mut rand::rng());
        assert_eq!(
            check(&devices, c2dm_expect, &id).unwrap_err(),
            Refusal::Unknown
        );
        assert_eq!(
            check(&devices, Expected::new(DeviceKind::Gcm, "111"), &id).unwrap_err(),
            Refusal::Malformed
        );
    }
}
