//! Reload by signal: `pushgate serve --config` gets a real SIGHUP after its file changed, and
//! applies it in place (a new app serves, a removed key is refused) without exiting; a file
//! that does not validate is refused on SIGHUP with an error in the log, and the running
//! configuration keeps serving.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use support::{GatewayProcess, TempDir, client, free_port, wait_healthy};

const SHOP_KEY: &str = "shop-key-0123456789abcdef";
const SPARE_KEY: &str = "spare-key-0123456789abcdef";
const NEWS_KEY: &str = "news-key-0123456789abcdef";

fn config(port: u16, keys: &[&str], news: bool) -> String {
    let channel = |app: &str| {
        format!(
            "[apps.{app}.channels.gcm]\nkind = \"legacy\"\napi_key = \"server-key\"\n\
             endpoint = \"http://127.0.0.1:9/gcm/send\"\n"
        )
    };
    let keys: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    let mut text = format!(
        "listen = \"127.0.0.1:{port}\"\ndatabase = \"gw.db\"\n\
         [apps.shop]\ndefault = true\napi_keys = [{}]\n{}",
        keys.join(", "),
        channel("shop")
    );
    if news {
        text += &format!(
            "[apps.news]\napi_keys = [\"{NEWS_KEY}\"]\n{}",
            channel("news")
        );
    }
    text
}

fn hangup(gw: &GatewayProcess) {
    let pid = gw.pid().expect("running").to_string();
    let status = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(status.success());
}

fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn status_of(http: &reqwest::Client, base: &str, key: &str, app: &str) -> StatusCode {
    http.get(format!("{base}/v1/apps/{app}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_the_changed_file_and_refuses_an_invalid_one() {
    let dir = TempDir::new("pushgate-reload-signal");
    let port = free_port();
    let file = dir.0.join("pushgate.toml");
    std::fs::write(&file, config(port, &[SHOP_KEY, SPARE_KEY], false)).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_pushgate"));
    command
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    let mut gw = GatewayProcess::spawn_command(command, &dir.0, "gateway");
    let http = client();
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&http, &base, &mut gw).await;
    assert_eq!(
        status_of(&http, &base, SPARE_KEY, "shop").await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&http, &base, NEWS_KEY, "news").await,
        StatusCode::UNAUTHORIZED
    );

    replace(&file, &config(port, &[SHOP_KEY], true));
    hangup(&gw);
    pushgate_testkit::eventually_ok(
        "the reload by SIGHUP",
        Duration::from_secs(20),
        async || {
            gw.check_alive();
            match status_of(&http, &base, NEWS_KEY, "news").await {
                StatusCode::OK => Ok(()),
                other => Err(other),
            }
        },
    )
    .await;
    assert_eq!(
        status_of(&http, &base, SPARE_KEY, "shop").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_of(&http, &base, SHOP_KEY, "shop").await,
        StatusCode::OK
    );

    replace(
        &file,
        "listen = \"127.0.0.1:1\"\n[apps.shop]\napi_keys = 7\n",
    );
    hangup(&gw);
    pushgate_testkit::eventually_ok(
        "the refusal in the log",
        Duration::from_secs(20),
        async || {
            gw.check_alive();
            let log = gw.stderr();
            if log.contains("configuration not reloaded") {
                Ok(())
            } else {
                Err(log)
            }
        },
    )
    .await;
    gw.check_alive();
    assert_eq!(
        status_of(&http, &base, NEWS_KEY, "news").await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&http, &base, SHOP_KEY, "shop").await,
        StatusCode::OK
    );
    let log = gw.stderr();
    assert!(
        log.contains("apps.shop.api_keys") || log.contains("api_keys"),
        "{log}"
    );
}
