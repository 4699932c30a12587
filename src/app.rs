//! Wiring: state shared by handlers, and an `Application` that binds (port 0 works, for tests).

use crate::auth::service_keys::ServiceKeys;
use crate::auth::user_tokens::UserTokens;
use crate::config::Settings;
use crate::db::{self, listen, Backend, DbPool};
use crate::http;
use crate::metrics::Metrics;
use crate::services::entitlements::Entitlements;
use crate::services::tokens::TokenSigner;
use actix_web::dev::Server;
use actix_web::web;
use secrecy::ExposeSecret;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

pub struct AppState {
    pub settings: Settings,
    pub pool: DbPool,
    pub backend: Backend,
    pub user_tokens: UserTokens,
    pub service_keys: ServiceKeys,
    pub entitlements: Entitlements,
    pub signer: TokenSigner,
    pub metrics: Arc<Metrics>,
    /// `None` without a Stripe key: purchases answer 503, everything else works.
    pub stripe: Option<crate::stripe::gateway::Gateway>,
    /// Sticker images, content-addressed.
    pub blobs: crate::services::blobs::Blobs,
    /// Who may load each blob, kept until a pack is removed or reinstated.
    pub blob_access: crate::services::blob_access::BlobAccess,
    /// Megapixels being decoded now across uploads (`packs.decode_pixel_budget`).
    pub decode_budget: Arc<tokio::sync::Semaphore>,
    pub decode_megapixels: u32,
    /// Archive uploads read at once.
    pub archive_slots: Arc<tokio::sync::Semaphore>,
    /// Store pages, rendered.
    pub store_pages: crate::http::store_pages::StorePages,
}

impl AppState {
    /// After a committed write: drop these users' cached answers here (other instances hear
    /// it through the `NOTIFY` the write sent).
    pub fn changed<S: AsRef<str>>(&self, users: &[S]) {
        self.entitlements.invalidate(users);
    }

    /// After a committed write that may touch anyone (a catalog change, a pack removed or
    /// reinstated): drop every cached entitlement answer and blob access answer here.
    pub fn changed_everyone(&self) {
        self.entitlements.invalidate_all();
        self.blob_access.invalidate_all();
    }
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

/// Reads the identity service's public keys from config, if any.
fn identity_jwks(settings: &Settings) -> anyhow::Result<Option<jsonwebtoken::jwk::JwkSet>> {
    let text = match (&settings.auth.jwks_json, &settings.auth.jwks_file) {
        (Some(json), _) => json.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read auth.jwks_file {path}: {e}"))?,
        (None, None) => return Ok(None),
    };
    Ok(Some(serde_json::from_str(&text)?))
}

/// Connects, migrates, seeds and builds the state every handler shares.
pub fn build_state(settings: Settings) -> anyhow::Result<web::Data<AppState>> {
    settings.validate()?;
    let url = settings.database.url.expose_secret().to_owned();
    let backend = Backend::of(&url);
    let pool = db::connect(&url, settings.database.pool_size)?;
    let mut conn = pool.get()?;
    let applied = db::migrate(&mut conn)?;
    if !applied.is_empty() {
        tracing::info!(?applied, "applied migrations");
    }
    if settings.seed_demo && crate::services::seed::demo_catalog(&mut conn)? {
        tracing::info!("wrote the demo catalog");
    }
    let signer = TokenSigner::new(
        settings.tokens.ttl_seconds,
        settings.tokens.key_publish_ahead_seconds,
    );
    signer.init(&mut conn)?;
    drop(conn);

    let user_tokens = UserTokens::new(
        &settings.auth.issuer,
        &settings.auth.audience,
        identity_jwks(&settings)?.as_ref(),
        settings.hs256_secret().as_deref(),
    )?;
    tracing::info!(
        environment = ?settings.environment,
        user_token_algorithms = ?user_tokens.algorithms(),
        "user tokens are verified with these algorithms"
    );
    let metrics = Arc::new(Metrics::new()?);
    let stripe = match &settings.stripe.secret_key {
        Some(key) => Some(crate::stripe::gateway::Gateway::new(
            key.expose_secret(),
            &settings.stripe.api_base,
            crate::stripe::gateway::ApiVersion::new(&settings.stripe.api_version),
            Duration::from_secs(settings.stripe.timeout_seconds.max(1)),
            settings.stripe.attempts,
        )?),
        None => None,
    };
    match &stripe {
        Some(gw) => tracing::info!(
            stripe_version = gw.version().as_str(),
            api_base = %settings.stripe.api_base,
            "Stripe calls pin this API version"
        ),
        None => tracing::info!("Stripe is not configured: purchases answer 503"),
    }
    let blobs = crate::services::blobs::Blobs::from_settings(&settings.packs.blobs)?;
    let decode_megapixels = u32::try_from(
        settings
            .packs
            .decode_pixel_budget
            .div_ceil(1_000_000)
            .max(1),
    )
    .unwrap_or(u32::MAX >> 4);
    let state = web::Data::new(AppState {
        blobs,
        blob_access: Default::default(),
        decode_budget: Arc::new(tokio::sync::Semaphore::new(decode_megapixels as usize)),
        decode_megapixels,
        archive_slots: Arc::new(tokio::sync::Semaphore::new(2)),
        store_pages: Default::default(),
        entitlements: Entitlements::new(
            pool.clone(),
            settings.cache.enabled,
            metrics.clone(),
            settings.entitlements.default_plan.clone(),
        ),
        settings,
        pool,
        backend,
        user_tokens,
        service_keys: ServiceKeys::default(),
        signer,
        metrics,
        stripe,
    });

    if backend == Backend::Postgres {
        // Weak: the listener ends with the application instead of keeping it alive.
        let owner = std::sync::Arc::downgrade(&state.clone().into_inner());
        listen::spawn(url, owner, |state: &AppState, change| match change {
            listen::Changed::Users(users) => state.entitlements.invalidate(&users),
            listen::Changed::Everyone => state.changed_everyone(),
        });
    }
    Ok(state)
}

impl Application {
    pub fn build(settings: Settings) -> anyhow::Result<Application> {
        let listener = TcpListener::bind((settings.http.host.as_str(), settings.http.port))?;
        let port = listener.local_addr()?.port();
        let state = build_state(settings)?;
        let mail = std::sync::Arc::new(crate::services::mailer::Mail::from_settings(
            &state.settings.email,
        )?);
        crate::services::jobs::spawn(state.clone(), mail);
        let reloading = state.clone();
        // Another instance may rotate the signing key: pick it up within half a minute.
        actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                let s = reloading.clone();
                let _ = db::run(&reloading.pool, move |conn| {
                    s.signer
                        .reload(conn)
                        .map_err(crate::error::AppError::Internal)
                })
                .await;
            }
        });
        let server = http::server::serve(listener, state.clone())?;
        Ok(Application {
            port,
            server,
            state,
        })
    }

    /// The state the handlers share (for work started beside the server).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from elsewhere (tests stop their app before dropping its database).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
