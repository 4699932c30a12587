//! `kopilka-bench`: the pieces `bench/run.sh` drives — a baseline server, a population of
//! 100,000 users, identity-service tokens for them, an in-process signing benchmark, and the
//! signed Stripe webhook load `bench/webhooks.sh` drives.

mod packs;
mod payouts;
mod population;
mod webhooks;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use clap::{Parser, Subcommand};
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::io::Write;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A bare actix-web server answering GET /baseline with a fixed JSON body of N bytes.
    Baseline {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        bytes: usize,
    },
    /// Writes the catalog and a mixed population of users into a fresh PostgreSQL database.
    Seed {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 100_000)]
        users: usize,
    },
    /// An EdDSA identity key (JWKS) and one user token per user, as the identity service would.
    Tokens {
        #[arg(long, default_value_t = 100_000)]
        users: usize,
        #[arg(long)]
        out: String,
    },
    /// Entitlement tokens signed per second on one thread.
    SignRate {
        #[arg(long, default_value_t = 3)]
        seconds: u64,
    },
    /// Signed `invoice.paid` renewals of the seeded monthly subscribers, posted to `url` at a
    /// fixed concurrency; prints `accepted refused seconds`.
    Webhooks {
        #[arg(long)]
        url: String,
        #[arg(long)]
        secret: String,
        #[arg(long, default_value_t = 100_000)]
        users: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Makes event, invoice and charge ids unique to this call.
        #[arg(long)]
        run: String,
    },
    /// Packs/s of validating and storing `stickers` different stickers against decoding them
    /// with `image` alone (median of `rounds` alternations).
    ValidatePacks {
        #[arg(long, default_value_t = 40)]
        stickers: u32,
        #[arg(long, default_value_t = 5)]
        rounds: u32,
    },
    /// Writes the worst animated pack archive the limits allow.
    WorstAnimated {
        #[arg(long, default_value_t = 40)]
        stickers: u32,
        /// 4096 is the largest side a source may have, but a 20-frame animation of it needs
        /// more decoder memory than one sticker may take; the script finds the largest
        /// accepted.
        #[arg(long, default_value_t = 4096)]
        side: u32,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Creators with bank accounts and available balances, for the payout benchmark.
    SeedPayouts {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 100_000)]
        creators: usize,
    },
    /// A bare actix-files server of `dir` under /files (the blob baseline).
    Files {
        #[arg(long)]
        dir: String,
        #[arg(long)]
        port: u16,
    },
    /// A batch-check body asking for `users` user ids starting at `first`.
    BatchBody {
        #[arg(long, default_value_t = 1000)]
        users: usize,
        #[arg(long, default_value_t = 0)]
        first: usize,
    },
}

pub fn user_id(i: usize) -> String {
    format!("u{i:06}")
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Baseline { port, bytes } => baseline(port, bytes),
        Command::Seed {
            database_url,
            users,
        } => population::seed(&database_url, users),
        Command::Tokens { users, out } => tokens(users, &out),
        Command::SignRate { seconds } => sign_rate(seconds),
        Command::Webhooks {
            url,
            secret,
            users,
            concurrency,
            seconds,
            run,
        } => {
            let o = webhooks::drive(&url, &secret, users, concurrency, seconds, &run)?;
            println!("{} {} {:.3}", o.accepted, o.refused, o.seconds);
            Ok(())
        }
        Command::ValidatePacks { stickers, rounds } => packs::validate(stickers, rounds),
        Command::WorstAnimated {
            stickers,
            side,
            out,
        } => packs::worst_animated(stickers, side, &out),
        Command::Files { dir, port } => packs::files(&dir, port),
        Command::SeedPayouts {
            database_url,
            creators,
        } => payouts::seed(&database_url, creators),
        Command::BatchBody { users, first } => {
            let ids: Vec<String> = (first..first + users).map(user_id).collect();
            println!("{}", serde_json::json!({ "user_ids": ids }));
            Ok(())
        }
    }
}

fn baseline(port: u16, bytes: usize) -> anyhow::Result<()> {
    // A JSON object padded to the size of a real entitlement answer.
    let pad = bytes.saturating_sub(r#"{"pad":""}"#.len());
    let body = format!(r#"{{"pad":"{}"}}"#, "x".repeat(pad));
    actix_web::rt::System::new().block_on(async move {
        actix_web::HttpServer::new(move || {
            let body = body.clone();
            actix_web::App::new().route(
                "/baseline",
                actix_web::web::get().to(move || {
                    let body = body.clone();
                    async move {
                        actix_web::HttpResponse::Ok()
                            .content_type("application/json")
                            .body(body)
                    }
                }),
            )
        })
        .workers(2)
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })?;
    Ok(())
}

fn tokens(users: usize, out: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| anyhow::anyhow!("cannot generate a key"))?;
    let pair =
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| anyhow::anyhow!("bad key"))?;
    let jwks = serde_json::json!({"keys": [{
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "kid": "bench-identity",
        "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
    }]});
    std::fs::write(format!("{out}/identity-jwks.json"), jwks.to_string())?;

    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","typ":"JWT","kid":"bench-identity"}"#);
    let exp = chrono::Utc::now().timestamp() + 4 * 3600;
    let sign = |sub: &str, roles: &[&str]| {
        let claims = serde_json::json!({
            "sub": sub, "roles": roles, "iss": "messenger-identity", "aud": "kopilka", "exp": exp,
        });
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let sig = pair.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(format!("{out}/tokens.txt"))?);
    for i in 0..users {
        writeln!(file, "{}", sign(&user_id(i), &[]))?;
    }
    std::fs::write(
        format!("{out}/admin-token"),
        sign("bench-admin", &["admin"]),
    )?;
    Ok(())
}

fn sign_rate(seconds: u64) -> anyhow::Result<()> {
    use kopilka::services::answer_cache::Held;
    let dir = std::env::temp_dir().join(format!("kopilka-sign-{}", std::process::id()));
    let pool = kopilka::db::connect(&dir.join("k.db").to_string_lossy(), 1)?;
    let mut conn = pool.get()?;
    kopilka::db::migrate(&mut conn)?;
    let signer = kopilka::services::tokens::TokenSigner::new(900, 0);
    signer.init(&mut conn)?;
    let held = vec![
        Held {
            key: "max_upload_mb".into(),
            value: Some(4000),
            expires_at: Some(chrono::Utc::now() + chrono::Duration::days(20)),
        },
        Held {
            key: "premium".into(),
            value: None,
            expires_at: Some(chrono::Utc::now() + chrono::Duration::days(20)),
        },
    ];
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        for _ in 0..1000 {
            signer.sign("u000042", &held, None, chrono::Utc::now())?;
        }
        n += 1000;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    println!("{rate:.0}");
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
