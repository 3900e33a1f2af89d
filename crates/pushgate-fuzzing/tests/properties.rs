//! Every fuzz target's invariant, run on generated input in the normal suite: arbitrary
//! bytes, and near-valid input made by mutating the seed corpus in `fuzz/corpus/<target>/`.
//! A last test checks that the fuzz targets, the invariant functions and these tests name
//! the same set, so a new target cannot skip the suite.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

/// Cases per strategy per target: enough to shake out shallow bugs, fast enough for CI.
const CASES: u32 = 256;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The committed seeds of a target (`fuzz/corpus/<target>/seed-*`).
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("seed-"))
        .map(|e| std::fs::read(e.path()).expect("seed readable"))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{target} has no seed in {}", dir.display());
    out
}

/// Fragments that push parsers to their edges when spliced into valid input.
const TOKENS: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b"=",
    b"&",
    b"%",
    b"%zz",
    b"+",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b":",
    b"null",
    b"-1",
    b"1e400",
    b"18446744073709551616",
    b"0.1",
    b"\\u0000",
    b"\\ud800",
    b"\0",
    b"'",
    b"&&",
    b"||",
    b"!",
    b"(",
    b")",
    b" in topics",
    b"<",
    b"/>",
    b"</",
    b"&amp;",
    b"]]>",
    b"\xff",
    b"\xe2\x82",
    b"=\n",
    b"Error=",
    b"id=",
    b"Auth=",
    b"[apps.x]\n",
    b"\"\"\"",
];

/// One edit of a seed.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, usize),
    Delete(usize, usize),
    Duplicate(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Flip(p, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(p, t)| Edit::Insert(p, t)),
        (any::<usize>(), 1usize..16).prop_map(|(p, n)| Edit::Delete(p, n)),
        (any::<usize>(), 1usize..32).prop_map(|(p, n)| Edit::Duplicate(p, n)),
    ]
}

fn apply(mut data: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = data.len();
        match *e {
            Edit::Flip(p, b) if len > 0 => data[p % len] ^= b.max(1),
            Edit::Insert(p, t) => {
                let at = p % (len + 1);
                let token = TOKENS[t % TOKENS.len()];
                data.splice(at..at, token.iter().copied());
            }
            Edit::Delete(p, n) if len > 0 => {
                let at = p % len;
                data.drain(at..(at + n).min(len));
            }
            Edit::Duplicate(p, n) if len > 0 => {
                let at = p % len;
                let piece: Vec<u8> = data[at..(at + n).min(len)].to_vec();
                data.splice(at..at, piece);
            }
            _ => {}
        }
    }
    data
}

/// A seed of `target` with 0 to 4 edits.
fn near_valid(target: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds(target);
    (0..seeds.len(), prop::collection::vec(edit(), 0..5))
        .prop_map(move |(i, edits)| apply(seeds[i].clone(), &edits))
}

macro_rules! property_tests {
    ($($target:ident),* $(,)?) => {
        $(
            mod $target {
                use super::*;

                proptest! {
                    #![proptest_config(ProptestConfig::with_cases(CASES))]

                    #[test]
                    fn arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
                        pushgate_fuzzing::$target(&data);
                    }

                    #[test]
                    fn mutated_seeds(data in near_valid(stringify!($target))) {
                        pushgate_fuzzing::$target(&data);
                    }
                }

                #[test]
                fn seeds_pass_unchanged() {
                    for seed in seeds(stringify!($target)) {
                        pushgate_fuzzing::$target(&seed);
                    }
                }
            }
        )*

        /// The targets this file has property tests for.
        const TESTED: &[&str] = &[$(stringify!($target)),*];
    };
}

property_tests!(
    legacy_json_response,
    legacy_plaintext_response,
    v1_send_response,
    v1_error_body,
    oauth_token_response,
    service_account_key,
    c2dm_send_response,
    client_login_response,
    iid_responses,
    group_responses,
    topic_condition,
    form_codec,
    gateway_message_body,
    gateway_device_body,
    gateway_import_body,
    gateway_config,
    xmpp_stream,
);

#[test]
fn every_fuzz_target_has_its_function_and_property_tests() {
    let dir = fuzz_dir().join("fuzz_targets");
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs").map(str::to_string)
        })
        .collect();
    let functions: BTreeSet<String> = pushgate_fuzzing::TARGETS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    let tested: BTreeSet<String> = TESTED.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        files, functions,
        "fuzz/fuzz_targets vs pushgate_fuzzing::TARGETS"
    );
    assert_eq!(
        files, tested,
        "fuzz/fuzz_targets vs the property tests here"
    );
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for name in &files {
        let text = std::fs::read_to_string(dir.join(format!("{name}.rs"))).expect("target");
        assert!(
            text.contains(&format!("pushgate_fuzzing::{name}(data)")),
            "{name}.rs must call pushgate_fuzzing::{name}"
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] for {name}"
        );
    }
}

/// Mutations only explore near-valid input if the seeds are valid: the seeds of the parsers
/// with the deepest checks must pass them.
#[test]
fn seeds_are_accepted_by_their_parsers() {
    use pushgate_gateway::config::ConfigFile;
    use pushgate_proto::condition::Condition;
    use pushgate_proto::legacy::JsonResponse;
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).expect("UTF-8 seed");
    for seed in seeds("gateway_config") {
        let file = ConfigFile::from_toml(&text(&seed)).expect("seed parses");
        file.resolve().expect("seed resolves");
    }
    for seed in seeds("gateway_message_body") {
        pushgate_gateway::message::parse_send_body(&seed, 1000, 60).expect("seed accepted");
    }
    for seed in seeds("topic_condition") {
        Condition::parse(&text(&seed)).expect("seed parses");
    }
    for seed in seeds("legacy_json_response") {
        JsonResponse::parse(&seed).expect("seed parses");
    }
}
