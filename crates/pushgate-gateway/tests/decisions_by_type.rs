//! The delivery decisions (the worker and the channels) go by the outcome's type and its
//! [`FailureScope`](pushgate_proto::FailureScope), never by the text of a reason: reason
//! texts are written by the client crate for people, and a reworded message must not change
//! what the gateway does.
//!
//! This test reads the source of `src/worker` and `src/channel` and fails on any line that
//! tests a reason's text. If it fails, carry what you need in the outcome's type instead.

use std::fs;
use std::path::{Path, PathBuf};

/// Calls that test a string's content, when the line also names a reason.
const TEXT_TESTS: [&str; 7] = [
    ".starts_with(",
    ".ends_with(",
    ".contains(",
    ".strip_prefix(",
    ".find(",
    " == \"",
    " != \"",
];

/// Helpers that only ever read reason texts.
const REASON_READERS: [&str; 1] = ["names_the_token("];

/// The offending lines of one file's text (comments ignored).
fn text_tests(source: &str) -> Vec<String> {
    source
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with("//"))
        .filter(|line| {
            let tests_reason =
                line.contains("reason") && TEXT_TESTS.iter().any(|call| line.contains(call));
            tests_reason || REASON_READERS.iter().any(|call| line.contains(call))
        })
        .map(str::to_string)
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_checker_catches_what_it_is_meant_to() {
    assert_eq!(
        text_tests("if reason.starts_with(\"transport\") {}").len(),
        1
    );
    assert_eq!(
        text_tests("o.reason().is_some_and(|r| r == \"x\") || reason.contains(\"CCS\")").len(),
        1
    );
    assert_eq!(text_tests("if !names_the_token(&r) {}").len(), 1);
    assert!(text_tests("// reason.starts_with(\"x\") in a comment").is_empty());
    assert!(text_tests("let what = outcome.reason().unwrap_or(\"failed\");").is_empty());
}

#[test]
fn worker_and_channel_decisions_never_read_a_reason() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src.join("worker"), &mut files);
    rust_files(&src.join("channel"), &mut files);
    assert!(files.len() >= 8, "found only {files:?}");
    let offending: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let text = fs::read_to_string(f).unwrap();
            text_tests(&text)
                .into_iter()
                .map(move |line| format!("{}: {line}", f.display()))
        })
        .collect();
    assert!(
        offending.is_empty(),
        "decision code reads reason texts:\n{}",
        offending.join("\n")
    );
}
