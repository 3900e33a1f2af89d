//! The benchmark's child processes: `pushgate emulator` and `pushgate serve` started from this
//! very executable, their output kept in a log file of the work directory, stopped with
//! SIGTERM (SIGKILL when they do not stop in time), and the free ports they listen on.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::support::ports::holds_listener;

/// A child `pushgate` process, killed (SIGKILL) and reaped when dropped while still running.
pub(super) struct Child {
    child: std::process::Child,
    /// What it is (`gateway`, `emulator`), for messages.
    pub(super) name: String,
    /// Its process id.
    pub(super) pid: u32,
    log: PathBuf,
}

impl Child {
    /// Runs `<this executable> <args>` in `dir` with the variables `env`, its stdout and
    /// stderr in `dir/<name>.log`. Its log level is `warn` unless `RUST_LOG` says otherwise.
    pub(super) fn spawn(
        name: &str,
        args: &[String],
        dir: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find this executable")?;
        Self::spawn_program(&exe, name, args, dir, env)
    }

    /// [`Child::spawn`] for another program than this executable.
    fn spawn_program(
        exe: &Path,
        name: &str,
        args: &[String],
        dir: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone()?;
        let mut command = Command::new(exe);
        command
            .args(args)
            .current_dir(dir)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn");
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {} {}", exe.display(), args.join(" ")))?;
        Ok(Self {
            pid: child.id(),
            child,
            name: name.to_string(),
            log,
        })
    }

    /// How the process ended, if it has.
    pub(super) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last few KiB of what the process wrote.
    pub(super) fn log_tail(&self) -> String {
        const TAIL: u64 = 4096;
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let len = f.metadata().map_or(0, |m| m.len());
            let _ = f.seek(SeekFrom::Start(len.saturating_sub(TAIL)));
            let mut bytes = Vec::new();
            let _ = f.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        format!("--- {} log ({}) ---\n{text}", self.name, self.log.display())
    }

    /// Asks the process to stop (SIGTERM) and waits up to `grace` for it to exit, then kills
    /// it; returns how long the stop took.
    pub(super) async fn stop(mut self, grace: Duration) -> Duration {
        let started = Instant::now();
        if self.exited().is_none() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.pid.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            while self.exited().is_none() && started.elapsed() < grace {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let took = started.elapsed();
        if self.exited().is_none() {
            eprintln!(
                "warning: {} (pid {}) did not stop within {:.0} s of SIGTERM; killing it",
                self.name,
                self.pid,
                grace.as_secs_f64()
            );
        }
        took
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A loopback port nothing listens on right now (a child may still lose it to another
/// process before it binds: callers try again when the child exits).
pub(super) fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .context("cannot find a free port")?
        .local_addr()?
        .port())
}

/// Waits until `GET url` answers 2xx from `child` itself: `Ok(true)`; `Ok(false)` when the
/// child exits first (its port was taken, say); an error after `timeout`.
///
/// The port was free when [`free_port`] chose it, but another process (another benchmark's
/// gateway or emulator, say) may bind it before the child does. An answer on that port then
/// comes from that process, and taking it for the child's would send this run's load to
/// someone else's server, so an answer counts only once the child holds the listening socket
/// of `port` ([`holds_listener`]).
pub(super) async fn wait_ready(
    http: &reqwest::Client,
    url: &str,
    port: u16,
    child: &mut Child,
    timeout: Duration,
) -> anyhow::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        if child.exited().is_some() {
            return Ok(false);
        }
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
            && holds_listener(child.pid, port)
        {
            return Ok(true);
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "{} (pid {}) did not answer {url} within {} s\n{}",
                child.name,
                child.pid,
                timeout.as_secs(),
                child.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_is_held_by_the_process_that_bound_it_only() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(holds_listener(std::process::id(), port));
        // Another process does not hold it, even while it runs.
        let mut other = Command::new("sleep").arg("5").spawn().unwrap();
        assert!(!holds_listener(other.id(), port));
        let _ = other.kill();
        let _ = other.wait();
        // Nobody holds a port once its listener is closed.
        drop(listener);
        assert!(!holds_listener(std::process::id(), port));
    }

    /// Another process answering on the chosen port (this test, here) is not taken for the
    /// child: the wait goes on until the child, which never bound it, has exited.
    #[tokio::test]
    async fn an_answer_from_another_process_is_not_the_child_being_ready() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut stream = stream;
                let mut request = [0u8; 1024];
                let _ = std::io::Read::read(&mut stream, &mut request);
                let _ = std::io::Write::write_all(
                    &mut stream,
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            }
        });
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        // A child that binds nothing, and exits after a while.
        let args = ["1".to_string()];
        let mut child =
            Child::spawn_program(Path::new("sleep"), "stand-in", &args, dir.path(), &[]).unwrap();
        let url = format!("http://127.0.0.1:{port}/healthz");
        let ready = wait_ready(&http, &url, port, &mut child, Duration::from_secs(30))
            .await
            .unwrap();
        assert!(
            !ready,
            "the other process's answer was taken for the child's"
        );
        assert!(child.exited().is_some());
    }
}
