//! Structured inputs the byte-level generators rarely build: huge but well-formed nesting and
//! operator chains, run where the gateway runs parsers (a 2 MiB tokio worker stack). A parser
//! that recurses once per `(`, `!` or operator overflows that stack and aborts the process.

use proptest::prelude::*;

/// The stack of a tokio worker thread, where request bodies are parsed.
const WORKER_STACK: usize = 2 * 1024 * 1024;

fn on_worker_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(WORKER_STACK)
        .spawn(f)
        .expect("thread spawns")
        .join()
        .expect("no panic");
}

/// A condition nested or chained `n` deep, in one of four shapes.
fn deep_condition(shape: u8, n: usize) -> String {
    let t = "'a' in topics";
    match shape % 4 {
        0 => format!("{}{t}{}", "(".repeat(n), ")".repeat(n)),
        1 => format!("{}{t}", "!".repeat(n)),
        2 => vec![t; n].join(" && "),
        _ => format!("{}{t}", "!(".repeat(n)) + &")".repeat(n),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn deep_conditions_are_refused_without_exhausting_the_stack(
        shape in 0u8..4,
        n in 50_000usize..200_000,
    ) {
        let text = deep_condition(shape, n);
        on_worker_stack(move || pushgate_fuzzing::topic_condition(text.as_bytes()));
    }

    #[test]
    fn deep_conditions_in_a_send_body_are_refused_without_exhausting_the_stack(
        shape in 0u8..4,
        n in 50_000usize..200_000,
    ) {
        let body = serde_json::json!({"targets": {"condition": deep_condition(shape, n)}});
        let bytes = serde_json::to_vec(&body).expect("serialises");
        on_worker_stack(move || pushgate_fuzzing::gateway_message_body(&bytes));
    }
}

#[test]
fn deeply_nested_json_bodies_are_refused_without_exhausting_the_stack() {
    // serde_json stops at 128 levels; this checks every JSON target keeps that guard.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let object = format!("{{\"a\":{deep}}}");
    for (name, target) in pushgate_fuzzing::TARGETS {
        let (a, b) = (deep.clone(), object.clone());
        let name = name.to_string();
        std::thread::Builder::new()
            .stack_size(WORKER_STACK)
            .spawn(move || {
                target(a.as_bytes());
                target(b.as_bytes());
            })
            .expect("thread spawns")
            .join()
            .unwrap_or_else(|_| panic!("{name} panicked"));
    }
}
