//! What we ask of Stripe on someone's behalf: support's refunds (made at Stripe, applied by
//! its events), a donor ending a monthly donation, and purchases retried after Stripe could
//! not be reached (a 5xx is never replayed as the answer).

use crate::billing_helpers::*;
use crate::both;
use crate::helpers::{assert_problem, Backend, TestApp};
use actix_web::{web, HttpRequest, HttpResponse};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

async fn support_post(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.post(path, &app.support(), body).await
}

both!(
    support_refunds_an_order_through_stripe_and_its_event_takes_the_pack_back,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let (creator, pack, price) = creator_pack(&app, 7000, 199).await;
        let buyer = user();
        let order = buy_and_pay(&app, &buyer, &price, None).await;
        let key = format!("sticker_pack:{pack}");
        wait_until_holds(&app, &buyer, &key, true).await;
        let path = format!("/v1/admin/orders/{}/refund", order["id"].as_str().unwrap());
        // Not a status to flip: a Stripe-paid order is refunded at Stripe.
        let flip = app
            .patch(
                &format!("/v1/admin/orders/{}", order["id"].as_str().unwrap()),
                &app.support(),
                &json!({"status": "refunded"}),
            )
            .await;
        assert_problem(flip, StatusCode::CONFLICT, "paid_through_stripe").await;
        // A user is not support.
        let res = app.post(&path, &app.token(&buyer, &[]), &json!({})).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = support_post(&app, &path, &json!({"amount_minor": 500})).await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_amount").await;
        let res = support_post(&app, &path, &json!({})).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let asked: Value = res.json().await.unwrap();
        assert_eq!(asked["amount_minor"], 199, "{asked}");
        // Nothing changes until Stripe's event says the refund was made.
        assert!(holds(&app, &buyer, &key).await);
        let refund_id = asked["refund_id"].as_str().unwrap();
        let refund = stripe(&app, "GET", &format!("/refunds/{refund_id}"), &[]).await;
        assert_eq!(refund["amount"], 199, "Stripe made the refund: {refund}");
        let res = deliver(&app, &event("refund.created", current_refund(refund))).await;
        assert_eq!(res.status(), StatusCode::OK);
        wait_until_holds(&app, &buyer, &key, false).await;
        assert_eq!(
            balance(&app, &format!("creator_pending:{creator}:USD")).await,
            0
        );
        assert_eq!(balance(&app, "stripe_clearing:platform:USD").await, 0);
    }
);

/// A monthly donation of 3.00 EUR paid by card; returns it and its Stripe subscription.
async fn monthly_donation(app: &TestApp, donor: &str) -> (Value, Value) {
    let pm = card(app).await;
    let d = post_as(
        app,
        donor,
        "/v1/me/donations",
        &json!({"amount_minor": 300, "currency": "EUR", "recurring": true, "payment_method": pm}),
        StatusCode::CREATED,
    )
    .await;
    let sub = stripe_all(app, "/subscriptions")
        .await
        .into_iter()
        .find(|s| s["metadata"]["kopilka_subscription_id"] == d["id"])
        .expect("the donation's Stripe subscription");
    (d, sub)
}

both!(
    a_donor_ends_a_monthly_donation_and_stripe_bills_no_more,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let donor = user();
        let (d, sub) = monthly_donation(&app, &donor).await;
        let stripe_id = sub["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/me/donations/{}/cancel", d["id"].as_str().unwrap());
        let res = app.post(&path, &app.token(&user(), &[]), &json!({})).await;
        assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
        let canceled = post_as(&app, &donor, &path, &json!({}), StatusCode::OK).await;
        assert_eq!(canceled["status"], "canceled", "{canceled}");
        let at_stripe = stripe(&app, "GET", &format!("/subscriptions/{stripe_id}"), &[]).await;
        assert_eq!(at_stripe["status"], "canceled", "Stripe bills no more");
        // Twice is the same answer.
        let again = post_as(&app, &donor, &path, &json!({}), StatusCode::OK).await;
        assert_eq!(again["status"], "canceled");
        // A one-off donation has nothing to end.
        let once = post_as(
            &app,
            &donor,
            "/v1/me/donations",
            &json!({"amount_minor": 300, "currency": "EUR"}),
            StatusCode::CREATED,
        )
        .await;
        let res = app
            .post(
                &format!("/v1/me/donations/{}/cancel", once["id"].as_str().unwrap()),
                &app.token(&donor, &[]),
                &json!({}),
            )
            .await;
        assert_problem(res, StatusCode::CONFLICT, "not_cancelable").await;
    }
);

both!(
    stripe_ending_a_donations_subscription_ends_the_donation,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let donor = user();
        let (d, sub) = monthly_donation(&app, &donor).await;
        let mut ended = current_subscription(sub);
        ended["status"] = "canceled".into();
        let res = deliver(&app, &event("customer.subscription.deleted", ended)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let mine: Value = app
            .get("/v1/me/donations", &app.token(&donor, &[]))
            .await
            .json()
            .await
            .unwrap();
        let status = mine["donations"]
            .as_array()
            .and_then(|l| l.iter().find(|x| x["id"] == d["id"]))
            .map(|x| x["status"].clone());
        assert_eq!(status, Some(json!("canceled")), "{mine}");
    }
);

/// localstripe behind a switch: a call whose path contains one of the `failing` strings ("/"
/// for every call) answers 500, as an outage would.
fn stripe_behind_switch(failing: Arc<Mutex<Vec<String>>>) -> String {
    async fn forward(
        req: HttpRequest,
        body: web::Bytes,
        failing: web::Data<Arc<Mutex<Vec<String>>>>,
    ) -> HttpResponse {
        let path = req.uri().to_string();
        if failing
            .lock()
            .unwrap()
            .iter()
            .any(|f| path.contains(f.as_str()))
        {
            return HttpResponse::InternalServerError()
                .json(json!({"error": {"type": "api_error", "message": "outage"}}));
        }
        relayed(relay(&req, &body).await).await
    }
    stripe_proxy(failing, forward)
}

both!(
    a_stripe_outage_is_not_replayed_and_the_retry_with_the_same_key_runs,
    |b: Backend| async move {
        let failing = Arc::new(Mutex::new(vec!["/".to_owned()]));
        let base = stripe_behind_switch(failing.clone());
        let app = spawn_billing_with(b, move |s| {
            s.stripe.api_base = base;
            s.stripe.attempts = 1;
        })
        .await;
        let (_, _, price) = creator_pack(&app, 7000, 199).await;
        let buyer = user();
        let token = app.token(&buyer, &[]);
        let buy = || {
            app.client
                .post(app.url("/v1/me/orders"))
                .bearer_auth(&token)
                .header("Idempotency-Key", "buy-during-outage")
                .json(&json!({"price_id": price}))
                .send()
        };
        let first = buy().await.unwrap();
        assert_eq!(first.status(), StatusCode::BAD_GATEWAY);
        failing.lock().unwrap().clear();
        let retry = buy().await.unwrap();
        assert_eq!(retry.status(), StatusCode::CREATED, "the retry runs again");
        assert!(retry.headers().get("Idempotent-Replayed").is_none());
        let replay = buy().await.unwrap();
        assert_eq!(replay.status(), StatusCode::CREATED);
        assert_eq!(replay.headers()["Idempotent-Replayed"], "true");
    }
);

both!(
    a_second_recurring_currency_is_refused_before_stripe_refuses_it,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let u = user();
        let pm = card(&app).await;
        post_as(
            &app,
            &u,
            "/v1/me/subscriptions",
            &json!({"price_id": "price_premium_monthly_usd", "payment_method": pm}),
            StatusCode::CREATED,
        )
        .await;
        let res = app
            .post(
                "/v1/me/subscriptions",
                &app.token(&u, &[]),
                &json!({"price_id": "price_premium_monthly_eur"}),
            )
            .await;
        assert_problem(res, StatusCode::CONFLICT, "currency_mismatch").await;
        let res = app
            .post(
                "/v1/me/donations",
                &app.token(&u, &[]),
                &json!({"amount_minor": 300, "currency": "EUR", "recurring": true}),
            )
            .await;
        assert_problem(res, StatusCode::CONFLICT, "currency_mismatch").await;
        // A one-off payment is not recurring billing: any currency.
        post_as(
            &app,
            &u,
            "/v1/me/donations",
            &json!({"amount_minor": 300, "currency": "EUR"}),
            StatusCode::CREATED,
        )
        .await;
    }
);

/// The subscriptions of `user`, as our API shows them.
async fn subscriptions_of(app: &TestApp, user: &str) -> Vec<Value> {
    let res = app.get("/v1/me/subscriptions", &app.token(user, &[])).await;
    let body: Value = res.json().await.unwrap();
    body["subscriptions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

both!(
    failing_downgrades_are_each_retried_later_and_canceled_ones_leave_the_queue,
    |b: Backend| async move {
        let failing = Arc::new(Mutex::new(Vec::new()));
        let base = stripe_behind_switch(failing.clone());
        let app = spawn_unhooked(b, move |s| {
            s.stripe.api_base = base;
            s.stripe.attempts = 1;
            // Every scheduled downgrade is due; the jobs worker runs every second.
            s.billing.plan_change_lead_seconds = 400 * 86_400;
            s.billing.maintenance_interval_seconds = 1;
        })
        .await;
        let mut scheduled = Vec::new();
        for _ in 0..3 {
            let u = user();
            let pm = card(&app).await;
            let sub = post_as(
                &app,
                &u,
                "/v1/me/subscriptions",
                &json!({"price_id": "price_premium_monthly_usd", "payment_method": pm}),
                StatusCode::CREATED,
            )
            .await;
            let id = sub["id"].as_str().unwrap().to_owned();
            if scheduled.is_empty() {
                // The first is canceled at period end: it ends, so it is never downgraded.
                let cancel = format!("/v1/me/subscriptions/{id}/cancel");
                post_as(&app, &u, &cancel, &json!({}), StatusCode::OK).await;
            } else {
                // From here on Stripe fails every change to an existing subscription, so
                // every downgrade the jobs worker tries fails.
                failing
                    .lock()
                    .unwrap()
                    .push("/v1/subscriptions/sub_".to_owned());
            }
            let down = post_as(
                &app,
                &u,
                &format!("/v1/me/subscriptions/{id}/plan"),
                &json!({"price_id": "price_premium_yearly_usd"}),
                StatusCode::OK,
            )
            .await;
            assert_eq!(
                down["scheduled_price_id"], "price_premium_yearly_usd",
                "{down}"
            );
            scheduled.push((u, id));
        }
        let retries = || {
            use diesel::prelude::*;
            use kopilka::db::schema::downgrade_retries as r;
            let pool = kopilka::db::connect(&app.db.url, 1).unwrap();
            let mut conn = pool.get().unwrap();
            r::table
                .select((r::subscription_id, r::attempts, r::retry_at))
                .load::<(String, i32, chrono::NaiveDateTime)>(&mut conn)
                .unwrap()
        };
        // Each failing downgrade is tried on its own: the first failure does not stop the run.
        let both = crate::helpers::eventually(WAIT, || async { retries().len() >= 2 }).await;
        let rows = retries();
        let first = subscriptions_of(&app, &scheduled[0].0).await;
        assert!(
            both,
            "each failing downgrade waits for its own retry: {rows:?}"
        );
        for (id, attempts, retry_at) in &rows {
            assert!(
                *id == scheduled[1].1 || *id == scheduled[2].1,
                "{id} was canceled at period end: {first:?}"
            );
            assert_eq!(*attempts, 1, "not retried before its backoff");
            assert!(retry_at.and_utc() > chrono::Utc::now(), "retried later");
        }
        for (u, _) in &scheduled[1..] {
            let mine = subscriptions_of(&app, u).await;
            assert_eq!(mine[0]["price_id"], "price_premium_monthly_usd");
            assert_eq!(mine[0]["scheduled_price_id"], "price_premium_yearly_usd");
        }
    }
);

both!(
    a_refunded_month_of_a_monthly_donation_leaves_it_running_and_cancelable,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let donor = user();
        let (d, sub) = monthly_donation(&app, &donor).await;
        wait_for_balance(&app, "platform_revenue:platform:EUR", -300).await;
        let invoice = stripe(
            &app,
            "GET",
            &format!("/invoices/{}", sub["latest_invoice"].as_str().unwrap()),
            &[],
        )
        .await;
        let charge = invoice["charge"]
            .as_str()
            .or(invoice["charge"]["id"].as_str())
            .unwrap()
            .to_owned();
        let refund = stripe(&app, "POST", "/refunds", &[("charge", charge.as_str())]).await;
        let res = deliver(&app, &event("refund.created", current_refund(refund))).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(balance(&app, "platform_revenue:platform:EUR").await, 0);
        // One month refunded: Stripe keeps billing, so the donation runs and can be ended.
        let path = format!("/v1/me/donations/{}/cancel", d["id"].as_str().unwrap());
        let canceled = post_as(&app, &donor, &path, &json!({}), StatusCode::OK).await;
        assert_eq!(canceled["status"], "canceled", "{canceled}");
    }
);

/// localstripe has no subscription schedules: this proxy keeps Stripe-shaped ones (checked
/// against Stripe's schema), records every form sent to them, refuses the first update of a
/// schedule's phases as an outage would, and names the schedule on its subscription.
#[derive(Default)]
struct Schedules {
    /// (method and path, form) of every schedule call.
    calls: Vec<(String, Vec<(String, String)>)>,
    /// The schedule and its subscription, once created.
    made: Option<(Value, String)>,
    failed_once: bool,
}

fn stripe_with_schedules(schedules: Arc<Mutex<Schedules>>) -> String {
    async fn forward(
        req: HttpRequest,
        body: web::Bytes,
        schedules: web::Data<Arc<Mutex<Schedules>>>,
    ) -> HttpResponse {
        let upstream = &crate::real_parts::real_parts().stripe_url;
        let path = req.path().to_owned();
        let form: Vec<(String, String)> =
            reqwest::Url::parse(&format!("http://f/?{}", String::from_utf8_lossy(&body)))
                .unwrap()
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        let client = reqwest::Client::new();
        let auth = req
            .headers()
            .get("authorization")
            .unwrap()
            .as_bytes()
            .to_vec();
        if path.starts_with("/v1/subscription_schedules") {
            let call = format!("{} {path}", req.method());
            schedules.lock().unwrap().calls.push((call, form.clone()));
            if req.method() == "POST" && path == "/v1/subscription_schedules" {
                let sub_id = form
                    .iter()
                    .find(|(k, _)| k == "from_subscription")
                    .unwrap()
                    .1
                    .clone();
                let sub: Value = client
                    .get(format!("{upstream}/v1/subscriptions/{sub_id}"))
                    .header("authorization", auth)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let schedule = json!({
                    "id": "sub_sched_1", "object": "subscription_schedule",
                    "subscription": sub_id, "customer": sub["customer"], "status": "active",
                    "end_behavior": "release",
                    "phases": [{"start_date": sub["current_period_start"],
                                "end_date": sub["current_period_end"],
                                "items": [{"price": sub["items"]["data"][0]["price"]["id"],
                                           "quantity": 1}]}],
                });
                crate::stripe_shapes::assert_stripe_shaped(&event(
                    "subscription_schedule.created",
                    schedule.clone(),
                ));
                schedules.lock().unwrap().made = Some((schedule.clone(), sub_id));
                return HttpResponse::Ok().json(schedule);
            }
            let mut s = schedules.lock().unwrap();
            if req.method() == "POST" && !s.failed_once {
                s.failed_once = true;
                return HttpResponse::InternalServerError()
                    .json(json!({"error": {"type": "api_error", "message": "outage"}}));
            }
            return match &s.made {
                Some((schedule, _)) => HttpResponse::Ok().json(schedule),
                None => HttpResponse::NotFound()
                    .json(json!({"error": {"type": "invalid_request_error"}})),
            };
        }
        let res = relay(&req, &body).await;
        let status = actix_web::http::StatusCode::from_u16(res.status().as_u16()).unwrap();
        let mut answer: Value = res.json().await.unwrap();
        if let Some((schedule, sub)) = &schedules.lock().unwrap().made {
            if answer["id"] == sub.as_str() {
                answer["schedule"] = schedule["id"].clone();
            }
        }
        HttpResponse::build(status).json(answer)
    }
    stripe_proxy(schedules, forward)
}

both!(
    a_downgrade_to_another_interval_switches_at_the_paid_periods_end_through_a_schedule,
    |b: Backend| async move {
        let schedules = Arc::new(Mutex::new(Schedules::default()));
        let base = stripe_with_schedules(schedules.clone());
        let app = spawn_unhooked(b, move |s| {
            s.stripe.api_base = base;
            s.stripe.attempts = 1;
            s.billing.plan_change_lead_seconds = 400 * 86_400;
            s.billing.maintenance_interval_seconds = 1;
            s.billing.retry_base_seconds = 1;
        })
        .await;
        let u = user();
        let pm = card(&app).await;
        let sub = post_as(
            &app,
            &u,
            "/v1/me/subscriptions",
            &json!({"price_id": "price_premium_monthly_usd", "payment_method": pm}),
            StatusCode::CREATED,
        )
        .await;
        let id = sub["id"].as_str().unwrap().to_owned();
        let period_end =
            chrono::DateTime::parse_from_rfc3339(sub["current_period_end"].as_str().unwrap())
                .unwrap()
                .timestamp();
        // Monthly (4.99) to yearly (0.99) is cheaper: waits for the month's end.
        let down = post_as(
            &app,
            &u,
            &format!("/v1/me/subscriptions/{id}/plan"),
            &json!({"price_id": "price_premium_yearly_usd"}),
            StatusCode::OK,
        )
        .await;
        assert_eq!(
            down["scheduled_price_id"], "price_premium_yearly_usd",
            "{down}"
        );
        // The jobs worker hands it to a schedule; its first phase update fails once and is
        // retried on the schedule already attached, never a second one.
        let updated = || {
            schedules
                .lock()
                .unwrap()
                .calls
                .iter()
                .filter(|(call, _)| call == "POST /v1/subscription_schedules/sub_sched_1")
                .count()
        };
        let done = crate::helpers::eventually(std::time::Duration::from_secs(300), || async {
            updated() >= 2 && our_subscription(&app, &u, &id).await["scheduled_price_id"].is_null()
        })
        .await;
        let calls = schedules.lock().unwrap().calls.clone();
        assert!(done, "{calls:?}");
        let creates: Vec<_> = calls
            .iter()
            .filter(|(call, _)| call == "POST /v1/subscription_schedules")
            .collect();
        assert_eq!(creates.len(), 1, "{calls:?}");
        let (_, form) = calls
            .iter()
            .rfind(|(call, _)| call == "POST /v1/subscription_schedules/sub_sched_1")
            .unwrap();
        let get = |k: &str| {
            form.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        // The paid month runs to its end on the old price; the yearly price starts there,
        // unprorated, so the billing date stays and nothing is charged now.
        assert_eq!(
            get("phases[0][items][0][price]"),
            Some("price_premium_monthly_usd"),
            "{form:?}"
        );
        assert_eq!(
            get("phases[0][end_date]"),
            Some(period_end.to_string().as_str()),
            "{form:?}"
        );
        assert_eq!(
            get("phases[1][items][0][price]"),
            Some("price_premium_yearly_usd"),
            "{form:?}"
        );
        assert_eq!(get("phases[1][items][0][quantity]"), Some("1"), "{form:?}");
        assert_eq!(
            get("phases[1][proration_behavior]"),
            Some("none"),
            "{form:?}"
        );
        assert_eq!(get("end_behavior"), Some("release"), "{form:?}");
        // Our record keeps the monthly price until Stripe says the switch happened.
        let mine = our_subscription(&app, &u, &id).await;
        assert_eq!(mine["price_id"], "price_premium_monthly_usd", "{mine}");
    }
);

both!(
    an_invoice_paid_before_the_donation_knows_its_stripe_subscription_is_still_posted,
    |b: Backend| async move {
        // Only the events the test forwards arrive.
        let app = spawn_unhooked(b, |_| {}).await;
        let donor = user();
        let (d, sub) = monthly_donation(&app, &donor).await;
        // As if the invoice's event overtook the purchase's last write: the donation does not
        // know its Stripe subscription yet, and localstripe's invoice (an older API's shape)
        // does not carry the subscription's metadata.
        {
            use diesel::prelude::*;
            use kopilka::db::schema::donations as dn;
            let pool = kopilka::db::connect(&app.db.url, 1).unwrap();
            let mut conn = pool.get().unwrap();
            diesel::update(dn::table.find(d["id"].as_str().unwrap()))
                .set(dn::stripe_subscription_id.eq(None::<String>))
                .execute(&mut conn)
                .unwrap();
        }
        let paid = customer_events(&app, sub["customer"].as_str().unwrap())
            .await
            .into_iter()
            .find(|e| e["type"] == "invoice.payment_succeeded")
            .expect("localstripe's invoice.payment_succeeded");
        assert!(paid["data"]["object"]["subscription_details"].is_null());
        let res = forward(&app, &paid).await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "matched, not refused as too early"
        );
        assert_eq!(balance(&app, "platform_revenue:platform:EUR").await, -300);
        // And the donation now knows its Stripe subscription, so the next month matches too.
        let known: Option<String> = {
            use diesel::prelude::*;
            use kopilka::db::schema::donations as dn;
            let pool = kopilka::db::connect(&app.db.url, 1).unwrap();
            let mut conn = pool.get().unwrap();
            dn::table
                .find(d["id"].as_str().unwrap())
                .select(dn::stripe_subscription_id)
                .first(&mut conn)
                .unwrap()
        };
        assert_eq!(known.as_deref(), sub["id"].as_str());
    }
);
