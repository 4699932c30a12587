//! Stripe Connect payouts, against a Stripe-shaped stand-in (no emulator has Connect): a
//! creator's Express account, its onboarding link, `account.updated` on the Connect endpoint
//! (its own secret), one transfer per line under the line's idempotency key, a refused
//! transfer failing its line at once, and `transfer.reversed` returning the money.

use crate::billing_helpers::{balance, deliver, spawn_unhooked};
use crate::both;
use crate::connect_stub::{sign, ConnectStub};
use crate::helpers::{assert_problem, Backend, TestApp};
use crate::payouts::{
    approved, assert_money_matches_lines, bank_account, carried_of, creator, creator_token, draw,
    german, id, line_for, lines_of, make_available, outcome, owed, run_of, stepped,
};
use crate::real_parts::real_parts;
use reqwest::StatusCode;
use serde_json::Value;

const CONNECT_SECRET: &str = "whsec_connect_endpoint_test";

async fn connect_app(b: Backend) -> (TestApp, ConnectStub) {
    let stub = ConnectStub::start(real_parts().stripe_url.clone());
    let url = stub.url();
    let app = spawn_unhooked(b, move |s| {
        s.stripe.api_base = url;
        s.stripe.connect_webhook_secrets = vec![CONNECT_SECRET.to_owned().into()];
    })
    .await;
    (app, stub)
}

/// POST /v1/creators/me/payout-account as the creator; returns the PayoutAccountView.
async fn set_up(app: &TestApp, creator: &str) -> Value {
    let res = app
        .post(
            "/v1/creators/me/payout-account",
            &creator_token(app, creator),
            &serde_json::json!({}),
        )
        .await;
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "payout account: {body}");
    body
}

/// Delivers `event` to the Connect endpoint, signed with its secret.
async fn to_connect_endpoint(app: &TestApp, event: &Value) -> reqwest::Response {
    crate::stripe_shapes::assert_stripe_shaped(event);
    let body = event.to_string();
    app.client
        .post(app.url("/v1/webhooks/stripe-connect"))
        .header("Stripe-Signature", sign(&body, CONNECT_SECRET))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("deliver")
}

/// A creator paid through a Connect account the stub onboarded (and the app heard of it).
async fn connected(app: &TestApp, stub: &ConnectStub, amount: i64) -> (String, String) {
    let c = creator(app).await;
    make_available(app, &c, "USD", amount).await;
    let account = set_up(app, &c).await["account_id"]
        .as_str()
        .expect("account")
        .to_owned();
    stub.onboard(&account);
    let res = to_connect_endpoint(app, &stub.account_updated_event(&account)).await;
    assert_eq!(res.status(), StatusCode::OK);
    (c, account)
}

both!(
    connect_payouts_transfer_each_line_once_and_a_reversal_returns_the_money,
    |b: Backend| async move {
        let (app, stub) = connect_app(b).await;
        let ada = creator(&app).await;
        make_available(&app, &ada, "USD", 5_000).await;

        // The Express account is made once; every call gives a fresh onboarding link.
        let first = set_up(&app, &ada).await;
        let account = first["account_id"].as_str().expect("account").to_owned();
        assert!(account.starts_with("acct_"), "{first}");
        assert_eq!(first["method"], "stripe_connect");
        assert_eq!(first["transfers"], "inactive");
        assert_eq!(first["chosen"], true);
        assert!(
            first["cooling_off_until"].is_null(),
            "no earlier method: {first}"
        );
        let again = set_up(&app, &ada).await;
        assert_eq!(again["account_id"], account.as_str());
        assert_ne!(again["onboarding_url"], first["onboarding_url"]);
        assert!(again["onboarding_expires_at"].is_string());
        let made: Vec<_> = stub
            .requests()
            .into_iter()
            .filter(|(m, p, _, _)| m == "POST" && p == "/v1/accounts")
            .collect();
        assert_eq!(made.len(), 1, "one account: {made:?}");
        assert_eq!(
            made[0].3.as_deref(),
            Some(format!("kopilka-connect-account-{ada}").as_str())
        );
        let form = &made[0].2;
        for (k, v) in [
            ("controller[stripe_dashboard][type]", "express"),
            ("controller[fees][payer]", "application"),
            ("capabilities[transfers][requested]", "true"),
            ("country", "DE"),
        ] {
            assert!(
                form.iter().any(|(fk, fv)| fk == k && fv == v),
                "{k}={v} in {form:?}"
            );
        }

        // Two first calls at once (another creator): one account, both answered.
        let eve = creator(&app).await;
        let (a, b) = futures_util::join!(set_up(&app, &eve), set_up(&app, &eve));
        assert_eq!(a["account_id"], b["account_id"]);
        let accounts: std::collections::BTreeSet<String> = stub
            .requests()
            .into_iter()
            .filter(|(m, p, _, _)| m == "POST" && p == "/v1/accounts")
            .filter_map(|(_, _, _, key)| key)
            .collect();
        assert_eq!(accounts.len(), 2, "one key per creator: {accounts:?}");

        // Not onboarded yet: carried.
        let run = draw(&app).await;
        assert_eq!(
            carried_of(&run, &ada, "USD"),
            Some(("connect_not_ready".to_owned(), 5_000))
        );

        // Onboarded: Stripe tells the Connect endpoint (never the platform one).
        let stale = stub.account_updated_event(&account);
        stub.onboard(&account);
        let fresh = stub.account_updated_event(&account);
        let res = crate::billing_helpers::forward(&app, &fresh).await;
        assert_problem(res, StatusCode::BAD_REQUEST, "invalid_event").await;
        let res = to_connect_endpoint(&app, &fresh).await;
        assert_eq!(res.status(), StatusCode::OK);
        // An older event arriving late changes nothing.
        let mut stale = stale;
        stale["created"] = (fresh["created"].as_i64().expect("created") - 10).into();
        assert_eq!(
            to_connect_endpoint(&app, &stale).await.status(),
            StatusCode::OK
        );
        let view: Value = app
            .get("/v1/creators/me/payout-account", &creator_token(&app, &ada))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(view["transfers"], "active", "{view}");
        assert!(view["onboarding_url"].is_null());

        // Bea's account is onboarded, then restricted at Stripe before we hear of it: her
        // transfer is refused and her line fails at once. Cid's first attempt meets a Stripe
        // outage and is retried under the same key.
        let (bea, bea_account) = connected(&app, &stub, 3_000).await;
        stub.restrict(&bea_account, &["individual.verification.document"]);
        let (cid, _) = connected(&app, &stub, 2_000).await;

        let run = draw(&app).await;
        let run_id = id(&run);
        let lines = lines_of(&app, &run_id).await;
        let line = line_for(&lines, &ada);
        assert_eq!(line["destination"]["method"], "stripe_connect");
        assert_eq!(line["destination"]["stripe_account"], account.as_str());
        approved(&app, &run_id).await;
        stub.fail_next("/v1/transfers", 500);
        stepped(&app, &run_id, "send").await;
        let lines = lines_of(&app, &run_id).await;
        let ada_line = line_for(&lines, &ada);
        assert_eq!(ada_line["state"], "paid", "{ada_line}");
        let transfer_id = ada_line["transfer_id"]
            .as_str()
            .expect("transfer")
            .to_owned();
        let transfer = stub.transfer(&transfer_id);
        assert_eq!(transfer["amount"], 5_000);
        assert_eq!(transfer["destination"], account.as_str());
        assert_eq!(transfer["transfer_group"], run_id.as_str());
        let bea_line = line_for(&lines, &bea);
        assert_eq!(bea_line["state"], "failed", "{bea_line}");
        assert_eq!(
            bea_line["reason_code"], "insufficient_capabilities_for_transfer",
            "{bea_line}"
        );
        assert_eq!(
            owed(&app, &bea, "USD").await,
            3_000,
            "a refused transfer pays nothing"
        );
        assert_eq!(line_for(&lines, &cid)["state"], "paid");
        // One transfer per paid line, each under its line's key, however many attempts.
        let attempts: Vec<Option<String>> = stub
            .requests()
            .into_iter()
            .filter(|(m, p, _, _)| m == "POST" && p == "/v1/transfers")
            .map(|(_, _, _, key)| key)
            .collect();
        assert_eq!(stub.transfers().len(), 2, "{attempts:?}");
        for l in [&ada_line, &line_for(&lines, &cid)] {
            let key = format!("kopilka-payout-{}", id(l));
            assert!(attempts.contains(&Some(key)), "{attempts:?}");
        }
        assert!(attempts.len() >= 4, "the outage was retried: {attempts:?}");
        // Paid out of the Stripe balance: 100.00 of sales came in, 70.00 was transferred.
        let cleared = balance(&app, "stripe_clearing:platform:USD").await;
        assert_eq!(cleared, 3_000, "transfers leave the Stripe balance");
        assert_money_matches_lines(&app).await;
        // Finance does not record a Connect line's outcome: Stripe settles it.
        let res = outcome(&app, &run_id, &id(&ada_line), "returned", Some("AC04")).await;
        assert_problem(res, StatusCode::CONFLICT, "invalid_transition").await;

        // We reverse Ada's transfer in Stripe, 20.00 first and then the rest: each
        // `transfer.reversed` gives its part back once, whatever the order they arrive in.
        let reverse = |amount: Option<&'static str>| {
            let req = app
                .client
                .post(format!(
                    "{}v1/transfers/{transfer_id}/reversals",
                    stub.url()
                ))
                .bearer_auth("sk_test_kopilka");
            let req = match amount {
                Some(a) => req.form(&[("amount", a)]),
                None => req,
            };
            async move {
                let res = req.send().await.expect("reverse");
                assert_eq!(res.status(), StatusCode::OK);
            }
        };
        reverse(Some("2000")).await;
        let partly = stub.transfer_reversed_event(&transfer_id);
        for _ in 0..2 {
            assert_eq!(deliver(&app, &partly).await.status(), StatusCode::OK);
        }
        let line = line_for(&lines_of(&app, &run_id).await, &ada);
        assert_eq!(
            (&line["state"], &line["reversed_minor"]),
            (&"paid".into(), &2_000.into())
        );
        assert_eq!(owed(&app, &ada, "USD").await, 2_000);
        assert_eq!(balance(&app, "stripe_clearing:platform:USD").await, 5_000);
        reverse(None).await;
        let fully = stub.transfer_reversed_event(&transfer_id);
        assert_eq!(deliver(&app, &fully).await.status(), StatusCode::OK);
        // The partial event again, under another id (as if late): nothing moves.
        let mut late = partly.clone();
        late["id"] = format!("{}late", partly["id"].as_str().expect("id")).into();
        assert_eq!(deliver(&app, &late).await.status(), StatusCode::OK);
        let back = line_for(&lines_of(&app, &run_id).await, &ada);
        assert_eq!(back["state"], "returned");
        assert_eq!(back["reason_code"], "transfer_reversed");
        assert_eq!(back["reversed_minor"], 5_000);
        assert_eq!(owed(&app, &ada, "USD").await, 5_000);
        assert_eq!(balance(&app, "stripe_clearing:platform:USD").await, 8_000);
        assert_money_matches_lines(&app).await;
        let month = chrono::Utc::now().format("%Y-%m");
        let s = crate::payouts::statement(
            &app,
            &creator_token(&app, &ada),
            &format!("/v1/creators/me/statements/{month}?currency=USD"),
        )
        .await;
        crate::payouts::assert_ties_out(&s);
        assert_eq!(run_of(&app, &run_id).await["state"], "partially_failed");

        // Ada goes back to bank transfer: that redirects her payouts, so it cools off.
        let view = bank_account(&app, &ada, &german("USD")).await;
        assert!(view["cooling_off_until"].is_string(), "{view}");
        let run = draw(&app).await;
        assert_eq!(
            carried_of(&run, &ada, "USD"),
            Some(("cooling_off".to_owned(), 5_000))
        );
    }
);

both!(
    stripes_own_fees_are_booked_as_platform_costs_once,
    |b: Backend| async move {
        let (app, stub) = connect_app(b).await;
        let finance = crate::payouts::fay(&app);
        stub.add_stripe_fee(200, "usd", "Connect (2 monthly active accounts)");
        stub.add_stripe_fee(275, "usd", "Connect payouts (0.25% + 0.25)");
        stub.add_stripe_fee(150, "eur", "Connect payouts");
        for want in [3, 0] {
            let res = app
                .post(
                    "/v1/admin/stripe-fees/sync",
                    &finance,
                    &serde_json::json!({}),
                )
                .await;
            let status = res.status();
            let body: Value = res.json().await.expect("json");
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["seen"], 3, "{body}");
            assert_eq!(body["booked"], want, "booked once: {body}");
        }
        assert_eq!(balance(&app, "stripe_fees:platform:USD").await, 475);
        assert_eq!(balance(&app, "stripe_clearing:platform:USD").await, -475);
        assert_eq!(balance(&app, "stripe_fees:platform:EUR").await, 150);
        crate::billing_helpers::assert_ledger_invariants(&app.db.url);
        let res = app
            .post(
                "/v1/admin/stripe-fees/sync",
                &finance,
                &serde_json::json!({"days": 0}),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_days").await;
        let someone = creator(&app).await;
        let res = app
            .post(
                "/v1/admin/stripe-fees/sync",
                &creator_token(&app, &someone),
                &serde_json::json!({}),
            )
            .await;
        assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
);

/// Every Connect line's first transfer attempt made (or moved) `hours` into the past.
async fn attempted_hours_ago(app: &TestApp, hours: i64) {
    let pool = kopilka::db::connect(&app.db.url, 1).expect("connect");
    kopilka::db::run(&pool, move |c| {
        use diesel::prelude::*;
        use kopilka::db::schema::payout_lines as l;
        let then = (chrono::Utc::now() - chrono::Duration::hours(hours)).naive_utc();
        diesel::update(l::table.filter(l::method.eq("stripe_connect")))
            .set(l::transfer_attempted_at.eq(Some(then)))
            .execute(c)?;
        Ok(())
    })
    .await
    .expect("backdate");
}

both!(
    a_platform_refusal_leaves_lines_to_send_and_a_late_retry_finds_the_earlier_transfer,
    |b: Backend| async move {
        let (app, stub) = connect_app(b).await;
        let (eve, _) = connected(&app, &stub, 4_000).await;
        let (ben, ben_account) = connected(&app, &stub, 3_000).await;
        let run = id(&draw(&app).await);
        approved(&app, &run).await;

        // Our Stripe balance cannot cover it: the platform's problem, not the creators'.
        stub.set_balance("usd", 100);
        let res = crate::payouts::step(&app, &run, "send").await;
        assert_problem(res, StatusCode::CONFLICT, "stripe_refused").await;
        for l in lines_of(&app, &run).await {
            assert_eq!(l["state"], "sent", "{l}");
            assert!(l["transfer_id"].is_null());
        }
        assert_eq!(
            owed(&app, &eve, "USD").await,
            0,
            "nothing came back to the creator"
        );
        assert_money_matches_lines(&app).await;

        // Ben's transfer was in fact made (an attempt whose answer was lost), and a day goes by:
        // Stripe has forgotten the keys, so a retry must find that transfer, not make another.
        stub.set_balance("usd", 1_000_000);
        let ben_line = id(&line_for(&lines_of(&app, &run).await, &ben));
        let made = app
            .client
            .post(format!("{}v1/transfers", stub.url()))
            .bearer_auth("sk_test_kopilka")
            .header("Idempotency-Key", "an-attempt-whose-answer-was-lost")
            .form(&[
                ("amount", "3000"),
                ("currency", "usd"),
                ("destination", ben_account.as_str()),
                ("transfer_group", run.as_str()),
                ("metadata[kopilka_payout_line]", ben_line.as_str()),
            ])
            .send()
            .await
            .expect("transfer");
        assert_eq!(made.status(), StatusCode::OK);
        let made: Value = made.json().await.expect("json");
        attempted_hours_ago(&app, 30).await;
        stub.forget_keys();
        stepped(&app, &run, "send").await;
        let lines = lines_of(&app, &run).await;
        assert_eq!(line_for(&lines, &ben)["transfer_id"], made["id"]);
        assert_eq!(line_for(&lines, &eve)["state"], "paid");
        assert_eq!(stub.transfers().len(), 2, "one transfer per line");
        assert_money_matches_lines(&app).await;
    }
);
