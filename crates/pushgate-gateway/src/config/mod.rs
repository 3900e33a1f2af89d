//! Configuration: the file and environment as written ([`ConfigFile`]), and what the gateway
//! runs with once checked and resolved ([`GatewaySpec`]).

mod file;
pub mod reference;
mod resolve;
mod resolve_channel;
mod retention;
mod secret;
mod spec;

pub use file::{ChannelKind, ConfigError, ConfigFile, LegacyFormat, TlsFile, WebhookFile};
pub use resolve::{DEFAULT_DATABASE, DEFAULT_LISTEN, is_valid_name};
pub use retention::{RetentionLimits, RetentionSettings, limit_words};
pub use secret::{Secret, SecretRef};
pub use spec::{
    ApiLimits, AppSpec, C2dmFlowSpec, ChannelSettings, ChannelSpec, DeliverySettings, GatewaySpec,
    KeyRate, MetricsAccess, ServiceSettings, StorageSettings, WebhookSpec,
};

#[cfg(test)]
mod tests;
