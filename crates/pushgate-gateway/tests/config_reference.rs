//! The configuration reference in `docs/configuration.md` is what the code generates, and the
//! environment variables it names really override the file. Its own test binary: it sets
//! `PUSHGATE_*` variables, which no other test of the process may see.

use pushgate_gateway::config::ConfigFile;
use pushgate_gateway::config::reference::{keys, markdown};

#[test]
fn the_committed_reference_is_the_generated_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
    let committed = std::fs::read_to_string(path).expect("docs/configuration.md exists");
    assert!(
        committed == markdown(),
        "docs/configuration.md is stale: run `cargo run -p pushgate -- config reference > docs/configuration.md`"
    );
}

#[test]
fn the_variables_the_reference_names_override_the_file() {
    let env_of = |key: &str| {
        keys()
            .into_iter()
            .find(|k| k.key == key)
            .and_then(|k| k.env)
            .unwrap_or_else(|| panic!("the reference lists no variable for {key}"))
    };
    let claim_batch = env_of("delivery.claim_batch");
    let durable = env_of("storage.durable_commits");
    let window = env_of("apps.<app>.channels.<channel>.window")
        .replace("<APP>", "SHOP")
        .replace("<CHANNEL>", "XMPP");
    let dir = std::env::temp_dir().join(format!("pushgate-ref-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pushgate.toml");
    std::fs::write(
        &file,
        "[delivery]\nclaim_batch = 500\n[apps.shop.channels.xmpp]\nkind = \"ccs\"\nwindow = 50\n",
    )
    .unwrap();
    // SAFETY: this binary's only other test reads no variables.
    unsafe {
        std::env::set_var(&claim_batch, "7");
        std::env::set_var(&durable, "false");
        std::env::set_var(&window, "5");
    }
    let loaded = ConfigFile::load(Some(&file)).unwrap();
    assert_eq!(loaded.delivery.claim_batch, Some(7));
    assert_eq!(loaded.storage.durable_commits, Some(false));
    assert_eq!(loaded.apps["shop"].channels["xmpp"].window, Some(5));
    std::fs::remove_dir_all(&dir).unwrap();
}
