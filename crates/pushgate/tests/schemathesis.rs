//! The gateway's API against its own OpenAPI document: schemathesis (from PyPI, in
//! `tests/interop/.venv`) generates requests from `/openapi.json` of a real `pushgate serve`
//! sandbox on 127.0.0.1 and checks every answer: no 5xx, status codes, content types and
//! bodies as documented, every request the document allows accepted and every request it
//! forbids refused. Its settings and their few, reasoned exceptions are in
//! `tests/interop/schemathesis.toml`. A machine without the venv's Python fails this test
//! loudly instead of skipping it.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The sandbox app's API key (32 characters).
const KEY: &str = "schemathesis-test-key-0123456789";
/// Test cases per operation and the seed: a bounded, reproducible run.
const MAX_EXAMPLES: &str = "30";
const SEED: &str = "20261206";

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/interop")
        .canonicalize()
        .expect("tests/interop exists")
}

/// The venv's `st`, after `tests/interop/setup.sh` (venv + pip install) has run.
fn schemathesis() -> PathBuf {
    let dir = interop_dir();
    let status = Command::new("bash")
        .arg(dir.join("setup.sh"))
        .status()
        .expect("bash runs tests/interop/setup.sh");
    assert!(
        status.success(),
        "tests/interop/setup.sh failed ({status}): this test needs python3 with venv and pip"
    );
    let st = dir.join(".venv/bin/st");
    assert!(st.exists(), "{} missing after setup.sh", st.display());
    st
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}

/// A `pushgate serve` sandbox, killed (and its folder removed) on drop.
struct Sandbox {
    child: Child,
    api: String,
    dir: PathBuf,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// True when `GET /healthz` on `addr` answers 200 (plain HTTP/1.0 over a socket).
fn healthy(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")
}

fn start_sandbox() -> Sandbox {
    let dir = std::env::temp_dir().join(format!("pushgate-schemathesis-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A port found free can be taken before the child binds it: then try again.
    for _ in 0..3 {
        let (api_port, emu_port) = (free_port(), free_port());
        let api = format!("http://127.0.0.1:{api_port}");
        let log = std::fs::File::create(dir.join("serve.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_pushgate"))
            .args(["serve", "--listen", &format!("127.0.0.1:{api_port}")])
            .args(["--emulator-http", &format!("127.0.0.1:{emu_port}")])
            .arg("--database")
            .arg(dir.join("gw.db"))
            .current_dir(&dir)
            .env("PUSHGATE_SANDBOX_API_KEY", KEY)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("pushgate serve starts");
        let mut sandbox = Sandbox {
            child,
            api,
            dir: dir.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = sandbox.child.try_wait() {
                break;
            }
            if healthy(&format!("127.0.0.1:{api_port}"))
                && support::holds_listener(sandbox.child.id(), api_port)
            {
                return sandbox;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();
        eprintln!("pushgate serve did not come up:\n{log}");
        let _ = sandbox.child.kill();
        let _ = sandbox.child.wait();
        std::mem::forget(sandbox);
        let _ = std::fs::remove_file(dir.join("gw.db"));
    }
    panic!("pushgate serve never answered /healthz");
}

/// The first `max` bytes of `text` (on a character boundary).
fn head(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The last `max` bytes of `text` (on a character boundary).
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The number after `label` on its line of schemathesis's summary (`Tested: 18`).
fn count_after(text: &str, label: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.trim().split(['/', ' ']).next()?.parse().ok())
}

#[test]
fn the_api_conforms_to_its_openapi_document() {
    let st = schemathesis();
    let sandbox = start_sandbox();
    let interop = interop_dir();
    // Its cache and reports go to a folder of its own, removed afterwards.
    let work = sandbox.dir.join("schemathesis");
    std::fs::create_dir_all(&work).unwrap();
    let started = Instant::now();
    let output = support::loopback_only(&mut Command::new(st))
        .arg("--config-file")
        .arg(interop.join("schemathesis.toml"))
        .args(["run", &format!("{}/openapi.json", sandbox.api)])
        .args(["-H", &format!("Authorization: Bearer {KEY}")])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
        .args(["--workers", "1", "--request-timeout", "10"])
        .args(["--generation-database", "none"])
        // The event stream never ends: each request would wait out the timeout and report
        // it. Its parameters are the event list's, which is tested; tests/events.rs reads
        // the stream itself.
        .args(["--exclude-operation-id", "stream_events"])
        .args(["--no-color", "--output-truncate", "true"])
        .current_dir(&work)
        // The hooks module beside the configuration.
        .env("PYTHONPATH", &interop)
        // Loopback only (no proxies), no telemetry or upload of any kind.
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .stdin(Stdio::null())
        .output()
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report = format!(
        "{}\n[...]\n{}\n{}",
        head(&stdout, 30_000),
        tail(&stdout, 10_000),
        tail(&stderr, 4_000)
    );
    println!(
        "schemathesis ran for {:.1}s:\n{report}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        output.status.success(),
        "schemathesis reported failures ({}):\n{report}",
        output.status
    );
    // It must have tested every selected operation, not skipped its way to green.
    let selected = count_after(&stdout, "Selected:");
    let tested = count_after(&stdout, "Tested:");
    assert!(
        tested.is_some_and(|t| t >= 20) && tested == selected,
        "schemathesis tested {tested:?} of {selected:?} operations:\n{report}"
    );
    // And every generated case passed: `3518 generated, 3518 passed, 20 skipped`.
    let cases = stdout
        .lines()
        .find(|l| l.contains(" generated, "))
        .unwrap_or_else(|| panic!("no test-case count:\n{report}"));
    let generated = count_after(cases, "");
    let passed = cases
        .split(", ")
        .find_map(|part| part.trim().strip_suffix(" passed")?.parse::<u64>().ok());
    assert!(
        generated.is_some_and(|g| g > 0) && passed == generated,
        "not every generated case passed ({cases}):\n{report}"
    );
    assert!(!stdout.contains("FAILURES"), "failures reported:\n{report}");
}
