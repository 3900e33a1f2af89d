//! Reading and checking import files.

use super::*;
use pushgate_gateway::device_rules::{self, MAX_DEVICE_ID_CHARS, MAX_LABEL_CHARS, MAX_TOKEN_CHARS};

/// One problem of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line (where the record starts).
    pub line: usize,
    /// The column or field, if one is to blame.
    pub field: Option<String>,
    /// What is wrong.
    pub what: String,
}

impl Problem {
    fn new(line: usize, field: Option<&str>, what: impl Into<String>) -> Self {
        Problem {
            line,
            field: field.map(str::to_string),
            what: what.into(),
        }
    }
}

/// Problems as indented lines: the first few listed, the rest counted.
pub fn describe(problems: &[Problem]) -> String {
    let mut out = String::new();
    for p in problems.iter().take(MAX_LISTED_PROBLEMS) {
        out.push_str(&format!("\n  line {}: ", p.line));
        if let Some(f) = &p.field {
            out.push_str(&format!("{f}: "));
        }
        out.push_str(&p.what);
    }
    if problems.len() > MAX_LISTED_PROBLEMS {
        out.push_str(&format!(
            "\n  ... and {} more",
            problems.len() - MAX_LISTED_PROBLEMS
        ));
    }
    out
}

/// A device as read from the file, before checking.
#[derive(Debug, Default)]
struct Raw {
    line: usize,
    device_id: Option<String>,
    token: Option<String>,
    channel: Option<String>,
    user: Option<String>,
    tags: Vec<String>,
    topics: Vec<String>,
    app_version: Option<String>,
    state: Option<String>,
}

/// A checked device and the line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 1-based line where it starts.
    pub line: usize,
    device_id: String,
    token: String,
    channel: Option<String>,
    user: Option<String>,
    tags: Vec<String>,
    topics: Vec<String>,
    app_version: Option<String>,
    state: Option<String>,
}

impl Record {
    /// The entry of a `devices:import` body.
    pub fn json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("device_id".into(), json!(self.device_id));
        obj.insert("token".into(), json!(self.token));
        for (k, v) in [
            ("channel", &self.channel),
            ("user", &self.user),
            ("app_version", &self.app_version),
            ("state", &self.state),
        ] {
            if let Some(v) = v {
                obj.insert(k.into(), json!(v));
            }
        }
        if !self.tags.is_empty() {
            obj.insert("tags".into(), json!(self.tags));
        }
        if !self.topics.is_empty() {
            obj.insert("topics".into(), json!(self.topics));
        }
        Value::Object(obj)
    }
}

/// What a file holds once checked.
#[derive(Debug)]
pub struct Parsed {
    /// Devices to import, in file order.
    pub records: Vec<Record>,
    /// Rows left out because their state is `invalid`.
    pub skipped_invalid: usize,
}

/// Reads and checks a whole file; `channels` are the app's channel names.
pub fn parse(bytes: &[u8], format: Format, channels: &[String]) -> Result<Parsed, Vec<Problem>> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            return Err(vec![Problem::new(line, None, "not valid UTF-8")]);
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (raws, mut problems) = match format {
        Format::Csv => read_csv(text),
        Format::Jsonl => read_jsonl(text),
    };
    let parsed = check(raws, channels, &mut problems);
    if problems.is_empty() {
        Ok(parsed)
    } else {
        problems.sort_by_key(|p| p.line);
        Err(problems)
    }
}

/// Checks every device, adding what is wrong to `problems`.
fn check(raws: Vec<Raw>, channels: &[String], problems: &mut Vec<Problem>) -> Parsed {
    let mut records = Vec::with_capacity(raws.len());
    let mut skipped_invalid = 0;
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut tokens: HashMap<String, usize> = HashMap::new();
    for raw in raws {
        if raw.state.as_deref() == Some("invalid") {
            skipped_invalid += 1;
            continue;
        }
        match record(raw, channels) {
            Ok(r) => {
                if let Some(first) = ids.insert(r.device_id.clone(), r.line) {
                    problems.push(Problem::new(
                        r.line,
                        Some("device_id"),
                        format!("{:?} is also on line {first}", r.device_id),
                    ));
                } else if let Some(first) = tokens.insert(r.token.clone(), r.line) {
                    problems.push(Problem::new(
                        r.line,
                        Some("token"),
                        format!("the same token is also on line {first}"),
                    ));
                }
                records.push(r);
            }
            Err(p) => problems.push(p),
        }
    }
    Parsed {
        records,
        skipped_invalid,
    }
}

/// A rule of the gateway's, broken on `line`.
fn broken(line: usize, e: pushgate_proto::ValidationError) -> Problem {
    Problem::new(line, Some(&e.field), e.problem)
}

fn text(line: usize, field: &str, value: &str, max: usize) -> Result<(), Problem> {
    device_rules::check_text(field, value, max).map_err(|e| broken(line, e))
}

fn labels(line: usize, field: &str, labels: &[String], topics: bool) -> Result<(), Problem> {
    device_rules::check_labels(field, labels, topics).map_err(|e| broken(line, e))
}

fn record(raw: Raw, channels: &[String]) -> Result<Record, Problem> {
    let line = raw.line;
    let required = |field: &str, value: Option<String>| {
        value.ok_or_else(|| Problem::new(line, Some(field), "missing (required)"))
    };
    let device_id = required("device_id", raw.device_id)?;
    let token = required("token", raw.token)?;
    text(line, "device_id", &device_id, MAX_DEVICE_ID_CHARS)?;
    text(line, "token", &token, MAX_TOKEN_CHARS)?;
    if let Some(ch) = &raw.channel {
        device_rules::check_channel("channel", ch, channels).map_err(|e| broken(line, e))?;
    }
    for (field, value) in [("user", &raw.user), ("app_version", &raw.app_version)] {
        if let Some(v) = value {
            text(line, field, v, MAX_LABEL_CHARS)?;
        }
    }
    labels(line, "tags", &raw.tags, false)?;
    labels(line, "topics", &raw.topics, true)?;
    if let Some(s) = &raw.state
        && s != "active"
        && s != "disabled"
    {
        return Err(Problem::new(
            line,
            Some("state"),
            format!("{s:?} is not active or disabled"),
        ));
    }
    Ok(Record {
        line,
        device_id,
        token,
        channel: raw.channel,
        user: raw.user,
        tags: raw.tags,
        topics: raw.topics,
        app_version: raw.app_version,
        state: raw.state,
    })
}

/// `a; b;;c` -> `[a, b, c]`.
fn split_list(cell: &str) -> Vec<String> {
    cell.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The rows of a CSV file that could be read, and the problems of the others.
fn read_csv(text: &str) -> (Vec<Raw>, Vec<Problem>) {
    match csv_rows(text) {
        Ok(read) => read,
        Err(p) => (Vec::new(), vec![p]),
    }
}

fn csv_rows(text: &str) -> Result<(Vec<Raw>, Vec<Problem>), Problem> {
    let mut rows = csv::records(text)?.into_iter();
    let Some((header_line, header)) = rows.next() else {
        return Err(Problem::new(1, None, "empty file: expected a header row"));
    };
    let mut columns = Vec::with_capacity(header.len());
    for name in &header {
        let name = name.trim();
        if !COLUMNS.contains(&name) {
            return Err(Problem::new(
                header_line,
                None,
                format!(
                    "unknown column {name:?} in the header (columns: {})",
                    COLUMNS.join(", ")
                ),
            ));
        }
        if columns.contains(&name) {
            return Err(Problem::new(
                header_line,
                None,
                format!("column {name:?} appears twice in the header"),
            ));
        }
        columns.push(name);
    }
    for needed in ["device_id", "token"] {
        if !columns.contains(&needed) {
            return Err(Problem::new(
                header_line,
                None,
                format!("the header has no {needed} column"),
            ));
        }
    }
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (line, cells) in rows {
        if cells.len() != columns.len() {
            problems.push(Problem::new(
                line,
                None,
                format!("{} field(s), the header has {}", cells.len(), columns.len()),
            ));
            continue;
        }
        let mut raw = Raw {
            line,
            ..Raw::default()
        };
        for (column, cell) in columns.iter().zip(cells) {
            let value = (!cell.is_empty()).then_some(cell);
            match *column {
                "device_id" => raw.device_id = value,
                "token" => raw.token = value,
                "channel" => raw.channel = value,
                "user" => raw.user = value,
                "app_version" => raw.app_version = value,
                "state" => raw.state = value,
                "tags" => raw.tags = value.as_deref().map(split_list).unwrap_or_default(),
                _ => raw.topics = value.as_deref().map(split_list).unwrap_or_default(),
            }
        }
        out.push(raw);
    }
    Ok((out, problems))
}

/// The lines of a JSON-lines file that could be read, and the problems of the others.
fn read_jsonl(text: &str) -> (Vec<Raw>, Vec<Problem>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, line_text) in text.split('\n').enumerate() {
        let line = i + 1;
        let line_text = line_text.trim();
        if line_text.is_empty() {
            continue;
        }
        match json_line(line, line_text) {
            Ok(raw) => out.push(raw),
            Err(p) => problems.push(p),
        }
    }
    (out, problems)
}

fn json_line(line: usize, text: &str) -> Result<Raw, Problem> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Problem::new(line, None, format!("not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(Problem::new(line, None, "not a JSON object"));
    };
    let mut raw = Raw {
        line,
        ..Raw::default()
    };
    for (key, value) in obj {
        let field = Some(key.as_str());
        let string = |v: Value| match v {
            Value::Null => Ok(None),
            Value::String(s) if s.is_empty() => Ok(None),
            Value::String(s) => Ok(Some(s)),
            _ => Err(Problem::new(line, field, "must be a string")),
        };
        let list = |v: Value| match v {
            Value::Null => Ok(Vec::new()),
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    _ => Err(Problem::new(line, field, "must be an array of strings")),
                })
                .collect(),
            _ => Err(Problem::new(line, field, "must be an array of strings")),
        };
        match key.as_str() {
            "device_id" => raw.device_id = string(value)?,
            "token" => raw.token = string(value)?,
            "channel" => raw.channel = string(value)?,
            "user" => raw.user = string(value)?,
            "app_version" => raw.app_version = string(value)?,
            "state" => raw.state = string(value)?,
            "tags" => raw.tags = list(value)?,
            "topics" => raw.topics = list(value)?,
            _ => {
                return Err(Problem::new(
                    line,
                    field,
                    format!("unknown field (fields: {})", COLUMNS.join(", ")),
                ));
            }
        }
    }
    Ok(raw)
}

/// RFC 4180 records: fields separated by commas, records by LF or CRLF, fields in double
/// quotes may hold commas, line breaks and doubled quotes.
pub(super) mod csv {
    use super::Problem;

    /// Every record of `text` with the line it starts on; blank lines are skipped.
    pub fn records(text: &str) -> Result<Vec<(usize, Vec<String>)>, Problem> {
        let mut out = Vec::new();
        let mut line = 1;
        let mut start = 1;
        let mut fields: Vec<String> = Vec::new();
        let mut field = String::new();
        let mut quoted = false; // inside quotes
        let mut closed = false; // the current field's closing quote was seen
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if quoted {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => {
                        quoted = false;
                        closed = true;
                    }
                    '\n' => {
                        line += 1;
                        field.push(c);
                    }
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                ',' => {
                    fields.push(std::mem::take(&mut field));
                    closed = false;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    let blank = fields.is_empty() && field.is_empty() && !closed;
                    fields.push(std::mem::take(&mut field));
                    let record = std::mem::take(&mut fields);
                    if !blank {
                        out.push((start, record));
                    }
                    closed = false;
                    line += 1;
                    start = line;
                }
                '"' if field.is_empty() && !closed => quoted = true,
                '"' => {
                    return Err(Problem::new(
                        line,
                        None,
                        "a quote inside an unquoted field (quote the whole field and double the quote)",
                    ));
                }
                _ if closed => {
                    return Err(Problem::new(
                        line,
                        None,
                        "text after the closing quote of a field",
                    ));
                }
                _ => field.push(c),
            }
        }
        if quoted {
            return Err(Problem::new(start, None, "a quoted field is never closed"));
        }
        if !fields.is_empty() || !field.is_empty() || closed {
            fields.push(field);
            out.push((start, fields));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channels() -> Vec<String> {
        vec!["fcm".into(), "legacy".into()]
    }

    #[test]
    fn csv_quotes_hold_commas_quotes_and_line_breaks() {
        let text = "a,b\r\n\"x,1\",\"say \"\"hi\"\"\"\n\n\"two\nlines\",z\nlast,";
        let records = csv::records(text).unwrap();
        assert_eq!(
            records,
            vec![
                (1, vec!["a".to_string(), "b".to_string()]),
                (2, vec!["x,1".to_string(), "say \"hi\"".to_string()]),
                (4, vec!["two\nlines".to_string(), "z".to_string()]),
                (6, vec!["last".to_string(), String::new()]),
            ]
        );
    }

    #[test]
    fn csv_rejects_a_stray_quote_and_an_open_quote() {
        assert_eq!(csv::records("a,b\nx\"y,z\n").unwrap_err().line, 2);
        assert_eq!(csv::records("a,b\n\"x,z\n\n").unwrap_err().line, 2);
    }

    #[test]
    fn a_csv_file_reads_into_records_with_lists_and_lines() {
        let text = "device_id,token,tags,user\nd1,t1,a; b;;c,u1\nd2,t2,,\n";
        let parsed = parse(text.as_bytes(), Format::Csv, &channels()).unwrap();
        assert_eq!(parsed.records.len(), 2);
        assert_eq!(
            parsed.records[0].json(),
            json!({"device_id": "d1", "token": "t1", "tags": ["a", "b", "c"], "user": "u1"})
        );
        assert_eq!(parsed.records[1].line, 3);
        assert_eq!(
            parsed.records[1].json(),
            json!({"device_id": "d2", "token": "t2"})
        );
    }

    #[test]
    fn problems_name_the_line_and_the_field() {
        let text = "device_id,token\nd1,t1\nd2,t2\nd3,\nd1,t4\nd5,t1\n";
        let problems = parse(text.as_bytes(), Format::Csv, &channels()).unwrap_err();
        let got: Vec<(usize, Option<&str>)> = problems
            .iter()
            .map(|p| (p.line, p.field.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (4, Some("token")),
                (5, Some("device_id")),
                (6, Some("token"))
            ]
        );
    }

    #[test]
    fn a_header_without_token_or_with_an_unknown_column_is_refused() {
        let p = parse(b"device_id,user\nd,u\n", Format::Csv, &channels()).unwrap_err();
        assert!(p[0].what.contains("token"), "{p:?}");
        let p = parse(b"device_id,token,colour\n", Format::Csv, &channels()).unwrap_err();
        assert!(p[0].what.contains("colour"), "{p:?}");
    }

    #[test]
    fn jsonl_checks_types_fields_channels_and_states() {
        let text = concat!(
            "{\"device_id\":\"a\",\"token\":\"t\",\"tags\":[\"x\"],\"channel\":\"legacy\"}\n",
            "\n",
            "{\"device_id\":\"b\",\"token\":\"u\",\"tags\":\"x\"}\n",
            "{\"device_id\":\"c\",\"token\":\"v\",\"channel\":\"nope\"}\n",
            "{\"device_id\":\"d\",\"token\":\"w\",\"state\":\"sleepy\"}\n",
            "{\"device_id\":\"e\",\"token\":\"x\",\"colour\":1}\n",
            "[1]\n",
        );
        let problems = parse(text.as_bytes(), Format::Jsonl, &channels()).unwrap_err();
        let got: Vec<(usize, Option<&str>)> = problems
            .iter()
            .map(|p| (p.line, p.field.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (3, Some("tags")),
                (4, Some("channel")),
                (5, Some("state")),
                (6, Some("colour")),
                (7, None)
            ]
        );
    }

    #[test]
    fn invalid_rows_are_skipped_not_refused() {
        let text = "device_id,token,state\na,t1,invalid\nb,t2,disabled\n";
        let parsed = parse(text.as_bytes(), Format::Csv, &channels()).unwrap();
        assert_eq!(parsed.skipped_invalid, 1);
        assert_eq!(parsed.records.len(), 1);
        assert_eq!(parsed.records[0].line, 3);
    }
}
