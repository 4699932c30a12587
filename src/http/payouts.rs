//! Payouts: creators' bank details, and finance's payout runs (draw, approve with four eyes,
//! cancel, send, the bank file, outcomes, the audit trail) and holds.

use super::parse_json;
use super::views::{self, AuditView, BankAccountView, LineView, RunSummaryView, RunView};
use crate::app::AppState;
use crate::auth::{Caller, Role};
use crate::db;
use crate::db::models::creators::Creator;
use crate::db::models::payouts::{audit_creator, AuditEvent, Hold, Line, Run};
use crate::db::models::{from_db, to_db};
use crate::error::AppError;
use crate::services::idempotency::{self, Reply};
use crate::services::payouts::bank_accounts::{self, BankDetails};
use crate::services::payouts::outcomes::{self, Outcome};
use crate::services::payouts::{bank_file, runs};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/creators/me/payout-account")
            .route(web::get().to(get_payout_account))
            .route(web::post().to(setup_payout_account)),
    )
    .service(
        web::resource("/v1/creators/me/bank-account")
            .route(web::get().to(get_bank_account))
            .route(web::put().to(put_bank_account)),
    )
    .service(web::resource("/v1/admin/creators/{id}/payout-hold").route(web::post().to(hold)))
    .service(web::resource("/v1/admin/stripe-fees/sync").route(web::post().to(sync_stripe_fees)))
    .service(
        web::resource("/v1/admin/payout-runs")
            .route(web::get().to(list_runs))
            .route(web::post().to(create_run)),
    )
    .service(web::resource("/v1/admin/payout-runs/{id}").route(web::get().to(get_run)))
    .service(web::resource("/v1/admin/payout-runs/{id}/lines").route(web::get().to(lines)))
    .service(web::resource("/v1/admin/payout-runs/{id}/approve").route(web::post().to(approve)))
    .service(web::resource("/v1/admin/payout-runs/{id}/cancel").route(web::post().to(cancel)))
    .service(web::resource("/v1/admin/payout-runs/{id}/send").route(web::post().to(send)))
    .service(
        web::resource("/v1/admin/payout-runs/{id}/bank-file.csv")
            .route(web::get().to(bank_file_csv)),
    )
    .service(web::resource("/v1/admin/payout-runs/{id}/sepa.xml").route(web::get().to(sepa_xml)))
    .service(
        web::resource("/v1/admin/payout-runs/{id}/lines/{line_id}/outcome")
            .route(web::post().to(outcome)),
    )
    .service(
        web::resource("/v1/admin/payout-runs/{id}/outcome").route(web::post().to(file_outcome)),
    )
    .service(web::resource("/v1/admin/payout-runs/{id}/audit").route(web::get().to(audit)));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BankAccountBody {
    holder_name: String,
    iban: String,
    bic: Option<String>,
    town: String,
    country: String,
    currency: String,
}

async fn put_bank_account(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let creator = caller.staff(Role::Creator)?.to_owned();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let b: BankAccountBody = parse_json(&body)?;
        let account = bank_accounts::put(
            &state,
            &creator,
            BankDetails {
                holder_name: b.holder_name,
                iban: b.iban,
                bic: b.bic,
                town: b.town,
                country: b.country,
                currency: b.currency,
            },
        )
        .await?;
        Ok(Reply::ok(BankAccountView::from(&account)))
    })
    .await
}

/// POST /v1/creators/me/payout-account — the creator's Stripe Express account (made the first
/// time) becomes their payout method; answers a fresh onboarding link every call (links are
/// single use, so this is deliberately not an idempotent replay).
async fn setup_payout_account(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, AppError> {
    let creator = caller.staff(Role::Creator)?;
    let setup = crate::services::payouts::connect::setup(&state, creator).await?;
    Ok(HttpResponse::Ok().json(views::PayoutAccountView::new(
        &setup.account,
        setup.link.as_ref(),
    )))
}

async fn get_payout_account(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, AppError> {
    let creator = caller.staff(Role::Creator)?;
    let account = crate::services::payouts::connect::get(&state, creator).await?;
    Ok(HttpResponse::Ok().json(views::PayoutAccountView::new(&account, None)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeeSyncBody {
    days: Option<i64>,
}

/// POST /v1/admin/stripe-fees/sync — finance books Stripe's own fees (Connect's among them) of
/// the last `days` (1-400, default 45) as platform costs; each once, so it is safe to repeat.
async fn sync_stripe_fees(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Finance)?;
    let b: FeeSyncBody = if body.is_empty() {
        FeeSyncBody { days: None }
    } else {
        parse_json(&body)?
    };
    let days = b.days.unwrap_or(45);
    if !(1..=400).contains(&days) {
        return Err(AppError::unprocessable(
            "invalid_days",
            "days must be 1-400",
        ));
    }
    let (seen, booked) = crate::services::payouts::connect::book_stripe_fees(&state, days).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "seen": seen, "booked": booked })))
}

async fn get_bank_account(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, AppError> {
    let creator = caller.staff(Role::Creator)?;
    let account = bank_accounts::get(&state, creator).await?;
    Ok(HttpResponse::Ok().json(BankAccountView::from(&account)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    held: bool,
    reason: String,
}

/// POST /v1/admin/creators/{id}/payout-hold — finance holds or releases a creator's payouts.
async fn hold(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let actor = caller.staff(Role::Finance)?.to_owned();
    let creator = path.into_inner();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let b: HoldBody = parse_json(&body)?;
        let reason = super::bounds::reason(&b.reason)?;
        let (creator, actor) = (creator.clone(), actor.clone());
        let view = db::transaction(&state.pool, move |conn| {
            if Creator::find(conn, &creator)?.is_none() {
                return Err(AppError::not_found(format!("creator {creator}")));
            }
            let at = to_db(Utc::now());
            if b.held {
                Hold::set(
                    conn,
                    &Hold {
                        creator_id: creator.clone(),
                        reason: reason.clone(),
                        set_by: actor.clone(),
                        set_at: at,
                    },
                )?;
                audit_creator(conn, &creator, &actor, "hold", &reason)?;
            } else if Hold::lift(conn, &creator)? > 0 {
                audit_creator(conn, &creator, &actor, "lift_hold", &reason)?;
            }
            Ok(serde_json::json!({
                "creator_id": creator, "held": b.held, "reason": reason,
                "set_by": actor, "set_at": from_db(at),
            }))
        })
        .await?;
        Ok(Reply::ok(view))
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateRun {
    #[serde(default, deserialize_with = "super::bounds::optional_time")]
    cutoff: Option<DateTime<Utc>>,
}

async fn create_run(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let actor = caller.staff(Role::Finance)?.to_owned();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let asked: CreateRun = if body.is_empty() {
            CreateRun::default()
        } else {
            parse_json(&body)?
        };
        let now = Utc::now();
        let cutoff = asked.cutoff.unwrap_or(now);
        if cutoff > now {
            return Err(AppError::unprocessable(
                "invalid_cutoff",
                "the cut-off cannot be in the future",
            ));
        }
        let run = runs::create(&state, &actor, cutoff).await?;
        Ok(Reply::created(RunView::from(&run)))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    after: Option<String>,
    limit: Option<i64>,
}

pub(super) fn limit(asked: Option<i64>, default: i64, max: i64) -> Result<i64, AppError> {
    let limit = asked.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(AppError::unprocessable(
            "invalid_limit",
            format!("limit must be 1-{max}"),
        ));
    }
    Ok(limit)
}

async fn list_runs(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Finance)?;
    let q = query.into_inner();
    let limit = limit(q.limit, 50, 100)?;
    let (found, next) = runs::page(&state, q.after, limit).await?;
    let runs: Vec<RunSummaryView> = found
        .iter()
        .map(|(r, s)| RunSummaryView::new(r, s))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "runs": runs, "next": next })))
}

async fn get_run(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Finance)?;
    let run = runs::get(&state, &path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(RunView::from(&run)))
}

async fn lines(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Finance)?;
    let (id, q) = (path.into_inner(), query.into_inner());
    let limit = limit(q.limit, 100, 500)?;
    let (found, more) = db::run(&state.pool, move |conn| {
        Run::find(conn, &id)?.ok_or_else(|| AppError::not_found(format!("payout run {id}")))?;
        if let Some(after) = q.after.as_deref() {
            Line::find(conn, &id, after)?.ok_or_else(|| {
                AppError::unprocessable("invalid_cursor", "after names no line of this run")
            })?;
        }
        let mut found = Line::page(conn, &id, q.after.as_deref(), limit + 1)?;
        let more = found.len() as i64 > limit;
        found.truncate(limit as usize);
        Ok((found, more))
    })
    .await?;
    let next = if more {
        found.last().map(|l| l.id.clone())
    } else {
        None
    };
    let lines: Vec<LineView> = views::all(&found);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "lines": lines, "next": next })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    digest: String,
}

async fn approve(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let actor = caller.staff(Role::Finance)?.to_owned();
    let id = path.into_inner();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let b: ApproveBody = parse_json(&body)?;
        if b.digest.len() != 64
            || !b
                .digest
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        {
            return Err(AppError::unprocessable(
                "invalid_digest",
                "digest is the run's 64 lower-case hex digits",
            ));
        }
        let run = runs::approve(&state, &actor, &id, &b.digest).await?;
        Ok(Reply::ok(RunView::from(&run)))
    })
    .await
}

/// The two steps a run takes with no body: cancel its drafts, or send its approved lines.
#[derive(Clone, Copy)]
enum Step {
    Cancel,
    Send,
}

async fn cancel(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    step(state, caller, req, path, body, Step::Cancel).await
}

async fn send(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    step(state, caller, req, path, body, Step::Send).await
}

async fn step(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    step: Step,
) -> Result<HttpResponse, AppError> {
    let actor = caller.staff(Role::Finance)?.to_owned();
    let id = path.into_inner();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let run = match step {
            Step::Cancel => runs::cancel(&state, &actor, &id).await?,
            Step::Send => runs::send(&state, &actor, &id).await?,
        };
        Ok(Reply::ok(RunView::from(&run)))
    })
    .await
}

/// A file for finance to download: never cached, named after the run, streamed from its spool
/// a chunk at a time.
fn file_response(
    content_type: &str,
    run: &str,
    extension: &str,
    spooled: bank_file::Spooled,
) -> HttpResponse {
    use std::io::Read;
    let name: String = run
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let chunks = futures_util::stream::try_unfold(spooled.file, |mut file| async move {
        let (file, chunk) = web::block(move || {
            let mut chunk = vec![0u8; 64 * 1024];
            let n = file.read(&mut chunk)?;
            chunk.truncate(n);
            Ok::<_, std::io::Error>((file, chunk))
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok::<_, std::io::Error>((!chunk.is_empty()).then(|| (web::Bytes::from(chunk), file)))
    });
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"payout-run-{name}.{extension}\""),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .body(actix_web::body::SizedStream::new(spooled.len, chunks))
}

async fn bank_file_csv(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let actor = caller.staff(Role::Finance)?;
    let id = path.into_inner();
    let file = bank_file::download(&state, actor, &id, bank_file::Kind::Csv).await?;
    Ok(file_response("text/csv; charset=utf-8", &id, "csv", file))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SepaQuery {
    version: Option<String>,
}

/// GET /v1/admin/payout-runs/{id}/sepa.xml — the run's EUR lines as a SEPA credit transfer.
async fn sepa_xml(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<SepaQuery>,
) -> Result<HttpResponse, AppError> {
    let actor = caller.staff(Role::Finance)?;
    let id = path.into_inner();
    let asked = query
        .into_inner()
        .version
        .unwrap_or_else(|| state.settings.payouts.sepa.version.clone());
    let version = match asked.as_str() {
        "pain.001.001.09" => "pain.001.001.09",
        "pain.001.001.03" => "pain.001.001.03",
        _ => {
            return Err(AppError::unprocessable(
                "invalid_version",
                "version is pain.001.001.09 or pain.001.001.03",
            ))
        }
    };
    let file = bank_file::download(&state, actor, &id, bank_file::Kind::Sepa(version)).await?;
    Ok(file_response(
        "application/xml; charset=utf-8",
        &id,
        "xml",
        file,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomeBody {
    outcome: String,
    reason_code: Option<String>,
}

async fn outcome(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let actor = caller.staff(Role::Finance)?.to_owned();
    let (run, line) = path.into_inner();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let b: OutcomeBody = parse_json(&body)?;
        let outcome = Outcome::parse(&b.outcome).ok_or_else(|| {
            AppError::unprocessable("invalid_outcome", "outcome is paid, failed or returned")
        })?;
        let line = outcomes::record(&state, &actor, &run, &line, outcome, b.reason_code).await?;
        Ok(Reply::json(StatusCode::OK, LineView::from(&line)))
    })
    .await
}

/// POST /v1/admin/payout-runs/{id}/outcome — the bank paid (or refused) the run's whole files.
async fn file_outcome(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let actor = caller.staff(Role::Finance)?.to_owned();
    let run = path.into_inner();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let b: OutcomeBody = parse_json(&body)?;
        let outcome = Outcome::parse(&b.outcome).ok_or_else(|| {
            AppError::unprocessable("invalid_outcome", "outcome is paid or failed")
        })?;
        let moved = outcomes::record_file(&state, &actor, &run, outcome, b.reason_code).await?;
        let details = runs::get(&state, &run).await?;
        Ok(Reply::ok(serde_json::json!({
            "moved_lines": moved, "run": RunView::from(&details),
        })))
    })
    .await
}

/// The audit trail shows at most this many events of a run.
const AUDIT_SHOWN: i64 = 1000;

async fn audit(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Finance)?;
    let id = path.into_inner();
    let events = db::run(&state.pool, move |conn| {
        Run::find(conn, &id)?.ok_or_else(|| AppError::not_found(format!("payout run {id}")))?;
        Ok(AuditEvent::of_run(conn, &id, AUDIT_SHOWN)?)
    })
    .await?;
    let events: Vec<AuditView> = views::all(&events);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "events": events })))
}
