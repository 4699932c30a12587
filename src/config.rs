//! Layered configuration: built-in defaults, then an optional file, then `KOPILKA__SECTION__KEY`
//! environment variables, then `DATABASE_URL`. Secrets are `SecretString` so they never print.

use secrecy::SecretString;
use serde::Deserialize;

const DEFAULTS: &str = include_str!("../config/default.toml");

/// Used as the HS256 secret in development when none is configured, so `kopilka dev-token`
/// works out of the box. Never accepted in production.
pub const DEV_HS256_SECRET: &str = "kopilka-development-only-secret";

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Settings {
    pub environment: Environment,
    pub seed_demo: bool,
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub tokens: TokenSettings,
    pub cache: CacheSettings,
    pub stripe: StripeSettings,
}

#[derive(Clone, Debug, Deserialize)]
pub struct StripeSettings {
    pub webhook_secrets: Vec<SecretString>,
    pub webhook_tolerance_seconds: i64,
    pub past_due_grace_days: i64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct HttpSettings {
    pub host: String,
    pub port: u16,
    pub max_body_bytes: usize,
}

#[derive(Clone, Debug, Deserialize)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub pool_size: u32,
}

#[derive(Clone, Debug, Deserialize)]
pub struct AuthSettings {
    pub issuer: String,
    pub audience: String,
    pub jwks_file: Option<String>,
    /// Inline JWKS JSON, an alternative to `jwks_file` (handy in env vars and tests).
    pub jwks_json: Option<String>,
    pub hs256_secret: Option<SecretString>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TokenSettings {
    pub ttl_seconds: u32,
}

#[derive(Clone, Debug, Deserialize)]
pub struct CacheSettings {
    pub enabled: bool,
    pub max_age_seconds: u32,
}

impl Settings {
    /// Loads the layers; `file` is an optional extra TOML file.
    pub fn load(file: Option<&str>) -> anyhow::Result<Settings> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        let file = file
            .map(str::to_owned)
            .or_else(|| std::env::var("KOPILKA_CONFIG").ok());
        if let Some(path) = file {
            builder = builder.add_source(config::File::with_name(&path).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("KOPILKA")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("stripe.webhook_secrets")
                .try_parsing(true),
        );
        if let Ok(url) = std::env::var("DATABASE_URL") {
            builder = builder.set_override("database.url", url)?;
        }
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.environment == Environment::Production && self.auth.hs256_secret.is_some() {
            anyhow::bail!("auth.hs256_secret is for development only; production verifies user tokens with asymmetric keys (auth.jwks_file)");
        }
        if self.tokens.ttl_seconds == 0 || self.tokens.ttl_seconds > 900 {
            anyhow::bail!("tokens.ttl_seconds must be between 1 and 900");
        }
        Ok(())
    }

    /// The HS256 secret user tokens may be signed with, if any.
    pub fn hs256_secret(&self) -> Option<String> {
        use secrecy::ExposeSecret;
        match (&self.auth.hs256_secret, &self.environment) {
            (Some(s), _) => Some(s.expose_secret().to_owned()),
            (None, Environment::Development) => Some(DEV_HS256_SECRET.to_owned()),
            (None, Environment::Production) => None,
        }
    }
}
