use super::*;
use crate::support::gateway_client::ApiError;

/// An error as the client returns the gateway's 400 for `field`.
fn api_failure(field: &str, message: &str) -> anyhow::Error {
    anyhow::Error::new(ApiError {
        status: 400,
        code: "invalid_request".into(),
        message: message.into(),
        field: Some(field.into()),
        request_id: None,
    })
    .context("import")
}

fn records(csv: &str) -> Vec<input::Record> {
    input::parse(csv.as_bytes(), Format::Csv, &["fcm".to_string()])
        .unwrap()
        .records
}

fn file(rows: usize, token_len: usize) -> String {
    let mut text = String::from("device_id,token\n");
    for i in 0..rows {
        text.push_str(&format!("d{i},{i:0>token_len$}\n"));
    }
    text
}

#[test]
fn batches_hold_at_most_the_size_and_the_byte_budget() {
    let small = records(&file(2500, 20));
    let sizes: Vec<usize> = batches(&small, 1000)
        .iter()
        .map(|b| b.records.len())
        .collect();
    assert_eq!(sizes, vec![1000, 1000, 500]);
    let big = records(&file(1000, 4000));
    let cut = batches(&big, 1000);
    assert!(cut.len() > 1);
    assert_eq!(cut.iter().map(|b| b.records.len()).sum::<usize>(), 1000);
    for b in &cut {
        let bytes: usize = b.records.iter().map(|r| r.json().to_string().len()).sum();
        assert!(bytes <= MAX_BATCH_BYTES, "{bytes}");
    }
}

#[test]
fn a_refused_entry_is_reported_by_its_file_line() {
    let all = records("device_id,token\n\na,1\nb,2\nc,3\n");
    let cut = batches(&all, 2);
    let error = api_failure("devices[0].tags[1]", "devices[0].tags[1]: too odd");
    let text = explain_failure("f.csv", &cut[1], &error);
    assert!(
        text.starts_with("f.csv: line 5: tags[1]: too odd"),
        "{text}"
    );
    assert!(text.contains("lines 5-5"), "{text}");
    let error = api_failure("devices", "devices: too many");
    let text = explain_failure("f.csv", &cut[0], &error);
    assert!(
        text.contains("lines 3-4") && text.contains("too many"),
        "{text}"
    );
}

#[test]
fn a_csv_export_row_reads_back_as_the_same_device() {
    let device = DeviceView {
        device_id: "id, \"quoted\"".into(),
        token: Some("tok".into()),
        channel: Some("fcm".into()),
        user: Some(" spaced ".into()),
        tags: vec!["a".into(), "b c".into()],
        topics: vec!["news".into()],
        app_version: Some("1.2,3".into()),
        state: "disabled".into(),
    };
    let text = format!(
        "{}\n{}\n",
        COLUMNS.join(","),
        output::csv_row(&device).unwrap()
    );
    let back = records(&text);
    assert_eq!(
        back[0].json(),
        json!({"device_id": "id, \"quoted\"", "token": "tok", "channel": "fcm",
               "user": " spaced ", "tags": ["a", "b c"], "topics": ["news"],
               "app_version": "1.2,3", "state": "disabled"})
    );
    let bad = DeviceView {
        tags: vec!["x;y".into()],
        ..device
    };
    assert!(output::csv_row(&bad).is_err());
}
