//! After publication a pack's texts change only through a revision a moderator reviews; a
//! draft's change at once.

use crate::billing_helpers::user;
use crate::both;
use crate::helpers::{assert_problem, spawn, Backend, TestApp};
use crate::packs::{creator, ok_json, pack_on_sale};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn store_title(app: &TestApp, pack: &str) -> Value {
    let shown = ok_json(
        app.get(&format!("/v1/store/packs/{pack}"), &app.token(&user(), &[]))
            .await,
        StatusCode::OK,
    )
    .await;
    shown["title"].clone()
}

both!(
    a_published_packs_edit_shows_only_once_a_moderator_approves_it,
    |b: Backend| async move {
        let app = spawn(b).await;
        let (creator_id, token) = creator(&app).await;
        let pack = pack_on_sale(&app, &token, Some("t1"), 1).await;
        let id = pack["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/creators/me/packs/{id}");
        let proposed = ok_json(
            app.patch(
                &path,
                &token,
                &json!({"title": "Cats, revised", "tags": ["cats"]}),
            )
            .await,
            StatusCode::ACCEPTED,
        )
        .await;
        assert_eq!(proposed["state"], "pending");
        assert_eq!(proposed["version"], 2);
        let fields: Vec<&str> = proposed["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, vec!["title", "tags"], "{proposed}");
        assert_eq!(proposed["changes"][0]["from"], "ねこ Cats");
        // The store shows the reviewed texts until then; one edit waits at a time.
        assert_eq!(store_title(&app, &id).await, "ねこ Cats");
        let res = app.patch(&path, &token, &json!({"title": "Again"})).await;
        assert_problem(res, StatusCode::CONFLICT, "revision_pending").await;
        // Someone else's pack is not found; bad text is refused.
        let other = app.token(&user(), &["creator"]);
        let res = app.patch(&path, &other, &json!({"title": "Mine"})).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let res = app
            .patch(&path, &token, &json!({"title": "a\u{202e}b"}))
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_title").await;

        let queue = ok_json(
            app.get(
                "/v1/moderation/revisions",
                &app.token("mod-mo", &["moderator"]),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert!(queue["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == proposed["id"]));
        let rid = proposed["id"].as_str().unwrap();
        // The creator does not review their own edit, even as a moderator.
        let own = app.token(&creator_id, &["creator", "moderator"]);
        let res = app
            .post(
                &format!("/v1/moderation/revisions/{rid}/approve"),
                &own,
                &json!({}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let moderator = app.token("mod-mo", &["moderator"]);
        let res = app
            .post(
                &format!("/v1/moderation/revisions/{rid}/reject"),
                &moderator,
                &json!({}),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "reason_required").await;
        let approved = ok_json(
            app.post(
                &format!("/v1/moderation/revisions/{rid}/approve"),
                &moderator,
                &json!({}),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(approved["state"], "approved");
        assert_eq!(store_title(&app, &id).await, "Cats, revised");
        let res = app
            .post(
                &format!("/v1/moderation/revisions/{rid}/approve"),
                &moderator,
                &json!({}),
            )
            .await;
        assert_problem(res, StatusCode::CONFLICT, "revision_decided").await;

        // The next edit is version 3; a rejected one changes nothing.
        let res = app
            .patch(&path, &token, &json!({"title": "Cats, revised"}))
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "nothing_changed").await;
        let third = ok_json(
            app.patch(&path, &token, &json!({"description": "Buy now!!!"}))
                .await,
            StatusCode::ACCEPTED,
        )
        .await;
        assert_eq!(third["version"], 3);
        let rid = third["id"].as_str().unwrap();
        let rejected = ok_json(
            app.post(
                &format!("/v1/moderation/revisions/{rid}/reject"),
                &moderator,
                &json!({"reasons": ["misleading_metadata"], "note": "No shouting."}),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(rejected["state"], "rejected");
        let review = ok_json(
            app.get(&format!("/v1/moderation/packs/{id}"), &moderator)
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(review["description"], "");
        let trail: Vec<String> = review["history"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|e| e["reasons"].as_array().unwrap().clone())
            .map(|r| r.as_str().unwrap().to_owned())
            .collect();
        assert!(
            trail.contains(&"revision_2_approved".to_owned()),
            "{trail:?}"
        );
        assert!(
            trail.contains(&"revision_3_rejected".to_owned()),
            "{trail:?}"
        );
    }
);

both!(
    a_drafts_texts_change_at_once_and_a_pack_in_review_waits,
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
        let draft = ok_json(res, StatusCode::CREATED).await;
        let path = format!("/v1/creators/me/packs/{}", draft["id"].as_str().unwrap());
        let edited = ok_json(
            app.patch(
                &path,
                &token,
                &json!({"title": "Better draft", "tags": ["new"]}),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(edited["title"], "Better draft");
        assert_eq!(edited["tags"], json!(["new"]));
        let res = crate::packs::upload(
            &app,
            &token,
            draft["id"].as_str().unwrap(),
            1,
            "😀",
            crate::packs::sticker_png(300, 9),
        )
        .await;
        ok_json(res, StatusCode::OK).await;
        let res = app
            .post(&format!("{path}/submit"), &token, &json!({}))
            .await;
        ok_json(res, StatusCode::OK).await;
        let res = app.patch(&path, &token, &json!({"title": "Late"})).await;
        assert_problem(res, StatusCode::CONFLICT, "pack_not_editable").await;
    }
);
