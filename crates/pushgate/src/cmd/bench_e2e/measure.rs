//! Figures taken while a scenario runs: the gateway's channel counters (read from its
//! `/readyz`), the per-second sampler and its timeline, the wait for the recorded answers, CPU
//! per thread group and memory of a process (from `/proc/PID`), and the disk's fsync probe.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::ProgressBar;
use serde::Deserialize;

use super::Ctx;
use super::api::EmuStats;
use super::timing::{ms_f, percentile};

/// Kernel clock ticks per second of `/proc/*/stat` (USER_HZ, 100 on Linux).
const CLOCK_TICKS: f64 = 100.0;
/// How often the wait loops look at the worker's counters.
const POLL: Duration = Duration::from_millis(50);

/// A channel's counters since the probe was made: deliveries handed to the provider and
/// answers recorded.
#[derive(Clone, Debug, Default)]
pub(super) struct Counters {
    /// Deliveries handed to the provider.
    pub(super) attempted: u64,
    /// Answers recorded.
    pub(super) completed: u64,
    /// The channel's last whole-channel problem.
    pub(super) last_error: Option<String>,
}

/// `GET /readyz` as far as the benchmark reads it.
#[derive(Deserialize)]
struct Ready {
    channels: Vec<ReadyChannel>,
}

#[derive(Deserialize)]
struct ReadyChannel {
    app: String,
    channel: String,
    #[serde(flatten)]
    status: ReadyStatus,
}

#[derive(Deserialize)]
struct ReadyStatus {
    attempted: u64,
    completed: u64,
    last_error: Option<String>,
}

/// Reads one channel's counters from the gateway's `GET /readyz` (they count since the
/// gateway started; the probe subtracts what they were when it was made).
#[derive(Clone)]
pub(super) struct StatusProbe {
    http: reqwest::Client,
    /// `/readyz` of every instance; their counters are summed.
    urls: Vec<String>,
    app: String,
    channel: String,
    /// Each instance's counters when the probe was made.
    baseline: Vec<(u64, u64)>,
}

impl StatusProbe {
    /// A probe of `app`'s channel `channel` on the gateway instances at `bases` (their
    /// counters summed), counting from now.
    pub(super) async fn new(
        http: &reqwest::Client,
        bases: &[String],
        app: &str,
        channel: &str,
    ) -> anyhow::Result<Self> {
        let mut probe = Self {
            http: http.clone(),
            urls: bases.iter().map(|b| format!("{b}/readyz")).collect(),
            app: app.to_string(),
            channel: channel.to_string(),
            baseline: Vec::new(),
        };
        let mut baseline = Vec::new();
        for url in &probe.urls {
            let now = probe.read_one(url).await?;
            baseline.push((now.attempted, now.completed));
        }
        probe.baseline = baseline;
        Ok(probe)
    }

    /// The counters now, summed over the instances, less the baseline.
    pub(super) async fn read(&self) -> anyhow::Result<Counters> {
        let mut sum = Counters::default();
        for c in self.read_each().await? {
            sum.attempted += c.attempted;
            sum.completed += c.completed;
            sum.last_error = sum.last_error.or(c.last_error);
        }
        Ok(sum)
    }

    /// Each instance's counters now, less its baseline: how the work was shared.
    pub(super) async fn read_each(&self) -> anyhow::Result<Vec<Counters>> {
        let mut each = Vec::with_capacity(self.urls.len());
        for (url, (attempted, completed)) in self.urls.iter().zip(&self.baseline) {
            let c = self.read_one(url).await?;
            each.push(Counters {
                attempted: c.attempted.saturating_sub(*attempted),
                completed: c.completed.saturating_sub(*completed),
                last_error: c.last_error,
            });
        }
        Ok(each)
    }

    /// One instance's counters, as it reports them.
    async fn read_one(&self, url: &str) -> anyhow::Result<Counters> {
        let ready: Ready = self
            .http
            .get(url)
            .send()
            .await
            .context("GET /readyz")?
            .json()
            .await
            .context("GET /readyz: unexpected answer")?;
        let c = ready
            .channels
            .into_iter()
            .find(|c| c.app == self.app && c.channel == self.channel)
            .with_context(|| {
                format!(
                    "the gateway has no channel {:?} in app {:?}",
                    self.channel, self.app
                )
            })?;
        Ok(Counters {
            attempted: c.status.attempted,
            completed: c.status.completed,
            last_error: c.status.last_error,
        })
    }
}

/// One second of a scenario.
#[derive(Clone, Copy)]
pub(super) struct Sample {
    at: Duration,
    accepted: u64,
    attempted: u64,
    recorded: u64,
    emulator: Option<u64>,
}

/// Samples the worker's counters (and the emulator's, with `--timeline`) every second
/// until stopped.
pub(super) struct Sampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Vec<Sample>>,
}

impl Sampler {
    /// Starts sampling the channel's counters and the `accepted` count.
    pub(super) fn start(ctx: &Ctx, status: StatusProbe, accepted: Arc<AtomicU64>) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let emu = ctx
            .args
            .timeline
            .then(|| (ctx.http.clone(), format!("{}/emulator/stats", ctx.emu.base)));
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {}
                }
                let mut emulator = None;
                if let Some((http, url)) = &emu
                    && let Ok(res) = http.get(url).send().await
                    && let Ok(stats) = res.json::<EmuStats>().await
                {
                    emulator = Some(stats.delivered);
                }
                let counters = status.read().await.unwrap_or_default();
                samples.push(Sample {
                    at: started.elapsed(),
                    accepted: accepted.load(Ordering::Relaxed),
                    attempted: counters.attempted,
                    recorded: counters.completed,
                    emulator,
                });
            }
            samples
        });
        Self { stop, task }
    }

    /// Stops sampling and returns the samples.
    pub(super) async fn finish(self) -> Vec<Sample> {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

/// Per-second increments of the recorded count while work was pending: (median, max).
pub(super) fn recorded_per_second(samples: &[Sample], target: u64) -> (u64, u64) {
    let mut rates: Vec<u64> = Vec::new();
    let mut previous = 0;
    for s in samples {
        if previous < target && s.recorded > previous {
            rates.push(s.recorded - previous);
        }
        previous = s.recorded;
    }
    rates.sort_unstable();
    let median = rates.get(rates.len() / 2).copied().unwrap_or(0);
    (median, rates.last().copied().unwrap_or(0))
}

/// Prints the samples, one line per second (`--timeline`).
pub(super) fn print_timeline(samples: &[Sample]) {
    println!(
        "  timeline   {:>6} {:>9} {:>10} {:>10} {:>10}",
        "t (s)", "accepted", "attempted", "recorded", "emulator"
    );
    for s in samples {
        let emulator = s.emulator.map_or("-".to_string(), |n| n.to_string());
        println!(
            "             {:>6.0} {:>9} {:>10} {:>10} {:>10}",
            s.at.as_secs_f64(),
            s.accepted,
            s.attempted,
            s.recorded,
            emulator
        );
    }
}

/// Waits until the worker has recorded at least `target` answers.
pub(super) async fn wait_recorded(
    ctx: &Ctx,
    status: &StatusProbe,
    target: u64,
    bar: &ProgressBar,
    deadline: Instant,
) -> anyhow::Result<()> {
    loop {
        let view = status.read().await?;
        bar.set_position(view.completed.min(target));
        if view.completed >= target {
            return Ok(());
        }
        if Instant::now() > deadline {
            let last = view.last_error.unwrap_or_default();
            bail!(
                "timed out after {} s: {} of {target} answers recorded ({} attempted); last channel error: {last:?}",
                ctx.args.timeout,
                view.completed,
                view.attempted
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// CPU ticks per thread of process `pid` (empty when it cannot be read: another user's
/// process, or one that has exited).
pub(super) fn thread_ticks(pid: u32) -> HashMap<u32, (String, u64)> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // Fields 14 and 15 of stat (utime, stime); fields[0] is field 3.
        let ticks = fields
            .get(11)
            .and_then(|u| u.parse::<u64>().ok())
            .zip(fields.get(12).and_then(|s| s.parse::<u64>().ok()))
            .map_or(0, |(u, s)| u + s);
        out.insert(tid, (comm, ticks));
    }
    out
}

/// Who a thread works for, by its name: the runtime's workers, sqlx's SQLite threads, the
/// main thread; any other thread under its own name.
fn thread_group(comm: &str) -> String {
    if comm.starts_with("sqlx-sqlite") {
        "sqlite".into()
    } else if comm.starts_with("tokio-r") {
        // The runtime ("tokio-rt-worker"; "tokio-runtime-worker" in older tokio).
        "runtime".into()
    } else if comm == "pushgate" {
        "main thread".into()
    } else {
        comm.to_string()
    }
}

/// CPU used between two snapshots.
pub(super) struct CpuUse {
    wall: Duration,
    by_group: Vec<(String, f64)>,
}

impl CpuUse {
    /// The CPU used by each thread group between the snapshots `before` and `after`.
    pub(super) fn between(
        before: &HashMap<u32, (String, u64)>,
        after: &HashMap<u32, (String, u64)>,
        wall: Duration,
    ) -> Self {
        let mut groups: BTreeMap<String, u64> = BTreeMap::new();
        for (tid, (comm, ticks)) in after {
            let earlier = before.get(tid).map_or(0, |(_, t)| *t);
            *groups.entry(thread_group(comm)).or_default() += ticks.saturating_sub(earlier);
        }
        let mut by_group: Vec<(String, f64)> = groups
            .into_iter()
            .map(|(g, t)| (g, t as f64 / CLOCK_TICKS))
            .filter(|(_, secs)| *secs > 0.0)
            .collect();
        by_group.sort_by(|a, b| b.1.total_cmp(&a.1));
        Self { wall, by_group }
    }

    /// CPU seconds of all groups.
    pub(super) fn total(&self) -> f64 {
        // A fold from +0.0: an empty `sum` of floats is -0.0, printed as "-0.0".
        self.by_group.iter().fold(0.0, |total, (_, s)| total + s)
    }

    /// Cores busy on average.
    pub(super) fn cores(&self) -> f64 {
        self.total() / self.wall.as_secs_f64().max(1e-9)
    }

    /// The report's `cpu` line.
    pub(super) fn describe(&self) -> String {
        let wall = self.wall.as_secs_f64().max(1e-9);
        let mut out = format!(
            "{:.1} s CPU over {:.1} s = {:.2} cores busy:",
            self.total(),
            wall,
            self.total() / wall
        );
        for (group, secs) in &self.by_group {
            let _ = write!(out, " {group} {secs:.1} s ({:.2} cores)", secs / wall);
        }
        out
    }
}

/// CPU ticks per thread (name, ticks) of one process, by thread id.
type Ticks = HashMap<u32, (String, u64)>;

/// CPU counters of the three processes at one moment.
pub(super) struct CpuSnapshot {
    at: Instant,
    /// The gateway instances' pids and their threads' ticks (thread ids are unique across
    /// processes, so one map holds them all).
    gateway: Option<(Vec<u32>, Ticks)>,
    emulator: Option<(Vec<u32>, Ticks)>,
    driver: Ticks,
}

impl CpuSnapshot {
    /// The counters now of the gateway instances and the emulator (when their pids are
    /// known) and of this process.
    pub(super) fn take(gateway: &[u32], emulator: Option<u32>) -> Self {
        let side = |pids: Vec<u32>| (!pids.is_empty()).then(|| (pids.clone(), ticks_of(&pids)));
        Self {
            at: Instant::now(),
            gateway: side(gateway.to_vec()),
            emulator: side(emulator.into_iter().collect()),
            driver: thread_ticks(std::process::id()),
        }
    }

    /// The CPU each process used since the snapshot.
    pub(super) fn since(&self) -> CpuReport {
        let wall = self.at.elapsed();
        let of = |side: &Option<(Vec<u32>, Ticks)>| {
            side.as_ref()
                .map(|(pids, before)| CpuUse::between(before, &ticks_of(pids), wall))
        };
        CpuReport {
            gateway: of(&self.gateway),
            emulator: of(&self.emulator),
            driver: CpuUse::between(&self.driver, &thread_ticks(std::process::id()), wall),
        }
    }
}

/// The CPU of the gateway, the emulator and the driver over a scenario.
pub(super) struct CpuReport {
    /// The gateway's, when its pid is known.
    pub(super) gateway: Option<CpuUse>,
    /// The emulator's, when the benchmark started it.
    pub(super) emulator: Option<CpuUse>,
    /// This process's.
    pub(super) driver: CpuUse,
}

impl CpuReport {
    /// The report's `cpu` lines.
    pub(super) fn print(&self) {
        match &self.gateway {
            Some(cpu) => println!("  cpu        gateway  {}", cpu.describe()),
            None => println!("  cpu        gateway  unknown (no pid: --gateway-pid)"),
        }
        if let Some(cpu) = &self.emulator {
            println!("             emulator {}", cpu.describe());
        }
        println!("             driver   {}", self.driver.describe());
    }

    /// The gateway's CPU seconds and cores busy, when known.
    pub(super) fn gateway_cores(&self) -> Option<(f64, f64)> {
        self.gateway.as_ref().map(|c| (c.total(), c.cores()))
    }
}

/// The ticks of every thread of the processes `pids`.
fn ticks_of(pids: &[u32]) -> Ticks {
    pids.iter().flat_map(|&pid| thread_ticks(pid)).collect()
}

/// `VmHWM` and `VmRSS` of the processes `pids`, summed, in KiB (zeros for a process that
/// cannot be read).
pub(super) fn memory_sum(pids: &[u32]) -> (u64, u64) {
    pids.iter()
        .map(|&pid| memory_kib(pid))
        .fold((0, 0), |(h, r), (ph, pr)| (h + ph, r + pr))
}

/// `VmHWM` and `VmRSS` of process `pid`, in KiB (zeros when it cannot be read).
pub(super) fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// KiB as MiB, for the reports.
pub(super) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Appends 4 KiB and flushes (fdatasync) 200 times in `dir`: a rough bound on what a
/// commit with synchronous=FULL costs on this disk.
pub(super) async fn disk_probe(dir: PathBuf) -> String {
    let probe = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<Duration>> {
        use std::io::Write;
        let path = dir.join("fsync-probe");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let block = [0u8; 4096];
        let mut times = Vec::with_capacity(200);
        for _ in 0..200 {
            let started = Instant::now();
            file.write_all(&block)?;
            file.sync_data()?;
            times.push(started.elapsed());
        }
        drop(file);
        std::fs::remove_file(&path)?;
        Ok(times)
    })
    .await;
    match probe {
        Ok(Ok(mut times)) => {
            times.sort();
            let total: Duration = times.iter().sum();
            format!(
                "4 KiB append + fdatasync: median {:.2} ms, p99 {:.2} ms ({:.0}/s sequential)",
                ms_f(percentile(&times, 0.5)),
                ms_f(percentile(&times, 0.99)),
                times.len() as f64 / total.as_secs_f64().max(1e-9)
            )
        }
        Ok(Err(e)) => format!("fsync probe failed: {e}"),
        Err(e) => format!("fsync probe failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_grouped_by_name() {
        assert_eq!(thread_group("sqlx-sqlite-wor"), "sqlite");
        assert_eq!(thread_group("tokio-runtime-w"), "runtime");
        assert_eq!(thread_group("tokio-rt-worker"), "runtime");
        assert_eq!(thread_group("pushgate"), "main thread");
        assert_eq!(thread_group("store-writer"), "store-writer");
    }

    /// This process is running: it has a resident set and at least one thread.
    #[test]
    fn proc_of_this_process_is_read() {
        let (peak, now) = memory_kib(std::process::id());
        assert!(now > 0 && peak >= now, "VmHWM {peak} KiB, VmRSS {now} KiB");
        let threads = thread_ticks(std::process::id());
        assert!(!threads.is_empty());
        assert_eq!(memory_kib(u32::MAX), (0, 0));
    }
}
