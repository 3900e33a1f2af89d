//! Writing exports.

use super::*;

/// Where an export goes.
pub enum Target {
    /// Standard output.
    Stdout(std::io::BufWriter<std::io::Stdout>),
    /// A temporary file beside `path`, renamed to it when complete.
    File {
        /// The file asked for.
        path: PathBuf,
        /// The file being written.
        temp: PathBuf,
        /// Its writer.
        out: std::io::BufWriter<std::fs::File>,
    },
}

impl Target {
    /// Opens `path` (through a temporary file), or stdout for `None`.
    pub fn open(path: Option<&Path>) -> anyhow::Result<Target> {
        let Some(path) = path else {
            return Ok(Target::Stdout(std::io::BufWriter::new(std::io::stdout())));
        };
        let file_name = path
            .file_name()
            .with_context(|| format!("--output {}: not a file name", path.display()))?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(file_name);
        temp_name.push(format!(".{}.partial", std::process::id()));
        let temp = path.with_file_name(temp_name);
        let file = std::fs::File::create(&temp)
            .with_context(|| format!("cannot create {}", temp.display()))?;
        Ok(Target::File {
            path: path.to_path_buf(),
            temp,
            out: std::io::BufWriter::new(file),
        })
    }

    fn out(&mut self) -> &mut dyn Write {
        match self {
            Target::Stdout(w) => w,
            Target::File { out, .. } => out,
        }
    }
}

/// Writes devices in one format.
pub struct Writer {
    target: Target,
    format: Format,
}

impl Writer {
    /// A writer of `format` to `target`.
    pub fn new(target: Target, format: Format) -> Self {
        Writer { target, format }
    }

    /// The CSV header row (nothing for JSON lines).
    pub fn header(&mut self) -> anyhow::Result<()> {
        if self.format == Format::Csv {
            writeln!(self.target.out(), "{}", COLUMNS.join(","))?;
        }
        Ok(())
    }

    /// One device.
    pub fn device(&mut self, d: &DeviceView) -> anyhow::Result<()> {
        match self.format {
            Format::Csv => {
                let row = csv_row(d)?;
                writeln!(self.target.out(), "{row}")?;
            }
            Format::Jsonl => {
                let line = serde_json::to_string(&JsonLine::of(d))?;
                writeln!(self.target.out(), "{line}")?;
            }
        }
        Ok(())
    }

    /// Flushes and, for a file, moves it into place; returns where the export went.
    pub fn finish(self) -> anyhow::Result<String> {
        match self.target {
            Target::Stdout(mut w) => {
                w.flush().context("cannot write to stdout")?;
                Ok("stdout".into())
            }
            Target::File { path, temp, out } => {
                let file = out
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .with_context(|| format!("cannot write {}", temp.display()))?;
                file.sync_all()
                    .with_context(|| format!("cannot write {}", temp.display()))?;
                std::fs::rename(&temp, &path).with_context(|| {
                    format!("cannot move {} to {}", temp.display(), path.display())
                })?;
                Ok(path.display().to_string())
            }
        }
    }

    /// Drops a half-written file.
    pub fn abandon(self) {
        if let Target::File { temp, out, .. } = self.target {
            drop(out);
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// One line of a JSON-lines export, fields in file order.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    device_id: &'a str,
    token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    tags: &'a [String],
    topics: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    app_version: Option<&'a str>,
    state: &'a str,
}

impl<'a> JsonLine<'a> {
    fn of(d: &'a DeviceView) -> Self {
        JsonLine {
            device_id: &d.device_id,
            token: d.token.as_deref(),
            channel: d.channel.as_deref(),
            user: d.user.as_deref(),
            tags: &d.tags,
            topics: &d.topics,
            app_version: d.app_version.as_deref(),
            state: &d.state,
        }
    }
}

fn cell(value: &str) -> String {
    let needs_quotes = value.contains([',', '"', '\n', '\r'])
        || value.starts_with(char::is_whitespace)
        || value.ends_with(char::is_whitespace);
    if needs_quotes {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

fn list(device: &str, field: &str, items: &[String]) -> anyhow::Result<String> {
    if let Some(bad) = items
        .iter()
        .find(|s| s.contains(';') || s.trim() != s.as_str())
    {
        bail!(
            "device {device:?}: {field} entry {bad:?} cannot be written to CSV \
             (it has a ';' or surrounding spaces); use --format jsonl"
        );
    }
    Ok(cell(&items.join(";")))
}

pub(super) fn csv_row(d: &DeviceView) -> anyhow::Result<String> {
    let opt = |v: &Option<String>| v.as_deref().map(cell).unwrap_or_default();
    let cells = [
        cell(&d.device_id),
        opt(&d.token),
        opt(&d.channel),
        opt(&d.user),
        list(&d.device_id, "tags", &d.tags)?,
        list(&d.device_id, "topics", &d.topics)?,
        opt(&d.app_version),
        cell(&d.state),
    ];
    Ok(cells.join(","))
}
