//! `pushgate devices import|export` and `pushgate send --gateway` against a real sandbox
//! gateway (`pushgate serve` as a child process, with its in-process emulator), over real
//! sockets: checked by exit codes, printed counts, the gateway's own API and the virtual
//! devices' inboxes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

/// Who holds a port: the benchmark's own check, this very file.
#[path = "../src/support/ports.rs"]
mod ports;

/// The sandbox app's API key in these tests (32 characters).
const KEY: &str = "cli-gateway-test-key-0123456789a";
/// How long the gateway may take to start answering.
const START_DEADLINE: Duration = Duration::from_secs(60);

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Polls `{api}/healthz` until the child itself answers (it holds `port`: another process
/// that took the port first is not taken for it), the child exits or the deadline passes.
async fn wait_healthy(child: &mut Child, api: &str, port: u16) -> bool {
    let deadline = Instant::now() + START_DEADLINE;
    let client = http();
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(r) = client.get(format!("{api}/healthz")).send().await
            && r.status().is_success()
            && ports::holds_listener(child.id(), port)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A running `pushgate serve` sandbox, killed on drop.
struct Sandbox {
    child: Child,
    /// One pooled client for every call of the test.
    http: reqwest::Client,
    /// `http://127.0.0.1:port` of the gateway API.
    api: String,
    /// `http://127.0.0.1:port` of its emulator.
    emu: String,
    dir: PathBuf,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Sandbox {
    async fn start() -> Sandbox {
        let dir = std::env::temp_dir().join(format!(
            "pushgate-cli-gateway-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // A port found free can be taken before the child binds it: then try again.
        for _ in 0..3 {
            let (api_port, emu_port) = (free_port(), free_port());
            let api = format!("http://127.0.0.1:{api_port}");
            let log = std::fs::File::create(dir.join("serve.log")).unwrap();
            let mut child = Command::new(env!("CARGO_BIN_EXE_pushgate"))
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
            if wait_healthy(&mut child, &api, api_port).await {
                return Sandbox {
                    child,
                    http: http(),
                    api,
                    emu: format!("http://127.0.0.1:{emu_port}"),
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();
            eprintln!("pushgate serve did not come up:\n{log}");
            let _ = std::fs::remove_file(dir.join("gw.db"));
        }
        panic!("pushgate serve never answered /healthz");
    }

    /// Creates `n` virtual devices in the emulator; their tokens.
    async fn virtual_devices(&self, n: usize) -> Vec<String> {
        let answer: Value = self
            .http
            .post(format!("{}/emulator/devices", self.emu))
            .json(&json!({ "count": n }))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        let tokens: Vec<String> = answer["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["token"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(tokens.len(), n);
        tokens
    }

    /// The inboxes of `tokens`, in order (fetched a few at a time).
    async fn inboxes(&self, tokens: &[&str]) -> Vec<Vec<Value>> {
        futures_util::stream::iter(tokens.iter().map(|t| self.inbox(t)))
            .buffered(16)
            .collect()
            .await
    }

    async fn inbox(&self, token: &str) -> Vec<Value> {
        let answer: Value = self
            .http
            .get(format!("{}/emulator/devices/{token}/messages", self.emu))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["messages"].as_array().unwrap().clone()
    }

    async fn api_get(&self, path_and_query: &str) -> Value {
        self.http
            .get(format!("{}{path_and_query}", self.api))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Every device of the sandbox app, as the API shows it, by device id.
    async fn registry(&self) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = "/v1/apps/sandbox/devices?limit=1000".to_string();
            if let Some(c) = &cursor {
                write!(path, "&cursor={c}").unwrap();
            }
            let page = self.api_get(&path).await;
            for d in page["devices"].as_array().unwrap() {
                let id = d["device_id"].as_str().unwrap().to_string();
                assert!(out.insert(id, comparable(d)).is_none(), "listed twice: {d}");
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn gateway_args(&self) -> Vec<String> {
        args(&["--gateway", &self.api, "--app", "sandbox"])
    }
}

/// The fields of a device an import sets, with lists as sorted sets.
fn comparable(d: &Value) -> Value {
    let set = |v: &Value| {
        let mut items: Vec<String> = v
            .as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        items.sort();
        items.dedup();
        json!(items)
    };
    json!({
        "token": d["token"],
        "channel": d["channel"],
        "user": d["user"],
        "tags": set(&d["tags"]),
        "topics": set(&d["topics"]),
        "app_version": d["app_version"],
        "state": d.get("state").filter(|s| !s.is_null()).cloned().unwrap_or(json!("active")),
    })
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Runs the binary with the key in PUSHGATE_GATEWAY_KEY (unless `key` is given as a flag);
/// checks that the key never shows in its output.
async fn pushgate(args: Vec<String>, stdin: Option<Vec<u8>>) -> Output {
    let output = tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pushgate"));
        command
            .args(&args)
            .env("RUST_LOG", "warn")
            .env("PUSHGATE_GATEWAY_KEY", KEY)
            .env_remove("PUSHGATE_API_KEY")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("pushgate runs");
        if let Some(bytes) = stdin {
            use std::io::Write;
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(&bytes).unwrap();
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    for text in [&output.stdout, &output.stderr] {
        assert!(
            !String::from_utf8_lossy(text).contains(KEY),
            "the API key was printed"
        );
    }
    output
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The number printed after `label` on a line of `text` (`  sent   12`, `imported 12 ...`).
fn number_after(text: &str, label: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix(label)?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The devices of a test file.
#[derive(Clone)]
struct Spec {
    id: String,
    token: String,
    channel: Option<&'static str>,
    user: Option<String>,
    tags: Vec<String>,
    topics: Vec<String>,
    app_version: Option<String>,
    state: Option<&'static str>,
}

impl Spec {
    /// Device `i` with token `token`: every 3rd tagged vip (some also beta), every 5th with
    /// a user (one with a comma), every 7th on the legacy channel, every 11th disabled when
    /// `with_disabled`.
    fn nth(i: usize, token: &str, with_disabled: bool) -> Spec {
        let mut tags = Vec::new();
        if i.is_multiple_of(3) {
            tags.push("vip".to_string());
        }
        if i.is_multiple_of(6) {
            tags.push("beta".to_string());
        }
        Spec {
            id: format!("dev-{i:05}"),
            token: token.to_string(),
            channel: i.is_multiple_of(7).then_some("legacy"),
            user: i.is_multiple_of(5).then(|| {
                if i == 10 {
                    "Smith, J. \"JJ\"".to_string()
                } else {
                    format!("user-{}", i / 5)
                }
            }),
            tags,
            topics: if i.is_multiple_of(4) {
                vec!["news".into(), "sport".into()]
            } else {
                Vec::new()
            },
            app_version: i.is_multiple_of(2).then(|| format!("2.{}", i % 9)),
            state: (with_disabled && i.is_multiple_of(11)).then_some("disabled"),
        }
    }

    fn expected(&self) -> Value {
        let mut tags = self.tags.clone();
        tags.sort();
        let mut topics = self.topics.clone();
        topics.sort();
        json!({
            "token": self.token,
            "channel": self.channel,
            "user": self.user,
            "tags": tags,
            "topics": topics,
            "app_version": self.app_version,
            "state": self.state.unwrap_or("active"),
        })
    }
}

fn csv_quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A CSV file of `specs`, columns in an order of its own, tags written `a; b`.
fn csv_file(specs: &[Spec]) -> String {
    let mut text = String::from("token,device_id,user,tags,topics,channel,app_version,state\r\n");
    for s in specs {
        let cells = [
            s.token.clone(),
            s.id.clone(),
            s.user.as_deref().map(csv_quote).unwrap_or_default(),
            s.tags.join("; "),
            s.topics.join(";"),
            s.channel.unwrap_or_default().to_string(),
            s.app_version.clone().unwrap_or_default(),
            s.state.unwrap_or_default().to_string(),
        ];
        text.push_str(&cells.join(","));
        text.push_str("\r\n");
    }
    text
}

fn jsonl_file(specs: &[Spec]) -> String {
    let mut text = String::new();
    for s in specs {
        let mut obj =
            json!({"device_id": s.id, "token": s.token, "tags": s.tags, "topics": s.topics});
        for (k, v) in [
            ("channel", s.channel.map(str::to_string)),
            ("user", s.user.clone()),
            ("app_version", s.app_version.clone()),
            ("state", s.state.map(str::to_string)),
        ] {
            if let Some(v) = v {
                obj[k] = json!(v);
            }
        }
        writeln!(text, "{obj}").unwrap();
    }
    text
}

/// Imports `file` and checks that it succeeded, printing `n` imported.
async fn import_ok(gw: &Sandbox, file: &Path, n: usize) -> String {
    let mut a = args(&["devices", "import", file.to_str().unwrap()]);
    a.extend(gw.gateway_args());
    let out = pushgate(a, None).await;
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        number_after(&stdout(&out), "imported"),
        Some(n as u64),
        "{}",
        show(&out)
    );
    stdout(&out)
}

#[tokio::test]
async fn import_csv_and_jsonl_then_export_round_trips() {
    let gw = Sandbox::start().await;
    let tokens = gw.virtual_devices(2500).await;
    let specs: Vec<Spec> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| Spec::nth(i, t, true))
        .collect();
    let (first, second) = specs.split_at(1500);
    let csv_path = gw.path("devices.csv");
    std::fs::write(&csv_path, csv_file(first)).unwrap();
    let jsonl_path = gw.path("devices.ndjson");
    std::fs::write(&jsonl_path, jsonl_file(second)).unwrap();

    let printed = import_ok(&gw, &csv_path, first.len()).await;
    assert!(printed.contains("1500 created, 0 updated"), "{printed}");
    import_ok(&gw, &jsonl_path, second.len()).await;

    let expected: BTreeMap<String, Value> =
        specs.iter().map(|s| (s.id.clone(), s.expected())).collect();
    let registry = gw.registry().await;
    assert_eq!(registry.len(), specs.len());
    assert_eq!(registry, expected);

    // Importing again changes nothing and creates nothing.
    let printed = import_ok(&gw, &csv_path, first.len()).await;
    assert!(printed.contains("0 created, 1500 updated"), "{printed}");
    assert_eq!(gw.registry().await, expected);

    // Exports, whole and filtered.
    let export_csv = gw.path("export.csv");
    let mut a = args(&[
        "devices",
        "export",
        "--output",
        export_csv.to_str().unwrap(),
    ]);
    a.extend(gw.gateway_args());
    let out = pushgate(a, None).await;
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stderr(&out).contains("exported 2500 devices"),
        "{}",
        show(&out)
    );

    let mut a = args(&["devices", "export", "--format", "jsonl", "--tag", "vip"]);
    a.extend(gw.gateway_args());
    let out = pushgate(a, None).await;
    assert!(out.status.success(), "{}", show(&out));
    let vip: BTreeSet<String> = specs
        .iter()
        .filter(|s| s.tags.iter().any(|t| t == "vip"))
        .map(|s| s.id.clone())
        .collect();
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let exported: BTreeSet<String> = lines
        .iter()
        .map(|d| d["device_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(exported, vip);
    for d in &lines {
        assert_eq!(comparable(d), expected[d["device_id"].as_str().unwrap()]);
    }

    let export_jsonl = gw.path("export.jsonl");
    let mut a = args(&["devices", "export", "-o", export_jsonl.to_str().unwrap()]);
    a.extend(gw.gateway_args());
    let out = pushgate(a, None).await;
    assert!(out.status.success(), "{}", show(&out));

    // Both exports re-import into a fresh gateway as the same registry.
    let other = Sandbox::start().await;
    let printed = import_ok(&other, &export_csv, specs.len()).await;
    assert!(printed.contains("2500 created"), "{printed}");
    assert_eq!(other.registry().await, expected);
    let printed = import_ok(&other, &export_jsonl, specs.len()).await;
    assert!(printed.contains("0 created, 2500 updated"), "{printed}");
    assert_eq!(other.registry().await, expected);
}

#[tokio::test]
async fn send_all_and_by_tag_reach_the_right_inboxes() {
    let gw = Sandbox::start().await;
    let tokens = gw.virtual_devices(1200).await;
    let specs: Vec<Spec> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| Spec::nth(i, t, false))
        .collect();
    let file = gw.path("devices.csv");
    std::fs::write(&file, csv_file(&specs)).unwrap();
    import_ok(&gw, &file, specs.len()).await;

    let mut a = args(&["send"]);
    a.extend(gw.gateway_args());
    a.extend(args(&["--all", "--data", "k=v", "--data", "round=1"]));
    let out = pushgate(a, None).await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let printed = stdout(&out);
    assert_eq!(
        number_after(&printed, "deliveries"),
        Some(1200),
        "{printed}"
    );
    assert_eq!(number_after(&printed, "sent"), Some(1200), "{printed}");
    let id = printed
        .lines()
        .find_map(|l| l.strip_prefix("message "))
        .expect("the message id is printed")
        .trim()
        .to_string();
    let status = gw.api_get(&format!("/v1/messages/{id}")).await;
    assert_eq!(status["done"], true);
    assert_eq!(status["counts"], json!({"sent": 1200}));
    let all_tokens: Vec<&str> = specs.iter().map(|s| s.token.as_str()).collect();
    for (s, inbox) in specs.iter().zip(gw.inboxes(&all_tokens).await) {
        assert_eq!(inbox.len(), 1, "{}: {inbox:?}", s.id);
        assert_eq!(
            inbox[0]["data"],
            json!({"k": "v", "round": "1"}),
            "{}",
            s.id
        );
    }

    let mut a = args(&["send"]);
    a.extend(gw.gateway_args());
    a.extend(args(&["--tag", "vip", "--data", "round=2"]));
    let out = pushgate(a, None).await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let vip = specs
        .iter()
        .filter(|s| s.tags.iter().any(|t| t == "vip"))
        .count() as u64;
    assert!(vip > 0 && vip < 1200);
    assert_eq!(number_after(&stdout(&out), "deliveries"), Some(vip));
    assert_eq!(number_after(&stdout(&out), "sent"), Some(vip));
    for (s, inbox) in specs.iter().zip(gw.inboxes(&all_tokens).await) {
        if s.tags.iter().any(|t| t == "vip") {
            assert_eq!(inbox.len(), 2, "{}", s.id);
            assert_eq!(inbox[1]["data"], json!({"round": "2"}), "{}", s.id);
        } else {
            assert_eq!(inbox.len(), 1, "{} is not tagged vip", s.id);
        }
    }

    // A token the provider does not know: the delivery fails, and the exit code says so.
    let mut a = args(&["send"]);
    a.extend(gw.gateway_args());
    a.extend(args(&["--token", "no-such-token", "--data", "x=1"]));
    let out = pushgate(a, None).await;
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(number_after(&stdout(&out), "deliveries"), Some(1));
    assert_eq!(number_after(&stdout(&out), "sent"), None, "{}", show(&out));

    // --no-wait returns at once with the id; the message still completes.
    let mut a = args(&["send"]);
    a.extend(gw.gateway_args());
    a.extend(args(&[
        "--device",
        &specs[1].id,
        "--no-wait",
        "--data",
        "n=w",
    ]));
    let out = pushgate(a, None).await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let id = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("message ").map(|s| s.trim().to_string()))
        .expect("the message id is printed");
    let status =
        pushgate_testkit::eventually_ok("the message done", Duration::from_secs(30), || async {
            let status = gw.api_get(&format!("/v1/messages/{id}")).await;
            if status["done"] == true {
                Ok(status)
            } else {
                Err(status)
            }
        })
        .await;
    assert_eq!(status["counts"], json!({"sent": 1}));
    let inbox = gw.inbox(&specs[1].token).await;
    assert_eq!(inbox.last().unwrap()["data"], json!({"n": "w"}));
}

#[tokio::test]
async fn a_bad_file_imports_nothing_and_names_the_line() {
    let gw = Sandbox::start().await;
    // Line 4 (the third device) has no token.
    let csv = "device_id,token,tags\nd1,t1,a\nd2,t2,\nd3,,b\nd4,t4,\n";
    let path = gw.path("bad.csv");
    std::fs::write(&path, csv).unwrap();
    let mut a = args(&["devices", "import", path.to_str().unwrap()]);
    a.extend(gw.gateway_args());
    let out = pushgate(a, None).await;
    assert!(!out.status.success(), "{}", show(&out));
    let err = stderr(&out);
    assert!(err.contains("line 4"), "{err}");
    assert!(err.contains("token"), "{err}");
    assert!(!err.contains("line 2") && !err.contains("line 5"), "{err}");
    assert!(gw.registry().await.is_empty());

    // A problem far down a file that needs several batches still stops every batch.
    let specs: Vec<Spec> = (0..2500)
        .map(|i| Spec::nth(i, &format!("token-{i}"), false))
        .collect();
    let mut text = jsonl_file(&specs);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[2399] = json!({"device_id": specs[2399].id}).to_string();
    lines[2449] = json!({"device_id": specs[7].id, "token": "dup"}).to_string();
    text = lines.join("\n");
    let mut a = args(&["devices", "import", "-", "--format", "jsonl"]);
    a.extend(gw.gateway_args());
    let out = pushgate(a, Some(text.into_bytes())).await;
    assert!(!out.status.success(), "{}", show(&out));
    let err = stderr(&out);
    assert!(err.contains("line 2400"), "{err}");
    assert!(err.contains("line 2450") && err.contains("line 8"), "{err}");
    assert!(gw.registry().await.is_empty());

    // A file name without a known extension needs --format.
    let path = gw.path("devices.txt");
    std::fs::write(&path, "device_id,token\nd1,t1\n").unwrap();
    let mut a = args(&["devices", "import", path.to_str().unwrap()]);
    a.extend(gw.gateway_args());
    let out = pushgate(a, None).await;
    assert!(!out.status.success(), "{}", show(&out));
    assert!(stderr(&out).contains("--format"), "{}", show(&out));
    assert!(gw.registry().await.is_empty());
}

#[tokio::test]
async fn a_refused_send_exits_2_with_the_apis_message() {
    let gw = Sandbox::start().await;
    let tokens = gw.virtual_devices(3).await;
    let specs: Vec<Spec> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| Spec::nth(i + 1, t, false))
        .collect();
    let path = gw.path("devices.jsonl");
    std::fs::write(&path, jsonl_file(&specs)).unwrap();
    import_ok(&gw, &path, 3).await;

    let mut a = args(&["send"]);
    a.extend(gw.gateway_args());
    a.extend(args(&["--all", "--data", "k=v", "--channel", "nope"]));
    let out = pushgate(a, None).await;
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = stderr(&out);
    assert!(err.contains("\"nope\""), "the API's message: {err}");
    assert!(err.contains("field: channel"), "the API's field: {err}");

    // A key the gateway does not know is refused the same way, and is not printed.
    let mut a = args(&["send"]);
    a.extend(gw.gateway_args());
    a.extend(args(&[
        "--all",
        "--api-key",
        "not-the-key-at-all-0000000000000",
    ]));
    let out = pushgate(a, None).await;
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(stderr(&out).contains("401"), "{}", show(&out));
    assert!(
        !stderr(&out).contains("not-the-key-at-all"),
        "{}",
        show(&out)
    );

    // The direct-provider flags do not mix with --gateway.
    let mut a = args(&["send", "--legacy"]);
    a.extend(gw.gateway_args());
    a.extend(args(&["--all"]));
    let out = pushgate(a, None).await;
    assert!(!out.status.success(), "{}", show(&out));

    for token in &tokens {
        assert!(gw.inbox(token).await.is_empty(), "nothing was sent");
    }
}
