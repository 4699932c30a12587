//! Stripe's fee on a payment, learnt after the payment: webhooks name the charge's balance
//! transaction without its amounts, so the service asks Stripe for the fee and posts it.
//!
//! localstripe records every fee as 0. Here the service reaches localstripe through a proxy
//! that changes one thing: a charge's expanded balance transaction carries the fee Stripe
//! charges a US card, 2.9 % + 30¢. Everything else (purchase, payment, signed webhooks) is
//! localstripe's own.

use crate::billing_helpers::*;
use crate::both;
use crate::helpers::Backend;
use actix_web::{web, HttpRequest, HttpResponse};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Stripe's fee on a US card charge, rounded half up.
fn card_fee(amount: i64) -> i64 {
    (amount * 29 + 500) / 1000 + 30
}

/// Where the proxy's charges settle: in their own currency, or converted into another
/// balance at a rate (percent), as Stripe does for a EUR-settled account selling in USD.
type Settles = Option<(&'static str, i64)>;

async fn forward(req: HttpRequest, body: web::Bytes, settles: web::Data<Settles>) -> HttpResponse {
    let res = relay(&req, &body).await;
    let status = actix_web::http::StatusCode::from_u16(res.status().as_u16()).expect("status");
    let mut answer: Value = res.json().await.expect("localstripe json");
    if req.path().starts_with("/v1/charges/") && answer["balance_transaction"].is_object() {
        let amount = answer["amount"].as_i64().expect("charge amount");
        let bt = &mut answer["balance_transaction"];
        match **settles {
            None => bt["fee"] = card_fee(amount).into(),
            Some((currency, percent)) => {
                let settled = amount * percent / 100;
                bt["currency"] = currency.into();
                bt["amount"] = settled.into();
                bt["fee"] = card_fee(settled).into();
                bt["net"] = (settled - card_fee(settled)).into();
                bt["exchange_rate"] = (percent as f64 / 100.0).into();
            }
        }
    }
    HttpResponse::build(status).json(answer)
}

/// localstripe behind the fee-filling proxy; returns the proxy's base URL.
fn stripe_with_fees() -> String {
    stripe_settling(None)
}

/// localstripe behind a proxy settling every charge as `into` says.
fn stripe_settling(into: Settles) -> String {
    stripe_proxy(into, forward)
}

both!(
    stripe_fees_are_fetched_and_posted_as_a_platform_cost,
    |b: Backend| async move {
        let proxy = stripe_with_fees();
        let app = spawn_billing_with(b, move |s| s.stripe.api_base = proxy).await;
        let (creator, pack, price) = creator_pack(&app, 7000, 499).await;
        let buyer = user();
        buy_and_pay(&app, &buyer, &price, None).await;
        wait_until_holds(&app, &buyer, &format!("sticker_pack:{pack}"), true).await;
        // 2.9 % of 499 is 14.471 → 14, plus 30: Stripe kept 44 and pays out 455.
        assert_eq!(card_fee(499), 44);
        wait_for_balance(&app, "stripe_fees:platform:USD", 44).await;
        wait_for_balance(&app, "stripe_clearing:platform:USD", 455).await;
        // The creator's share comes from the gross, whatever the fee: 70 % of 499 → 349.
        let pending = format!("creator_pending:{creator}:USD");
        assert_eq!(balance(&app, &pending).await, -349);
        assert_eq!(balance(&app, "platform_revenue:platform:USD").await, -150);
    }
);

both!(
    a_refund_keeps_stripes_original_fee_as_a_platform_cost,
    |b: Backend| async move {
        let proxy = stripe_with_fees();
        let app = spawn_billing_with(b, move |s| s.stripe.api_base = proxy).await;
        let (creator, pack, price) = creator_pack(&app, 7000, 499).await;
        let buyer = user();
        let order = buy_and_pay(&app, &buyer, &price, None).await;
        let key = format!("sticker_pack:{pack}");
        wait_until_holds(&app, &buyer, &key, true).await;
        let fee = card_fee(499);
        wait_for_balance(&app, "stripe_fees:platform:USD", fee).await;
        wait_for_balance(&app, "stripe_clearing:platform:USD", 499 - fee).await;
        // Support refunds the whole charge at Stripe; Stripe's event about the refund itself
        // (today's shape: the refund as its own object).
        let intent = stripe(
            &app,
            "GET",
            &format!("/payment_intents/{}", intent_of(&order)),
            &[],
        )
        .await;
        let charge = intent["latest_charge"]
            .as_str()
            .or(intent["latest_charge"]["id"].as_str())
            .or(intent["charges"]["data"][0]["id"].as_str())
            .expect("the intent's charge")
            .to_owned();
        let refund = stripe(&app, "POST", "/refunds", &[("charge", &charge)]).await;
        assert_eq!(refund["amount"], 499, "{refund}");
        let refunded = event(
            "refund.created",
            json!({"id": refund["id"], "object": "refund", "amount": 499, "charge": charge,
                   "currency": "usd", "status": "succeeded", "payment_intent": intent["id"]}),
        );
        let res = deliver(&app, &refunded).await;
        assert_eq!(res.status(), StatusCode::OK, "{:?}", res.text().await);
        wait_until_holds(&app, &buyer, &key, false).await;
        // The 499 went back to the buyer; Stripe kept its 44: a cost of the platform's, not
        // the creator's.
        assert_eq!(balance(&app, "stripe_fees:platform:USD").await, fee);
        assert_eq!(balance(&app, "stripe_clearing:platform:USD").await, -fee);
        assert_eq!(balance(&app, "platform_revenue:platform:USD").await, 0);
        assert_eq!(
            balance(&app, &format!("creator_pending:{creator}:USD")).await,
            0
        );
    }
);

both!(
    a_charge_settled_in_another_currency_is_converted_and_its_fee_booked_there,
    |b: Backend| async move {
        // The account's balance is in EUR; the pack sells in USD at 0.92 EUR per USD.
        let proxy = stripe_settling(Some(("eur", 92)));
        let app = spawn_billing_with(b, move |s| s.stripe.api_base = proxy).await;
        let (creator, pack, price) = creator_pack(&app, 7000, 499).await;
        let buyer = user();
        let order = buy_and_pay(&app, &buyer, &price, None).await;
        let key = format!("sticker_pack:{pack}");
        wait_until_holds(&app, &buyer, &key, true).await;
        // 499 USD came in as 459 EUR, of which Stripe kept 2.9 % + 30 = 43 EUR.
        let (settled, fee) = (459, card_fee(459));
        assert_eq!(fee, 43);
        wait_for_balance(&app, "stripe_fees:platform:EUR", fee).await;
        assert_eq!(
            balance(&app, "stripe_clearing:platform:EUR").await,
            settled - fee
        );
        assert_eq!(balance(&app, "stripe_clearing:platform:USD").await, 0);
        assert_eq!(balance(&app, "fx_conversion:platform:USD").await, 499);
        assert_eq!(balance(&app, "fx_conversion:platform:EUR").await, -settled);
        assert_eq!(balance(&app, "stripe_fees:platform:USD").await, 0);
        // Shares stay in the sale's currency.
        let pending = format!("creator_pending:{creator}:USD");
        assert_eq!(balance(&app, &pending).await, -349);

        // Refunded in two parts: each converts back at the charge's rate, and together they
        // convert back exactly what came in; Stripe keeps its fee.
        let intent = stripe(
            &app,
            "GET",
            &format!("/payment_intents/{}", intent_of(&order)),
            &[],
        )
        .await;
        let charge = intent["latest_charge"]
            .as_str()
            .or(intent["latest_charge"]["id"].as_str())
            .or(intent["charges"]["data"][0]["id"].as_str())
            .expect("the intent's charge")
            .to_owned();
        for amount in [99, 400] {
            let refund = stripe(
                &app,
                "POST",
                "/refunds",
                &[("charge", &charge), ("amount", &amount.to_string())],
            )
            .await;
            let refunded = event(
                "refund.created",
                json!({"id": refund["id"], "object": "refund", "amount": amount, "charge": charge,
                       "currency": "usd", "status": "succeeded", "payment_intent": intent["id"]}),
            );
            let res = deliver(&app, &refunded).await;
            assert_eq!(res.status(), StatusCode::OK, "{:?}", res.text().await);
        }
        wait_until_holds(&app, &buyer, &key, false).await;
        // 99 of 499 converts back as floor(459 × 99 / 499) = 91 EUR, the rest as 368.
        assert_eq!(balance(&app, "stripe_clearing:platform:EUR").await, -fee);
        assert_eq!(balance(&app, "stripe_clearing:platform:USD").await, 0);
        assert_eq!(balance(&app, "fx_conversion:platform:USD").await, 0);
        assert_eq!(balance(&app, "fx_conversion:platform:EUR").await, 0);
        assert_eq!(balance(&app, "stripe_fees:platform:EUR").await, fee);
        assert_eq!(balance(&app, &pending).await, 0);
        assert_eq!(balance(&app, "platform_revenue:platform:USD").await, 0);
    }
);
