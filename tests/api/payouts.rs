//! Payout runs: finance draws a run of creators' available balances, someone else approves it
//! against the digest they read, the bank file goes out, and each line's outcome moves the
//! money on. Holds, a recent change of bank details, open lines and small or negative
//! balances keep a creator out of a run, carried with the reason. After every scenario the
//! money in transit and at the bank is exactly what the lines say.
//!
//! Balances are given through the ledger, as the service posts them (a sale, then its
//! release from the hold; a refund after the release), except in the one end-to-end test that
//! sells a pack through localstripe.

use crate::billing_helpers::{
    balance, buy_and_pay, creator_pack, spawn_billing, user, wait_for_balance, WAIT,
};
use crate::both;
use crate::helpers::{assert_problem, eventually, spawn, spawn_with, Backend, TestApp, TestDb};
use chrono::{DateTime, Datelike, Utc};
use kopilka::domain::ledger::{creator_sale, release, taken_back, CreatorShare, Line, Reversal};
use kopilka::domain::money::Currency;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Finance staff: Fay draws runs, Fred approves them (four eyes).
pub(crate) const FAY: &str = "finance-fay";
pub(crate) const FRED: &str = "finance-fred";

pub(crate) const DE_IBAN: &str = "DE89370400440532013000";
pub(crate) const DE_MASKED: &str = "DE89 **** **** **** **30 00";
pub(crate) const GB_IBAN: &str = "GB82WEST12345698765432";
pub(crate) const GB_MASKED: &str = "GB82 **** **** **** **54 32";

/// `[payouts] cooling_off_hours` in config/default.toml, which test apps load.
const DEFAULT_COOLING_OFF_HOURS: i64 = 72;

const BANK_FILE_HEADER: [&str; 10] = [
    "line_id",
    "creator_id",
    "holder_name",
    "iban",
    "bic",
    "town",
    "country",
    "currency",
    "amount_minor",
    "amount",
];

pub(crate) fn fay(app: &TestApp) -> String {
    app.token(FAY, &["finance"])
}

pub(crate) fn fred(app: &TestApp) -> String {
    app.token(FRED, &["finance"])
}

pub(crate) fn creator_token(app: &TestApp, creator: &str) -> String {
    app.token(creator, &["creator"])
}

pub(crate) fn id(answer: &Value) -> String {
    answer["id"].as_str().expect("id").to_owned()
}

// ---------------------------------------------------------------------------------------------
// Creators and their bank accounts

/// A German account paid in `currency`, given in its electronic form.
pub(crate) fn german(currency: &str) -> Value {
    json!({"holder_name": "Ada Artist", "iban": DE_IBAN, "bic": "COBADEFFXXX",
        "town": "Berlin", "country": "DE", "currency": currency})
}

/// A British account paid in `currency`, with an 8-character BIC.
pub(crate) fn british(currency: &str) -> Value {
    json!({"holder_name": "Ben Painter", "iban": GB_IBAN, "bic": "NWBKGB2L",
        "town": "London", "country": "GB", "currency": currency})
}

/// `details` with `key` set to `value`.
pub(crate) fn with(details: &Value, key: &str, value: &str) -> Value {
    let mut changed = details.clone();
    changed[key] = value.into();
    changed
}

/// A user with the creator role who registered a creator profile and filed a W-8BEN as a
/// German resident (the US-German treaty withholds nothing from royalties); returns their id.
pub(crate) async fn creator(app: &TestApp) -> String {
    let id = unfiled_creator(app).await;
    files_german_w8(app, &id).await;
    id
}

/// The creator files a W-8BEN claiming the treaty's 0 % with their German tax id, and finance
/// accepts the claim.
pub(crate) async fn files_german_w8(app: &TestApp, creator: &str) {
    let res = file_tax_profile(
        app,
        creator,
        &json!({"kind": "foreign", "legal_name": "Artist", "country": "DE", "tin": "12345678901",
                "treaty_rate_bps": 0, "certify": true}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "{:?}", res.text().await);
    let res = app
        .post(
            &format!("/v1/admin/creators/{creator}/tax-profile/status"),
            &fay(app),
            &json!({"status": "valid", "reason": "treaty claim checked"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{:?}", res.text().await);
}

/// A registered creator who filed no tax profile.
pub(crate) async fn unfiled_creator(app: &TestApp) -> String {
    let id = user();
    let res = app
        .post(
            "/v1/creators/me",
            &creator_token(app, &id),
            &json!({"display_name": "Artist", "country": "DE", "payout_currency": "USD"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{:?}", res.text().await);
    id
}

pub(crate) async fn file_tax_profile(app: &TestApp, creator: &str, profile: &Value) -> Response {
    app.client
        .put(app.url("/v1/creators/me/tax-profile"))
        .bearer_auth(creator_token(app, creator))
        .json(profile)
        .send()
        .await
        .expect("request")
}

pub(crate) async fn put_bank_account(app: &TestApp, token: &str, details: &Value) -> Response {
    app.client
        .put(app.url("/v1/creators/me/bank-account"))
        .bearer_auth(token)
        .json(details)
        .send()
        .await
        .expect("request")
}

/// The creator gives (or changes) their bank details; returns the BankAccountView.
pub(crate) async fn bank_account(app: &TestApp, creator: &str, details: &Value) -> Value {
    let res = put_bank_account(app, &creator_token(app, creator), details).await;
    let status = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "bank account: {text}");
    assert_no_full_iban(&text);
    serde_json::from_str(&text).expect("json")
}

/// A registered creator with the German account in `currency` and `amount` available in it.
pub(crate) async fn paid_creator(app: &TestApp, currency: &str, amount: i64) -> String {
    paid_creator_with(app, &german(currency), amount).await
}

pub(crate) async fn paid_creator_with(app: &TestApp, details: &Value, amount: i64) -> String {
    let c = creator(app).await;
    bank_account(app, &c, details).await;
    let currency = details["currency"].as_str().expect("currency");
    make_available(app, &c, currency, amount).await;
    c
}

/// No answer may carry an IBAN whole (only the bank file does).
pub(crate) fn assert_no_full_iban(text: &str) {
    for iban in [DE_IBAN, GB_IBAN] {
        // The account number part alone would give it away too.
        assert!(
            !text.contains(iban) && !text.contains(&iban[4..]),
            "an answer holds a full IBAN: {text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Money, through the ledger as the service posts it

pub(crate) fn currency(code: &str) -> Currency {
    Currency::parse(code).expect("currency")
}

/// Posts each posting once, in one transaction, through `db::transaction` as the service
/// does (`BEGIN IMMEDIATE` on SQLite: the service may be writing meanwhile).
pub(crate) async fn post(app: &TestApp, postings: Vec<Vec<Line>>) {
    let pool = kopilka::db::connect(&app.db.url, 1).expect("connect");
    kopilka::db::transaction(&pool, move |c| {
        for lines in &postings {
            let key = format!("payouts-test:{}", uuid::Uuid::new_v4().simple());
            kopilka::db::models::ledger::post(c, &key, "payouts test", lines)?;
        }
        Ok(())
    })
    .await
    .expect("posting");
}

/// A sale whose whole `amount` is the creator's, released from its hold: `amount` more is
/// available to them.
pub(crate) async fn make_available(app: &TestApp, creator: &str, code: &str, amount: i64) {
    let ccy = currency(code);
    let sale = creator_sale(amount, 0, &ccy, creator, 10_000).expect("sale");
    let released = release(creator, amount, &ccy).expect("release");
    post(app, vec![sale, released]).await;
}

/// A refund after the release (of a sale that was all the creator's): `amount` comes out of
/// what is available to them, whatever is left.
pub(crate) async fn take_back(app: &TestApp, creator: &str, code: &str, amount: i64) {
    let r = Reversal {
        amount,
        fee: 0,
        gross: amount,
        before: 0,
        creator: Some(CreatorShare {
            creator,
            share: amount,
            released: true,
        }),
    };
    let lines = taken_back(r, &currency(code)).expect("refund");
    post(app, vec![lines]).await;
}

/// What the creator is owed in `code` (positive: the sign payout answers use; the ledger
/// credits the creator's account, so its balance is the negation).
pub(crate) async fn owed(app: &TestApp, creator: &str, code: &str) -> i64 {
    -balance(app, &format!("creator_available:{creator}:{code}")).await
}

pub(crate) async fn in_transit(app: &TestApp, code: &str) -> i64 {
    balance(app, &format!("payouts_in_transit:platform:{code}")).await
}

pub(crate) async fn tax_withheld(app: &TestApp, code: &str) -> i64 {
    balance(app, &format!("tax_withheld:platform:{code}")).await
}

pub(crate) async fn bank_clearing(app: &TestApp, code: &str) -> i64 {
    balance(app, &format!("bank_clearing:platform:{code}")).await
}

// ---------------------------------------------------------------------------------------------
// Runs

/// Fay draws a run (`{}`: cutoff now); returns the RunView.
pub(crate) async fn draw(app: &TestApp) -> Value {
    draw_with(app, &json!({})).await
}

pub(crate) async fn draw_with(app: &TestApp, body: &Value) -> Value {
    let res = app.post("/v1/admin/payout-runs", &fay(app), body).await;
    let status = res.status();
    let run: Value = res.json().await.expect("json");
    assert_eq!(status, StatusCode::CREATED, "draw: {run}");
    assert_run_shape(&run);
    run
}

pub(crate) async fn run_of(app: &TestApp, run: &str) -> Value {
    let res = app
        .get(&format!("/v1/admin/payout-runs/{run}"), &fay(app))
        .await;
    let status = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "run: {text}");
    assert_no_full_iban(&text);
    let run: Value = serde_json::from_str(&text).expect("json");
    assert_run_shape(&run);
    run
}

pub(crate) fn digest_of(run: &Value) -> String {
    run["digest"].as_str().expect("digest").to_owned()
}

pub(crate) fn assert_run_shape(run: &Value) {
    let digest = run["digest"].as_str().unwrap_or_default();
    assert!(
        digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "digest: {run}"
    );
    for at in ["cutoff", "created_at"] {
        let text = run[at].as_str().unwrap_or_default();
        assert!(DateTime::parse_from_rfc3339(text).is_ok(), "{at}: {run}");
    }
    assert!(
        run["totals"].is_array() && run["carried"].is_array(),
        "{run}"
    );
}

/// Every line of the run, page by page.
pub(crate) async fn lines_of(app: &TestApp, run: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/v1/admin/payout-runs/{run}/lines?limit=500&after={a}"),
            None => format!("/v1/admin/payout-runs/{run}/lines?limit=500"),
        };
        let res = app.get(&path, &fay(app)).await;
        let status = res.status();
        let text = res.text().await.expect("body");
        assert_eq!(status, StatusCode::OK, "lines: {text}");
        assert_no_full_iban(&text);
        let page: Value = serde_json::from_str(&text).expect("json");
        all.extend(page["lines"].as_array().expect("lines").iter().cloned());
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return all,
        }
    }
}

/// Every run, page by page (newest first).
pub(crate) async fn all_runs(app: &TestApp) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/v1/admin/payout-runs?limit=100&after={a}"),
            None => "/v1/admin/payout-runs?limit=100".to_owned(),
        };
        let res = app.get(&path, &fay(app)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let page: Value = res.json().await.expect("json");
        all.extend(page["runs"].as_array().expect("runs").iter().cloned());
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return all,
        }
    }
}

/// The creator's line among `lines`.
pub(crate) fn line_for(lines: &[Value], creator: &str) -> Value {
    lines
        .iter()
        .find(|l| l["creator_id"] == creator)
        .cloned()
        .unwrap_or_else(|| panic!("no line for {creator} in {lines:?}"))
}

/// (reason, available_minor) of the creator's balance the run carried in `code`.
pub(crate) fn carried_of(run: &Value, creator: &str, code: &str) -> Option<(String, i64)> {
    run["carried"]
        .as_array()?
        .iter()
        .find(|c| c["creator_id"] == creator && c["currency"] == code)
        .map(|c| {
            (
                c["reason"].as_str().expect("reason").to_owned(),
                c["available_minor"].as_i64().expect("available_minor"),
            )
        })
}

/// (lines, amount_minor) of the run's total in `code`.
pub(crate) fn total_of(run: &Value, code: &str) -> Option<(i64, i64)> {
    run["totals"]
        .as_array()?
        .iter()
        .find(|t| t["currency"] == code)
        .map(|t| {
            (
                t["lines"].as_i64().expect("lines"),
                t["amount_minor"].as_i64().expect("amount_minor"),
            )
        })
}

pub(crate) async fn approve(app: &TestApp, token: &str, run: &str, digest: &str) -> Response {
    app.post(
        &format!("/v1/admin/payout-runs/{run}/approve"),
        token,
        &json!({ "digest": digest }),
    )
    .await
}

/// Fred reads the run and approves it with the digest he read.
pub(crate) async fn approved(app: &TestApp, run: &str) -> Value {
    let digest = digest_of(&run_of(app, run).await);
    let res = approve(app, &fred(app), run, &digest).await;
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "approve: {body}");
    body
}

/// POST /v1/admin/payout-runs/{run}/{action} (cancel, send) as Fay.
pub(crate) async fn step(app: &TestApp, run: &str, action: &str) -> Response {
    app.post(
        &format!("/v1/admin/payout-runs/{run}/{action}"),
        &fay(app),
        &json!({}),
    )
    .await
}

pub(crate) async fn stepped(app: &TestApp, run: &str, action: &str) -> Value {
    let res = step(app, run, action).await;
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{action}: {body}");
    body
}

pub(crate) async fn outcome(
    app: &TestApp,
    run: &str,
    line: &str,
    outcome: &str,
    reason_code: Option<&str>,
) -> Response {
    let mut body = json!({ "outcome": outcome });
    if let Some(code) = reason_code {
        body["reason_code"] = code.into();
    }
    app.post(
        &format!("/v1/admin/payout-runs/{run}/lines/{line}/outcome"),
        &fay(app),
        &body,
    )
    .await
}

/// Records the outcome and expects it taken; returns the LineView.
pub(crate) async fn settled(
    app: &TestApp,
    run: &str,
    line: &str,
    what: &str,
    reason_code: Option<&str>,
) -> Value {
    let res = outcome(app, run, line, what, reason_code).await;
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{what}: {body}");
    assert_eq!(body["id"], line);
    assert_eq!(body["state"], what, "{body}");
    body
}

/// Finance puts a hold on the creator's payouts (`held`), or lifts it.
pub(crate) async fn hold(app: &TestApp, creator: &str, held: bool, reason: String) -> Response {
    app.post(
        &format!("/v1/admin/creators/{creator}/payout-hold"),
        &fay(app),
        &json!({"held": held, "reason": reason}),
    )
    .await
}

pub(crate) async fn audit(app: &TestApp, run: &str) -> Vec<Value> {
    let res = app
        .get(&format!("/v1/admin/payout-runs/{run}/audit"), &fay(app))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.expect("json");
    body["events"].as_array().expect("events").clone()
}

/// The actions of the audit, runs of the same action counted once (a run-wide step may be
/// recorded per line).
pub(crate) fn actions(events: &[Value]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for e in events {
        let action = e["action"].as_str().expect("action").to_owned();
        if seen.last() != Some(&action) {
            seen.push(action);
        }
    }
    seen
}

/// Downloads the run's bank file; returns its bytes.
pub(crate) async fn bank_file(app: &TestApp, run: &str) -> Vec<u8> {
    let res = app
        .get(
            &format!("/v1/admin/payout-runs/{run}/bank-file.csv"),
            &fay(app),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    res.bytes().await.expect("bank file").to_vec()
}

/// The records of a CSV document (RFC 4180: quoted fields may hold commas and quotes).
pub(crate) fn csv_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

/// The bank file's rows (after its header, which must be the documented one).
pub(crate) fn bank_rows(file: &[u8]) -> Vec<Vec<String>> {
    let text = std::str::from_utf8(file).expect("the bank file is UTF-8");
    let mut records = csv_records(text);
    assert!(!records.is_empty(), "an empty bank file");
    let header = records.remove(0);
    assert_eq!(header, BANK_FILE_HEADER, "bank file header");
    for row in &records {
        assert_eq!(row.len(), BANK_FILE_HEADER.len(), "bank file row {row:?}");
    }
    records
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Money in transit is exactly what approved and sent lines pay, money at the bank exactly
/// what paid lines paid, and tax withheld exactly what approved, sent and paid lines withheld
/// (a failed or returned line releases it), per currency, as the API reports the lines.
pub(crate) async fn assert_money_matches_lines(app: &TestApp) {
    let mut open: BTreeMap<String, i64> = BTreeMap::new();
    let mut paid: BTreeMap<String, i64> = BTreeMap::new();
    let mut withheld: BTreeMap<String, i64> = BTreeMap::new();
    let mut currencies: BTreeSet<String> = BTreeSet::from(["USD".to_owned()]);
    for run in all_runs(app).await {
        let lines = lines_of(app, &id(&run)).await;
        assert_eq!(run["lines_count"], lines.len(), "{run}");
        for line in lines {
            let code = line["currency"].as_str().expect("currency").to_owned();
            let amount = line["amount_minor"].as_i64().expect("amount");
            let tax = line["withheld_minor"].as_i64().expect("withheld");
            assert_eq!(line["net_minor"].as_i64(), Some(amount - tax), "{line}");
            let state = line["state"].as_str().expect("state");
            if matches!(state, "approved" | "sent" | "paid") {
                *withheld.entry(code.clone()).or_default() += tax;
            }
            // Connect lines are paid out of the Stripe balance, not our bank.
            let by_bank = line["destination"]["method"] == "bank_transfer";
            match state {
                "approved" | "sent" => *open.entry(code.clone()).or_default() += amount - tax,
                "paid" if by_bank => *paid.entry(code.clone()).or_default() += amount - tax,
                "paid" => {}
                "draft" | "failed" | "returned" | "canceled" => {}
                other => panic!("a line in an unknown state {other}: {line}"),
            }
            currencies.insert(code);
        }
    }
    for code in currencies {
        let want = open.get(&code).copied().unwrap_or(0);
        assert_eq!(in_transit(app, &code).await, -want, "in transit, {code}");
        let want = withheld.get(&code).copied().unwrap_or(0);
        assert_eq!(
            tax_withheld(app, &code).await,
            -want,
            "tax withheld, {code}"
        );
        let want = paid.get(&code).copied().unwrap_or(0);
        assert_eq!(
            bank_clearing(app, &code).await,
            -want,
            "at the bank, {code}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

both!(
    a_run_pays_available_balances_with_four_eyes,
    |b: Backend| async move {
        let app = spawn(b).await;
        let ada = paid_creator(&app, "USD", 2500).await;
        let ben = paid_creator_with(&app, &british("USD"), 500).await;

        let draft = draw(&app).await;
        let run = id(&draft);
        assert_eq!(draft["state"], "draft");
        assert_eq!(draft["created_by"], FAY);
        assert!(draft["approved_by"].is_null() && draft["approved_at"].is_null());
        assert_eq!(draft["lines_count"], 1);
        assert_eq!(total_of(&draft, "USD"), Some((1, 2500)));
        // Ben's 5.00 is under the USD minimum of 10.00: carried to a later run.
        assert_eq!(
            carried_of(&draft, &ben, "USD"),
            Some(("below_minimum".to_owned(), 500))
        );
        assert_eq!(
            draft["carried"].as_array().map(Vec::len),
            Some(1),
            "{draft}"
        );
        let lines = lines_of(&app, &run).await;
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        let line_id = id(line);
        assert_eq!(line["run_id"], run);
        assert_eq!(line["creator_id"], ada);
        assert_eq!(line["currency"], "USD");
        assert_eq!(line["amount_minor"], 2500);
        assert_eq!(line["state"], "draft");
        assert!(line["reason_code"].is_null());
        let to = &line["destination"];
        assert_eq!(to["holder_name"], "Ada Artist");
        assert_eq!(to["iban_masked"], DE_MASKED);
        assert_eq!(to["bic"], "COBADEFFXXX");
        assert_eq!(to["town"], "Berlin");
        assert_eq!(to["country"], "DE");

        // Four eyes: the one who drew the run cannot approve it.
        let digest = digest_of(&draft);
        let res = approve(&app, &fay(&app), &run, &digest).await;
        assert_problem(res, StatusCode::CONFLICT, "self_approval").await;
        let res = approve(&app, &fred(&app), &run, &"0".repeat(64)).await;
        assert_problem(res, StatusCode::CONFLICT, "digest_mismatch").await;
        assert_eq!(in_transit(&app, "USD").await, 0, "refusals move nothing");
        let res = approve(&app, &fred(&app), &run, &digest).await;
        assert_eq!(res.status(), StatusCode::OK);
        let view: Value = res.json().await.expect("json");
        assert_eq!(view["state"], "approved");
        assert_eq!(view["approved_by"], FRED);
        assert!(view["approved_at"].is_string());
        let again = approve(
            &app,
            &fred(&app),
            &run,
            &digest_of(&run_of(&app, &run).await),
        )
        .await;
        assert_problem(again, StatusCode::CONFLICT, "invalid_state").await;

        // Approval moved the money out of Ada's balance into transit; Ben's stays.
        assert_eq!(in_transit(&app, "USD").await, -2500);
        assert_eq!(owed(&app, &ada, "USD").await, 0);
        assert_eq!(owed(&app, &ben, "USD").await, 500);
        assert_money_matches_lines(&app).await;

        // No bank file before anything was sent; an approved run is no longer cancelable.
        let early = app
            .get(
                &format!("/v1/admin/payout-runs/{run}/bank-file.csv"),
                &fay(&app),
            )
            .await;
        assert_problem(early, StatusCode::CONFLICT, "invalid_state").await;
        assert_problem(
            step(&app, &run, "cancel").await,
            StatusCode::CONFLICT,
            "invalid_state",
        )
        .await;

        let view = stepped(&app, &run, "send").await;
        assert_eq!(view["state"], "sent");
        assert_problem(
            step(&app, &run, "send").await,
            StatusCode::CONFLICT,
            "invalid_state",
        )
        .await;
        assert_eq!(lines_of(&app, &run).await[0]["state"], "sent");

        // The bank file: what finance uploads to the bank, the IBAN whole.
        let file = bank_file(&app, &run).await;
        let rows = bank_rows(&file);
        assert_eq!(
            rows,
            vec![vec![
                line_id.clone(),
                ada.clone(),
                "Ada Artist".to_owned(),
                DE_IBAN.to_owned(),
                "COBADEFFXXX".to_owned(),
                "Berlin".to_owned(),
                "DE".to_owned(),
                "USD".to_owned(),
                "2500".to_owned(),
                "25.00".to_owned(),
            ]]
        );
        assert_eq!(
            bank_file(&app, &run).await,
            file,
            "the same bytes every time"
        );
        let sha = sha256_hex(&file);

        let paid = settled(&app, &run, &line_id, "paid", None).await;
        assert!(paid["reason_code"].is_null(), "{paid}");
        assert_eq!(bank_clearing(&app, "USD").await, -2500);
        assert_eq!(in_transit(&app, "USD").await, 0);
        assert_eq!(owed(&app, &ada, "USD").await, 0);
        assert_eq!(run_of(&app, &run).await["state"], "paid");

        let events = audit(&app, &run).await;
        assert_eq!(
            actions(&events),
            ["create", "approve", "send", "file_downloaded", "outcome"],
            "{events:?}"
        );
        let actor = |action: &str| {
            events
                .iter()
                .find(|e| e["action"] == action)
                .map(|e| e["actor"].clone())
        };
        assert_eq!(actor("create"), Some(json!(FAY)));
        assert_eq!(actor("approve"), Some(json!(FRED)));
        let downloads: Vec<&Value> = events
            .iter()
            .filter(|e| e["action"] == "file_downloaded")
            .collect();
        assert_eq!(downloads.len(), 2, "each download is recorded");
        for d in downloads {
            assert!(d["detail"].to_string().contains(&sha), "{d}");
        }
        let settled_event = events
            .iter()
            .find(|e| e["action"] == "outcome")
            .expect("outcome");
        assert_eq!(settled_event["line_id"], line_id);
        for e in &events {
            let at = e["at"].as_str().unwrap_or_default();
            assert!(DateTime::parse_from_rfc3339(at).is_ok(), "{e}");
        }
        // An outcome changes nothing in the file already handed out.
        assert_eq!(bank_file(&app, &run).await, file);
        assert_money_matches_lines(&app).await;
    }
);

both!(
    a_refund_after_the_draft_is_never_paid_out,
    |b: Backend| async move {
        let app = spawn(b).await;
        let ada = paid_creator(&app, "USD", 2500).await;
        let draft = draw(&app).await;
        let run = id(&draft);
        let read = digest_of(&draft);

        // A buyer is refunded after the run was drawn: 10.00 leaves Ada's available balance.
        take_back(&app, &ada, "USD", 1000).await;
        let res = approve(&app, &fred(&app), &run, &read).await;
        assert_problem(res, StatusCode::CONFLICT, "digest_mismatch").await;
        // Read again, the run still asks for more than Ada has.
        let reread = digest_of(&run_of(&app, &run).await);
        assert_ne!(reread, read, "the digest covers the creators' balances");
        let res = approve(&app, &fred(&app), &run, &reread).await;
        assert_problem(res, StatusCode::CONFLICT, "insufficient_balance").await;
        assert_eq!(in_transit(&app, "USD").await, 0);
        assert_eq!(owed(&app, &ada, "USD").await, 1500);
        assert_eq!(run_of(&app, &run).await["state"], "draft");

        // Cancel and draw again: the new run pays what is there now.
        let canceled = stepped(&app, &run, "cancel").await;
        assert_eq!(canceled["state"], "canceled");
        assert!(lines_of(&app, &run)
            .await
            .iter()
            .all(|l| l["state"] == "canceled"));
        let next = draw(&app).await;
        let lines = lines_of(&app, &id(&next)).await;
        assert_eq!(line_for(&lines, &ada)["amount_minor"], 1500);
        approved(&app, &id(&next)).await;
        assert_eq!(owed(&app, &ada, "USD").await, 0);
        assert_money_matches_lines(&app).await;
    }
);

both!(
    a_return_puts_the_money_back_and_the_next_run_carries_a_negative_balance,
    |b: Backend| async move {
        let app = spawn(b).await;
        let ada = paid_creator(&app, "USD", 2500).await;
        let run = id(&draw(&app).await);
        approved(&app, &run).await;
        stepped(&app, &run, "send").await;
        let line = id(&lines_of(&app, &run).await[0]);
        settled(&app, &run, &line, "paid", None).await;
        assert_eq!(bank_clearing(&app, "USD").await, -2500);

        // The bank sends it back (account closed): the money is Ada's again.
        let res = outcome(&app, &run, &line, "returned", None).await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "reason_required").await;
        let back = settled(&app, &run, &line, "returned", Some("AC04")).await;
        assert_eq!(back["reason_code"], "AC04");
        assert_eq!(owed(&app, &ada, "USD").await, 2500);
        assert_eq!(bank_clearing(&app, "USD").await, 0);
        assert_eq!(in_transit(&app, "USD").await, 0);
        assert_eq!(run_of(&app, &run).await["state"], "partially_failed");
        // The same outcome again changes nothing; a returned line is never paid again.
        let again = settled(&app, &run, &line, "returned", Some("AC04")).await;
        assert_eq!(again, back);
        assert_eq!(owed(&app, &ada, "USD").await, 2500);
        let res = outcome(&app, &run, &line, "paid", None).await;
        assert_problem(res, StatusCode::CONFLICT, "invalid_transition").await;

        // A dispute takes more than Ada has: she owes 5.00, and nothing is paid to her.
        take_back(&app, &ada, "USD", 3000).await;
        assert_eq!(owed(&app, &ada, "USD").await, -500);
        let next = draw(&app).await;
        assert_eq!(next["lines_count"], 0, "{next}");
        assert_eq!(
            carried_of(&next, &ada, "USD"),
            Some(("negative".to_owned(), -500))
        );
        assert_money_matches_lines(&app).await;
    }
);

both!(
    a_failed_line_returns_to_the_balance_and_outcomes_only_move_forward,
    |b: Backend| async move {
        let app = spawn(b).await;
        let ada = paid_creator(&app, "USD", 2500).await;
        let ben = paid_creator_with(&app, &british("USD"), 3000).await;
        let run = id(&draw(&app).await);

        // Lines page by id order.
        let first = app
            .get(
                &format!("/v1/admin/payout-runs/{run}/lines?limit=1"),
                &fay(&app),
            )
            .await;
        assert_eq!(first.status(), StatusCode::OK);
        let first: Value = first.json().await.expect("json");
        assert_eq!(first["lines"].as_array().map(Vec::len), Some(1), "{first}");
        let after = first["next"].as_str().expect("a next page");
        let second = app
            .get(
                &format!("/v1/admin/payout-runs/{run}/lines?limit=1&after={after}"),
                &fay(&app),
            )
            .await;
        let second: Value = second.json().await.expect("json");
        let paged = [first["lines"][0].clone(), second["lines"][0].clone()];
        let all = lines_of(&app, &run).await;
        assert_eq!(paged.as_slice(), all.as_slice());

        approved(&app, &run).await;
        let ada_line = id(&line_for(&all, &ada));
        let ben_line = id(&line_for(&all, &ben));
        assert_eq!(in_transit(&app, "USD").await, -5500);

        // Ada's bank refuses before the file is sent: a failure needs the bank's reason.
        let res = outcome(&app, &run, &ada_line, "failed", None).await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "reason_required").await;
        let res = outcome(&app, &run, &ada_line, "failed", Some("ac01")).await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not a reason code"
        );
        assert_eq!(
            in_transit(&app, "USD").await,
            -5500,
            "refusals move nothing"
        );
        let failed = settled(&app, &run, &ada_line, "failed", Some("AC01")).await;
        assert_eq!(failed["reason_code"], "AC01");
        assert_eq!(owed(&app, &ada, "USD").await, 2500);
        assert_eq!(in_transit(&app, "USD").await, -3000);

        stepped(&app, &run, "send").await;
        // Only what was sent is in the file: Ada's line failed before.
        let rows = bank_rows(&bank_file(&app, &run).await);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0][0], ben_line);
        assert_eq!(rows[0][3], GB_IBAN);
        assert_eq!(rows[0][4], "NWBKGB2L");
        assert_eq!(rows[0][9], "30.00");

        // A line is returned only after it was paid.
        let res = outcome(&app, &run, &ben_line, "returned", Some("AC04")).await;
        assert_problem(res, StatusCode::CONFLICT, "invalid_transition").await;
        let paid = settled(&app, &run, &ben_line, "paid", None).await;
        let again = settled(&app, &run, &ben_line, "paid", None).await;
        assert_eq!(again, paid, "paid twice changes nothing");
        assert_eq!(bank_clearing(&app, "USD").await, -3000);
        assert_eq!(in_transit(&app, "USD").await, 0);
        // A failed line stays failed.
        let res = outcome(&app, &run, &ada_line, "paid", None).await;
        assert_problem(res, StatusCode::CONFLICT, "invalid_transition").await;
        assert_eq!(owed(&app, &ada, "USD").await, 2500);
        assert_eq!(owed(&app, &ben, "USD").await, 0);
        assert_eq!(run_of(&app, &run).await["state"], "partially_failed");
        assert_money_matches_lines(&app).await;
    }
);

both!(
    one_open_line_per_creator_and_currency,
    |b: Backend| async move {
        let app = spawn(b).await;
        let ada = paid_creator(&app, "USD", 2500).await;

        // A retried request draws no second run.
        let create = || {
            app.client
                .post(app.url("/v1/admin/payout-runs"))
                .bearer_auth(fay(&app))
                .header("Idempotency-Key", "payout-run-monday")
                .json(&json!({}))
                .send()
        };
        let first = create().await.expect("request");
        assert_eq!(first.status(), StatusCode::CREATED);
        let first: Value = first.json().await.expect("json");
        let retried = create().await.expect("request");
        assert_eq!(retried.status(), StatusCode::CREATED);
        let retried: Value = retried.json().await.expect("json");
        assert_eq!(id(&retried), id(&first));
        let r1 = id(&first);
        assert_eq!(first["lines_count"], 1);

        // While Ada's line is open, another run leaves her out.
        let second = draw(&app).await;
        let r2 = id(&second);
        assert_eq!(second["lines_count"], 0, "{second}");
        assert_eq!(
            carried_of(&second, &ada, "USD"),
            Some(("in_open_run".to_owned(), 2500))
        );
        // A run without draft lines has nothing to approve or cancel.
        let res = approve(&app, &fred(&app), &r2, &digest_of(&second)).await;
        assert_problem(res, StatusCode::CONFLICT, "invalid_state").await;
        assert_problem(
            step(&app, &r2, "cancel").await,
            StatusCode::CONFLICT,
            "invalid_state",
        )
        .await;

        let canceled = stepped(&app, &r1, "cancel").await;
        assert_eq!(canceled["state"], "canceled");
        assert_problem(
            step(&app, &r1, "cancel").await,
            StatusCode::CONFLICT,
            "invalid_state",
        )
        .await;
        let res = approve(&app, &fred(&app), &r1, &digest_of(&run_of(&app, &r1).await)).await;
        assert_problem(res, StatusCode::CONFLICT, "invalid_state").await;
        assert_eq!(
            owed(&app, &ada, "USD").await,
            2500,
            "a draft moves no money"
        );

        // Canceled, her balance is drawn again.
        let third = draw(&app).await;
        let r3 = id(&third);
        assert_eq!(third["lines_count"], 1);
        let lines = lines_of(&app, &r3).await;
        assert_eq!(line_for(&lines, &ada)["amount_minor"], 2500);

        // Runs list newest first, page by page.
        let page = app.get("/v1/admin/payout-runs?limit=2", &fay(&app)).await;
        assert_eq!(page.status(), StatusCode::OK);
        let page: Value = page.json().await.expect("json");
        let ids: Vec<String> = page["runs"]
            .as_array()
            .expect("runs")
            .iter()
            .map(id)
            .collect();
        assert_eq!(ids, [r3.clone(), r2.clone()]);
        let summary = &page["runs"][0];
        assert_eq!(summary["state"], "draft");
        assert_eq!(summary["lines_count"], 1);
        assert_eq!(summary["created_by"], FAY);
        let next = page["next"].as_str().expect("a next page");
        let rest = app
            .get(
                &format!("/v1/admin/payout-runs?limit=2&after={next}"),
                &fay(&app),
            )
            .await;
        let rest: Value = rest.json().await.expect("json");
        let ids: Vec<String> = rest["runs"]
            .as_array()
            .expect("runs")
            .iter()
            .map(id)
            .collect();
        assert_eq!(ids, std::slice::from_ref(&r1));
        assert!(rest["next"].is_null(), "{rest}");
        let missing = app
            .get("/v1/admin/payout-runs/run_unknown", &fay(&app))
            .await;
        assert_problem(missing, StatusCode::NOT_FOUND, "not_found").await;
        assert_money_matches_lines(&app).await;
    }
);

both!(
    a_run_draws_balances_as_of_its_cutoff,
    |b: Backend| async move {
        let app = spawn(b).await;
        let ada = paid_creator(&app, "USD", 2500).await;
        // A cutoff on a whole second after that posting, and a sale released after it.
        let posted = Utc::now().timestamp();
        let passed = eventually(WAIT, || async move { Utc::now().timestamp() > posted }).await;
        assert!(passed, "the clock moves on");
        let cutoff = DateTime::from_timestamp(posted + 1, 0).expect("a time");
        make_available(&app, &ada, "USD", 1000).await;

        let future = (Utc::now() + chrono::Duration::hours(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let res = app
            .post(
                "/v1/admin/payout-runs",
                &fay(&app),
                &json!({ "cutoff": future }),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_cutoff").await;

        let at = cutoff.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let run = draw_with(&app, &json!({ "cutoff": at })).await;
        let said =
            DateTime::parse_from_rfc3339(run["cutoff"].as_str().expect("cutoff")).expect("rfc3339");
        assert_eq!(said, cutoff);
        let lines = lines_of(&app, &id(&run)).await;
        assert_eq!(line_for(&lines, &ada)["amount_minor"], 2500);
        approved(&app, &id(&run)).await;
        assert_eq!(owed(&app, &ada, "USD").await, 1000);

        // What came after the cutoff waits for the next run, and not while a line is open.
        let next = draw(&app).await;
        assert_eq!(
            carried_of(&next, &ada, "USD"),
            Some(("in_open_run".to_owned(), 1000))
        );
        assert_money_matches_lines(&app).await;
    }
);

both!(
    holds_and_bank_detail_changes_stop_payouts,
    |b: Backend| async move {
        let app = spawn(b).await;
        let ada = creator(&app).await;
        let email = format!("{ada}@example.com");
        let url = app.db.url.clone();
        let pool = kopilka::db::connect(&url, 1).expect("connect");
        let who = ada.clone();
        let address = email.clone();
        kopilka::db::transaction(&pool, move |c| {
            Ok(kopilka::db::models::users::set_email(c, &who, &address)?)
        })
        .await
        .expect("email");
        let mails = || {
            let mut conn = pool.get().expect("conn");
            kopilka::db::models::outbox::to_address(&mut conn, &email).expect("outbox")
        };

        // First details, spaced and in lower case: no cooling-off.
        let spaced = with(&german("USD"), "iban", "de89 3704 0044 0532 0130 00");
        let view = bank_account(&app, &ada, &spaced).await;
        assert_eq!(view["method"], "bank_transfer");
        assert_eq!(view["iban_masked"], DE_MASKED);
        assert_eq!(view["holder_name"], "Ada Artist");
        assert_eq!(view["bic"], "COBADEFFXXX");
        assert_eq!(view["currency"], "USD");
        assert!(view["cooling_off_until"].is_null(), "{view}");
        let res = app
            .get("/v1/creators/me/bank-account", &creator_token(&app, &ada))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let text = res.text().await.expect("body");
        assert_no_full_iban(&text);
        let read: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(read["iban_masked"], DE_MASKED);
        let mails_before = mails().len();
        make_available(&app, &ada, "USD", 2500).await;

        // Finance holds Ada's payouts.
        assert_problem(
            hold(&app, &ada, true, String::new()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_reason",
        )
        .await;
        assert_problem(
            hold(&app, &ada, true, "r".repeat(501)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_reason",
        )
        .await;
        let res = app
            .post(
                "/v1/admin/creators/nobody-at-all/payout-hold",
                &fay(&app),
                &json!({"held": true, "reason": "review"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let res = hold(&app, &ada, true, "fraud review".into()).await;
        assert_eq!(res.status(), StatusCode::OK);
        let held: Value = res.json().await.expect("json");
        assert_eq!(held["creator_id"], ada);
        assert_eq!(held["held"], true);
        assert_eq!(held["reason"], "fraud review");
        assert_eq!(held["set_by"], FAY);
        assert!(held["set_at"].is_string());
        let run = draw(&app).await;
        assert_eq!(run["lines_count"], 0);
        assert_eq!(
            carried_of(&run, &ada, "USD"),
            Some(("on_hold".to_owned(), 2500))
        );

        // Lifted: she is drawn again.
        let res = hold(&app, &ada, false, "review closed".into()).await;
        assert_eq!(res.status(), StatusCode::OK);
        let lifted: Value = res.json().await.expect("json");
        assert_eq!(lifted["held"], false);
        let run = draw(&app).await;
        let drawn = id(&run);
        let lines = lines_of(&app, &drawn).await;
        let line = line_for(&lines, &ada);
        assert_eq!(line["destination"]["iban_masked"], DE_MASKED);

        // New details: Ada is told, and payouts wait out the cooling-off.
        let view = bank_account(&app, &ada, &british("USD")).await;
        assert_eq!(view["iban_masked"], GB_MASKED);
        let until =
            DateTime::parse_from_rfc3339(view["cooling_off_until"].as_str().expect("cooling off"))
                .expect("rfc3339")
                .with_timezone(&Utc);
        let expected = Utc::now() + chrono::Duration::hours(DEFAULT_COOLING_OFF_HOURS);
        assert!(
            (until - expected).num_minutes().abs() < 5,
            "cooling off until {until}, expected about {expected}"
        );
        let told = eventually(WAIT, || {
            let n = mails().len();
            async move { n > mails_before }
        })
        .await;
        assert!(told, "the creator is emailed about new bank details");
        for mail in mails() {
            assert_no_full_iban(&mail.body);
        }
        // Money already drawn still goes where it was meant to.
        let lines = lines_of(&app, &drawn).await;
        assert_eq!(
            line_for(&lines, &ada)["destination"]["iban_masked"],
            DE_MASKED
        );
        stepped(&app, &drawn, "cancel").await;
        let run = draw(&app).await;
        assert_eq!(run["lines_count"], 0);
        assert_eq!(
            carried_of(&run, &ada, "USD"),
            Some(("cooling_off".to_owned(), 2500))
        );

        // Details that do not hold are refused, and change nothing.
        let token = creator_token(&app, &ada);
        let refused = [
            (
                with(&german("USD"), "iban", "DE89370400440532013001"),
                "invalid_iban",
            ),
            (with(&german("USD"), "bic", "COBADEF"), "invalid_bic"),
            (
                with(&german("USD"), "holder_name", ""),
                "invalid_holder_name",
            ),
            (
                with(&german("USD"), "holder_name", &"A".repeat(71)),
                "invalid_holder_name",
            ),
            (with(&german("USD"), "town", ""), "invalid_town"),
            (
                with(&german("USD"), "town", &"B".repeat(36)),
                "invalid_town",
            ),
            (with(&german("USD"), "country", "DEU"), "invalid_country"),
            (with(&german("USD"), "currency", "EURO"), "invalid_currency"),
            // Nothing a bank could read once in SEPA's Latin set.
            (
                with(&german("USD"), "holder_name", "😀 ★"),
                "invalid_holder_name",
            ),
            (
                with(&german("USD"), "town", "Ä".repeat(20).as_str()),
                "invalid_town",
            ),
        ];
        for (details, code) in refused {
            let res = put_bank_account(&app, &token, &details).await;
            assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, code).await;
        }
        let unknown = with(&german("USD"), "sort_code", "12-34-56");
        let res = put_bank_account(&app, &token, &unknown).await;
        assert_problem(res, StatusCode::BAD_REQUEST, "invalid_body").await;
        let res = app.get("/v1/creators/me/bank-account", &token).await;
        let read: Value = res.json().await.expect("json");
        assert_eq!(read["iban_masked"], GB_MASKED);
        assert_eq!(read["cooling_off_until"], view["cooling_off_until"]);
        assert_money_matches_lines(&app).await;
    }
);

both!(
    without_cooling_off_changed_details_are_paid_at_once_to_the_new_account,
    |b: Backend| async move {
        let app = spawn_with(Arc::new(TestDb::new(b)), |s| {
            s.payouts.cooling_off_hours = 0;
        })
        .await;
        let ada = paid_creator(&app, "USD", 2500).await;
        let view = bank_account(&app, &ada, &british("USD")).await;
        assert_eq!(view["iban_masked"], GB_MASKED);
        let run = draw(&app).await;
        let lines = lines_of(&app, &id(&run)).await;
        let line = line_for(&lines, &ada);
        assert_eq!(line["destination"]["iban_masked"], GB_MASKED);
        assert_eq!(line["destination"]["holder_name"], "Ben Painter");
        approved(&app, &id(&run)).await;
        stepped(&app, &id(&run), "send").await;
        let rows = bank_rows(&bank_file(&app, &id(&run)).await);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][3], GB_IBAN);
        assert_money_matches_lines(&app).await;
    }
);

both!(
    balances_a_run_cannot_pay_are_carried_with_their_reason,
    |b: Backend| async move {
        let app = spawn(b).await;
        let no_account = creator(&app).await;
        make_available(&app, &no_account, "USD", 2500).await;
        let euro_account = creator(&app).await;
        bank_account(&app, &euro_account, &german("EUR")).await;
        make_available(&app, &euro_account, "USD", 2500).await;
        let francs = paid_creator(&app, "CHF", 5000).await;
        let yen = paid_creator(&app, "JPY", 1500).await;
        // Sold, released, refunded in full: nothing to pay and nothing to carry.
        let settled_up = paid_creator(&app, "USD", 2500).await;
        take_back(&app, &settled_up, "USD", 2500).await;

        let run = draw(&app).await;
        assert_eq!(
            carried_of(&run, &no_account, "USD"),
            Some(("no_bank_account".to_owned(), 2500))
        );
        assert_eq!(
            carried_of(&run, &euro_account, "USD"),
            Some(("no_account_in_currency".to_owned(), 2500))
        );
        assert_eq!(
            carried_of(&run, &francs, "CHF"),
            Some(("no_minimum".to_owned(), 5000))
        );
        assert!(carried_of(&run, &settled_up, "USD").is_none(), "{run}");
        assert_eq!(run["lines_count"], 1, "{run}");
        assert_eq!(total_of(&run, "JPY"), Some((1, 1500)));
        for code in ["USD", "CHF"] {
            assert!(
                !matches!(total_of(&run, code), Some((lines, _)) if lines > 0),
                "{run}"
            );
        }
        let lines = lines_of(&app, &id(&run)).await;
        assert_eq!(lines.len(), 1);
        assert_eq!(line_for(&lines, &yen)["currency"], "JPY");

        // Yen have no minor unit: the bank file says 1500, not 15.00.
        approved(&app, &id(&run)).await;
        stepped(&app, &id(&run), "send").await;
        let rows = bank_rows(&bank_file(&app, &id(&run)).await);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][7], "JPY");
        assert_eq!(rows[0][8], "1500");
        assert_eq!(rows[0][9], "1500");
        assert_eq!(in_transit(&app, "JPY").await, -1500);
        assert_money_matches_lines(&app).await;
    }
);

both!(
    payout_routes_need_the_finance_role,
    |b: Backend| async move {
        let app = spawn(b).await;
        let ada = paid_creator(&app, "USD", 2500).await;
        let draft = draw(&app).await;
        let run = id(&draft);
        let line = id(&lines_of(&app, &run).await[0]);
        let digest = digest_of(&draft);
        let routes: Vec<(&str, String, Option<Value>)> = vec![
            ("GET", "/v1/admin/payout-runs".into(), None),
            ("POST", "/v1/admin/payout-runs".into(), Some(json!({}))),
            ("GET", format!("/v1/admin/payout-runs/{run}"), None),
            ("GET", format!("/v1/admin/payout-runs/{run}/lines"), None),
            (
                "POST",
                format!("/v1/admin/payout-runs/{run}/approve"),
                Some(json!({ "digest": digest })),
            ),
            (
                "POST",
                format!("/v1/admin/payout-runs/{run}/cancel"),
                Some(json!({})),
            ),
            (
                "POST",
                format!("/v1/admin/payout-runs/{run}/send"),
                Some(json!({})),
            ),
            (
                "GET",
                format!("/v1/admin/payout-runs/{run}/bank-file.csv"),
                None,
            ),
            (
                "POST",
                format!("/v1/admin/payout-runs/{run}/lines/{line}/outcome"),
                Some(json!({"outcome": "paid"})),
            ),
            ("GET", format!("/v1/admin/payout-runs/{run}/audit"), None),
            (
                "POST",
                format!("/v1/admin/creators/{ada}/payout-hold"),
                Some(json!({"held": true, "reason": "mine"})),
            ),
        ];
        let refused = [
            ("the creator", creator_token(&app, &ada)),
            ("a user", app.token(&user(), &[])),
            ("support", app.support()),
            ("a moderator", app.token("mod-mo", &["moderator"])),
        ];
        for (method, path, body) in &routes {
            let request = |credential: Option<&str>| {
                let mut req = app.client.request(
                    reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                    app.url(path),
                );
                if let Some(token) = credential {
                    req = req.bearer_auth(token);
                }
                if let Some(body) = body {
                    req = req.json(body);
                }
                req.send()
            };
            let res = request(None).await.expect("request");
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
            for (who, token) in &refused {
                let res = request(Some(token.as_str())).await.expect("request");
                assert_eq!(
                    res.status(),
                    StatusCode::FORBIDDEN,
                    "{method} {path} as {who}"
                );
            }
        }
        // Nothing the refused calls asked for happened.
        let now = run_of(&app, &run).await;
        assert_eq!(now["state"], "draft");
        assert_eq!(digest_of(&now), digest);
        assert_eq!(all_runs(&app).await.len(), 1);
        assert_eq!(actions(&audit(&app, &run).await), ["create"]);
        assert_eq!(owed(&app, &ada, "USD").await, 2500);

        // Admins pass (and are not the one who drew the run).
        let res = app.get("/v1/admin/payout-runs", &app.admin()).await;
        assert_eq!(res.status(), StatusCode::OK);
        let res = approve(&app, &app.admin(), &run, &digest).await;
        assert_eq!(res.status(), StatusCode::OK);

        // Bank accounts are the creator's own: a profile is needed, and the role.
        let newcomer = creator_token(&app, &user());
        let res = app.get("/v1/creators/me/bank-account", &newcomer).await;
        assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
        let res = put_bank_account(&app, &newcomer, &german("USD")).await;
        assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
        let plain = app.token(&user(), &[]);
        let res = app.get("/v1/creators/me/bank-account", &plain).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = put_bank_account(&app, &plain, &german("USD")).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = app
            .client
            .get(app.url("/v1/creators/me/bank-account"))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        // A creator who never gave details has none to read.
        let fresh = creator(&app).await;
        let res = app
            .get("/v1/creators/me/bank-account", &creator_token(&app, &fresh))
            .await;
        assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
        assert_money_matches_lines(&app).await;
    }
);

both!(
    a_released_sale_is_paid_out_end_to_end,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        // 15.00 at 70 %: 10.50 is the creator's, over the minimum once released.
        let (creator, _, price) = creator_pack(&app, 7000, 1500).await;
        let buyer = user();
        buy_and_pay(&app, &buyer, &price, None).await;
        wait_for_balance(&app, &format!("creator_pending:{creator}:USD"), -1050).await;
        // Through db::transaction, as the jobs worker runs it.
        let pool = kopilka::db::connect(&app.db.url, 1).expect("connect");
        let hold = app.settings.billing.hold_days;
        let later = Utc::now() + chrono::Duration::days(hold + 1);
        let released = kopilka::db::transaction(&pool, move |c| {
            kopilka::services::billing::earnings::release_due(c, hold, later, 500)
        })
        .await
        .expect("release");
        assert_eq!(released, 1);
        drop(pool);
        assert_eq!(owed(&app, &creator, "USD").await, 1050);

        bank_account(&app, &creator, &german("USD")).await;
        files_german_w8(&app, &creator).await;
        let run = draw(&app).await;
        let run_id = id(&run);
        let line = line_for(&lines_of(&app, &run_id).await, &creator);
        assert_eq!(line["amount_minor"], 1050);
        approved(&app, &run_id).await;
        stepped(&app, &run_id, "send").await;
        let rows = bank_rows(&bank_file(&app, &run_id).await);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][1], creator);
        assert_eq!(rows[0][9], "10.50");
        settled(&app, &run_id, &id(&line), "paid", None).await;
        assert_eq!(owed(&app, &creator, "USD").await, 0);
        assert_eq!(bank_clearing(&app, "USD").await, -1050);
        assert_eq!(run_of(&app, &run_id).await["state"], "paid");
        assert_money_matches_lines(&app).await;
    }
);

// ---------------------------------------------------------------------------------------------
// The SEPA credit transfer file

/// Downloads the run's SEPA file (`version`, or the configured one); returns its text.
pub(crate) async fn sepa_file(app: &TestApp, run: &str, version: Option<&str>) -> String {
    let path = match version {
        Some(v) => format!("/v1/admin/payout-runs/{run}/sepa.xml?version={v}"),
        None => format!("/v1/admin/payout-runs/{run}/sepa.xml"),
    };
    let res = app.get(&path, &fay(app)).await;
    let status = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "sepa.xml: {text}");
    text
}

/// What `tests/sepa_check.py` found in the file: it validates it against the `sepaxml`
/// package's XSD and the SEPA rules the XSD leaves out, and reads it back with Python's own
/// XML parser. Panics with the broken rules.
pub(crate) fn checked_by_python(xml: &str, version: &str) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("pain.xml");
    std::fs::write(&file, xml).expect("write");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sepa_check.py");
    let out = std::process::Command::new(crate::real_parts::python())
        .arg(script)
        .arg(&file)
        .arg(version)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "the SEPA file breaks rules:\n{}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("checker's json")
}

both!(
    eur_lines_go_to_the_bank_as_a_sepa_file_that_passes_the_xsd_and_the_sepa_rules,
    |b: Backend| async move {
        let app = spawn(b).await;
        let umlauts = with(&german("EUR"), "holder_name", "Müller & Söhne");
        let mueller = paid_creator_with(&app, &umlauts, 2_550).await;
        let no_bic = json!({"holder_name": "Łucja Ørsted", "iban": "FR1420041010050500013M02606",
            "town": "Paris", "country": "FR", "currency": "EUR"});
        let lucja = paid_creator_with(&app, &no_bic, 1_001).await;
        let dollars = paid_creator(&app, "USD", 4_000).await;
        let run = id(&draw(&app).await);
        approved(&app, &run).await;
        let conflict = app
            .get(&format!("/v1/admin/payout-runs/{run}/sepa.xml"), &fay(&app))
            .await;
        assert_problem(conflict, StatusCode::CONFLICT, "invalid_state").await;
        stepped(&app, &run, "send").await;
        let lines = lines_of(&app, &run).await;

        for version in ["pain.001.001.09", "pain.001.001.03"] {
            let xml = sepa_file(&app, &run, Some(version)).await;
            let found = checked_by_python(&xml, version);
            // The EUR lines and nothing else, tying to the run.
            let txs = found["transactions"].as_array().expect("transactions");
            let by_id: BTreeMap<&str, &Value> = txs
                .iter()
                .map(|t| (t["end_to_end_id"].as_str().expect("id"), t))
                .collect();
            assert_eq!(by_id.len(), 2, "{found}");
            let m = line_for(&lines, &mueller);
            let l = line_for(&lines, &lucja);
            let tm = by_id[m["id"].as_str().expect("id")];
            assert_eq!(tm["amount"], "25.50");
            assert_eq!(tm["iban"], DE_IBAN);
            assert_eq!(tm["name"], "Mueller + Soehne");
            let tl = by_id[l["id"].as_str().expect("id")];
            assert_eq!(tl["amount"], "10.01");
            assert_eq!(tl["name"], "Lucja Orsted");
            assert_eq!(found["ctrl_sum"], "35.51");
            assert!(!xml.contains(&dollars), "a USD line in the SEPA file");
            // The same file every time: same bytes, same MsgId.
            assert_eq!(sepa_file(&app, &run, Some(version)).await, xml);
        }
        let default = sepa_file(&app, &run, None).await;
        assert!(default.contains("pain.001.001.09"), "the default version");
        let bad = app
            .get(
                &format!("/v1/admin/payout-runs/{run}/sepa.xml?version=pain.001.001.02"),
                &fay(&app),
            )
            .await;
        assert_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_version").await;

        // The CSV holds the other currencies only.
        let csv = String::from_utf8(bank_file(&app, &run).await).expect("utf-8");
        let rows = csv_records(&csv);
        assert_eq!(rows.len(), 2, "{csv}");
        assert_eq!(rows[1][1], dollars);

        // Each copy handed out is in the audit trail with its SHA-256.
        let events = audit(&app, &run).await;
        let sha = sha256_hex(default.as_bytes());
        assert!(
            events.iter().any(|e| e["action"] == "file_downloaded"
                && e["detail"].as_str().unwrap_or_default().contains(&sha)),
            "{events:?}"
        );
        assert_money_matches_lines(&app).await;
    }
);

both!(
    a_line_paid_again_in_a_new_run_gets_a_new_message_id,
    |b: Backend| async move {
        let app = spawn(b).await;
        let c = paid_creator(&app, "EUR", 5_000).await;
        let first = id(&draw(&app).await);
        approved(&app, &first).await;
        stepped(&app, &first, "send").await;
        let line = id(&line_for(&lines_of(&app, &first).await, &c));
        let before = checked_by_python(&sepa_file(&app, &first, None).await, "pain.001.001.09");
        settled(&app, &first, &line, "failed", Some("AC04")).await;
        // The failed line stays in the file that went out: the same file again.
        let again = checked_by_python(&sepa_file(&app, &first, None).await, "pain.001.001.09");
        assert_eq!(again["msg_id"], before["msg_id"]);

        let second = id(&draw(&app).await);
        approved(&app, &second).await;
        stepped(&app, &second, "send").await;
        let reissued = checked_by_python(&sepa_file(&app, &second, None).await, "pain.001.001.09");
        assert_ne!(reissued["msg_id"], before["msg_id"]);
        assert_eq!(reissued["ctrl_sum"], "50.00");
        assert_money_matches_lines(&app).await;
    }
);

// ---------------------------------------------------------------------------------------------
// Statements

pub(crate) async fn statement(app: &TestApp, token: &str, path: &str) -> Value {
    let res = app.get(path, token).await;
    let status = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "statement: {text}");
    assert_no_full_iban(&text);
    serde_json::from_str(&text).expect("json")
}

pub(crate) fn minor(s: &Value, key: &str) -> i64 {
    s[key].as_i64().unwrap_or_else(|| panic!("{key} in {s}"))
}

/// Opening + movements = closing, and the parts add up.
pub(crate) fn assert_ties_out(s: &Value) {
    let moved: i64 = [
        "sales_share_minor",
        "refunds_and_disputes_minor",
        "payouts_minor",
        "withheld_minor",
        "other_minor",
    ]
    .iter()
    .map(|k| minor(s, k))
    .sum();
    assert_eq!(
        minor(s, "opening_minor") + moved,
        minor(s, "closing_minor"),
        "{s}"
    );
    assert_eq!(
        minor(s, "closing_pending_minor") + minor(s, "closing_available_minor"),
        minor(s, "closing_minor"),
        "{s}"
    );
    assert_eq!(
        minor(s, "opening_pending_minor") + minor(s, "opening_available_minor"),
        minor(s, "opening_minor"),
        "{s}"
    );
}

both!(
    a_statement_ties_out_to_the_ledger_and_follows_the_previous_month,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        // Two sales of 30.00 at 70 % through Stripe: 21.00 each is the creator's.
        let (ada, _, price) = creator_pack(&app, 7000, 3000).await;
        let token = creator_token(&app, &ada);
        buy_and_pay(&app, &user(), &price, None).await;
        wait_for_balance(&app, &format!("creator_pending:{ada}:USD"), -2100).await;
        let pool = kopilka::db::connect(&app.db.url, 1).expect("connect");
        let hold = app.settings.billing.hold_days;
        let later = Utc::now() + chrono::Duration::days(hold + 1);
        kopilka::db::transaction(&pool, move |c| {
            kopilka::services::billing::earnings::release_due(c, hold, later, 500)
        })
        .await
        .expect("release");
        buy_and_pay(&app, &user(), &price, None).await;
        wait_for_balance(&app, &format!("creator_pending:{ada}:USD"), -2100).await;
        // A refund of 5.00 of the released sale, posted as the refund webhook posts it: the
        // creator gives back floor(2100 × 500 / 3000) = 350.
        let refund = taken_back(
            Reversal {
                amount: 500,
                fee: 0,
                gross: 3000,
                before: 0,
                creator: Some(CreatorShare {
                    creator: &ada,
                    share: 2100,
                    released: true,
                }),
            },
            &currency("USD"),
        )
        .expect("refund");
        kopilka::db::transaction(&pool, move |c| {
            Ok(kopilka::db::models::ledger::post(
                c,
                "refund:re_statement",
                "refund",
                &refund,
            )?)
        })
        .await
        .expect("refund posting");
        assert_eq!(owed(&app, &ada, "USD").await, 1750);
        bank_account(&app, &ada, &german("USD")).await;
        let run = id(&draw(&app).await);
        approved(&app, &run).await;
        stepped(&app, &run, "send").await;
        let line = id(&line_for(&lines_of(&app, &run).await, &ada));
        settled(&app, &run, &line, "paid", None).await;
        settled(&app, &run, &line, "returned", Some("AC04")).await;

        let this = Utc::now().format("%Y-%m").to_string();
        let s = statement(&app, &token, &format!("/v1/creators/me/statements/{this}")).await;
        assert_ties_out(&s);
        assert_eq!(s["currency"], "USD");
        assert_eq!(minor(&s, "sales_count"), 2, "{s}");
        assert_eq!(minor(&s, "sales_gross_minor"), 6_000);
        assert_eq!(minor(&s, "sales_share_minor"), 4_200);
        assert_eq!(minor(&s, "refunds_and_disputes_minor"), -350);
        // Paid out, then returned: nothing left the creator's balance in the end.
        assert_eq!(minor(&s, "payouts_minor"), 0);
        assert_eq!(minor(&s, "other_minor"), 0);
        assert_eq!(minor(&s, "released_minor"), 2_100);
        // The closing balances are the ledger's, read independently.
        assert_eq!(
            minor(&s, "closing_available_minor"),
            owed(&app, &ada, "USD").await
        );
        let pending = -balance(&app, &format!("creator_pending:{ada}:USD")).await;
        assert_eq!(minor(&s, "closing_pending_minor"), pending);
        assert_eq!(pending, 2_100);
        let payouts = s["payouts"].as_array().expect("payouts");
        assert_eq!(payouts.len(), 1, "{s}");
        assert_eq!(payouts[0]["line_id"], line);
        assert_eq!(payouts[0]["state"], "returned");
        assert_eq!(payouts[0]["reason_code"], "AC04");
        assert!(payouts[0]["destination"]
            .as_str()
            .unwrap_or_default()
            .contains(DE_MASKED));
        assert_eq!(s["pending"].as_array().map(Vec::len), Some(1), "{s}");

        // The month before closes where this one opens.
        let now = Utc::now();
        let before = (now.date_naive().with_day(1).expect("day 1") - chrono::Duration::days(1))
            .format("%Y-%m")
            .to_string();
        let earlier = statement(
            &app,
            &token,
            &format!("/v1/creators/me/statements/{before}"),
        )
        .await;
        assert_ties_out(&earlier);
        assert_eq!(minor(&earlier, "closing_minor"), minor(&s, "opening_minor"));

        // Finance reads the same statement; CSV too.
        let finance = statement(
            &app,
            &fay(&app),
            &format!("/v1/admin/creators/{ada}/statements/{this}?currency=usd"),
        )
        .await;
        assert_eq!(finance, s);
        let res = app
            .get(
                &format!("/v1/creators/me/statements/{this}?format=csv"),
                &token,
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let csv = res.text().await.expect("csv");
        let rows = csv_records(&csv);
        assert_eq!(
            rows[0].join(","),
            "section,item,reference,amount_minor,currency,detail"
        );
        let closing = rows
            .iter()
            .find(|r| r[0] == "balance" && r[1] == "closing")
            .expect("closing row");
        assert_eq!(closing[3], minor(&s, "closing_minor").to_string());

        // The months listed, and bad input.
        let months = statement(&app, &token, "/v1/creators/me/statements").await;
        assert_eq!(months["months"][0]["month"], this);
        assert_eq!(months["months"][0]["currencies"], json!(["USD"]));
        for (path, code) in [
            ("/v1/creators/me/statements/2999-01", "invalid_month"),
            ("/v1/creators/me/statements/2026-13", "invalid_month"),
            (
                &format!("/v1/creators/me/statements/{this}?currency=XYZ") as &str,
                "invalid_currency",
            ),
            (
                &format!("/v1/creators/me/statements/{this}?format=pdf") as &str,
                "invalid_format",
            ),
        ] {
            let res = app.get(path, &token).await;
            assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, code).await;
        }
        // Another creator cannot read it; a plain user has no statements.
        let other = app
            .get(
                &format!("/v1/admin/creators/{ada}/statements/{this}"),
                &token,
            )
            .await;
        assert_eq!(other.status(), StatusCode::FORBIDDEN);
        assert_money_matches_lines(&app).await;
    }
);

both!(
    a_paid_line_mails_the_creator_their_statement_as_csv,
    |b: Backend| async move {
        let app = spawn(b).await;
        let ada = paid_creator(&app, "EUR", 4_200).await;
        let email = format!("{ada}@example.com");
        let pool = kopilka::db::connect(&app.db.url, 1).expect("connect");
        let (who, address) = (ada.clone(), email.clone());
        kopilka::db::transaction(&pool, move |c| {
            Ok(kopilka::db::models::users::set_email(c, &who, &address)?)
        })
        .await
        .expect("email");
        let run = id(&draw(&app).await);
        approved(&app, &run).await;
        stepped(&app, &run, "send").await;
        let line = id(&line_for(&lines_of(&app, &run).await, &ada));
        settled(&app, &run, &line, "paid", None).await;
        // Recording it again mails nothing more.
        settled(&app, &run, &line, "paid", None).await;
        let mut conn = pool.get().expect("conn");
        let mails = kopilka::db::models::outbox::to_address(&mut conn, &email).expect("outbox");
        let paid: Vec<_> = mails.iter().filter(|m| m.kind == "payout_paid").collect();
        assert_eq!(paid.len(), 1, "{mails:?}");
        assert!(paid[0].subject.contains("42.00 EUR"), "{}", paid[0].subject);
        assert!(paid[0].body.contains(&line), "{}", paid[0].body);
        assert_no_full_iban(&paid[0].body);
        let name = paid[0].attachment_name.as_deref().expect("an attachment");
        assert!(
            name.starts_with("statement-") && name.ends_with("-EUR.csv"),
            "{name}"
        );
        let csv = paid[0].attachment.as_deref().expect("the CSV");
        let rows = csv_records(csv);
        assert!(
            rows.iter()
                .any(|r| r[0] == "payout" && r[2] == line && r[3] == "4200"),
            "{csv}"
        );
    }
);

both!(
    a_whole_file_is_recorded_paid_or_failed_at_once,
    |b: Backend| async move {
        let app = spawn(b).await;
        let (ada, ben) = (
            paid_creator(&app, "USD", 2_000).await,
            paid_creator_with(&app, &british("USD"), 3_000).await,
        );
        let run = id(&draw(&app).await);
        approved(&app, &run).await;
        let path = format!("/v1/admin/payout-runs/{run}/outcome");
        // Nothing was sent yet: nothing can be paid.
        let early = app
            .post(&path, &fay(&app), &json!({"outcome": "paid"}))
            .await;
        assert_problem(early, StatusCode::CONFLICT, "invalid_state").await;
        stepped(&app, &run, "send").await;
        for (body, code) in [
            (
                json!({"outcome": "returned", "reason_code": "AC04"}),
                "invalid_outcome",
            ),
            (json!({"outcome": "failed"}), "reason_required"),
        ] {
            let res = app.post(&path, &fay(&app), &body).await;
            assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, code).await;
        }
        let res = app
            .post(&path, &fay(&app), &json!({"outcome": "paid"}))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["moved_lines"], 2, "{body}");
        assert_eq!(body["run"]["state"], "paid");
        assert_eq!(bank_clearing(&app, "USD").await, -5_000);
        assert_eq!(
            owed(&app, &ada, "USD").await + owed(&app, &ben, "USD").await,
            0
        );
        // Again: every line is paid already, so nothing moves, and that is no error.
        let again = app
            .post(&path, &fay(&app), &json!({"outcome": "paid"}))
            .await;
        assert_eq!(again.status(), StatusCode::OK);
        let again: Value = again.json().await.expect("json");
        assert_eq!(again["moved_lines"], 0, "{again}");
        assert_eq!(bank_clearing(&app, "USD").await, -5_000);

        // A refused file puts the money back.
        make_available(&app, &ada, "USD", 1_500).await;
        let second = id(&draw(&app).await);
        approved(&app, &second).await;
        stepped(&app, &second, "send").await;
        let refused = app
            .post(
                &format!("/v1/admin/payout-runs/{second}/outcome"),
                &fay(&app),
                &json!({"outcome": "failed", "reason_code": "MS03"}),
            )
            .await;
        assert_eq!(refused.status(), StatusCode::OK);
        assert_eq!(owed(&app, &ada, "USD").await, 1_500);
        assert_money_matches_lines(&app).await;
    }
);

// ---------------------------------------------------------------------------------------------
// Random histories against a model

/// A small deterministic generator (xorshift), so a failing history can be replayed by seed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The model: what each creator is owed, and each line's (creator, amount, state), kept by
/// plain arithmetic on the rules (a draw takes a balance of at least the 10.00 minimum; an
/// approval takes the lines out of the balance; a failure or a return gives them back).
#[derive(Default)]
struct Model {
    owed: BTreeMap<String, i64>,
    /// line id → (creator, amount, state, run)
    lines: BTreeMap<String, (String, i64, &'static str, String)>,
    runs: Vec<String>,
}

both!(
    random_histories_keep_every_balance_equal_to_the_model,
    |b: Backend| async move {
        let mut seen: BTreeSet<&'static str> = BTreeSet::new();
        for seed in [7_u64, 1_234_567, 98_765_431] {
            // A fresh service and database per history: the model knows only its creators.
            let app = spawn(b).await;
            let mut dice = Dice(seed);
            let mut model = Model::default();
            let mut creators = Vec::new();
            for _ in 0..3 {
                let c = creator(&app).await;
                bank_account(&app, &c, &german("USD")).await;
                creators.push(c);
            }
            for c in &creators {
                model.owed.insert(c.clone(), 0);
            }
            for step in 0..40 {
                let c = &creators[dice.roll(3) as usize];
                let what = dice.roll(8);
                match what {
                    0 | 1 => {
                        let amount = 200 + dice.roll(1500) as i64;
                        make_available(&app, c, "USD", amount).await;
                        *model.owed.get_mut(c).expect("creator") += amount;
                    }
                    2 => {
                        let amount = 100 + dice.roll(800) as i64;
                        take_back(&app, c, "USD", amount).await;
                        *model.owed.get_mut(c).expect("creator") -= amount;
                    }
                    3 => {
                        let run = draw(&app).await;
                        let open: BTreeSet<&String> = model
                            .lines
                            .values()
                            .filter(|(_, _, s, _)| ["draft", "approved", "sent"].contains(s))
                            .map(|(c, _, _, _)| c)
                            .collect();
                        let mut want: BTreeMap<String, i64> = BTreeMap::new();
                        for (c, owed) in &model.owed {
                            if *owed >= 1000 && !open.contains(c) {
                                want.insert(c.clone(), *owed);
                            }
                        }
                        let lines = lines_of(&app, &id(&run)).await;
                        let got: BTreeMap<String, i64> = lines
                            .iter()
                            .map(|l| {
                                let c = l["creator_id"].as_str().expect("creator").to_owned();
                                (c, l["amount_minor"].as_i64().expect("amount"))
                            })
                            .collect();
                        assert_eq!(got, want, "seed {seed} step {step}: drawn lines");
                        for l in &lines {
                            let c = l["creator_id"].as_str().expect("creator").to_owned();
                            let amount = l["amount_minor"].as_i64().expect("amount");
                            model.lines.insert(id(l), (c, amount, "draft", id(&run)));
                        }
                        model.runs.push(id(&run));
                    }
                    4 => {
                        let Some(run) = model.runs.last().cloned() else {
                            continue;
                        };
                        let drafts: Vec<String> = lines_of(&app, &run)
                            .await
                            .iter()
                            .filter(|l| l["state"] == "draft")
                            .map(id)
                            .collect();
                        if drafts.is_empty() {
                            continue;
                        }
                        let digest = digest_of(&run_of(&app, &run).await);
                        let short = drafts.iter().any(|l| {
                            let (c, amount, _, _) = &model.lines[l];
                            model.owed[c] < *amount
                        });
                        let res = approve(&app, &fred(&app), &run, &digest).await;
                        if short {
                            assert_problem(res, StatusCode::CONFLICT, "insufficient_balance").await;
                            stepped(&app, &run, "cancel").await;
                            seen.insert("canceled");
                            for l in &drafts {
                                model.lines.get_mut(l).expect("line").2 = "canceled";
                            }
                        } else {
                            assert_eq!(res.status(), StatusCode::OK, "seed {seed} step {step}");
                            for l in &drafts {
                                let line = model.lines.get_mut(l).expect("line");
                                line.2 = "approved";
                                *model.owed.get_mut(&line.0).expect("creator") -= line.1;
                            }
                            stepped(&app, &run, "send").await;
                            for l in &drafts {
                                model.lines.get_mut(l).expect("line").2 = "sent";
                            }
                        }
                    }
                    _ => {
                        // The bank answers about one line: paid, failed or (once paid) returned.
                        let candidates: Vec<(String, &'static str)> = model
                            .lines
                            .iter()
                            .filter(|(_, (_, _, s, _))| *s == "sent" || *s == "paid")
                            .map(|(l, (_, _, s, _))| (l.clone(), *s))
                            .collect();
                        if candidates.is_empty() {
                            continue;
                        }
                        let (line, state) =
                            &candidates[dice.roll(candidates.len() as u64) as usize];
                        let (c, amount, _, owner) = model.lines[line].clone();
                        let (to, code) = match (*state, dice.roll(3)) {
                            ("paid", _) => ("returned", Some("AC04")),
                            (_, 0) => ("failed", Some("AC01")),
                            _ => ("paid", None),
                        };
                        settled(&app, &owner, line, to, code).await;
                        seen.insert(to);
                        if to != "paid" {
                            *model.owed.get_mut(&c).expect("creator") += amount;
                        }
                        model.lines.get_mut(line).expect("line").2 = to;
                    }
                }
                for c in &creators {
                    assert_eq!(
                        owed(&app, c, "USD").await,
                        model.owed[c],
                        "seed {seed} step {step} (action {what}): {c}'s balance"
                    );
                }
            }
            assert_money_matches_lines(&app).await;
        }
        // The histories went through every kind of ending, or the test proves little.
        for state in ["paid", "failed", "returned"] {
            assert!(
                seen.contains(state),
                "no history had a {state} line: {seen:?}"
            );
        }
    }
);

both!(
    a_run_larger_than_a_page_is_reviewed_approved_filed_and_paid_a_page_at_a_time,
    |b: Backend| async move {
        // Two lines per page, so five lines take three pages at every step.
        let app = spawn_with(Arc::new(TestDb::new(b)), |s| s.payouts.page_lines = 2).await;
        let mut euros = Vec::new();
        for i in 0..3 {
            euros.push(paid_creator(&app, "EUR", 1_000 + i).await);
        }
        let dollars = [
            paid_creator_with(&app, &british("USD"), 2_000).await,
            paid_creator_with(&app, &british("USD"), 2_001).await,
        ];
        let draft = draw(&app).await;
        let run = id(&draft);
        assert_eq!(draft["lines_count"], 5, "{draft}");
        let lines = lines_of(&app, &run).await;
        assert_eq!(lines.len(), 5);

        // A refund for the creator of the last line (by id, so on the last page) is seen.
        let last = lines
            .iter()
            .max_by_key(|l| l["id"].as_str().map(str::to_owned))
            .expect("lines");
        let (who, code) = (
            last["creator_id"].as_str().expect("creator").to_owned(),
            last["currency"].as_str().expect("currency").to_owned(),
        );
        take_back(&app, &who, &code, 1).await;
        let res = approve(&app, &fred(&app), &run, &digest_of(&draft)).await;
        assert_problem(res, StatusCode::CONFLICT, "digest_mismatch").await;
        let reread = run_of(&app, &run).await;
        assert_eq!(reread["uncovered_lines"], 1, "{reread}");
        let res = approve(&app, &fred(&app), &run, &digest_of(&reread)).await;
        assert_problem(res, StatusCode::CONFLICT, "insufficient_balance").await;
        assert_eq!(
            in_transit(&app, "EUR").await + in_transit(&app, "USD").await,
            0
        );
        assert!(lines_of(&app, &run)
            .await
            .iter()
            .all(|l| l["state"] == "draft"));

        // Covered again: the digest is the first one again, and every page is approved.
        make_available(&app, &who, &code, 1).await;
        assert_eq!(digest_of(&run_of(&app, &run).await), digest_of(&draft));
        approved(&app, &run).await;
        assert_eq!(in_transit(&app, "EUR").await, -3_003);
        assert_eq!(in_transit(&app, "USD").await, -4_001);
        stepped(&app, &run, "send").await;

        // Both files hold every line of their currency, and two downloads are the same bytes.
        let xml = sepa_file(&app, &run, None).await;
        assert_eq!(xml, sepa_file(&app, &run, None).await);
        let found = checked_by_python(&xml, "pain.001.001.09");
        assert_eq!(found["ctrl_sum"], "30.03", "{found}");
        let paid_to: BTreeSet<String> = found["transactions"]
            .as_array()
            .expect("transactions")
            .iter()
            .map(|t| t["end_to_end_id"].as_str().expect("id").to_owned())
            .collect();
        let eur_lines: BTreeSet<String> = lines
            .iter()
            .filter(|l| l["currency"] == "EUR")
            .map(|l| l["id"].as_str().expect("id").to_owned())
            .collect();
        assert_eq!(paid_to, eur_lines);
        let rows = bank_rows(&bank_file(&app, &run).await);
        let mut creators: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
        creators.sort();
        let mut expected: Vec<&str> = dollars.iter().map(String::as_str).collect();
        expected.sort();
        assert_eq!(creators, expected);

        // The bank paid the whole file: all five lines, across the pages.
        let res = app
            .post(
                &format!("/v1/admin/payout-runs/{run}/outcome"),
                &fay(&app),
                &json!({"outcome": "paid"}),
            )
            .await;
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["moved_lines"], 5, "{body}");
        assert_eq!(body["run"]["state"], "paid");
        for c in euros.iter().chain(&dollars) {
            let code = if euros.contains(c) { "EUR" } else { "USD" };
            assert_eq!(owed(&app, c, code).await, 0);
        }
        assert_money_matches_lines(&app).await;
    }
);
