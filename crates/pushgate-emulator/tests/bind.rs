//! Start-up errors name the listener and the address that could not be bound.

use std::net::{SocketAddr, TcpListener};

use pushgate_emulator::{BindError, Emulator, EmulatorConfig, ListenerKind};

/// Starts an emulator whose other listeners are free, returning the error.
async fn start_err(config: EmulatorConfig) -> std::io::Error {
    Emulator::start(config)
        .await
        .expect_err("a taken port must fail the start")
}

fn bind_error(e: &std::io::Error) -> &BindError {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<BindError>())
        .unwrap_or_else(|| panic!("not a BindError: {e:?}"))
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[tokio::test]
async fn taken_ccs_port_is_named_as_the_ccs_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let e = start_err(EmulatorConfig {
        http: any_port(),
        xmpp: Some(addr),
        ..EmulatorConfig::default()
    })
    .await;
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    let bind = bind_error(&e);
    assert_eq!(bind.listener, ListenerKind::Ccs);
    assert_eq!(bind.addr, addr);
    let text = e.to_string();
    assert!(text.contains(&addr.to_string()), "{text}");
    assert!(text.contains("CCS"), "{text}");
    assert!(!text.contains("HTTP"), "{text}");
}

#[tokio::test]
async fn taken_https_port_is_named_as_the_https_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let e = start_err(EmulatorConfig {
        http: any_port(),
        https: Some(addr),
        xmpp: Some(any_port()),
        ..EmulatorConfig::default()
    })
    .await;
    let bind = bind_error(&e);
    assert_eq!(bind.listener, ListenerKind::Https);
    assert_eq!(bind.addr, addr);
    assert!(e.to_string().contains(&format!("HTTPS listener on {addr}")));
}

#[tokio::test]
async fn taken_http_port_is_named_as_the_http_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let e = start_err(EmulatorConfig {
        http: addr,
        ..EmulatorConfig::default()
    })
    .await;
    let bind = bind_error(&e);
    assert_eq!(bind.listener, ListenerKind::Http);
    assert_eq!(bind.addr, addr);
    assert!(e.to_string().contains(&format!("HTTP listener on {addr}")));
}
