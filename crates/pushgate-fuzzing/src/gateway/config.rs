//! `pushgate.toml`, through `ConfigFile::from_toml` and `resolve`.

use pushgate_gateway::config::ConfigFile;

/// `from_toml` then `resolve_service` and `resolve` (UTF-8, lossily): each returns `Ok` or
/// `Err`, never panics.
pub fn gateway_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(file) = ConfigFile::from_toml(&text) else {
        return;
    };
    let _ = file.resolve_service();
    let _ = file.resolve();
}
