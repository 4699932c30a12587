//! Tax profiles and withholding at payout: creators file a W-9 (US person, TIN) or a W-8BEN
//! (foreign, country, treaty rate); a payout keeps back the tax their profile (or its absence)
//! says, the bank is paid the rest, and finance reads per creator what was paid and withheld
//! in a year. Every scenario ends with the money in transit, at the bank and withheld equal
//! to what the lines say.

use crate::both;
use crate::helpers::{assert_problem, spawn, spawn_with, Backend, TestApp, TestDb};
use crate::payouts::{
    approve, approved, assert_money_matches_lines, assert_ties_out, bank_account, bank_file,
    bank_rows, carried_of, checked_by_python, creator_token, digest_of, draw, fay,
    file_tax_profile, german, id, line_for, lines_of, make_available, minor, owed, run_of,
    sepa_file, settled, statement, stepped, tax_withheld, total_of, unfiled_creator,
};
use chrono::{Datelike, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

const SSN: &str = "123-45-6789";

fn w9() -> Value {
    json!({"kind": "us_person", "legal_name": "Ada Lovelace", "tin": SSN, "tin_type": "ssn",
           "country": "US", "certify": true})
}

/// A W-8BEN; a treaty claim comes with a foreign TIN.
fn w8(country: &str, treaty: Option<i64>) -> Value {
    let mut p = json!({"kind": "foreign", "legal_name": "Bea Beispiel", "country": country,
                       "certify": true});
    if let Some(rate) = treaty {
        p["treaty_rate_bps"] = rate.into();
        p["tin"] = "12345678901".into();
    }
    p
}

/// Files the profile and expects it taken; returns the TaxProfileView.
async fn filed(app: &TestApp, creator: &str, profile: &Value) -> Value {
    let res = file_tax_profile(app, creator, profile).await;
    let status = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "tax profile: {text}");
    assert!(
        !text.contains("123456789") && !text.contains(SSN),
        "an answer holds a whole TIN: {text}"
    );
    serde_json::from_str(&text).expect("json")
}

/// A creator with `profile` filed (none: nothing filed), a German bank account in `currency`
/// and `amount` available.
async fn earning(app: &TestApp, profile: Option<Value>, currency: &str, amount: i64) -> String {
    let c = unfiled_creator(app).await;
    if let Some(p) = profile {
        if filed(app, &c, &p).await["status"] == "pending" {
            set_status(app, &c, "valid", "treaty claim checked").await;
        }
    }
    bank_account(app, &c, &german(currency)).await;
    make_available(app, &c, currency, amount).await;
    c
}

async fn set_status(app: &TestApp, creator: &str, status: &str, reason: &str) -> Value {
    let res = app
        .post(
            &format!("/v1/admin/creators/{creator}/tax-profile/status"),
            &fay(app),
            &json!({"status": status, "reason": reason}),
        )
        .await;
    let status_code = res.status();
    let body: Value = res.json().await.expect("json");
    assert_eq!(status_code, StatusCode::OK, "status: {body}");
    body
}

/// Every row of the year's creator totals, `limit` at a time.
async fn year_totals(app: &TestApp, year: i32, limit: usize) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/v1/admin/tax/creator-totals?year={year}&limit={limit}");
        if let Some(a) = &after {
            path.push_str(&format!("&after={a}"));
        }
        let res = app.get(&path, &fay(app)).await;
        let status = res.status();
        let text = res.text().await.expect("body");
        assert_eq!(status, StatusCode::OK, "totals: {text}");
        assert!(!text.contains("123456789"), "a whole TIN: {text}");
        let page: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(page["year"], year);
        let rows = page["totals"].as_array().expect("totals");
        assert!(rows.len() <= limit, "{page}");
        all.extend(rows.iter().cloned());
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return all,
        }
    }
}

both!(
    tax_profiles_are_checked_masked_and_theirs_to_file,
    |b: Backend| async move {
        let app = spawn(b).await;
        let ada = unfiled_creator(&app).await;
        let res = app
            .get("/v1/creators/me/tax-profile", &creator_token(&app, &ada))
            .await;
        assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;

        let bad: [(Value, &str); 10] = [
            (json!({"certify": false}), "certification_required"),
            (json!({"tin": "666-12-3456"}), "invalid_tin"),
            (json!({"tin": "12-3456789"}), "invalid_tin"),
            (json!({"tin_type": "itin"}), "invalid_tin_type"),
            (json!({"treaty_rate_bps": 0}), "invalid_treaty_rate"),
            (json!({"kind": "alien"}), "invalid_kind"),
            (json!({"legal_name": " "}), "invalid_legal_name"),
            (json!({"legal_name": "x".repeat(101)}), "invalid_legal_name"),
            (json!({"country": "XX"}), "invalid_country"),
            (json!({"country": "usa"}), "invalid_country"),
        ]
        .map(|(change, code)| {
            let mut p = w9();
            for (k, v) in change.as_object().expect("object") {
                p[k] = v.clone();
            }
            (p, code)
        });
        for (profile, code) in bad {
            let res = file_tax_profile(&app, &ada, &profile).await;
            assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, code).await;
        }
        for (profile, code) in [
            (w8("US", None), "invalid_country"),
            (w8("DE", Some(3001)), "invalid_treaty_rate"),
            (w8("DE", Some(-1)), "invalid_treaty_rate"),
            (
                {
                    let mut p = w8("DE", None);
                    p["tin_type"] = "ssn".into();
                    p
                },
                "invalid_tin_type",
            ),
            (
                {
                    let mut p = w8("DE", None);
                    p["tin"] = "=HYPERLINK(1)".into();
                    p
                },
                "invalid_tin",
            ),
        ] {
            let res = file_tax_profile(&app, &ada, &profile).await;
            assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, code).await;
        }
        let mut extra = w9();
        extra["tin_whole"] = SSN.into();
        let res = file_tax_profile(&app, &ada, &extra).await;
        assert_problem(res, StatusCode::BAD_REQUEST, "invalid_body").await;
        let res = app
            .get("/v1/creators/me/tax-profile", &creator_token(&app, &ada))
            .await;
        assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;

        // A W-9: nothing withheld, the TIN shown by its last four digits only.
        let view = filed(&app, &ada, &w9()).await;
        assert_eq!(view["kind"], "us_person");
        assert_eq!(view["form"], "W-9");
        assert_eq!(view["tin_masked"], "*****6789");
        assert_eq!(view["tin_type"], "ssn");
        assert_eq!(view["status"], "valid");
        assert_eq!(view["withholding_rate_bps"], 0);
        assert!(
            view["expires_at"].is_null(),
            "a W-9 does not expire: {view}"
        );
        let own = app
            .get("/v1/creators/me/tax-profile", &creator_token(&app, &ada))
            .await;
        assert_eq!(own.status(), StatusCode::OK);
        assert_eq!(own.json::<Value>().await.expect("json"), view);
        let seen = app
            .get(&format!("/v1/admin/creators/{ada}/tax-profile"), &fay(&app))
            .await;
        assert_eq!(seen.status(), StatusCode::OK);
        assert_eq!(seen.json::<Value>().await.expect("json"), view);
        // Finance routes are finance's; a creator reads only their own profile.
        let res = app
            .get(
                &format!("/v1/admin/creators/{ada}/tax-profile"),
                &creator_token(&app, &ada),
            )
            .await;
        assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;

        // A W-8BEN without a treaty claim: the statutory 30 %, valid through the third
        // calendar year after signing.
        let bea = unfiled_creator(&app).await;
        let view = filed(&app, &bea, &w8("DE", None)).await;
        assert_eq!(view["form"], "W-8BEN");
        assert_eq!(view["withholding_rate_bps"], 3000);
        assert!(view["tin_masked"].is_null());
        let signed = view["signed_at"].as_str().expect("signed_at");
        let year: i32 = signed[..4].parse().expect("year");
        assert_eq!(
            view["expires_at"].as_str().map(|t| t[..10].to_owned()),
            Some(format!("{}-01-01", year + 4)),
            "{view}"
        );
        // A treaty claim needs the creator's foreign TIN, and waits for finance: until then the
        // backup rate.
        let mut no_tin = w8("DE", Some(0));
        no_tin.as_object_mut().expect("object").remove("tin");
        let res = file_tax_profile(&app, &bea, &no_tin).await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "tin_required").await;
        let view = filed(&app, &bea, &w8("DE", Some(0))).await;
        assert_eq!(view["status"], "pending", "{view}");
        assert_eq!(view["withholding_rate_bps"], 2400, "{view}");
        assert_eq!(view["tin_masked"], "*******8901");
        let view = set_status(&app, &bea, "valid", "treaty claim checked").await;
        assert_eq!(view["withholding_rate_bps"], 0, "the treaty rate: {view}");

        // Finance rejects a profile (the IRS did not match the TIN): backup withholding until
        // the creator files again.
        let res = app
            .post(
                &format!("/v1/admin/creators/{ada}/tax-profile/status"),
                &fay(&app),
                &json!({"status": "lost", "reason": "x"}),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_status").await;
        let res = app
            .post(
                &format!("/v1/admin/creators/{ada}/tax-profile/status"),
                &fay(&app),
                &json!({"status": "rejected", "reason": ""}),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_reason").await;
        let view = set_status(&app, &ada, "rejected", "IRS TIN mismatch (CP2100)").await;
        assert_eq!(view["status"], "rejected");
        assert_eq!(view["status_reason"], "IRS TIN mismatch (CP2100)");
        assert_eq!(view["withholding_rate_bps"], 2400);
        // Filing the same again does not undo the rejection: it waits for finance.
        let view = filed(&app, &ada, &w9()).await;
        assert_eq!(view["status"], "pending");
        assert_eq!(view["withholding_rate_bps"], 2400);
        let view = set_status(&app, &ada, "valid", "TIN matched (IRS TIN matching)").await;
        assert_eq!(view["status"], "valid");
        assert!(view["status_reason"].is_null());
        assert_eq!(view["withholding_rate_bps"], 0);
        // Nobody reviews their own profile, whatever their roles.
        let both = app.token(&ada, &["creator", "finance"]);
        let res = app
            .post(
                &format!("/v1/admin/creators/{ada}/tax-profile/status"),
                &both,
                &json!({"status": "valid", "reason": "mine"}),
            )
            .await;
        assert_problem(res, StatusCode::CONFLICT, "self_review").await;

        // Someone without a creator profile files nothing.
        let stranger = crate::billing_helpers::user();
        let res = file_tax_profile(&app, &stranger, &w9()).await;
        assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    }
);

both!(
    payouts_withhold_by_tax_profile_and_the_bank_pays_the_rest,
    |b: Backend| async move {
        let app = spawn(b).await;
        let ada = earning(&app, Some(w9()), "EUR", 10_000).await;
        let bea = earning(&app, Some(w8("DE", None)), "EUR", 10_001).await;
        let cid = earning(&app, None, "EUR", 2_050).await;
        let dee = earning(&app, Some(w8("DE", Some(1500))), "USD", 1_005).await;

        let draft = draw(&app).await;
        let run = id(&draft);
        let lines = lines_of(&app, &run).await;
        // (rate, withheld, net): 30 % of 100.01 is 30.003 → 30.00; the backup 24 % of 20.50
        // is 4.92; 15 % of 10.05 is 1.5075 → 1.51 (half up).
        for (who, rate, withheld, net) in [
            (&ada, 0, 0, 10_000),
            (&bea, 3000, 3000, 7_001),
            (&cid, 2400, 492, 1_558),
            (&dee, 1500, 151, 854),
        ] {
            let l = line_for(&lines, who);
            assert_eq!(l["withholding_rate_bps"], rate, "{l}");
            assert_eq!(l["withheld_minor"], withheld, "{l}");
            assert_eq!(l["net_minor"], net, "{l}");
        }
        let eur = draft["totals"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["currency"] == "EUR"))
            .cloned()
            .expect("EUR total");
        assert_eq!(
            (
                &eur["amount_minor"],
                &eur["withheld_minor"],
                &eur["net_minor"]
            ),
            (&json!(22_051), &json!(3_492), &json!(18_559))
        );
        assert_eq!(total_of(&draft, "USD"), Some((1, 1_005)));

        approved(&app, &run).await;
        assert_eq!(tax_withheld(&app, "EUR").await, -3_492);
        assert_eq!(tax_withheld(&app, "USD").await, -151);
        for (who, code) in [(&ada, "EUR"), (&bea, "EUR"), (&cid, "EUR"), (&dee, "USD")] {
            assert_eq!(owed(&app, who, code).await, 0);
        }
        assert_money_matches_lines(&app).await;

        // The bank is told to pay what is left after the tax.
        stepped(&app, &run, "send").await;
        let found = checked_by_python(&sepa_file(&app, &run, None).await, "pain.001.001.09");
        let paid: BTreeMap<String, String> = found["transactions"]
            .as_array()
            .expect("transactions")
            .iter()
            .map(|t| {
                (
                    t["end_to_end_id"].as_str().expect("id").to_owned(),
                    t["amount"].as_str().expect("amount").to_owned(),
                )
            })
            .collect();
        let amount_of = |who: &str| paid[line_for(&lines, who)["id"].as_str().expect("id")].clone();
        assert_eq!(amount_of(&ada), "100.00");
        assert_eq!(amount_of(&bea), "70.01");
        assert_eq!(amount_of(&cid), "15.58");
        assert_eq!(found["ctrl_sum"], "185.59");
        let rows = bank_rows(&bank_file(&app, &run).await);
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0][8].as_str(), rows[0][9].as_str()), ("854", "8.54"));

        // The bank pays the file; Cid's bank sends his back: the money he never got is his
        // again, tax included.
        let res = app
            .post(
                &format!("/v1/admin/payout-runs/{run}/outcome"),
                &fay(&app),
                &json!({"outcome": "paid"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "{:?}", res.text().await);
        let cid_line = id(&line_for(&lines, &cid));
        let back = settled(&app, &run, &cid_line, "returned", Some("AC04")).await;
        assert!(back["paid_at"].is_string(), "{back}");
        assert_eq!(owed(&app, &cid, "EUR").await, 2_050);
        assert_eq!(tax_withheld(&app, "EUR").await, -3_000);
        assert_money_matches_lines(&app).await;

        // Bea's statement shows the payout and the tax apart, and ties out.
        let s = statement(
            &app,
            &creator_token(&app, &bea),
            &format!(
                "/v1/creators/me/statements/{}?currency=EUR",
                Utc::now().format("%Y-%m")
            ),
        )
        .await;
        assert_ties_out(&s);
        assert_eq!(minor(&s, "withheld_minor"), -3_000, "{s}");
        assert_eq!(minor(&s, "payouts_minor"), -7_001, "{s}");
        let item = &s["payouts"][0];
        assert_eq!(
            (&item["withheld_minor"], &item["net_minor"]),
            (&json!(3_000), &json!(7_001))
        );

        // What finance files from: per creator and currency, paid (before tax) and withheld in
        // the year; the returned line is not income. Read one row a page.
        let year = Utc::now().year();
        let rows = year_totals(&app, year, 1).await;
        let mine = [&ada, &bea, &cid, &dee];
        let ours: BTreeMap<(String, String), &Value> = rows
            .iter()
            .filter(|r| mine.iter().any(|m| r["creator_id"] == m.as_str()))
            .map(|r| {
                (
                    (
                        r["creator_id"].as_str().expect("creator").to_owned(),
                        r["currency"].as_str().expect("currency").to_owned(),
                    ),
                    r,
                )
            })
            .collect();
        assert_eq!(ours.len(), 3, "{rows:?}");
        for (who, code, paid, withheld, form) in [
            (&ada, "EUR", 10_000, 0, "1099-MISC"),
            (&bea, "EUR", 10_001, 3_000, "1042-S"),
            (&dee, "USD", 1_005, 151, "1042-S"),
        ] {
            let r = ours[&(who.clone(), code.to_owned())];
            assert_eq!(r["paid_minor"], paid, "{r}");
            assert_eq!(r["withheld_minor"], withheld, "{r}");
            assert_eq!(r["net_minor"], paid - withheld, "{r}");
            assert_eq!(r["lines"], 1, "{r}");
            assert_eq!(r["form"], form, "{r}");
        }
        assert_eq!(
            ours[&(ada.clone(), "EUR".to_owned())]["profile"]["tin_masked"],
            "*****6789"
        );
        assert!(year_totals(&app, year - 1, 100).await.is_empty());
        for (query, code) in [
            ("year=1999".to_owned(), "invalid_year"),
            (format!("year={}", year + 2), "invalid_year"),
            (format!("year={year}&after=nocolon"), "invalid_cursor"),
            (format!("year={year}&limit=1001"), "invalid_limit"),
        ] {
            let res = app
                .get(&format!("/v1/admin/tax/creator-totals?{query}"), &fay(&app))
                .await;
            assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, code).await;
        }
        let res = app
            .get(
                &format!("/v1/admin/tax/creator-totals?year={year}"),
                &creator_token(&app, &ada),
            )
            .await;
        assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
);

both!(
    a_tax_profile_that_changes_after_the_draft_stops_its_approval,
    |b: Backend| async move {
        let app = spawn(b).await;
        let ada = earning(&app, Some(w9()), "USD", 5_000).await;
        let bea = earning(&app, Some(w8("GB", Some(0))), "USD", 4_000).await;
        let draft = draw(&app).await;
        let run = id(&draft);
        let read = digest_of(&draft);
        assert_eq!(draft["blocked_lines"], 0);

        // The IRS does not match Ada's TIN: her line would now withhold 24 %, not 0.
        set_status(&app, &ada, "rejected", "IRS TIN mismatch").await;
        let res = approve(&app, &crate::payouts::fred(&app), &run, &read).await;
        assert_problem(res, StatusCode::CONFLICT, "digest_mismatch").await;
        let now = run_of(&app, &run).await;
        assert_eq!(now["blocked_lines"], 1, "{now}");
        let res = approve(&app, &crate::payouts::fred(&app), &run, &digest_of(&now)).await;
        assert_problem(res, StatusCode::CONFLICT, "payout_blocked").await;
        assert_eq!(tax_withheld(&app, "USD").await, 0, "refusals move nothing");
        stepped(&app, &run, "cancel").await;

        // Bea's W-8BEN has run out: backup withholding, like no profile at all.
        let pool = kopilka::db::connect(&app.db.url, 1).expect("connect");
        let bea_id = bea.clone();
        kopilka::db::run(&pool, move |c| {
            use diesel::prelude::*;
            use kopilka::db::schema::creator_tax_profiles as t;
            let past = (Utc::now() - chrono::Duration::days(1)).naive_utc();
            diesel::update(t::table.find(bea_id))
                .set(t::expires_at.eq(Some(past)))
                .execute(c)?;
            Ok(())
        })
        .await
        .expect("expire");
        let view = app
            .get(&format!("/v1/admin/creators/{bea}/tax-profile"), &fay(&app))
            .await
            .json::<Value>()
            .await
            .expect("json");
        assert_eq!(view["status"], "expired", "{view}");
        assert_eq!(view["withholding_rate_bps"], 2400);

        let again = draw(&app).await;
        let lines = lines_of(&app, &id(&again)).await;
        assert_eq!(line_for(&lines, &ada)["withheld_minor"], 1_200);
        assert_eq!(line_for(&lines, &bea)["withheld_minor"], 960);
        approved(&app, &id(&again)).await;
        assert_eq!(tax_withheld(&app, "USD").await, -2_160);
        assert_money_matches_lines(&app).await;
    }
);

both!(
    without_a_profile_payouts_wait_when_so_configured,
    |b: Backend| async move {
        let app = spawn_with(Arc::new(TestDb::new(b)), |s| {
            s.payouts.tax.without_profile = kopilka::domain::tax::WithoutProfile::Block;
        })
        .await;
        let ada = earning(&app, None, "USD", 5_000).await;
        let run = draw(&app).await;
        assert_eq!(run["lines_count"], 0, "{run}");
        assert_eq!(
            carried_of(&run, &ada, "USD"),
            Some(("no_tax_profile".to_owned(), 5_000))
        );
        let view = filed(&app, &ada, &w9()).await;
        assert_eq!(view["withholding_rate_bps"], 0);
        let view = set_status(&app, &ada, "rejected", "TIN mismatch").await;
        assert!(view["withholding_rate_bps"].is_null(), "blocked: {view}");
        assert_eq!(
            carried_of(&draw(&app).await, &ada, "USD"),
            Some(("no_tax_profile".to_owned(), 5_000))
        );
        set_status(&app, &ada, "valid", "TIN matched on appeal").await;
        let run = draw(&app).await;
        let line = line_for(&lines_of(&app, &id(&run)).await, &ada);
        assert_eq!(
            (&line["amount_minor"], &line["withheld_minor"]),
            (&json!(5_000), &json!(0))
        );
        approved(&app, &id(&run)).await;
        assert_money_matches_lines(&app).await;
    }
);
