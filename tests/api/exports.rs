//! Finance's exports of the ledger, read by finance's own tools: Python's `csv` module and
//! pandas (`tests/export_check.py`) must find every entry, amounts that sum to the ledger's
//! balances, decimals at each currency's exponent, inert formulas, and journals that balance.

use crate::both;
use crate::helpers::{assert_problem, spawn, spawn_with, Backend, TestApp, TestDb};
use crate::payouts::{currency, fay, make_available};
use chrono::{NaiveDate, NaiveDateTime, Utc};
use kopilka::domain::ledger::creator_sale;
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The cell a spreadsheet would run, were it not neutralized.
const FORMULA: &str = "=HYPERLINK(\"http://x\",\"y\")";
const JAPANESE: &str = "スタンプの売上";

/// Posts a sale (all the creator's) under its own description.
async fn sale_described(app: &TestApp, creator: &str, code: &str, amount: i64, description: &str) {
    sale_at(
        app,
        creator,
        code,
        amount,
        description,
        Utc::now().naive_utc(),
    )
    .await;
}

/// Posts a sale (all the creator's) stamped `at`.
async fn sale_at(
    app: &TestApp,
    creator: &str,
    code: &str,
    amount: i64,
    description: &str,
    at: NaiveDateTime,
) {
    let pool = kopilka::db::connect(&app.db.url, 1).expect("connect");
    let lines = creator_sale(amount, 0, &currency(code), creator, 10_000).expect("sale");
    let description = description.to_owned();
    kopilka::db::transaction(&pool, move |c| {
        let key = format!("exports-test:{}", uuid::Uuid::new_v4().simple());
        let id = format!("ltx_{}", uuid::Uuid::new_v4().simple());
        let at = kopilka::db::models::to_db(at.and_utc());
        kopilka::db::models::ledger::post_unseen_at(c, &id, &key, &description, &lines, at)?;
        Ok(())
    })
    .await
    .expect("posting");
}

/// Every account's balance and how many entries there are, read from the database.
async fn ledger_now(app: &TestApp) -> (BTreeMap<String, i64>, usize) {
    use diesel::prelude::*;
    use kopilka::db::schema::ledger_entries;
    let pool = kopilka::db::connect(&app.db.url, 1).expect("connect");
    kopilka::db::run(&pool, |c| {
        let accounts: Vec<String> = ledger_entries::table
            .select(ledger_entries::account_id)
            .distinct()
            .load(c)?;
        let entries: i64 = ledger_entries::table.count().get_result(c)?;
        let mut balances = BTreeMap::new();
        for a in accounts {
            let b = kopilka::db::models::ledger::balance(c, &a)?;
            balances.insert(a, b);
        }
        Ok((balances, entries as usize))
    })
    .await
    .expect("ledger")
}

async fn export(app: &TestApp, path: &str) -> Vec<u8> {
    let res = app.get(path, &fay(app)).await;
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    assert_eq!(
        res.headers()["content-type"].to_str().expect("type"),
        "text/csv; charset=utf-8"
    );
    res.bytes().await.expect("body").to_vec()
}

/// What `tests/export_check.py` read in the file (it fails on any broken rule).
fn checked(kind: &str, file: &[u8]) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("export.csv");
    std::fs::write(&path, file).expect("write");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/export_check.py");
    let out = std::process::Command::new(crate::real_parts::python())
        .arg(script)
        .arg(kind)
        .arg(&path)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "the {kind} export breaks rules:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(file)
    );
    serde_json::from_slice(&out.stdout).expect("checker's json")
}

async fn some_history(app: &TestApp) {
    make_available(app, "cr-ada", "EUR", 1_234).await;
    make_available(app, "cr-ben", "JPY", 500).await;
    sale_described(app, "cr-ada", "USD", 999, FORMULA).await;
    sale_described(app, "cr-ben", "JPY", 1_000, JAPANESE).await;
}

both!(
    the_ledger_export_holds_every_entry_as_finance_tools_read_it,
    |b: Backend| async move {
        // Three entries a page, so the export takes many pages.
        let app = spawn_with(Arc::new(TestDb::new(b)), |s| {
            s.accounting.export_page_entries = 3
        })
        .await;
        some_history(&app).await;
        let today = Utc::now().date_naive();
        let path = format!("/v1/admin/exports/ledger.csv?from={today}&to={today}");
        let file = export(&app, &path).await;
        let found = checked("ledger", &file);
        let (balances, entries) = ledger_now(&app).await;
        assert_eq!(found["rows"], entries, "{found}");
        assert_eq!(found["bom"], false);
        let sums: BTreeMap<String, i64> =
            serde_json::from_value(found["sums"].clone()).expect("sums");
        assert_eq!(sums, balances, "every account sums to its balance");
        let ids = found["ids"].as_array().expect("ids");
        let unique: std::collections::BTreeSet<&str> =
            ids.iter().filter_map(Value::as_str).collect();
        assert_eq!(unique.len(), ids.len(), "no entry twice across pages");
        // The formula comes out inert: text starting with a quote.
        assert!(
            found["descriptions"]
                .as_array()
                .expect("descriptions")
                .iter()
                .any(|d| d.as_str() == Some(&format!("'{FORMULA}"))),
            "{found}"
        );
        // Asked again, the same bytes.
        assert_eq!(export(&app, &path).await, file);

        // With a BOM for Excel: the same rows, and Japanese text intact.
        let with_bom = export(&app, &format!("{path}&bom=true")).await;
        assert!(with_bom.starts_with("\u{feff}".as_bytes()));
        assert_eq!(&with_bom[3..], &file[..]);
        let found = checked("ledger", &with_bom);
        assert_eq!(found["bom"], true);
        assert!(found["descriptions"]
            .as_array()
            .expect("descriptions")
            .iter()
            .any(|d| d == JAPANESE));

        // One account.
        let account = "creator_available:cr-ada:EUR";
        assert!(balances.contains_key(account), "{balances:?}");
        let one = checked(
            "ledger",
            &export(&app, &format!("{path}&account={account}")).await,
        );
        assert_eq!(
            one["sums"],
            serde_json::json!({ account: balances[account] })
        );

        // A day before any entry: the header alone.
        let yesterday = today.pred_opt().expect("yesterday");
        let empty = export(
            &app,
            &format!("/v1/admin/exports/ledger.csv?from={yesterday}&to={yesterday}"),
        )
        .await;
        assert_eq!(
            String::from_utf8(empty).expect("utf-8"),
            format!("{}\r\n", kopilka::services::exports::LEDGER_COLUMNS)
        );
    }
);

both!(
    the_journal_balances_each_day_and_currency_on_the_configured_gl_codes,
    |b: Backend| async move {
        let app = spawn(b).await;
        let today = Utc::now().date_naive();
        let days: Vec<NaiveDate> = [3, 1]
            .iter()
            .map(|n| today - chrono::Days::new(*n))
            .collect();
        let noon = |d: NaiveDate| d.and_hms_opt(12, 0, 0).expect("noon");
        sale_at(&app, "cr-ada", "EUR", 1_234, "sale", noon(days[0])).await;
        sale_at(&app, "cr-ben", "JPY", 500, JAPANESE, noon(days[0])).await;
        sale_at(&app, "cr-ada", "USD", 999, FORMULA, noon(days[1])).await;
        let late = days[1].and_hms_opt(23, 59, 59).expect("late");
        sale_at(&app, "cr-ben", "JPY", 1_000, "sale", late).await;
        // Today is not over: in no journal yet.
        make_available(&app, "cr-cy", "EUR", 700).await;

        let yesterday = days[1];
        let from = today - chrono::Days::new(40);
        let path = format!("/v1/admin/exports/journal.csv?from={from}&to={yesterday}");
        let file = export(&app, &path).await;
        let found = checked("journal", &file);
        let journals = found["journals"].as_object().expect("journals");
        let names: Vec<String> = journals.keys().cloned().collect();
        let expected_names: Vec<String> = [(0, "EUR"), (0, "JPY"), (1, "JPY"), (1, "USD")]
            .iter()
            .map(|(d, c)| format!("kopilka-{}-{c}", days[*d]))
            .collect();
        assert_eq!(names, expected_names, "{found}");
        // Each GL line is the day's net of the accounts of its kinds, read from the ledger
        // export of that day (another path through the entries).
        let codes = &app.settings.accounting.gl_codes;
        for day in &days {
            let path = format!("/v1/admin/exports/ledger.csv?from={day}&to={day}");
            let ledger = checked("ledger", &export(&app, &path).await);
            let mut expected: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
            for (account, sum) in ledger["sums"].as_object().expect("sums") {
                let kind = account.split(':').next().expect("kind");
                let code = account.rsplit(':').next().expect("currency");
                *expected
                    .entry(format!("kopilka-{day}-{code}"))
                    .or_default()
                    .entry(codes[kind].clone())
                    .or_default() += sum.as_i64().expect("sum");
            }
            assert!(!expected.is_empty());
            for (journal, lines) in &expected {
                let got: BTreeMap<String, i64> =
                    serde_json::from_value(journals[journal]["lines"].clone()).expect("lines");
                let want: BTreeMap<String, i64> = lines
                    .iter()
                    .filter(|(_, n)| **n != 0)
                    .map(|(c, n)| (c.clone(), *n))
                    .collect();
                assert_eq!(got, want, "{journal}");
            }
        }
        // Stable: the same bytes again, and the same over a shorter period around the days.
        assert_eq!(export(&app, &path).await, file);
        let short = format!(
            "/v1/admin/exports/journal.csv?from={}&to={yesterday}",
            days[0]
        );
        assert_eq!(
            export(&app, &short).await,
            file,
            "days without entries add nothing"
        );
        // A period that is not over yet is refused.
        let res = app
            .get(
                &format!("/v1/admin/exports/journal.csv?from={yesterday}&to={today}"),
                &fay(&app),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "period_not_over").await;
    }
);

both!(
    exports_need_finance_and_a_valid_period,
    |b: Backend| async move {
        let app = spawn(b).await;
        let ok = "from=2026-01-01&to=2026-01-31";
        for route in ["ledger.csv", "journal.csv"] {
            let path = format!("/v1/admin/exports/{route}");
            let res = app
                .get(&format!("{path}?{ok}"), &app.token("cr-ada", &["creator"]))
                .await;
            assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
            for query in [
                "from=2026-02-01&to=2026-01-31",
                "from=2026-01-01&to=2027-01-31",
                "from=2026-02-30&to=2026-03-01",
                "from=1999-12-31&to=2000-01-01",
                "from=26-01-01&to=2026-01-02",
            ] {
                let res = app.get(&format!("{path}?{query}"), &fay(&app)).await;
                assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_period").await;
            }
            for query in [
                "from=2026-01-01",
                &format!("{ok}&bom=maybe"),
                &format!("{ok}&x=1"),
            ] {
                let res = app.get(&format!("{path}?{query}"), &fay(&app)).await;
                assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
            }
        }
        let long = "a".repeat(201);
        let res = app
            .get(
                &format!("/v1/admin/exports/ledger.csv?{ok}&account={long}"),
                &fay(&app),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_account").await;
    }
);
