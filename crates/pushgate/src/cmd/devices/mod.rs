//! `pushgate devices import|export`: bulk registry operations through a running gateway.
//!
//! Both speak one file format, in CSV (a header row naming the columns) or JSON lines (one
//! object per line): `device_id`, `token`, and optionally `channel`, `user`, `tags`, `topics`
//! (`;`-separated in CSV, arrays in JSON), `app_version`, `state`. An export re-imports.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Map, Value, json};

use crate::support::gateway_client::{
    DeviceFilter, DeviceView, GatewayClient, ImportSummary, api_error,
};
use crate::support::progress;

/// Flags of `pushgate devices`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Import devices from a CSV or JSON-lines file (all checked before any is sent).
    Import(ImportArgs),
    /// Export the devices of an app as CSV or JSON lines (re-importable).
    Export(ExportArgs),
}

/// Where the gateway is and how to authenticate.
#[derive(clap::Args)]
struct GatewayOpts {
    /// Base URL of the running gateway, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    gateway: String,
    /// The app whose registry this is.
    #[arg(long)]
    app: String,
    /// The app's API key (or set PUSHGATE_GATEWAY_KEY).
    #[arg(long, env = "PUSHGATE_GATEWAY_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Extra CA certificate (PEM) to trust for an https gateway.
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

impl GatewayOpts {
    fn client(&self) -> anyhow::Result<GatewayClient> {
        let key = self
            .api_key
            .as_deref()
            .context("give the app's API key with --api-key KEY or PUSHGATE_GATEWAY_KEY")?;
        GatewayClient::new(
            &self.gateway,
            key,
            Duration::from_secs(self.timeout.max(1)),
            self.ca.as_deref(),
        )
    }
}

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl Format {
    /// The format a file name implies, if any.
    fn of_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            _ => None,
        }
    }
}

#[derive(clap::Args)]
struct ImportArgs {
    /// The file to read, `-` for stdin.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    gateway: GatewayOpts,
    /// File format (default: from the extension, .csv, .jsonl or .ndjson).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Devices per request (the gateway takes at most 1000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1000))]
    batch_size: u32,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    concurrency: u32,
}

#[derive(clap::Args)]
struct ExportArgs {
    #[command(flatten)]
    gateway: GatewayOpts,
    /// File format (default: from the --output extension, else csv).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Write here (replaced only once the export is complete) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Only the devices of this user.
    #[arg(long)]
    user: Option<String>,
    /// Only devices with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// Only devices subscribed to this topic.
    #[arg(long)]
    topic: Option<String>,
    /// Only devices in this state (active, disabled, invalid).
    #[arg(long)]
    state: Option<String>,
}

/// Runs `pushgate devices import` or `export`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Import(a) => import(a).await,
        Command::Export(a) => export(a).await,
    }
}

/// The columns of the format, in file order: the gateway's device fields.
const COLUMNS: &[&str] = pushgate_gateway::device_rules::DEVICE_FIELDS;
/// Largest request body the importer builds (the gateway's default limit is 1 MiB).
const MAX_BATCH_BYTES: usize = 768 * 1024;
/// Problems listed before the rest are only counted.
const MAX_LISTED_PROBLEMS: usize = 20;
/// Devices per page of the export.
const EXPORT_PAGE: u32 = 1000;

async fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let from_stdin = args.file.as_os_str() == "-";
    let name = if from_stdin {
        "stdin".to_string()
    } else {
        args.file.display().to_string()
    };
    let format = match (args.format, Format::of_path(&args.file)) {
        (Some(f), _) | (None, Some(f)) => f,
        (None, None) => bail!(
            "{name}: cannot tell the format from the name; give --format csv or --format jsonl"
        ),
    };
    let bytes = if from_stdin {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read stdin")?;
        buf
    } else {
        std::fs::read(&args.file).with_context(|| format!("cannot read {name}"))?
    };
    let client = args.gateway.client()?;
    let app = &args.gateway.app;
    // Checks the key and the app first, and gives the channels a device may name.
    let info = client.app(app).await?;
    let channels: Vec<String> = info.channels.into_iter().map(|c| c.name).collect();

    let parsed = input::parse(&bytes, format, &channels).map_err(|problems| {
        anyhow::anyhow!(
            "{name}: {} problem(s), nothing was imported:{}",
            problems.len(),
            input::describe(&problems)
        )
    })?;
    if parsed.skipped_invalid > 0 {
        eprintln!(
            "note: skipped {} row(s) with state \"invalid\" (the gateway sets that state itself; their tokens are dead)",
            parsed.skipped_invalid
        );
    }
    let records = parsed.records;
    if records.is_empty() {
        println!("{name}: no devices to import");
        return Ok(ExitCode::SUCCESS);
    }
    let batches = batches(&records, args.batch_size as usize);
    let bar = progress::bar(records.len() as u64, "devices");
    let outcome = send_batches(&client, app, &batches, args.concurrency as usize, &bar).await;
    bar.finish_and_clear();
    let (totals, failure) = outcome;
    if let Some((index, error)) = failure {
        let batch = &batches[index];
        let what = explain_failure(&name, batch, &error);
        let kept = if totals.imported > 0 {
            format!(
                "{} device(s) of other batches were already imported and stay imported; \
                 importing again after the fix is safe (devices are written by id)",
                totals.imported
            )
        } else {
            "no device was imported".to_string()
        };
        bail!("{what}\n{kept}");
    }
    println!(
        "imported {} devices from {name}: {} created, {} updated, {} took over a token from another device",
        totals.imported,
        totals.created,
        totals.updated,
        totals.took_over_from.len()
    );
    if !totals.took_over_from.is_empty() {
        let shown: Vec<&str> = totals
            .took_over_from
            .iter()
            .take(10)
            .map(String::as_str)
            .collect();
        let more = totals.took_over_from.len().saturating_sub(shown.len());
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        println!("tokens taken over from: {}{tail}", shown.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// A run of consecutive records sent in one request.
struct Batch<'a> {
    records: &'a [input::Record],
}

/// Cuts `records` into batches of at most `size` records and [`MAX_BATCH_BYTES`] of JSON.
fn batches(records: &[input::Record], size: usize) -> Vec<Batch<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, record) in records.iter().enumerate() {
        let len = record.json().to_string().len() + 1;
        if i > start && (i - start >= size || bytes + len > MAX_BATCH_BYTES) {
            out.push(Batch {
                records: &records[start..i],
            });
            start = i;
            bytes = 0;
        }
        bytes += len;
    }
    if start < records.len() {
        out.push(Batch {
            records: &records[start..],
        });
    }
    out
}

/// Sends the batches, `concurrency` at a time. After a failure no new batch starts, but the
/// ones in flight finish, so the totals count every device that was written.
async fn send_batches(
    client: &GatewayClient,
    app: &str,
    batches: &[Batch<'_>],
    concurrency: usize,
    bar: &indicatif::ProgressBar,
) -> (ImportSummary, Option<(usize, anyhow::Error)>) {
    let mut totals = ImportSummary::default();
    let mut failure: Option<(usize, anyhow::Error)> = None;
    let mut next = batches.iter().enumerate();
    let mut running = FuturesUnordered::new();
    loop {
        while failure.is_none() && running.len() < concurrency.max(1) {
            let Some((i, batch)) = next.next() else { break };
            running.push(async move {
                let devices: Vec<Value> = batch.records.iter().map(input::Record::json).collect();
                (i, client.import(app, &devices).await)
            });
        }
        let Some((i, result)) = running.next().await else {
            break;
        };
        match result {
            Ok(summary) => {
                bar.inc(batches[i].records.len() as u64);
                totals.imported += summary.imported;
                totals.created += summary.created;
                totals.updated += summary.updated;
                totals.took_over_from.extend(summary.took_over_from);
            }
            Err(e) => {
                if failure.is_none() {
                    failure = Some((i, e));
                }
            }
        }
    }
    (totals, failure)
}

/// Says what went wrong with a batch, naming the file line when the gateway named an entry.
fn explain_failure(name: &str, batch: &Batch<'_>, error: &anyhow::Error) -> String {
    let lines = match (batch.records.first(), batch.records.last()) {
        (Some(a), Some(b)) => format!("lines {}-{}", a.line, b.line),
        _ => "an empty batch".to_string(),
    };
    let Some(api) = api_error(error) else {
        return format!("{name}: the batch of {lines} failed: {error:#}");
    };
    let entry = api.field.as_deref().and_then(|f| {
        let rest = f.strip_prefix("devices[")?;
        let (index, rest) = rest.split_once(']')?;
        let index: usize = index.parse().ok()?;
        let record = batch.records.get(index)?;
        Some((
            record.line,
            rest.strip_prefix('.').unwrap_or(rest).to_string(),
        ))
    });
    match entry {
        Some((line, field)) => format!(
            "{name}: line {line}: {field}: {} (the gateway refused the batch of {lines}; HTTP {} {})",
            api.problem(),
            api.status,
            api.code
        ),
        None => format!("{name}: the batch of {lines} failed: {error:#}"),
    }
}

async fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let format = args
        .format
        .or_else(|| args.output.as_deref().and_then(Format::of_path))
        .unwrap_or(Format::Csv);
    let client = args.gateway.client()?;
    let filter = DeviceFilter {
        user: args.user.clone(),
        tag: args.tag.clone(),
        topic: args.topic.clone(),
        state: args.state.clone(),
    };
    let target = output::Target::open(args.output.as_deref())?;
    let mut writer = output::Writer::new(target, format);
    let spinner = progress::spinner("devices");
    let result = export_pages(&client, &args.gateway.app, &filter, &mut writer, &spinner).await;
    spinner.finish_and_clear();
    let (written, unconfirmed) = match result {
        Ok(counts) => counts,
        Err(e) => {
            writer.abandon();
            return Err(e);
        }
    };
    let place = writer.finish()?;
    eprintln!("exported {written} devices to {place}");
    if unconfirmed > 0 {
        eprintln!(
            "note: left out {unconfirmed} device(s) with no token yet (C2DM-flow registrations not confirmed)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Pages through the list, writing each device; returns (written, left out without a token).
async fn export_pages(
    client: &GatewayClient,
    app: &str,
    filter: &DeviceFilter,
    writer: &mut output::Writer,
    spinner: &indicatif::ProgressBar,
) -> anyhow::Result<(u64, u64)> {
    writer.header()?;
    let mut cursor: Option<String> = None;
    let (mut written, mut unconfirmed) = (0u64, 0u64);
    loop {
        let page = client
            .list_devices(app, filter, cursor.as_deref(), EXPORT_PAGE)
            .await?;
        for device in &page.devices {
            if device.token.is_none() {
                unconfirmed += 1;
                continue;
            }
            writer.device(device)?;
            written += 1;
        }
        spinner.inc(page.devices.len() as u64);
        match page.next_cursor {
            Some(c) if !page.devices.is_empty() => cursor = Some(c),
            _ => break,
        }
    }
    Ok((written, unconfirmed))
}

mod input;
mod output;

#[cfg(test)]
mod tests;
