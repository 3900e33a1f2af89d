//! TLS on the gateway's own listener: HTTPS (HTTP/2 by ALPN) with the configured pair, and a
//! renewed certificate taken up from disk without a restart.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{APP, KEY, start_with};
use pushgate_gateway::http_server::tls::TlsFiles;
use reqwest::StatusCode;

/// A fresh self-signed certificate for 127.0.0.1: (certificate PEM, key PEM).
fn self_signed() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem())
}

/// A client that trusts only `cert_pem`.
fn trusting(cert_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .https_only(true)
        .tls_certs_only([reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap()])
        .build()
        .unwrap()
}

fn write_pair(dir: &Path, (cert, key): &(String, String)) -> TlsFiles {
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.key, key).unwrap();
    std::fs::write(&files.cert, cert).unwrap();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_over_https_and_takes_up_a_renewed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let first = self_signed();
    let files = write_pair(dir.path(), &first);
    let env = start_with(|spec| spec.tls = Some(files.clone())).await;
    assert!(env.base.starts_with("https://"), "{}", env.base);

    let client = trusting(&first.0);
    let r = client
        .get(format!("{}/v1/apps/{APP}/devices", env.base))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("an HTTPS answer");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "h2 chosen by ALPN");
    // Plain HTTP on the TLS port gets no API answer.
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = env.base.replacen("https://", "http://", 1);
    let answer = plain.get(format!("{url}/healthz")).send().await;
    assert!(
        answer.map(|r| r.status() != StatusCode::OK).unwrap_or(true),
        "plain HTTP must not be served on the TLS listener"
    );

    // Renew: a client that trusts only the new certificate fails now, then works once the
    // gateway has seen the new files (it watches them; no restart, no signal).
    let second = self_signed();
    let renewed = trusting(&second.0);
    let healthz = format!("{}/healthz", env.base);
    assert!(renewed.get(&healthz).send().await.is_err());
    write_pair(dir.path(), &second);
    pushgate_testkit::eventually_ok(
        "the renewed certificate",
        Duration::from_secs(15),
        async || match renewed.get(&healthz).send().await {
            Ok(r) if r.status() == StatusCode::OK => Ok(()),
            Ok(r) => Err(format!("HTTP {}", r.status())),
            Err(e) => Err(e.to_string()),
        },
    )
    .await;
    // And the old certificate is no longer served.
    let old = trusting(&first.0);
    assert!(old.get(&healthz).send().await.is_err());
}
