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
    pub entitlements: EntitlementSettings,
    pub stripe: StripeSettings,
    pub billing: BillingSettings,
    pub email: EmailSettings,
    pub packs: PackSettings,
    pub payouts: PayoutSettings,
    pub accounting: AccountingSettings,
}

/// How the ledger reaches finance's books (`[accounting]`).
#[derive(Clone, Debug, Deserialize)]
pub struct AccountingSettings {
    /// The general-ledger code each account kind is booked to in `journal.csv`; kinds may
    /// share a code (their amounts are then netted on one line).
    pub gl_codes: std::collections::BTreeMap<String, String>,
    /// Entries `ledger.csv` reads per query while it streams (what one export holds at once).
    pub export_page_entries: i64,
}

/// Sticker packs: where their images live, how many a pack holds, what they cost.
#[derive(Clone, Debug, Deserialize)]
pub struct PackSettings {
    pub blobs: crate::services::blobs::BlobSettings,
    /// Stickers a pack holds (LINE: 8-40 static; we allow 1-120).
    pub max_stickers: i32,
    /// Largest image upload in bytes (the output limits are the image rules').
    pub max_upload_bytes: usize,
    /// Decoder memory in use at once across all uploads, in 4-byte pixels (50 M: about 200 MB;
    /// a still 4096 px square needs about 16.7 M plus its output): uploads wait their turn
    /// beyond it, so concurrency is weighed by memory, not requests.
    pub decode_pixel_budget: u64,
    /// How long a moderator's claim on a pack lasts.
    pub review_claim_minutes: i64,
    /// Days a removed pack's images are kept (answering 451) before they are deleted.
    pub removal_purge_days: i64,
    /// Price tiers: tier name → currency (lowercase) → amount in minor units.
    pub price_tiers: std::collections::BTreeMap<String, std::collections::BTreeMap<String, i64>>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PayoutSettings {
    /// Hours a change of bank details holds the creator's payouts.
    pub cooling_off_hours: i64,
    /// Lines one run may draw.
    pub max_lines: i64,
    /// Lines (and balances) a run's steps read, check and move at a time: what one step holds
    /// in memory, whatever the size of the run.
    pub page_lines: i64,
    /// The least balance paid out, per currency, in minor units.
    pub minimums: std::collections::BTreeMap<String, i64>,
    pub sepa: SepaSettings,
    /// Income tax withheld at payout (`[payouts.tax]`).
    pub tax: crate::domain::tax::Rates,
}

/// The SEPA credit transfer file (`[payouts.sepa]`).
#[derive(Clone, Debug, Deserialize)]
pub struct SepaSettings {
    /// `pain.001.001.09` (structured addresses, `BICFI`) or `pain.001.001.03`.
    pub version: String,
    pub debtor_name: String,
    pub debtor_iban: String,
    pub debtor_bic: Option<String>,
}

impl PayoutSettings {
    /// The least paid out in `currency` (the configuration's keys arrive lower-cased).
    pub fn minimum(&self, currency: &str) -> Option<i64> {
        self.minimums
            .iter()
            .find(|(code, _)| code.eq_ignore_ascii_case(currency))
            .map(|(_, least)| *least)
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct BillingSettings {
    /// Days a creator's share stays pending (the refund window) before it is available.
    pub hold_days: i64,
    /// Days before a trial's end that the reminder is sent.
    pub trial_reminder_days: i64,
    /// Donation bounds per currency (ISO code, any case) in minor units.
    pub donation_limits: std::collections::HashMap<String, DonationLimits>,
    /// A downgrade is applied this long before the paid period ends (before Stripe renews).
    pub plan_change_lead_seconds: i64,
    /// A failed downgrade is tried again after this long, doubling per failure (at most 6 h).
    pub retry_base_seconds: i64,
    /// How often the outbox is looked at.
    pub jobs_interval_ms: u64,
    /// How often earnings are released, trial reminders queued, downgrades applied and
    /// missed Stripe events fetched (each scans tables; once a minute is plenty).
    pub maintenance_interval_seconds: u64,
}

#[derive(Clone, Copy, Debug, Deserialize)]
pub struct DonationLimits {
    pub min: i64,
    pub max: i64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTransport {
    /// `.eml` files in `email.folder` (zero set-up).
    File,
    Smtp,
}

#[derive(Clone, Debug, Deserialize)]
pub struct EmailSettings {
    pub transport: EmailTransport,
    pub from: String,
    pub folder: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    /// `none` (plain, local relays and tests), `starttls` or `tls`.
    pub smtp_security: String,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<SecretString>,
    /// Attempts before an email is marked failed.
    pub max_attempts: i32,
}

#[derive(Clone, Debug, Deserialize)]
pub struct StripeSettings {
    /// `sk_…`; also read from `STRIPE_SECRET_KEY`. Without one, purchases answer 503.
    pub secret_key: Option<SecretString>,
    /// Stripe's API root, or an emulator's (localstripe) for tests and local runs.
    pub api_base: String,
    /// The API version every call pins (`Stripe-Version`): the one async-stripe's request
    /// builders are generated for. Webhooks arrive in the account's default version, which
    /// is read from each event (`api_version`); both shapes are decoded.
    pub api_version: String,
    pub timeout_seconds: u64,
    /// Attempts per call (network errors, timeouts, 429 and 5xx are retried with backoff).
    pub attempts: u32,
    /// How often events whose delivery failed are fetched from Stripe (0: never).
    pub sync_interval_seconds: u64,
    pub webhook_secrets: Vec<SecretString>,
    /// The Connect endpoint's secrets (`account.updated` of creators' connected accounts
    /// comes to `/v1/webhooks/stripe-connect`, signed with its own secret).
    pub connect_webhook_secrets: Vec<SecretString>,
    /// Where Stripe's onboarding sends the creator back (`return_url`), and where an expired
    /// or used link sends them to get a new one (`refresh_url`).
    pub connect_return_url: String,
    pub connect_refresh_url: String,
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
    /// A new signing key is published this long before it signs, so verifiers that cached the
    /// JWKS (5 minutes) and instances that have not reloaded (30 s) know it first.
    pub key_publish_ahead_seconds: u32,
}

#[derive(Clone, Debug, Deserialize)]
pub struct CacheSettings {
    pub enabled: bool,
    pub max_age_seconds: u32,
}

#[derive(Clone, Debug, Deserialize)]
pub struct EntitlementSettings {
    /// The plan everyone holds (the free tier): its entitlements are part of every answer,
    /// merged with what the user holds (quotas by maximum). `None`: no default plan.
    pub default_plan: Option<String>,
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
                .with_list_parse_key("stripe.connect_webhook_secrets")
                .try_parsing(true),
        );
        if let Ok(key) = std::env::var("STRIPE_SECRET_KEY") {
            builder = builder.set_override("stripe.secret_key", key)?;
        }
        if let Ok(url) = std::env::var("DATABASE_URL") {
            builder = builder.set_override("database.url", url)?;
        }
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Refuses settings the service must not start with (checked at load and again at build,
    /// so settings changed in code are held to the same rules).
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.auth.hs256_secret.is_some() && self.asymmetric_identity() {
            anyhow::bail!("auth: an HS256 secret and asymmetric identity keys (auth.jwks_file / auth.jwks_json) are configured together; configure one kind of user-token key");
        }
        if self.environment == Environment::Production && self.auth.hs256_secret.is_some() {
            anyhow::bail!("auth.hs256_secret is for development only; production verifies user tokens with asymmetric keys (auth.jwks_file)");
        }
        if self.tokens.ttl_seconds == 0 || self.tokens.ttl_seconds > 900 {
            anyhow::bail!("tokens.ttl_seconds must be between 1 and 900");
        }
        for (tier, prices) in &self.packs.price_tiers {
            for (currency, amount) in prices {
                let code = crate::domain::money::Currency::parse(&currency.to_uppercase())
                    .map_err(|e| anyhow::anyhow!("packs.price_tiers.{tier}: {e}"))?;
                let least = crate::domain::money::stripe_minimum(&code);
                if *amount < least || *amount > crate::domain::limits::MAX_AMOUNT_MINOR {
                    anyhow::bail!("packs.price_tiers.{tier}.{currency} = {amount}: Stripe charges at least {least} and at most {} minor units", crate::domain::limits::MAX_AMOUNT_MINOR);
                }
            }
        }
        if !(0..=3650).contains(&self.packs.removal_purge_days) {
            anyhow::bail!("packs.removal_purge_days must be between 0 and 3650");
        }
        if !(0..=24 * 365).contains(&self.payouts.cooling_off_hours) {
            anyhow::bail!("payouts.cooling_off_hours must be between 0 and 8760");
        }
        if !(1..=1_000_000).contains(&self.payouts.max_lines) {
            anyhow::bail!("payouts.max_lines must be between 1 and 1000000");
        }
        for kind in crate::domain::ledger::AccountKind::ALL {
            let code = self.accounting.gl_codes.get(kind.as_str());
            if !code.is_some_and(|c| {
                !c.is_empty()
                    && c.len() <= 32
                    && c.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._/".contains(&b))
            }) {
                anyhow::bail!(
                    "accounting.gl_codes.{} must be a code of 1-32 ASCII letters, digits, '.', '_' or '/'",
                    kind.as_str()
                );
            }
        }
        if !(1..=10_000).contains(&self.accounting.export_page_entries) {
            anyhow::bail!("accounting.export_page_entries must be between 1 and 10000");
        }
        if !(1..=10_000).contains(&self.payouts.page_lines) {
            anyhow::bail!("payouts.page_lines must be between 1 and 10000");
        }
        let sepa = &self.payouts.sepa;
        if !["pain.001.001.09", "pain.001.001.03"].contains(&sepa.version.as_str()) {
            anyhow::bail!("payouts.sepa.version must be pain.001.001.09 or pain.001.001.03");
        }
        crate::domain::bank_accounts::Iban::parse(&sepa.debtor_iban)
            .map_err(|e| anyhow::anyhow!("payouts.sepa.debtor_iban: {e}"))?;
        if let Some(bic) = &sepa.debtor_bic {
            crate::domain::bank_accounts::parse_bic(bic)
                .map_err(|e| anyhow::anyhow!("payouts.sepa.debtor_bic: {e}"))?;
        }
        if crate::domain::sepa::transliterate(&sepa.debtor_name, 70) != sepa.debtor_name.trim() {
            anyhow::bail!("payouts.sepa.debtor_name must be 1-70 characters of the SEPA Latin set");
        }
        self.payouts.tax.check().map_err(|e| anyhow::anyhow!(e))?;
        for (currency, least) in &self.payouts.minimums {
            crate::domain::money::Currency::parse(&currency.to_uppercase())
                .map_err(|e| anyhow::anyhow!("payouts.minimums: {e}"))?;
            if *least < 1 || *least > crate::domain::limits::MAX_AMOUNT_MINOR {
                anyhow::bail!(
                    "payouts.minimums.{currency} must be a positive amount in minor units"
                );
            }
        }
        if !(1..=120).contains(&self.packs.max_stickers) {
            anyhow::bail!("packs.max_stickers must be between 1 and 120");
        }
        Ok(())
    }

    /// Whether user tokens are verified with the identity service's asymmetric keys.
    pub fn asymmetric_identity(&self) -> bool {
        self.auth.jwks_file.is_some() || self.auth.jwks_json.is_some()
    }

    /// The HS256 secret user tokens may be signed with, if any: never once asymmetric keys
    /// are configured (whatever the environment says, the public development secret must not
    /// sign tokens a production-keyed service accepts).
    pub fn hs256_secret(&self) -> Option<String> {
        use secrecy::ExposeSecret;
        if self.asymmetric_identity() {
            return None;
        }
        match (&self.auth.hs256_secret, &self.environment) {
            (Some(s), _) => Some(s.expose_secret().to_owned()),
            (None, Environment::Development) => Some(DEV_HS256_SECRET.to_owned()),
            (None, Environment::Production) => None,
        }
    }
}
