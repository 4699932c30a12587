//! The `kopilka` command: serve (default), migrate, dev-token.
#![deny(clippy::unwrap_used, clippy::expect_used)]

use clap::{Parser, Subcommand};
use kopilka::app::Application;
use kopilka::config::Settings;
use secrecy::ExposeSecret;

#[derive(Parser)]
#[command(
    name = "kopilka",
    version,
    about = "Monetization backend of a messenger"
)]
struct Cli {
    /// Extra configuration file (TOML), layered over the defaults.
    #[arg(long, global = true)]
    config: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Fetch Stripe events since the newest one held and apply those never delivered.
    StripeSync,
    /// Publish the sticker packs in DIR's folders (pack.toml and images) through the same
    /// validation and review as uploads; packs imported before are skipped.
    ImportPacks { dir: std::path::PathBuf },
    /// Print a user token the locally configured service accepts (development only).
    DevToken {
        #[arg(long)]
        sub: String,
        /// Role to include; repeat for several (creator, moderator, support, finance, admin).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
        /// The user's country (ISO 3166-1 alpha-2), as the identity service would say.
        #[arg(long)]
        country: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,actix_server=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Migrate => {
            let pool = kopilka::db::connect(settings.database.url.expose_secret(), 1)?;
            let applied = kopilka::db::migrate(&mut *pool.get()?)?;
            println!("applied {} migration(s): {:?}", applied.len(), applied);
            Ok(())
        }
        Command::StripeSync => {
            let state = kopilka::app::build_state(settings)?;
            let runtime = actix_web::rt::System::new();
            let new = runtime.block_on(kopilka::services::billing::stripe_events::sync(&state))?;
            println!("applied {new} new Stripe event(s)");
            Ok(())
        }
        Command::ImportPacks { dir } => {
            let state = kopilka::app::build_state(settings)?;
            let runtime = actix_web::rt::System::new();
            let titles =
                runtime.block_on(kopilka::services::pack_import::import_dir(&state, &dir))?;
            println!("imported {} pack(s): {:?}", titles.len(), titles);
            Ok(())
        }
        Command::DevToken {
            sub,
            roles,
            ttl,
            country,
        } => {
            let Some(secret) = settings.hs256_secret() else {
                anyhow::bail!(
                    "refusing: this service is configured with production keys only (no HS256 secret)"
                );
            };
            if !kopilka::auth::valid_user_id(&sub) {
                anyhow::bail!("--sub must be 1-128 visible ASCII characters");
            }
            let token = kopilka::auth::user_tokens::sign_hs256_in(
                &secret,
                &settings.auth.issuer,
                &settings.auth.audience,
                &sub,
                &roles,
                ttl,
                country.as_deref(),
            )?;
            println!("{token}");
            Ok(())
        }
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    actix_web::rt::System::new().block_on(async move {
        let addr = format!("{}:{}", settings.http.host, settings.http.port);
        let samples = settings
            .seed_demo
            .then(|| std::path::PathBuf::from("sticker-packs"));
        let app = Application::build(settings)?;
        tracing::info!(%addr, workers, "kopilka listening");
        // The demo catalog's sticker packs, published through review like any upload.
        if let Some(dir) = samples.filter(|d| d.is_dir()) {
            let state = app.state();
            actix_web::rt::spawn(async move {
                match kopilka::services::pack_import::import_dir(&state, &dir).await {
                    Ok(t) if !t.is_empty() => {
                        tracing::info!(packs = ?t, "demo sticker packs published")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "demo sticker packs not imported")
                    }
                }
            });
        }
        app.run_until_stopped().await?;
        Ok(())
    })
}
