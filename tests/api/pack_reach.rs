//! Where a pack reaches and how it reads there: sale regions (buying, gifting, claiming, the
//! store's filter), texts per locale (search and the store's filter), the cover and tray icon,
//! and emoji edits after publication, reviewed like any text.

use crate::billing_helpers::{spawn_billing, user};
use crate::both;
use crate::helpers::{assert_problem, spawn, Backend, TestApp};
use crate::packs::{
    creator, ok_json, pack_on_sale_from, sticker_png, upload, upload_archive, zip_of,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn titles(app: &TestApp, query: &str) -> Vec<String> {
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

async fn usd_price(app: &TestApp, pack: &Value) -> String {
    let shown = ok_json(
        app.get(
            &format!(
                "/v1/store/packs/{}?currency=USD",
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
        .expect("price")
        .to_owned()
}

async fn order(
    app: &TestApp,
    token: &str,
    price: &str,
    recipient: Option<&str>,
) -> reqwest::Response {
    app.post(
        "/v1/me/orders",
        token,
        &json!({"price_id": price, "recipient_id": recipient}),
    )
    .await
}

/// A request the user makes with a token saying where they are (their app signing in).
async fn signs_in(app: &TestApp, who: &str, country: &str) {
    let res = app.get("/v1/me/packs", &app.token_in(who, country)).await;
    assert_eq!(res.status(), StatusCode::OK);
}

// A pack licensed for Japan only: bought and gifted only there, found by the store's region
// filter; selling everywhere again applies at once, without review.
both!(
    a_pack_sold_in_some_regions_is_bought_gifted_and_claimed_only_there,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let (_, token) = creator(&app).await;
        let japan = pack_on_sale_from(
            &app,
            &token,
            &json!({"title": "Tokyo only", "kind": "static", "price_tier": "t1", "sale_regions": ["jp"]}),
            1,
        )
        .await;
        assert_eq!(japan["sale_regions"], json!(["JP"]));
        pack_on_sale_from(
            &app,
            &token,
            &json!({"title": "Everywhere", "kind": "static", "price_tier": "t1"}),
            1,
        )
        .await;
        assert_eq!(
            titles(&app, "region=JP").await,
            vec!["Everywhere", "Tokyo only"]
        );
        assert_eq!(titles(&app, "region=us").await, vec!["Everywhere"]);
        let res = app
            .get("/v1/store/packs?region=XX", &app.token(&user(), &[]))
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_region").await;

        let price = usd_price(&app, &japan).await;
        // Where the buyer is comes from their token.
        let (tokyo, ohio) = (user(), user());
        let res = order(&app, &app.token_in(&ohio, "US"), &price, None).await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "not_sold_in_region").await;
        let res = order(&app, &app.token(&user(), &[]), &price, None).await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "region_unknown").await;
        ok_json(
            order(&app, &app.token_in(&tokyo, "JP"), &price, None).await,
            StatusCode::CREATED,
        )
        .await;

        // A gift goes by where its recipient last signed in from, not where the giver is.
        let (friend_in_us, friend_in_jp, stranger) = (user(), user(), user());
        signs_in(&app, &friend_in_us, "US").await;
        signs_in(&app, &friend_in_jp, "JP").await;
        let giver = app.token_in(&tokyo, "JP");
        // One answer whether the recipient is elsewhere or unknown: a gift attempt does not
        // tell where someone is.
        let res = order(&app, &giver, &price, Some(&friend_in_us)).await;
        assert_problem(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_sold_to_recipient",
        )
        .await;
        let res = order(&app, &giver, &price, Some(&stranger)).await;
        assert_problem(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_sold_to_recipient",
        )
        .await;
        let gift = ok_json(
            order(
                &app,
                &app.token_in(&ohio, "US"),
                &price,
                Some(&friend_in_jp),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(gift["recipient_id"], friend_in_jp.as_str());
        // Moving is seen at the next sign-in.
        signs_in(&app, &friend_in_us, "JP").await;
        ok_json(
            order(&app, &giver, &price, Some(&friend_in_us)).await,
            StatusCode::CREATED,
        )
        .await;

        // Free packs are claimed under the same rule.
        let free = pack_on_sale_from(
            &app,
            &token,
            &json!({"title": "Berlin free", "kind": "static", "sale_regions": ["DE", "AT"]}),
            1,
        )
        .await;
        let claim = format!("/v1/me/packs/{}/claim", free["id"].as_str().unwrap());
        let res = app
            .post(&claim, &app.token_in(&user(), "FR"), &json!({}))
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "not_sold_in_region").await;
        ok_json(
            app.post(&claim, &app.token_in(&user(), "AT"), &json!({}))
                .await,
            StatusCode::CREATED,
        )
        .await;

        // Selling everywhere again is commercial, not content: at once, no review.
        let path = format!("/v1/creators/me/packs/{}", japan["id"].as_str().unwrap());
        let res = app
            .patch(&path, &token, &json!({"sale_regions": ["JP", "JP"]}))
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_regions").await;
        let res = app.patch(&path, &token, &json!({"sale_regions": []})).await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_regions").await;
        let now = ok_json(
            app.patch(&path, &token, &json!({"sale_regions": null}))
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(now["sale_regions"], Value::Null);
        assert_eq!(now["state"], "on_sale");
        ok_json(
            order(&app, &app.token_in(&ohio, "US"), &price, None).await,
            StatusCode::CREATED,
        )
        .await;
    }
);

// Texts per locale: found by their titles and keywords in any script, and by the store's
// locale filter (a regional tag finds its language's texts).
both!(
    texts_per_locale_are_searched_and_filtered,
    |b: Backend| async move {
        let app = spawn(b).await;
        let (_, token) = creator(&app).await;
        let draft = json!({
            "title": "Cats", "kind": "static",
            "locales": {
                "JA": {"title": "ねこ", "description": "まいにち", "keywords": ["にゃんこ", "ネコ"]},
                "pt-br": {"title": "Gatos", "keywords": ["Bichano"]}
            }
        });
        let pack = pack_on_sale_from(&app, &token, &draft, 1).await;
        assert_eq!(
            pack["locales"]["ja"]["keywords"],
            json!(["にゃんこ", "ネコ"])
        );
        assert_eq!(pack["locales"]["pt-BR"]["title"], "Gatos");
        pack_on_sale_from(&app, &token, &json!({"title": "Dogs", "kind": "static"}), 1).await;

        assert_eq!(
            titles(&app, "q=%E3%81%AB%E3%82%83%E3%82%93").await,
            vec!["Cats"]
        ); // にゃん
        assert_eq!(titles(&app, "q=bichano").await, vec!["Cats"]);
        assert_eq!(titles(&app, "q=gatos").await, vec!["Cats"]);
        assert_eq!(titles(&app, "locale=ja").await, vec!["Cats"]);
        assert_eq!(titles(&app, "locale=ja-JP").await, vec!["Cats"]);
        assert_eq!(titles(&app, "locale=pt-BR").await, vec!["Cats"]);
        assert_eq!(titles(&app, "locale=pt").await, vec!["Cats"]);
        // A list carries the texts of the language asked for only; the pack's page, all.
        let listed = ok_json(
            app.get("/v1/store/packs?locale=ja-JP", &app.token(&user(), &[]))
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(
            listed["items"][0]["locales"],
            json!({"ja": {"title": "ねこ", "description": "まいにち", "keywords": ["にゃんこ", "ネコ"]}})
        );
        let plain = ok_json(
            app.get("/v1/store/packs", &app.token(&user(), &[])).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(plain["items"][1]["locales"], json!({}));
        let page = store_pack(&app, pack["id"].as_str().unwrap()).await;
        assert_eq!(page["locales"].as_object().unwrap().len(), 2);
        // Case-folded search: `STRASSE` finds `Straße`.
        pack_on_sale_from(
            &app,
            &token,
            &json!({"title": "Straße", "kind": "static"}),
            1,
        )
        .await;
        assert_eq!(titles(&app, "q=STRASSE").await, vec!["Straße"]);
        assert!(titles(&app, "locale=fr").await.is_empty());
        let res = app
            .get("/v1/store/packs?locale=not_a_tag", &app.token(&user(), &[]))
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_locale").await;

        // Each locale's texts follow the pack's rules.
        for bad in [
            json!({"xx-yy-zz-ww": {"title": "x"}}),
            json!({"de": {"title": ""}}),
            json!({"de": {"title": "Katzen", "keywords": ["a\u{202e}b"]}}),
            json!({"de": {"title": "Katzen", "keywords": vec!["k"; 21]}}),
        ] {
            let res = app
                .post(
                    "/v1/creators/me/packs",
                    &token,
                    &json!({"title": "T", "kind": "static", "locales": bad}),
                )
                .await;
            assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_locales").await;
        }
        let res = app
            .post(
                "/v1/creators/me/packs",
                &token,
                &json!({"title": "T", "kind": "static", "locales": {"de": {"title": "K", "extra": 1}}}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }
);

async fn store_pack(app: &TestApp, id: &str) -> Value {
    let res = app
        .get(&format!("/v1/store/packs/{id}"), &app.token(&user(), &[]))
        .await;
    ok_json(res, StatusCode::OK).await
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(bytes).expect("a PNG");
    (img.width(), img.height())
}

async fn blob(app: &TestApp, token: &str, url: &str) -> Vec<u8> {
    let res = app.get(url, token).await;
    assert_eq!(res.status(), StatusCode::OK, "{url}");
    res.bytes().await.unwrap().to_vec()
}

async fn put_cover(app: &TestApp, token: &str, pack: &str, body: Vec<u8>) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/v1/creators/me/packs/{pack}/cover")))
        .bearer_auth(token)
        .header("content-type", "image/png")
        .body(body)
        .send()
        .await
        .expect("cover")
}

// A cover is validated and re-encoded like a sticker, onto LINE's 240 px main-image canvas,
// with a 96 px tray icon; without one, the tray icon is the first sticker's thumbnail.
both!(
    a_cover_is_re_encoded_with_its_tray_icon,
    |b: Backend| async move {
        let app = spawn(b).await;
        let (_, token) = creator(&app).await;
        let draft = ok_json(
            app.post(
                "/v1/creators/me/packs",
                &token,
                &json!({"title": "Covered", "kind": "static"}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        let id = draft["id"].as_str().unwrap().to_owned();
        assert_eq!(draft["cover_url"], Value::Null);
        let res = put_cover(&app, &token, &id, sticker_png(64, 10)).await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "image_too_small").await;
        let res = put_cover(&app, &token, &id, sticker_png(600, 10)).await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "image_too_large").await;
        let res = put_cover(&app, &token, &id, Vec::new()).await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "empty_file").await;
        let other = app.token(&user(), &["creator"]);
        let res = put_cover(&app, &other, &id, sticker_png(200, 10)).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);

        let covered = ok_json(
            put_cover(&app, &token, &id, sticker_png(200, 10)).await,
            StatusCode::OK,
        )
        .await;
        let (cover, tray) = (
            covered["cover_url"].as_str().unwrap().to_owned(),
            covered["tray_url"].as_str().unwrap().to_owned(),
        );
        assert_eq!(png_size(&blob(&app, &token, &cover).await), (240, 240));
        assert_eq!(png_size(&blob(&app, &token, &tray).await), (96, 96));
        // Not public before publication.
        let res = app.get(&cover, &app.token(&user(), &[])).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);

        // From an archive, its cover file is taken too; the store shows it once published.
        let archive = zip_of(&[
            (
                "pack.toml",
                "title = \"Covered\"\nkind = \"static\"\ncover = \"cover.png\"\n\n[[stickers]]\nfile = \"a.png\"\nemoji = \"😺\"\n"
                    .as_bytes()
                    .to_vec(),
            ),
            ("a.png", sticker_png(320, 40)),
            ("cover.png", sticker_png(120, 90)),
        ]);
        let replaced = ok_json(
            upload_archive(&app, &token, &id, archive).await,
            StatusCode::OK,
        )
        .await;
        assert_ne!(replaced["cover_url"], covered["cover_url"], "{replaced}");
        let missing = zip_of(&[
            (
                "pack.toml",
                "title = \"Covered\"\nkind = \"static\"\ncover = \"nope.png\"\n\n[[stickers]]\nfile = \"a.png\"\nemoji = \"😺\"\n"
                    .as_bytes()
                    .to_vec(),
            ),
            ("a.png", sticker_png(320, 40)),
        ]);
        let res = upload_archive(&app, &token, &id, missing).await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_manifest").await;

        let plain = pack_on_sale_from(
            &app,
            &token,
            &json!({"title": "Plain", "kind": "static"}),
            2,
        )
        .await;
        let shown = ok_json(
            app.get(
                &format!("/v1/store/packs/{}", plain["id"].as_str().unwrap()),
                &app.token(&user(), &[]),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(shown["cover_url"], Value::Null);
        assert_eq!(shown["tray_url"], shown["stickers"][0]["thumbnail_url"]);
    }
);

// After publication a sticker's image never changes, but its emoji may: an edit waits for a
// moderator like any text, and the pack's archive is rebuilt with the new emoji.
both!(
    emoji_and_locale_edits_after_publication_are_reviewed,
    |b: Backend| async move {
        let app = spawn(b).await;
        let (_, token) = creator(&app).await;
        let pack = pack_on_sale_from(
            &app,
            &token,
            &json!({"title": "Moods", "kind": "static"}),
            2,
        )
        .await;
        let id = pack["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/creators/me/packs/{id}");
        let res = app
            .patch(&path, &token, &json!({"emoji": {"3": "🎉"}}))
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "unknown_sticker").await;
        let res = app
            .patch(&path, &token, &json!({"emoji": {"one": "🎉"}}))
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_position").await;
        let res = app
            .patch(&path, &token, &json!({"emoji": {"1": "abc"}}))
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_emoji").await;
        let res = app
            .patch(&path, &token, &json!({"emoji": {"1": "😺"}}))
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "nothing_changed").await;

        let proposed = ok_json(
            app.patch(
                &path,
                &token,
                &json!({"emoji": {"1": "🎉 😺"}, "locales": {"de": {"title": "Launen"}}}),
            )
            .await,
            StatusCode::ACCEPTED,
        )
        .await;
        let fields: Vec<&str> = proposed["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, vec!["locales", "emoji"], "{proposed}");
        assert_eq!(proposed["changes"][1]["from"]["emoji"], json!(["😺"]));
        assert_eq!(proposed["changes"][1]["to"]["emoji"], json!(["🎉", "😺"]));

        let before = store_pack(&app, &id).await;
        assert_eq!(before["stickers"][0]["emoji"], json!(["😺"]));
        let image = before["stickers"][0]["image_url"].clone();
        let moderator = app.token("mod-mo", &["moderator"]);
        let revision = proposed["id"].as_str().unwrap();
        ok_json(
            app.post(
                &format!("/v1/moderation/revisions/{revision}/approve"),
                &moderator,
                &json!({}),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        let after = store_pack(&app, &id).await;
        assert_eq!(after["stickers"][0]["emoji"], json!(["🎉", "😺"]));
        assert_eq!(
            after["stickers"][0]["image_url"], image,
            "images never change"
        );
        assert_eq!(after["locales"]["de"]["title"], "Launen");
        assert_eq!(titles(&app, "q=launen").await, vec!["Moods"]);
        // The archive says the new emoji.
        let archive_url = after["archive_url"].as_str().expect("archive rebuilt");
        assert_ne!(after["archive_url"], before["archive_url"]);
        let zip = blob(&app, &app.token(&user(), &[]), archive_url).await;
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        let mut manifest = String::new();
        std::io::Read::read_to_string(&mut z.by_name("pack.json").unwrap(), &mut manifest).unwrap();
        assert!(manifest.contains("🎉"), "{manifest}");
        // A draft's emoji change at once.
        let draft = ok_json(
            app.post(
                "/v1/creators/me/packs",
                &token,
                &json!({"title": "Draft", "kind": "static"}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        let did = draft["id"].as_str().unwrap();
        ok_json(
            upload(&app, &token, did, 1, "😺", sticker_png(300, 5)).await,
            StatusCode::OK,
        )
        .await;
        let changed = ok_json(
            app.patch(
                &format!("/v1/creators/me/packs/{did}"),
                &token,
                &json!({"emoji": {"1": "🐈"}}),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(changed["stickers"][0]["emoji"], json!(["🐈"]));
    }
);

// Store pages are kept rendered; every write that changes what a page shows (a release, a
// retirement, an order, a claim) is seen by the next request, in this instance at once.
both!(
    a_kept_store_page_follows_every_write_at_once,
    |b: Backend| async move {
        let app = spawn(b).await;
        let (_, token) = creator(&app).await;
        let first = pack_on_sale_from(
            &app,
            &token,
            &json!({"title": "First", "kind": "static"}),
            1,
        )
        .await;
        let fan = user();
        let page = |app: &TestApp, who: &str| {
            let t = app.token(who, &[]);
            let url = app.url("/v1/store/packs?sort=popular");
            let client = app.client.clone();
            async move {
                let res = client.get(url).bearer_auth(t).send().await.unwrap();
                ok_json(res, StatusCode::OK).await
            }
        };
        let seen = page(&app, &fan).await;
        assert_eq!(seen["items"].as_array().unwrap().len(), 1);
        assert_eq!(seen["items"][0]["owned"], false);
        // Released: listed.
        let second = pack_on_sale_from(
            &app,
            &token,
            &json!({"title": "Second", "kind": "static"}),
            1,
        )
        .await;
        let seen = page(&app, &fan).await;
        assert_eq!(seen["items"].as_array().unwrap().len(), 2);
        // Claimed: owned, for the claimer only.
        let claim = format!("/v1/me/packs/{}/claim", first["id"].as_str().unwrap());
        ok_json(
            app.post(&claim, &app.token(&fan, &[]), &json!({})).await,
            StatusCode::CREATED,
        )
        .await;
        let mine = page(&app, &fan).await;
        let theirs = page(&app, &user()).await;
        let owned = |p: &Value, title: &str| {
            p["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["title"] == title)
                .unwrap()["owned"]
                .clone()
        };
        assert_eq!(owned(&mine, "First"), true);
        assert_eq!(owned(&mine, "Second"), false);
        assert_eq!(owned(&theirs, "First"), false);
        // Retired: gone from the store.
        let retire = format!(
            "/v1/creators/me/packs/{}/retire",
            second["id"].as_str().unwrap()
        );
        ok_json(app.post(&retire, &token, &json!({})).await, StatusCode::OK).await;
        let seen = page(&app, &fan).await;
        let titles: Vec<&str> = seen["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["title"].as_str().unwrap())
            .collect();
        assert_eq!(titles, vec!["First"]);
    }
);
