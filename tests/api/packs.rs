//! Sticker packs end to end: a creator registers, drafts, uploads, submits; a moderator
//! approves; the creator releases; users buy (through localstripe), gift, claim, and load the
//! images.

use crate::billing_helpers::{buy_and_pay, spawn_billing, user, wait_until_holds};
use crate::both;
use crate::helpers::{assert_problem, spawn, Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A sticker: a filled circle inside a transparent margin, `size` px square, PNG.
pub fn sticker_png(size: u32, shade: u8) -> Vec<u8> {
    let mut img = image::RgbaImage::new(size, size);
    let c = size as f32 / 2.0;
    for (x, y, p) in img.enumerate_pixels_mut() {
        let d = ((x as f32 - c).powi(2) + (y as f32 - c).powi(2)).sqrt();
        if d < c * 0.8 {
            *p = image::Rgba([shade, 100, 200, 255]);
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

pub async fn upload(
    app: &TestApp,
    token: &str,
    pack: &str,
    position: u32,
    emoji: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/v1/creators/me/packs/{pack}/stickers/{position}")))
        .query(&[("emoji", emoji)])
        .bearer_auth(token)
        .header("content-type", "image/png")
        .body(body)
        .send()
        .await
        .expect("upload")
}

pub async fn ok_json(res: reqwest::Response, status: StatusCode) -> Value {
    let got = res.status();
    let body = res.text().await.unwrap_or_default();
    assert_eq!(got, status, "{body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// A creator with a profile; returns their id and token.
pub async fn creator(app: &TestApp) -> (String, String) {
    let id = user();
    let token = app.token(&id, &["creator"]);
    let res = app
        .post(
            "/v1/creators/me",
            &token,
            &json!({"display_name": "Mika", "country": "JP", "payout_currency": "JPY"}),
        )
        .await;
    ok_json(res, StatusCode::CREATED).await;
    (id, token)
}

/// A pack drafted, filled with `n` stickers, submitted, approved by a moderator and released.
pub async fn pack_on_sale(app: &TestApp, token: &str, tier: Option<&str>, n: u32) -> Value {
    let draft = json!({"title": "ねこ Cats", "kind": "static", "tags": ["cats", "ねこ"], "price_tier": tier});
    pack_on_sale_from(app, token, &draft, n).await
}

/// `pack_on_sale`, from a draft of one's own.
pub async fn pack_on_sale_from(app: &TestApp, token: &str, draft: &Value, n: u32) -> Value {
    let res = app.post("/v1/creators/me/packs", token, draft).await;
    let pack = ok_json(res, StatusCode::CREATED).await;
    let id = pack["id"].as_str().expect("id").to_owned();
    for i in 1..=n {
        let res = upload(
            app,
            token,
            &id,
            i,
            "😺",
            sticker_png(300 + i * 10, i as u8 * 20),
        )
        .await;
        ok_json(res, StatusCode::OK).await;
    }
    let res = app
        .post(
            &format!("/v1/creators/me/packs/{id}/submit"),
            token,
            &json!({}),
        )
        .await;
    assert_eq!(ok_json(res, StatusCode::OK).await["state"], "in_review");
    let moderator = app.token("mod-mo", &["moderator"]);
    let res = app
        .post(
            &format!("/v1/moderation/packs/{id}/claim"),
            &moderator,
            &json!({}),
        )
        .await;
    ok_json(res, StatusCode::OK).await;
    let res = app
        .post(
            &format!("/v1/moderation/packs/{id}/approve"),
            &moderator,
            &json!({}),
        )
        .await;
    assert_eq!(ok_json(res, StatusCode::OK).await["state"], "approved");
    let res = app
        .post(
            &format!("/v1/creators/me/packs/{id}/release"),
            token,
            &json!({}),
        )
        .await;
    let released = ok_json(res, StatusCode::OK).await;
    assert_eq!(released["state"], "on_sale");
    released
}

// From nothing to a pack on sale, bought through Stripe, gifted, and its images loaded.
both!(
    a_creator_sells_a_pack_that_users_buy_gift_and_see,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let (_, token) = creator(&app).await;
        let pack = pack_on_sale(&app, &token, Some("t1"), 2).await;
        let id = pack["id"].as_str().unwrap().to_owned();
        // Permanent sticker ids, given at publication.
        let stickers = pack["stickers"].as_array().unwrap();
        assert_eq!(stickers.len(), 2);
        assert!(stickers.iter().all(|s| s["sticker_id"]
            .as_str()
            .is_some_and(|i| i.starts_with("stk_"))));

        // The store lists it with the tier's prices.
        let buyer = user();
        let listed = ok_json(
            app.get("/v1/store/packs", &app.token(&buyer, &[])).await,
            StatusCode::OK,
        )
        .await;
        let entry = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id.as_str())
            .expect("listed")
            .clone();
        assert_eq!(entry["owned"], false);
        let usd = entry["prices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["currency"] == "USD")
            .expect("a USD price")
            .clone();
        assert_eq!(usd["amount_minor"], 99);

        // Bought through localstripe: the webhook makes the entitlement appear.
        let price = usd["price_id"].as_str().unwrap();
        buy_and_pay(&app, &buyer, price, None).await;
        let key = format!("sticker_pack:{id}");
        wait_until_holds(&app, &buyer, &key, true).await;
        let mine = ok_json(
            app.get("/v1/me/packs", &app.token(&buyer, &[])).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(mine["items"][0]["id"], id.as_str());

        // A gift to someone who owns it already is refused; to someone else it arrives.
        let res = app
            .post(
                "/v1/me/orders",
                &app.token(&user(), &[]),
                &json!({"price_id": price, "recipient_id": buyer}),
            )
            .await;
        assert_problem(res, StatusCode::CONFLICT, "already_owned").await;
        let friend = user();
        buy_and_pay(&app, &user(), price, Some(&friend)).await;
        wait_until_holds(&app, &friend, &key, true).await;

        // Anyone sees the images (ownership gates sending, not seeing): immutable, ranged.
        let sticker_id = stickers[0]["sticker_id"].as_str().unwrap();
        let no_redirects = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let res = no_redirects
            .get(app.url(&format!("/v1/packs/{id}/stickers/{sticker_id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FOUND);
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(location, stickers[0]["image_url"].as_str().unwrap());
        let res = app.client.get(app.url(&location)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"));
        let etag = res.headers()["etag"].to_str().unwrap().to_owned();
        let png = res.bytes().await.unwrap();
        let decoded = image::load_from_memory(&png)
            .expect("a PNG we encoded")
            .to_rgba8();
        assert_eq!(decoded.dimensions(), (512, 512));
        let res = app
            .client
            .get(app.url(&location))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
        let res = app
            .client
            .get(app.url(&location))
            .header("range", "bytes=0-7")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(&res.bytes().await.unwrap()[..], &png[..8]);

        // Retired: off the store, but the buyers keep it.
        let res = app
            .post(
                &format!("/v1/creators/me/packs/{id}/retire"),
                &token,
                &json!({}),
            )
            .await;
        assert_eq!(ok_json(res, StatusCode::OK).await["state"], "retired");
        let listed = ok_json(
            app.get("/v1/store/packs", &app.token(&user(), &[])).await,
            StatusCode::OK,
        )
        .await;
        assert!(listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["id"] != id.as_str()));
        wait_until_holds(&app, &buyer, &key, true).await;
    }
);

// A sale through the creator's own link is split by that channel's rule, and the payment says
// which rule it used.
both!(
    a_creator_link_sale_splits_by_its_channels_rule,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let (creator_id, token) = creator(&app).await;
        // The admin's deal: 50 % in the store, 80 % through the creator's link.
        let res = app
            .client
            .put(app.url(&format!("/v1/admin/creators/{creator_id}")))
            .bearer_auth(app.admin())
            .json(
                &json!({"display_name": "Mika", "revenue_share_bps": 5000, "link_share_bps": 8000}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(ok_json(res, StatusCode::OK).await["link_share_bps"], 8000);
        let pack = pack_on_sale(&app, &token, Some("t2"), 1).await;
        let id = pack["id"].as_str().unwrap();
        let store = ok_json(
            app.get(&format!("/v1/store/packs/{id}"), &app.token(&user(), &[]))
                .await,
            StatusCode::OK,
        )
        .await;
        let price = store["prices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["currency"] == "USD")
            .unwrap()["price_id"]
            .as_str()
            .unwrap()
            .to_owned();

        let via_link = user();
        let pm = crate::billing_helpers::card(&app).await;
        let order = crate::billing_helpers::post_as(&app, &via_link, "/v1/me/orders",
        &json!({"price_id": price, "payment_method": pm, "ref": creator_id, "email": crate::billing_helpers::email_of(&via_link)}),
        StatusCode::CREATED).await;
        crate::billing_helpers::confirm(&app, &crate::billing_helpers::intent_of(&order)).await;
        buy_and_pay(&app, &user(), &price, None).await;
        let key = format!("sticker_pack:{id}");
        wait_until_holds(&app, &via_link, &key, true).await;

        // 199 through the link: 80 % is 159 (rounded down, see domain::money); 199 in the store: 99.
        let earnings_now = || async {
            ok_json(
                app.get("/v1/creators/me/earnings", &token).await,
                StatusCode::OK,
            )
            .await
        };
        let both_sales = crate::helpers::eventually(crate::billing_helpers::WAIT, || async {
            earnings_now().await["recent_sales"]
                .as_array()
                .is_some_and(|s| s.len() == 2)
        })
        .await;
        let earnings = earnings_now().await;
        assert!(both_sales, "both sales posted: {earnings}");
        let mut shares: Vec<i64> = earnings["recent_sales"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["creator_share_minor"].as_i64().unwrap())
            .collect();
        shares.sort();
        assert_eq!(shares, vec![99, 159], "{earnings}");
    }
);

// What a moderator may and may not do; every refusal leaves the pack as it was.
both!(
    review_is_claimed_reasoned_and_never_of_ones_own_pack,
    |b: Backend| async move {
        let app = spawn(b).await;
        let (creator_id, token) = creator(&app).await;
        let res = app
            .post(
                "/v1/creators/me/packs",
                &token,
                &json!({"title": "Dogs", "kind": "static"}),
            )
            .await;
        let id = ok_json(res, StatusCode::CREATED).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        // Nothing to review yet.
        let res = app
            .post(
                &format!("/v1/creators/me/packs/{id}/submit"),
                &token,
                &json!({}),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "pack_empty").await;
        let sticker = ok_json(
            upload(&app, &token, &id, 1, "🐶", sticker_png(400, 10)).await,
            StatusCode::OK,
        )
        .await;
        // Never reviewed: its creator and moderators see the image, nobody else, and nothing
        // caches it.
        let image = app.url(sticker["image_url"].as_str().unwrap());
        let anonymous = app.client.get(&image).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::NOT_FOUND);
        let stranger = app.token(&user(), &[]);
        let other = app
            .client
            .get(&image)
            .bearer_auth(stranger)
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), StatusCode::NOT_FOUND);
        for viewer in [token.clone(), app.token("mod-x", &["moderator"])] {
            let res = app
                .client
                .get(&image)
                .bearer_auth(viewer)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(res.headers()["cache-control"], "private, no-store");
        }
        ok_json(
            app.post(
                &format!("/v1/creators/me/packs/{id}/submit"),
                &token,
                &json!({}),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        // Submitted: the stickers are frozen.
        let res = upload(&app, &token, &id, 2, "🐶", sticker_png(400, 10)).await;
        assert_problem(res, StatusCode::CONFLICT, "pack_not_editable").await;

        // A creator who is also a moderator cannot review their own pack.
        let own = app.token(&creator_id, &["creator", "moderator"]);
        let res = app
            .post(
                &format!("/v1/moderation/packs/{id}/approve"),
                &own,
                &json!({}),
            )
            .await;
        assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
        // Two moderators: the second cannot take the first one's claim.
        let (m1, m2) = (
            app.token("mod-a", &["moderator"]),
            app.token("mod-b", &["moderator"]),
        );
        ok_json(
            app.post(&format!("/v1/moderation/packs/{id}/claim"), &m1, &json!({}))
                .await,
            StatusCode::OK,
        )
        .await;
        let res = app
            .post(&format!("/v1/moderation/packs/{id}/claim"), &m2, &json!({}))
            .await;
        assert_problem(res, StatusCode::CONFLICT, "pack_claimed").await;
        let res = app
            .post(
                &format!("/v1/moderation/packs/{id}/approve"),
                &m2,
                &json!({}),
            )
            .await;
        assert_problem(res, StatusCode::CONFLICT, "pack_claimed").await;
        // Moderators see who holds the claim; the creator does not.
        let queue = ok_json(app.get("/v1/moderation/packs", &m2).await, StatusCode::OK).await;
        let queued = queue["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id.as_str())
            .unwrap()
            .clone();
        assert_eq!(queued["claimed_by"], "mod-a");
        let mine = ok_json(
            app.get(&format!("/v1/creators/me/packs/{id}"), &token)
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(mine["claimed_by"], Value::Null);
        // A rejection names its reasons, from the list.
        let res = app
            .post(
                &format!("/v1/moderation/packs/{id}/reject"),
                &m1,
                &json!({}),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "reason_required").await;
        let res = app
            .post(
                &format!("/v1/moderation/packs/{id}/reject"),
                &m1,
                &json!({"reasons": ["ugly"]}),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_reason").await;
        let res = app.post(&format!("/v1/moderation/packs/{id}/reject"), &m1,
        &json!({"stickers": [{"position": 1, "reason": "flashing_images"}], "note": "Sticker 1 flashes."})).await;
        let rejected = ok_json(res, StatusCode::OK).await;
        assert_eq!(rejected["state"], "rejected");
        assert_eq!(rejected["stickers"][0]["review_reason"], "flashing_images");
        // The creator sees why, corrects it and submits again; the history keeps every step.
        let mine = ok_json(
            app.get(&format!("/v1/creators/me/packs/{id}"), &token)
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(mine["review_note"], "Sticker 1 flashes.");
        ok_json(
            upload(&app, &token, &id, 1, "🐶", sticker_png(420, 30)).await,
            StatusCode::OK,
        )
        .await;
        ok_json(
            app.post(
                &format!("/v1/creators/me/packs/{id}/submit"),
                &token,
                &json!({}),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        let review = ok_json(
            app.get(&format!("/v1/moderation/packs/{id}"), &m2).await,
            StatusCode::OK,
        )
        .await;
        let steps: Vec<String> = review["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{}>{}",
                    e["from"].as_str().unwrap(),
                    e["to"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            steps,
            [
                "draft>in_review",
                "in_review>rejected",
                "rejected>in_review"
            ]
        );
        // Another creator does not see the pack at all.
        let (_, other) = creator(&app).await;
        let res = app
            .get(&format!("/v1/creators/me/packs/{id}"), &other)
            .await;
        assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    }
);

// A free pack is claimed without Stripe; a paid one cannot be claimed.
both!(a_free_pack_is_claimed_and_held, |b: Backend| async move {
    let app = spawn(b).await;
    let (_, token) = creator(&app).await;
    let pack = pack_on_sale(&app, &token, None, 1).await;
    let id = pack["id"].as_str().unwrap();
    let fan = user();
    let res = app
        .post(
            &format!("/v1/me/packs/{id}/claim"),
            &app.token(&fan, &[]),
            &json!({}),
        )
        .await;
    ok_json(res, StatusCode::CREATED).await;
    let res = app
        .post(
            &format!("/v1/me/packs/{id}/claim"),
            &app.token(&fan, &[]),
            &json!({}),
        )
        .await;
    ok_json(res, StatusCode::OK).await;
    assert!(crate::helpers::keys_of(&app.entitlements(&fan).await)
        .contains(&format!("sticker_pack:{id}")));
    let paid = pack_on_sale(&app, &token, Some("t1"), 1).await;
    let res = app
        .post(
            &format!("/v1/me/packs/{}/claim", paid["id"].as_str().unwrap()),
            &app.token(&fan, &[]),
            &json!({}),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "not_free").await;
});

// Images are checked from their bytes, and a refusal stores nothing.
both!(
    bad_images_are_refused_and_leave_nothing,
    |b: Backend| async move {
        let app = spawn(b).await;
        let (_, token) = creator(&app).await;
        let res = app
            .post(
                "/v1/creators/me/packs",
                &token,
                &json!({"title": "Birds", "kind": "static"}),
            )
            .await;
        let id = ok_json(res, StatusCode::CREATED).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut polyglot = sticker_png(300, 1);
        polyglot.extend_from_slice(b"<html><script>alert(1)</script></html>");
        let cases: Vec<(Vec<u8>, &str, &str)> = vec![
            (
                b"GIF89a\x01\x00\x01\x00".to_vec(),
                "🐦",
                "unsupported_format",
            ),
            (
                b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec(),
                "🐦",
                "unsupported_format",
            ),
            (
                vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0],
                "🐦",
                "unsupported_format",
            ),
            (sticker_png(300, 1)[..60].to_vec(), "🐦", "image_corrupt"),
            (sticker_png(40, 1), "🐦", "image_too_small"),
            (sticker_png(300, 1), "abc", "invalid_emoji"),
            (sticker_png(300, 1), "🐦🐦🐦🐦", "invalid_emoji"),
        ];
        let blobs_dir = match &app.settings.packs.blobs {
            kopilka::services::blobs::BlobSettings::Local { dir } => std::path::PathBuf::from(dir),
            _ => unreachable!("tests keep blobs on disk"),
        };
        let before = walk_count(&blobs_dir);
        for (body, emoji, code) in cases {
            let res = upload(&app, &token, &id, 1, emoji, body).await;
            assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, code).await;
        }
        assert_eq!(walk_count(&blobs_dir), before, "a refusal stores no blob");
        let pack = ok_json(
            app.get(&format!("/v1/creators/me/packs/{id}"), &token)
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(pack["stickers"].as_array().unwrap().len(), 0);
        // A polyglot is accepted as the image it also is, and served without its payload.
        let res = upload(&app, &token, &id, 1, "🐦", polyglot).await;
        let sticker = ok_json(res, StatusCode::OK).await;
        // A draft's images are its creator's to preview.
        let res = app
            .client
            .get(app.url(sticker["image_url"].as_str().unwrap()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let served = res.bytes().await.unwrap();
        assert!(
            image::load_from_memory(&served).is_ok(),
            "the image we encoded"
        );
        assert!(!served.windows(6).any(|w| w == b"<html>"));
        // Too large for the upload limit: 413 before any decoding.
        let res = upload(&app, &token, &id, 2, "🐦", vec![0u8; 5 * 1024 * 1024]).await;
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // Still healthy.
        assert_eq!(
            app.client
                .get(app.url("/healthz"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    }
);

/// A bucket of its own on the S3 API of `TEST_S3_ENDPOINT` (moto in CI).
async fn s3_bucket() -> kopilka::services::blobs::BlobSettings {
    let endpoint = std::env::var("TEST_S3_ENDPOINT").expect("TEST_S3_ENDPOINT");
    let endpoint = endpoint.trim_end_matches('/').to_owned();
    let bucket = format!(
        "kopilka-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    // moto takes any credentials and an unsigned CreateBucket.
    let res = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("bucket");
    assert!(res.status().is_success(), "create bucket: {}", res.status());
    kopilka::services::blobs::BlobSettings::S3 {
        bucket,
        endpoint: Some(endpoint),
        region: "us-east-1".into(),
        access_key_id: "test".into(),
        secret_access_key: "test".to_owned().into(),
        allow_http: true,
    }
}

/// The whole path with the images in S3: stored there, served from there.
async fn stickers_live_in_s3(b: Backend) {
    let blobs = s3_bucket().await;
    let db = std::sync::Arc::new(crate::helpers::TestDb::new(b));
    let app = crate::helpers::spawn_with(db, move |s| s.packs.blobs = blobs).await;
    let (_, token) = creator(&app).await;
    let pack = pack_on_sale(&app, &token, None, 2).await;
    for s in pack["stickers"].as_array().unwrap() {
        let res = app
            .client
            .get(app.url(s["image_url"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let png = res.bytes().await.unwrap();
        assert_eq!(
            kopilka::services::blobs::Blobs::sha256_hex(&png),
            s["image_sha256"].as_str().unwrap()
        );
        let res = app
            .client
            .get(app.url(s["image_url"].as_str().unwrap()))
            .header("range", "bytes=1-3")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(&res.bytes().await.unwrap()[..], b"PNG");
    }
}

#[actix_web::test]
#[cfg_attr(
    not(kopilka_s3_tests),
    ignore = "TEST_S3_ENDPOINT was not set when the tests were built"
)]
async fn stickers_live_in_s3_sqlite() {
    stickers_live_in_s3(Backend::Sqlite).await
}

#[actix_web::test]
#[cfg_attr(
    any(not(kopilka_s3_tests), not(kopilka_postgres_tests)),
    ignore = "TEST_S3_ENDPOINT or TEST_POSTGRES_URL was not set when the tests were built"
)]
async fn stickers_live_in_s3_postgres() {
    stickers_live_in_s3(Backend::Postgres).await
}

// The sample packs shipped in `sticker-packs/` go through the same validation and review as an
// upload: `kopilka import-packs` publishes them once (one free, two paid, one animated).
both!(
    the_sample_packs_import_through_review_once,
    |b: Backend| async move {
        let db = std::sync::Arc::new(crate::helpers::TestDb::new(b));
        let blobs = tempfile::tempdir().unwrap().keep();
        let import = || {
            std::process::Command::new(env!("CARGO_BIN_EXE_kopilka"))
                .args([
                    "import-packs",
                    concat!(env!("CARGO_MANIFEST_DIR"), "/sticker-packs"),
                ])
                .env("DATABASE_URL", &db.url)
                .env("KOPILKA__PACKS__BLOBS__DIR", &blobs)
                .env("KOPILKA__SEED_DEMO", "false")
                .output()
                .expect("kopilka import-packs")
        };
        let first = import();
        assert!(
            first.status.success(),
            "{}",
            String::from_utf8_lossy(&first.stderr)
        );
        let said = String::from_utf8_lossy(&first.stdout).into_owned();
        assert!(said.contains("imported 3 pack(s)"), "{said}");
        let said = String::from_utf8_lossy(&import().stdout).into_owned();
        assert!(said.contains("imported 0 pack(s)"), "{said}");

        let dir = blobs.to_string_lossy().into_owned();
        let app = crate::helpers::spawn_with(db.clone(), move |s| {
            s.packs.blobs = kopilka::services::blobs::BlobSettings::Local { dir };
        })
        .await;
        let store = ok_json(
            app.get("/v1/store/packs", &app.token(&user(), &[])).await,
            StatusCode::OK,
        )
        .await;
        let packs = store["items"].as_array().unwrap();
        assert_eq!(packs.len(), 3);
        assert_eq!(packs.iter().filter(|p| p["free"] == true).count(), 1);
        let animated: Vec<&Value> = packs.iter().filter(|p| p["kind"] == "animated").collect();
        assert_eq!(animated.len(), 1);
        assert!(animated[0]["stickers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["frames"] == 6));
        // The images load, as APNG for the animated pack.
        let url = animated[0]["stickers"][0]["image_url"].as_str().unwrap();
        let apng = app
            .client
            .get(app.url(url))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(apng.windows(4).any(|w| w == b"acTL"), "an animated PNG");
    }
);

/// A ZIP of `entries` (name, bytes).
pub fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        w.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

pub async fn upload_archive(
    app: &TestApp,
    token: &str,
    pack: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/v1/creators/me/packs/{pack}/archive")))
        .bearer_auth(token)
        .header("content-type", "application/zip")
        .body(body)
        .send()
        .await
        .expect("archive")
}

// A whole pack as one archive, in the layout of `sticker-packs/`: the draft's stickers are
// replaced at once, and an unsafe archive changes nothing.
both!(
    a_pack_arrives_as_one_archive_or_not_at_all,
    |b: Backend| async move {
        let app = spawn(b).await;
        let (_, token) = creator(&app).await;
        let res = app
            .post(
                "/v1/creators/me/packs",
                &token,
                &json!({"title": "Draft", "kind": "static"}),
            )
            .await;
        let id = ok_json(res, StatusCode::CREATED).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        ok_json(
            upload(&app, &token, &id, 1, "🐶", sticker_png(300, 9)).await,
            StatusCode::OK,
        )
        .await;

        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/sticker-packs/faces");
        let mut entries: Vec<(&str, Vec<u8>)> = Vec::new();
        for name in ["pack.toml", "01.png", "02.png", "03.png", "04.png"] {
            entries.push((name, std::fs::read(format!("{folder}/{name}")).unwrap()));
        }
        let res = upload_archive(&app, &token, &id, zip_of(&entries)).await;
        let pack = ok_json(res, StatusCode::OK).await;
        assert_eq!(pack["title"], "Kopilka Faces");
        assert_eq!(pack["stickers"].as_array().unwrap().len(), 4);

        // Zip-slip, a bad image among good ones, a nested archive: refused, the draft unchanged.
        let before = ok_json(
            app.get(&format!("/v1/creators/me/packs/{id}"), &token)
                .await,
            StatusCode::OK,
        )
        .await;
        let mut slip = entries.clone();
        slip.push(("../../escape.png", b"x".to_vec()));
        assert_problem(
            upload_archive(&app, &token, &id, zip_of(&slip)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "archive_unsafe_path",
        )
        .await;
        let mut bad = entries.clone();
        bad[4].1 = b"GIF89a".to_vec();
        let res = upload_archive(&app, &token, &id, zip_of(&bad)).await;
        let problem =
            assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "unsupported_format").await;
        assert!(
            problem["detail"].as_str().unwrap().starts_with("04.png"),
            "{problem}"
        );
        let mut nested = entries.clone();
        nested.push(("more.zip", zip_of(&[("x.png", vec![1])])));
        assert_problem(
            upload_archive(&app, &token, &id, zip_of(&nested)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "archive_nested",
        )
        .await;
        assert_problem(
            upload_archive(&app, &token, &id, b"not a zip".to_vec()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "archive_corrupt",
        )
        .await;
        let after = ok_json(
            app.get(&format!("/v1/creators/me/packs/{id}"), &token)
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(before, after);
    }
);

/// Files under `dir`, at any depth.
fn walk_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk_count(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
