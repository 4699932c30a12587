//! The store as a buyer browses it: search that needs no word breaks, tags, the most bought
//! first, a price in the buyer's currency, and a strong ETag a client revalidates with.

use crate::billing_helpers::user;
use crate::both;
use crate::helpers::{assert_problem, spawn, Backend, TestApp};
use crate::packs::{creator, ok_json, pack_on_sale_from};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn listed(app: &TestApp, query: &str) -> Vec<String> {
    let page = ok_json(
        app.get(
            &format!("/v1/store/packs?{query}"),
            &app.token(&user(), &[]),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_owned())
        .collect()
}

async fn sold(app: &TestApp, token: &str, title: &str, tags: &[&str]) -> Value {
    let draft = json!({"title": title, "kind": "static", "tags": tags, "price_tier": "t1"});
    pack_on_sale_from(app, token, &draft, 1).await
}

/// A paid order made by support (no Stripe needed here), as `buyer`.
async fn bought(app: &TestApp, pack: &Value, buyer: &str) -> Value {
    let price = pack_price(app, pack, "USD").await;
    let res = app
        .post(
            "/v1/admin/orders",
            &app.support(),
            &json!({"buyer_id": buyer, "price_id": price}),
        )
        .await;
    ok_json(res, StatusCode::CREATED).await
}

async fn pack_price(app: &TestApp, pack: &Value, currency: &str) -> String {
    let shown = ok_json(
        app.get(
            &format!(
                "/v1/store/packs/{}?currency={currency}",
                pack["id"].as_str().unwrap()
            ),
            &app.token(&user(), &[]),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    shown["price"]["price_id"]
        .as_str()
        .expect("a price")
        .to_owned()
}

both!(
    the_store_finds_packs_by_text_without_word_breaks_and_by_tag,
    |b: Backend| async move {
        let app = spawn(b).await;
        let (_, token) = creator(&app).await;
        sold(&app, &token, "しろねこの日常", &["猫", "cute"]).await;
        sold(&app, &token, "แมวน่ารัก Thai Cats", &["แมว"]).await;
        sold(&app, &token, "Dogs 100%", &["dogs"]).await;
        // Substrings, in any script, any (ASCII) case; titles and tags.
        assert_eq!(listed(&app, "q=ねこ").await, vec!["しろねこの日常"]);
        assert_eq!(listed(&app, "q=猫").await, vec!["しろねこの日常"]);
        assert_eq!(listed(&app, "q=น่ารัก").await, vec!["แมวน่ารัก Thai Cats"]);
        assert_eq!(
            listed(&app, "q=thai%20CATS").await,
            vec!["แมวน่ารัก Thai Cats"]
        );
        // `%` and `_` are text, not wildcards.
        assert_eq!(listed(&app, "q=100%25").await, vec!["Dogs 100%"]);
        assert!(listed(&app, "q=_").await.is_empty());
        // A tag is matched whole.
        assert_eq!(listed(&app, "tag=cute").await, vec!["しろねこの日常"]);
        assert!(listed(&app, "tag=cut").await.is_empty());
        let res = app
            .get("/v1/store/packs?q=", &app.token(&user(), &[]))
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_query").await;
        let long = "x".repeat(65);
        let res = app
            .get(
                &format!("/v1/store/packs?q={long}"),
                &app.token(&user(), &[]),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_query").await;
    }
);

both!(
    popular_packs_count_distinct_paying_buyers_without_refunds_or_self_purchases,
    |b: Backend| async move {
        let app = spawn(b).await;
        let (creator_id, token) = creator(&app).await;
        let a = sold(&app, &token, "Alpha", &[]).await;
        let bee = sold(&app, &token, "Bravo", &[]).await;
        let c = sold(&app, &token, "Charlie", &[]).await;
        // Alpha: one buyer who bought twice, the creator's own purchase, a refunded order.
        let fan = user();
        bought(&app, &a, &fan).await;
        bought(&app, &a, &fan).await;
        bought(&app, &a, &creator_id).await;
        let refunded = bought(&app, &a, &user()).await;
        let res = app
            .patch(
                &format!("/v1/admin/orders/{}", refunded["id"].as_str().unwrap()),
                &app.support(),
                &json!({"status": "refunded"}),
            )
            .await;
        ok_json(res, StatusCode::OK).await;
        // Bravo: two buyers. Charlie: none.
        bought(&app, &bee, &user()).await;
        bought(&app, &bee, &user()).await;
        assert_eq!(
            listed(&app, "sort=popular").await,
            vec!["Bravo", "Alpha", "Charlie"]
        );
        // Page by page, the same order.
        let mut titles = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                Some(c) => format!("/v1/store/packs?sort=popular&limit=1&cursor={c}"),
                None => "/v1/store/packs?sort=popular&limit=1".to_owned(),
            };
            let page = ok_json(app.get(&q, &app.token(&user(), &[])).await, StatusCode::OK).await;
            titles.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["title"].as_str().unwrap().to_owned()),
            );
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(titles, vec!["Bravo", "Alpha", "Charlie"]);
        assert_eq!(
            listed(&app, "").await,
            vec!["Charlie", "Bravo", "Alpha"],
            "newest first"
        );
        let res = app
            .get("/v1/store/packs?sort=cheap", &app.token(&user(), &[]))
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_sort").await;
        let _ = c;
    }
);

both!(
    the_store_prices_in_the_asked_currency_and_revalidates_with_its_etag,
    |b: Backend| async move {
        let app = spawn(b).await;
        let (_, token) = creator(&app).await;
        let pack = sold(&app, &token, "Alpha", &[]).await;
        let buyer = app.token(&user(), &[]);
        let page = ok_json(
            app.get("/v1/store/packs?currency=eur", &buyer).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(page["items"][0]["price"]["currency"], "EUR");
        assert_eq!(page["items"][0]["price"]["amount_minor"], 99);
        let id = pack["id"].as_str().unwrap();
        let shown = ok_json(
            app.get(&format!("/v1/store/packs/{id}?currency=JPY"), &buyer)
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(shown["price"]["currency"], "JPY");
        // Not sold in Swiss francs; ZZZ is no currency.
        let shown = ok_json(
            app.get(&format!("/v1/store/packs/{id}?currency=CHF"), &buyer)
                .await,
            StatusCode::OK,
        )
        .await;
        assert!(shown["price"].is_null());
        let res = app.get("/v1/store/packs?currency=ZZZ", &buyer).await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_currency").await;

        // The same page revalidates to a 304; a new pack on sale changes it.
        let get = |etag: Option<String>| {
            let mut req = app
                .client
                .get(app.url("/v1/store/packs"))
                .bearer_auth(&buyer);
            if let Some(e) = etag {
                req = req.header("if-none-match", e);
            }
            req.send()
        };
        let first = get(None).await.unwrap();
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        assert!(
            etag.starts_with('"') && !etag.starts_with("W/"),
            "strong: {etag}"
        );
        let again = get(Some(etag.clone())).await.unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
        sold(&app, &token, "Bravo", &[]).await;
        let changed = get(Some(etag.clone())).await.unwrap();
        assert_eq!(changed.status(), StatusCode::OK);
        assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
    }
);

both!(
    a_published_pack_is_one_archive_of_its_stickers_built_once,
    |b: Backend| async move {
        use std::io::Read;
        let app = spawn(b).await;
        let (_, token) = creator(&app).await;
        let draft = json!({"title": "Two", "kind": "static", "price_tier": "t1"});
        let pack = pack_on_sale_from(&app, &token, &draft, 2).await;
        let id = pack["id"].as_str().unwrap();
        let shown = ok_json(
            app.get(&format!("/v1/store/packs/{id}"), &app.token(&user(), &[]))
                .await,
            StatusCode::OK,
        )
        .await;
        let url = shown["archive_url"]
            .as_str()
            .expect("an archive")
            .to_owned();
        let res = app.client.get(app.url(&url)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "application/zip");
        assert!(res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"));
        let bytes = res.bytes().await.unwrap().to_vec();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a ZIP");
        let mut manifest = String::new();
        zip.by_name("pack.json")
            .unwrap()
            .read_to_string(&mut manifest)
            .unwrap();
        let manifest: Value = serde_json::from_str(&manifest).unwrap();
        assert_eq!(manifest["id"], id);
        let entries = manifest["stickers"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        for (entry, sticker) in entries.iter().zip(shown["stickers"].as_array().unwrap()) {
            assert_eq!(entry["id"], sticker["sticker_id"]);
            assert_eq!(entry["emoji"], json!(["😺"]));
            let mut image = Vec::new();
            zip.by_name(entry["file"].as_str().unwrap())
                .unwrap()
                .read_to_end(&mut image)
                .unwrap();
            let served = app
                .client
                .get(app.url(sticker["image_url"].as_str().unwrap()))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(image, served.to_vec(), "the images we serve");
        }
        // Removed: the archive is blocked like the images.
        let res = app
            .post(
                &format!("/v1/moderation/packs/{id}/remove"),
                &app.token("mod-mo", &["moderator"]),
                &json!({"reasons": ["other"]}),
            )
            .await;
        ok_json(res, StatusCode::OK).await;
        let res = app.client.get(app.url(&url)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS);
    }
);

/// `GET` of a blob's URL, with extra headers.
async fn blob_get(app: &TestApp, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.client.get(app.url(url));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.unwrap()
}

// The access answer and the bytes are kept in memory once served: a removal still blocks the
// image at once, whole, ranged or revalidated.
both!(
    a_served_image_is_gone_at_once_when_its_pack_is_removed,
    |b: Backend| async move {
        let app = spawn(b).await;
        let (_, token) = creator(&app).await;
        let draft = json!({"title": "Served", "kind": "static"});
        let pack = pack_on_sale_from(&app, &token, &draft, 1).await;
        let url = pack["stickers"][0]["image_url"]
            .as_str()
            .unwrap()
            .to_owned();
        let sha = pack["stickers"][0]["image_sha256"].as_str().unwrap();
        let etag = format!("\"{sha}\"");
        let whole = blob_get(&app, &url, &[]).await;
        assert_eq!(whole.status(), StatusCode::OK);
        assert_eq!(
            whole.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(whole.headers()["etag"], etag.as_str());
        let bytes = whole.bytes().await.unwrap();
        let again = blob_get(&app, &url, &[]).await;
        assert_eq!(
            again.bytes().await.unwrap(),
            bytes,
            "the same bytes from memory"
        );
        let revalidated = blob_get(&app, &url, &[("if-none-match", &etag)]).await;
        assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
        let ranged = blob_get(&app, &url, &[("range", "bytes=1-4")]).await;
        assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            ranged.headers()["content-range"],
            format!("bytes 1-4/{}", bytes.len()).as_str()
        );
        assert_eq!(ranged.bytes().await.unwrap(), bytes.slice(1..5));
        let past = format!("bytes={}-", bytes.len());
        let res = blob_get(&app, &url, &[("range", &past)]).await;
        assert_eq!(
            res.headers()["content-range"],
            format!("bytes */{}", bytes.len()).as_str()
        );
        assert_problem(
            res,
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
        )
        .await;

        let id = pack["id"].as_str().unwrap();
        let res = app
            .post(
                &format!("/v1/moderation/packs/{id}/remove"),
                &app.token("mod-mo", &["moderator"]),
                &json!({"reasons": ["other"]}),
            )
            .await;
        ok_json(res, StatusCode::OK).await;

        for headers in [
            vec![],
            vec![("if-none-match", etag.as_str())],
            vec![("range", "bytes=1-4")],
        ] {
            let res = blob_get(&app, &url, &headers).await;
            assert_eq!(
                res.status(),
                StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
                "{headers:?}"
            );
        }
    }
);

// A draft's image asked for by a stranger is not found; once the pack is released it is
// public at once.
both!(
    a_draft_image_is_public_at_once_when_its_pack_is_released,
    |b: Backend| async move {
        let app = spawn(b).await;
        let (_, token) = creator(&app).await;
        let draft = json!({"title": "Soon", "kind": "static"});
        let pack = ok_json(
            app.post("/v1/creators/me/packs", &token, &draft).await,
            StatusCode::CREATED,
        )
        .await;
        let id = pack["id"].as_str().unwrap().to_owned();
        let png = crate::packs::sticker_png(320, 40);
        let sticker = ok_json(
            crate::packs::upload(&app, &token, &id, 1, "😺", png).await,
            StatusCode::OK,
        )
        .await;
        let url = sticker["image_url"].as_str().unwrap().to_owned();
        let res = blob_get(&app, &url, &[]).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let own = app
            .client
            .get(app.url(&url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(own.status(), StatusCode::OK);
        assert_eq!(own.headers()["cache-control"], "private, no-store");

        let moderator = app.token("mod-mo", &["moderator"]);
        for (path, who) in [
            ("submit", &token),
            ("claim", &moderator),
            ("approve", &moderator),
            ("release", &token),
        ] {
            let base = if who == &token {
                "creators/me/packs"
            } else {
                "moderation/packs"
            };
            let res = app
                .post(&format!("/v1/{base}/{id}/{path}"), who, &json!({}))
                .await;
            ok_json(res, StatusCode::OK).await;
        }

        let res = blob_get(&app, &url, &[]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
    }
);
