//! Configuration rules: what is accepted, and the errors for what is not.

use super::*;

const KEY: &str = "a-test-api-key-of-some-length";

fn legacy_app(extra: &str) -> String {
    format!(
        r#"
[apps.shop]
api_keys = ["{KEY}"]
{extra}
[apps.shop.channels.gcm]
kind = "legacy"
api_key = "server-key"
endpoint = "http://127.0.0.1:1/gcm/send"
"#
    )
}

fn resolve(text: &str) -> Result<GatewaySpec, ConfigError> {
    ConfigFile::from_toml(text)?.resolve()
}

fn error_of(text: &str) -> String {
    resolve(text).unwrap_err().to_string()
}

#[test]
fn a_minimal_app_gets_every_default() {
    let spec = resolve(&legacy_app("")).unwrap();
    assert_eq!(spec.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(spec.database, DEFAULT_DATABASE);
    assert!(spec.storage.durable_commits);
    let app = &spec.apps[0];
    assert!(app.is_default, "a single app is the default");
    assert_eq!(app.default_channel, "gcm");
    assert_eq!(app.c2dm_flow.channel, "gcm");
    assert_eq!(app.c2dm_flow.registration_id_len, 8..=140);
    assert_eq!(app.c2dm_flow.device_id_len, 8..=64);
    let ch = app.channel("gcm").unwrap();
    assert_eq!(ch.kind(), ChannelKind::Legacy);
    assert_eq!(ch.endpoint, "http://127.0.0.1:1/gcm/send");
    assert_eq!(ch.credential.reference(), "inline");
    assert_eq!(ch.credential.expose(), "server-key");
}

#[test]
fn unknown_and_misplaced_keys_are_named() {
    let typo = error_of(&legacy_app("defualt_channel = \"gcm\""));
    assert!(typo.contains("defualt_channel"), "{typo}");
    let paced = format!("{}rate_per_minute = 10\n", legacy_app(""));
    let e = error_of(&paced);
    assert!(e.contains("rate_per_minute") && e.contains("legacy"), "{e}");
    let misplaced = format!("{}sender_id = \"1\"\n", legacy_app(""));
    let e = error_of(&misplaced);
    assert!(
        e.contains("apps.shop.channels.gcm.sender_id") && e.contains("legacy"),
        "{e}"
    );
}

#[test]
fn missing_pieces_are_named() {
    let no_key = r#"
[apps.shop]
[apps.shop.channels.gcm]
kind = "legacy"
api_key = "k"
"#;
    assert!(error_of(no_key).contains("apps.shop.api_keys"));
    let short_key = legacy_app("").replace(KEY, "short");
    assert!(error_of(&short_key).contains("shorter than 16"));
    let no_channel = format!("[apps.shop]\napi_keys = [\"{KEY}\"]\n");
    assert!(error_of(&no_channel).contains("apps.shop.channels"));
    let v1_without_key = format!(
        "[apps.shop]\napi_keys = [\"{KEY}\"]\n[apps.shop.channels.v1]\nkind = \"fcm_v1\"\n"
    );
    assert!(error_of(&v1_without_key).contains("apps.shop.channels.v1.service_account"));
    let missing_file = v1_without_key.clone() + "service_account = \"/nonexistent/key.json\"\n";
    let e = error_of(&missing_file);
    assert!(e.contains("/nonexistent/key.json"), "{e}");
    let two_channels = format!(
        "{}[apps.shop.channels.other]\nkind = \"legacy\"\napi_key = \"k2\"\n",
        legacy_app("")
    );
    assert!(error_of(&two_channels).contains("apps.shop.default_channel"));
    let bad_default = legacy_app("default_channel = \"nope\"");
    assert!(error_of(&bad_default).contains("no channel named \"nope\""));
    assert!(error_of("").contains("no application configured"));
}

#[test]
fn defaults_and_keys_must_be_unambiguous() {
    let two = format!(
        "{}\n[apps.blog]\napi_keys = [\"another-key-long-enough\"]\n[apps.blog.channels.gcm]\nkind = \"legacy\"\napi_key = \"k\"\n",
        legacy_app("")
    );
    assert!(error_of(&two).contains("none has default"));
    let both = two
        .replace("[apps.blog]\n", "[apps.blog]\ndefault = true\n")
        .replacen("[apps.shop]\n", "[apps.shop]\ndefault = true\n", 1);
    assert!(error_of(&both).contains("only one application may be the default"));
    let shared = two
        .replace("another-key-long-enough", KEY)
        .replace("[apps.blog]\n", "[apps.blog]\ndefault = true\n");
    assert!(error_of(&shared).contains("also a key of app"));
}

#[test]
fn secrets_come_from_the_environment_and_never_show() {
    // SAFETY: only this test reads or writes this variable.
    unsafe { std::env::set_var("PUSHGATE_TEST_SECRET_FOR_CONFIG", "from-the-env-value") };
    let text = legacy_app("").replace(
        "api_key = \"server-key\"",
        "api_key = \"env:PUSHGATE_TEST_SECRET_FOR_CONFIG\"",
    );
    let spec = resolve(&text).unwrap();
    let ch = &spec.apps[0].channels[0];
    assert_eq!(ch.credential.expose(), "from-the-env-value");
    assert_eq!(
        ch.credential.reference(),
        "env:PUSHGATE_TEST_SECRET_FOR_CONFIG"
    );
    assert!(!format!("{spec:?}").contains("from-the-env-value"));
    let unset = text.replace(
        "PUSHGATE_TEST_SECRET_FOR_CONFIG",
        "PUSHGATE_TEST_UNSET_VAR_X",
    );
    assert!(error_of(&unset).contains("PUSHGATE_TEST_UNSET_VAR_X is not set"));
}

#[test]
fn c2dm_and_ccs_channels_resolve() {
    let text = format!(
        r#"
[apps.old]
api_keys = ["{KEY}"]
default_channel = "xmpp"
c2dm_flow = {{ max_registration_id_len = 4096 }}
[apps.old.channels.xmpp]
kind = "ccs"
sender_id = "1234567890"
api_key = "k"
host = "127.0.0.1:5235"
window = 10
connections = 2
[apps.old.channels.cloud]
kind = "c2dm"
email = "c2dm@example.com"
password = "pw"
login_url = "http://127.0.0.1:1/accounts/ClientLogin"
endpoint = "http://127.0.0.1:1/c2dm/send"
"#
    );
    let spec = resolve(&text).unwrap();
    let app = &spec.apps[0];
    assert_eq!(
        app.c2dm_flow.channel, "cloud",
        "the c2dm channel carries the flow"
    );
    assert_eq!(app.c2dm_flow.registration_id_len, 8..=4096);
    let xmpp = app.channel("xmpp").unwrap();
    assert_eq!(xmpp.max_in_flight, 20, "two connections of ten");
    match &xmpp.settings {
        ChannelSettings::Ccs { host, port, .. } => {
            assert_eq!((host.as_str(), *port), ("127.0.0.1", 5235))
        }
        other => panic!("not ccs: {other:?}"),
    }
    let bad_host = text.replace("127.0.0.1:5235", "nohost");
    assert!(error_of(&bad_host).contains("host:port"));
    let neither = text.replace("password = \"pw\"\n", "");
    assert!(error_of(&neither).contains("email and password, or auth_token"));
}

#[test]
fn key_rates_come_from_limits_and_an_app_may_set_its_own() {
    let global = format!("[limits]\nrequests_per_second = 50\n{}", legacy_app(""));
    let spec = resolve(&global).unwrap();
    assert_eq!(
        spec.apps[0].key_rate,
        Some(KeyRate {
            per_second: 50,
            burst: 50
        }),
        "the burst defaults to one second's worth"
    );
    let own = format!(
        "[limits]\nrequests_per_second = 50\n{}",
        legacy_app("requests_per_second = 5\nrequest_burst = 20")
    );
    assert_eq!(
        resolve(&own).unwrap().apps[0].key_rate,
        Some(KeyRate {
            per_second: 5,
            burst: 20
        })
    );
    assert_eq!(resolve(&legacy_app("")).unwrap().apps[0].key_rate, None);
    let zero = error_of(&legacy_app("requests_per_second = 0"));
    assert!(zero.contains("apps.shop.requests_per_second"), "{zero}");
    let alone = error_of(&format!("[limits]\nrequest_burst = 9\n{}", legacy_app("")));
    assert!(alone.contains("limits.request_burst"), "{alone}");
}

#[test]
fn connection_limits_and_deadlines_are_read_and_checked() {
    let text = format!(
        "[limits]\nheader_read_timeout = \"3s\"\nbody_read_timeout = \"7s\"\nmax_connections = 99\n{}",
        legacy_app("")
    );
    let spec = resolve(&text).unwrap();
    assert_eq!(
        spec.server.header_read_timeout,
        std::time::Duration::from_secs(3)
    );
    assert_eq!(spec.server.max_connections, 99);
    assert_eq!(
        spec.limits.body_read_timeout,
        std::time::Duration::from_secs(7)
    );
    let e = error_of(&format!(
        "[limits]\nmax_connections = 0\n{}",
        legacy_app("")
    ));
    assert!(e.contains("limits.max_connections"), "{e}");
}

#[test]
fn a_tls_pair_that_cannot_load_stops_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "not a certificate, and a secret-looking line").unwrap();
    let text = format!(
        "tls = {{ cert = {:?}, key = {:?} }}\n{}",
        cert,
        dir.path().join("missing-key.pem"),
        legacy_app("")
    );
    let e = error_of(&text);
    assert!(e.contains("tls: cannot read"), "{e}");
    assert!(
        e.contains("missing-key.pem"),
        "the missing file is named: {e}"
    );
    let key = dir.path().join("key.pem");
    std::fs::write(&key, "nothing").unwrap();
    let text = format!(
        "tls = {{ cert = {:?}, key = {:?} }}\n{}",
        cert,
        key,
        legacy_app("")
    );
    let e = error_of(&text);
    assert!(
        e.contains("cert.pem") && e.contains("no PEM certificate"),
        "{e}"
    );
    assert!(
        !e.contains("secret-looking"),
        "file content never shows: {e}"
    );
}

#[test]
fn admin_keys_are_secret_references_long_enough_and_no_app_key() {
    // SAFETY: only this test reads these variables.
    unsafe {
        std::env::set_var("PUSHGATE_TEST_CONSOLE_ADMIN", "an-admin-key-0123456789");
        std::env::set_var("PUSHGATE_TEST_CONSOLE_SHORT", "too-short");
    }
    let with = |keys: &str| format!("admin_keys = [{keys}]\n{}", legacy_app(""));
    let spec = resolve(&with("\"env:PUSHGATE_TEST_CONSOLE_ADMIN\"")).unwrap();
    assert_eq!(spec.admin_keys.len(), 1);
    assert_eq!(spec.admin_keys[0].expose(), "an-admin-key-0123456789");
    assert_eq!(
        spec.admin_keys[0].reference(),
        "env:PUSHGATE_TEST_CONSOLE_ADMIN"
    );
    assert!(resolve(&legacy_app("")).unwrap().admin_keys.is_empty());
    let short = error_of(&with("\"env:PUSHGATE_TEST_CONSOLE_SHORT\""));
    assert!(
        short.contains("admin_keys[0]") && short.contains("shorter than 16"),
        "{short}"
    );
    assert!(
        !short.contains("too-short"),
        "the value never shows: {short}"
    );
    let unset = error_of(&with("\"env:PUSHGATE_TEST_CONSOLE_UNSET_VAR\""));
    assert!(unset.contains("admin_keys[0]") && unset.contains("PUSHGATE_TEST_CONSOLE_UNSET_VAR"));
    let shared = error_of(&with(&format!("\"{KEY}\"")));
    assert!(
        shared.contains("apps.shop.api_keys") && shared.contains("admin key"),
        "{shared}"
    );
    assert!(!shared.contains(KEY), "the key never shows: {shared}");
}

#[test]
fn a_postgres_database_and_its_pool_settings_are_read_and_checked() {
    let text = format!(
        "database = \"postgres://gw@db.internal/push\"\n\
         [storage]\npool_max_connections = 40\npool_acquire_timeout = \"3s\"\n{}",
        legacy_app("")
    );
    let spec = resolve(&text).unwrap();
    assert_eq!(spec.database, "postgres://gw@db.internal/push");
    let store = spec.storage.store_settings();
    assert_eq!(store.pool_max_connections, 40);
    assert_eq!(
        store.pool_acquire_timeout,
        std::time::Duration::from_secs(3)
    );
    let defaults = resolve(&legacy_app("")).unwrap().storage.store_settings();
    assert_eq!(defaults.pool_max_connections, 16);
    assert_eq!(
        defaults.pool_acquire_timeout,
        std::time::Duration::from_secs(10)
    );
    let e = error_of(&format!(
        "[storage]\npool_max_connections = 0\n{}",
        legacy_app("")
    ));
    assert!(e.contains("storage.pool_max_connections"), "{e}");
    let e = error_of(&format!(
        "[storage]\npool_acquire_timeout = \"0s\"\n{}",
        legacy_app("")
    ));
    assert!(e.contains("storage.pool_acquire_timeout"), "{e}");
}
