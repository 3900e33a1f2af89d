//! What the tests that run `pushgate serve` as a child process share: the process guard
//! (SIGKILL and reap on drop, logs on failure), a kept-on-failure temp dir, free ports, and
//! the check that an answer on a child's port comes from the child.

#![allow(dead_code)]

use std::fs::File;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The benchmark's own check of who holds a port, this very file.
#[path = "../../src/support/ports.rs"]
mod ports;
pub use ports::holds_listener;

/// A plain client (no proxy) for the gateway and the emulator.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A running `pushgate serve`, killed (SIGKILL) and reaped when dropped; if the test is
/// panicking, its logs are printed.
pub struct GatewayProcess {
    child: Option<Child>,
    pub name: &'static str,
    out: PathBuf,
    err: PathBuf,
}

impl GatewayProcess {
    /// `pushgate serve --config <config>` in `dir`, its output in `dir/<name>.std{out,err}`.
    pub fn spawn(dir: &Path, config: &Path, name: &'static str) -> Self {
        let mut serve = Command::new(env!("CARGO_BIN_EXE_pushgate"));
        serve.arg("serve").arg("--config").arg(config);
        Self::spawn_command(serve, dir, name)
    }

    /// `pushgate serve <args>` (the sandbox when no `--config` is given) in `dir` with an
    /// open-file limit of `nofile`, set by the shell before it becomes the gateway, and the
    /// variables `env`.
    pub fn spawn_limited(
        dir: &Path,
        name: &'static str,
        nofile: u32,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Self {
        let mut shell = Command::new("sh");
        shell.envs(env.iter().copied());
        shell
            .arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_pushgate"))
            .arg("serve")
            .args(args);
        Self::spawn_command(shell, dir, name)
    }

    /// Runs `command` (a `pushgate serve`) in `dir`, its output in `dir/<name>.std{out,err}`.
    pub fn spawn_command(mut command: Command, dir: &Path, name: &'static str) -> Self {
        let out = dir.join(format!("{name}.stdout"));
        let err = dir.join(format!("{name}.stderr"));
        if !command.get_envs().any(|(name, _)| name == "RUST_LOG") {
            command.env("RUST_LOG", "warn");
        }
        let child = command
            .current_dir(dir)
            .env_remove("PUSHGATE_API_KEY")
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .expect("pushgate serve starts");
        GatewayProcess {
            child: Some(child),
            name,
            out,
            err,
        }
    }

    /// The process id, while it runs (to send it a signal).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Panics (with the logs) if the process has already exited.
    pub fn check_alive(&mut self) {
        if let Some(status) = self.exit_status() {
            panic!("{} exited early with {status}\n{}", self.name, self.logs());
        }
    }

    /// How the process ended, if it has.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Everything the process wrote to stderr so far (its log).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    pub fn logs(&self) -> String {
        format!(
            "--- {name} stdout ---\n{}\n--- {name} stderr (tail) ---\n{}",
            tail(&self.out, 8_000),
            tail(&self.err, 16_000),
            name = self.name
        )
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

fn tail(path: &Path, max: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    if text.len() > max {
        let mut cut = text.len() - max;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text = format!("[...]{}", &text[cut..]);
    }
    text
}

/// The temp directory, removed at the end unless the test failed (then it is kept and named).
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new directory `<tmp>/<prefix>-<pid>-<nanos>`.
    pub fn new(prefix: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The port of `http://127.0.0.1:<port>`.
pub fn port_of(base: &str) -> u16 {
    base.trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {base}"))
}

/// `GET base+path` answered 2xx by `process` itself: another process that took the port
/// first (another test's gateway, say) is not taken for it.
pub async fn answers(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    process: &GatewayProcess,
) -> Result<(), String> {
    match http.get(format!("{base}{path}")).send().await {
        Ok(r) if r.status().is_success() => match process.pid() {
            Some(pid) if holds_listener(pid, port_of(base)) => Ok(()),
            _ => Err(format!(
                "{base} answers, but {} does not hold its port",
                process.name
            )),
        },
        Ok(r) => Err(format!("HTTP {}\n{}", r.status(), process.logs())),
        Err(e) => Err(format!("{e}\n{}", process.logs())),
    }
}

/// Waits for `GET /healthz` answered by `gw` itself, failing with the logs if the process
/// dies (its port taken, say) or never answers.
pub async fn wait_healthy(http: &reqwest::Client, base: &str, gw: &mut GatewayProcess) {
    let what = format!("{} to answer /healthz", gw.name);
    pushgate_testkit::eventually_ok(&what, Duration::from_secs(30), async || {
        gw.check_alive();
        answers(http, base, "/healthz", gw).await
    })
    .await
}

/// A sandbox `pushgate serve` (no configuration) under an open-file limit of `nofile`, on free
/// ports, with `extra` arguments and the variables `env`, answering `/healthz`: the process and
/// its API's base URL. A port found free can be taken before the child binds it, so a start
/// whose process exits is tried again (three times).
pub async fn sandbox(
    dir: &Path,
    name: &'static str,
    nofile: u32,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (GatewayProcess, String) {
    let http = client();
    for attempt in 1..=3 {
        let (api_port, emu_port) = (free_port(), free_port());
        let base = format!("http://127.0.0.1:{api_port}");
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        args.extend([
            "--listen".to_string(),
            format!("127.0.0.1:{api_port}"),
            "--emulator-http".to_string(),
            format!("127.0.0.1:{emu_port}"),
            "--database".to_string(),
            dir.join(format!("{name}.db"))
                .to_string_lossy()
                .into_owned(),
        ]);
        let mut gw = GatewayProcess::spawn_limited(dir, name, nofile, &args, env);
        let what = format!("{name} to answer /healthz");
        let started = pushgate_testkit::eventually_ok(&what, Duration::from_secs(30), async || {
            if gw.exit_status().is_some() {
                return Ok(false);
            }
            answers(&http, &base, "/healthz", &gw).await.map(|()| true)
        })
        .await;
        if started {
            return (gw, base);
        }
        assert!(
            attempt < 3,
            "{name} did not start three times\n{}",
            gw.logs()
        );
    }
    unreachable!("the loop returns or fails")
}

/// Keeps a third-party client on this machine: no proxy from the environment, and
/// `NO_PROXY=*` for clients that read it.
pub fn loopback_only(command: &mut Command) -> &mut Command {
    command
        .env("NO_PROXY", "*")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
}
