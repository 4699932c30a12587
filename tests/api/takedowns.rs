//! Takedowns: a notice leads to a removal that blocks the pack for everyone at once, refunds
//! its buyers through Stripe, claws the creator's share back through the ledger and purges
//! its images after the appeal window; the creator appeals once, to another moderator.

use crate::billing_helpers::{
    balance, buy_and_pay, current_refund, deliver, event, holds, spawn_billing, stripe, user,
    wait_for_balance, wait_until_holds,
};
use crate::both;
use crate::helpers::{assert_problem, eventually, spawn_with, Backend, TestApp, TestDb};
use crate::packs::{creator, ok_json, pack_on_sale};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn moderator(app: &TestApp, who: &str) -> String {
    app.token(who, &["moderator"])
}

async fn usd_price(app: &TestApp, pack: &str) -> String {
    let store = ok_json(
        app.get(&format!("/v1/store/packs/{pack}"), &app.token(&user(), &[]))
            .await,
        StatusCode::OK,
    )
    .await;
    store["prices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["currency"] == "USD")
        .expect("a USD price")["price_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn refunds_of(app: &TestApp, pack: &str) -> Vec<Value> {
    let page = ok_json(
        app.get(
            &format!("/v1/moderation/packs/{pack}/refunds"),
            &moderator(app, "mod-mo"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    page["items"].as_array().cloned().unwrap_or_default()
}

both!(
    a_notice_leads_to_removal_refunds_and_clawback,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let (creator_id, token) = creator(&app).await;
        let pack = pack_on_sale(&app, &token, Some("t1"), 1).await;
        let id = pack["id"].as_str().unwrap().to_owned();
        let image = pack["stickers"][0]["image_url"]
            .as_str()
            .unwrap()
            .to_owned();
        let key = format!("sticker_pack:{id}");
        let buyer = user();
        let price = usd_price(&app, &id).await;
        buy_and_pay(&app, &buyer, &price, None).await;
        wait_until_holds(&app, &buyer, &key, true).await;
        // The creator's share of the sale is pending (held for the refund window).
        let pending = format!("creator_pending:{creator_id}:USD");
        let ok = eventually(WAIT, || async { balance(&app, &pending).await != 0 }).await;
        assert!(ok, "the sale posted the creator's share");

        // Anyone signed in reports it; bad reports are refused.
        let reporter = app.token(&user(), &[]);
        let notice = json!({"pack_id": id, "reason": "intellectual_property",
            "claim": "These cats are my registered characters.", "contact": "legal@example.com"});
        for (bad, code) in [
            (json!({"contact": "not an address"}), "invalid_email"),
            (json!({"reason": "dislike"}), "invalid_reason"),
            (json!({"claim": ""}), "invalid_claim"),
        ] {
            let mut body = notice.clone();
            for (k, v) in bad.as_object().unwrap() {
                body[k] = v.clone();
            }
            let res = app.post("/v1/notices", &reporter, &body).await;
            assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, code).await;
        }
        let mut unknown = notice.clone();
        unknown["pack_id"] = json!("pack_nope");
        let res = app.post("/v1/notices", &reporter, &unknown).await;
        assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
        let filed = ok_json(
            app.post("/v1/notices", &reporter, &notice).await,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(filed["state"], "open");
        let queue = ok_json(
            app.get("/v1/moderation/notices", &moderator(&app, "mod-mo"))
                .await,
            StatusCode::OK,
        )
        .await;
        assert!(queue["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == filed["id"]));
        // Users and creators do not see the queue.
        let res = app.get("/v1/moderation/notices", &token).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);

        // A removal gives a reason; the creator cannot remove (nor review) their own pack.
        let path = format!("/v1/moderation/packs/{id}/remove");
        let res = app
            .post(&path, &moderator(&app, "mod-mo"), &json!({"reasons": []}))
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_reason").await;
        let own = app.token(&creator_id, &["creator", "moderator"]);
        let res = app
            .post(&path, &own, &json!({"reasons": ["intellectual_property"]}))
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let removed = ok_json(
            app.post(
                &path,
                &moderator(&app, "mod-mo"),
                &json!({"reasons": ["intellectual_property"], "note": "Upheld notice.",
                        "notice_id": filed["id"]}),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(removed["state"], "removed");
        let res = app
            .post(
                &path,
                &moderator(&app, "mod-mo"),
                &json!({"reasons": ["other"]}),
            )
            .await;
        assert_problem(res, StatusCode::CONFLICT, "invalid_transition").await;

        // Blocked for everyone at once, before any refund: no entitlement, no image, not in
        // the store.
        assert!(
            !holds(&app, &buyer, &key).await,
            "the buyer lost it at once"
        );
        let res = app.client.get(app.url(&image)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS);
        let res = app
            .get(&format!("/v1/store/packs/{id}"), &app.token(&user(), &[]))
            .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let actioned = ok_json(
            app.get(
                "/v1/moderation/notices?state=actioned",
                &moderator(&app, "mod-mo"),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert!(actioned["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == filed["id"]));

        // The buyer's refund is asked of Stripe by the jobs worker, once.
        let ok = eventually(WAIT, || async {
            refunds_of(&app, &id)
                .await
                .first()
                .is_some_and(|r| r["state"] == "requested")
        })
        .await;
        assert!(
            ok,
            "the refund was asked for: {:?}",
            refunds_of(&app, &id).await
        );
        let rows = refunds_of(&app, &id).await;
        let refund_id = rows[0]["stripe_refund_id"].as_str().unwrap().to_owned();
        assert_eq!(refunds_of(&app, &id).await.len(), 1);
        let refund = stripe(&app, "GET", &format!("/refunds/{refund_id}"), &[]).await;
        assert_eq!(refund["amount"], 99, "the whole price back: {refund}");
        // Stripe's event posts the refund: the creator's share is clawed back.
        let res = deliver(&app, &event("refund.created", current_refund(refund))).await;
        assert_eq!(res.status(), StatusCode::OK);
        wait_for_balance(&app, &pending, 0).await;
        assert_eq!(balance(&app, "stripe_clearing:platform:USD").await, 0);

        // The creator appeals once; the moderator who removed it does not decide the appeal.
        let appeal_path = format!("/v1/creators/me/packs/{id}/appeal");
        let appeal = ok_json(
            app.post(
                &appeal_path,
                &token,
                &json!({"kind": "counter_notice", "statement": "I drew these myself in 2019."}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(appeal["against"], "removed");
        let res = app
            .post(&appeal_path, &token, &json!({"statement": "Again."}))
            .await;
        assert_problem(res, StatusCode::CONFLICT, "already_appealed").await;
        let other = app.token(&user(), &["creator"]);
        let res = app
            .post(&appeal_path, &other, &json!({"statement": "Not mine."}))
            .await;
        assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
        let decide = format!(
            "/v1/moderation/appeals/{}/decide",
            appeal["id"].as_str().unwrap()
        );
        let res = app
            .post(
                &decide,
                &moderator(&app, "mod-mo"),
                &json!({"outcome": "upheld"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let decided = ok_json(
            app.post(
                &decide,
                &moderator(&app, "mod-ana"),
                &json!({"outcome": "upheld", "note": "The notice holds."}),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(decided["state"], "upheld");
        let res = app
            .post(
                &decide,
                &moderator(&app, "mod-ana"),
                &json!({"outcome": "reversed"}),
            )
            .await;
        assert_problem(res, StatusCode::CONFLICT, "appeal_decided").await;
        let mine = ok_json(
            app.get(&format!("/v1/creators/me/packs/{id}"), &token)
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(mine["state"], "removed");
    }
);

fn blob_files(app: &TestApp) -> usize {
    fn walk(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            walk(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    match &app.settings.packs.blobs {
        kopilka::services::blobs::BlobSettings::Local { dir } => walk(std::path::Path::new(dir)),
        _ => unreachable!("tests keep blobs on disk"),
    }
}

both!(
    a_reversed_removal_gives_the_pack_back_with_its_images,
    |b: Backend| async move {
        let app = spawn_with(std::sync::Arc::new(TestDb::new(b)), |s| {
            s.billing.jobs_interval_ms = 50;
            s.billing.maintenance_interval_seconds = 0;
        })
        .await;
        let (_, token) = creator(&app).await;
        let pack = pack_on_sale(&app, &token, None, 1).await;
        let id = pack["id"].as_str().unwrap().to_owned();
        let key = format!("sticker_pack:{id}");
        let fan = user();
        let res = app
            .post(
                &format!("/v1/me/packs/{id}/claim"),
                &app.token(&fan, &[]),
                &json!({}),
            )
            .await;
        assert!(res.status().is_success());
        wait_until_holds(&app, &fan, &key, true).await;
        let files = blob_files(&app);
        assert_eq!(files, 3, "a sticker, its thumbnail and the pack's archive");
        let res = app
            .post(
                &format!("/v1/moderation/packs/{id}/remove"),
                &moderator(&app, "mod-mo"),
                &json!({"reasons": ["violence"]}),
            )
            .await;
        ok_json(res, StatusCode::OK).await;
        assert!(
            !holds(&app, &fan, &key).await,
            "a free claim is blocked too"
        );
        let image = pack["stickers"][0]["image_url"].as_str().unwrap();
        let res = app.client.get(app.url(image)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS);

        // Reversed on appeal: it comes back retired (off the store, the fan keeps it), with
        // its images, which the window kept.
        let appeal = ok_json(
            app.post(
                &format!("/v1/creators/me/packs/{id}/appeal"),
                &token,
                &json!({"statement": "Cartoon slapstick, not violence."}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        let open = ok_json(
            app.get("/v1/moderation/appeals", &moderator(&app, "mod-ana"))
                .await,
            StatusCode::OK,
        )
        .await;
        assert!(open["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == appeal["id"]));
        let decided = ok_json(
            app.post(
                &format!(
                    "/v1/moderation/appeals/{}/decide",
                    appeal["id"].as_str().unwrap()
                ),
                &moderator(&app, "mod-ana"),
                &json!({"outcome": "reversed"}),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(decided["state"], "reversed");
        assert!(holds(&app, &fan, &key).await, "the fan has it back");
        let mine = ok_json(
            app.get(&format!("/v1/creators/me/packs/{id}"), &token)
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(mine["state"], "retired");
        let res = app.client.get(app.url(image)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(blob_files(&app), files);
    }
);

both!(
    a_removed_packs_images_are_purged_once_its_window_has_passed,
    |b: Backend| async move {
        let app = spawn_with(std::sync::Arc::new(TestDb::new(b)), |s| {
            s.billing.jobs_interval_ms = 50;
            s.billing.maintenance_interval_seconds = 0;
            s.packs.removal_purge_days = 0;
        })
        .await;
        let (_, token) = creator(&app).await;
        let pack = pack_on_sale(&app, &token, Some("t1"), 2).await;
        // An order support made by hand (no Stripe payment): nothing to refund through Stripe.
        let price = usd_price(&app, pack["id"].as_str().unwrap()).await;
        let order = app
            .post(
                "/v1/admin/orders",
                &app.support(),
                &json!({"buyer_id": user(), "price_id": price}),
            )
            .await;
        ok_json(order, StatusCode::CREATED).await;
        let files = blob_files(&app);
        assert_eq!(
            files, 5,
            "two stickers, their thumbnails and the pack's archive"
        );
        let res = app
            .post(
                &format!(
                    "/v1/moderation/packs/{}/remove",
                    pack["id"].as_str().unwrap()
                ),
                &moderator(&app, "mod-mo"),
                &json!({"reasons": ["sexual_content"]}),
            )
            .await;
        ok_json(res, StatusCode::OK).await;
        let purged = eventually(WAIT, || async { blob_files(&app) == 0 }).await;
        assert!(purged, "{} files left", blob_files(&app));
        let id = pack["id"].as_str().unwrap();
        let settled = eventually(WAIT, || async {
            refunds_of(&app, id)
                .await
                .first()
                .is_some_and(|r| r["state"] == "nothing_to_refund")
        })
        .await;
        assert!(settled, "{:?}", refunds_of(&app, id).await);
        let image = pack["stickers"][0]["image_url"].as_str().unwrap();
        let res = app.client.get(app.url(image)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS);
    }
);
