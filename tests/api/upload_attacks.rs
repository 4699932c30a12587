//! The upload attack corpus of `tests/fixtures/uploads/` (see its README): every file goes in by
//! the route it attacks — images by `PUT …/stickers/{position}` and inside a minimal archive,
//! ZIPs by `POST …/archive` — and is refused with a problem document while the draft, its blobs
//! and the service stay as they were. The polyglots and the metadata bomb are images too: they
//! are accepted, and what is served is our re-encoding, without the payload.

use crate::both;
use crate::helpers::{assert_problem, spawn, Backend, TestApp};
use crate::packs::{creator, ok_json};
use reqwest::StatusCode;
use serde_json::{json, Value};

const UNPROCESSABLE: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;

/// Images refused by a static pack, whichever way they arrive: (file, code).
const STATIC_REFUSALS: &[(&str, &str)] = &[
    ("png_bomb.png", "image_too_large"),
    ("webp_bomb.webp", "image_too_large"),
    ("webp_bomb_vp8x.webp", "image_too_large"),
    ("image.svg", "unsupported_format"),
    ("image.gif", "unsupported_format"),
    ("image.jpg", "unsupported_format"),
    ("gif_named.png", "unsupported_format"),
    ("truncated.png", "image_corrupt"),
    ("truncated.webp", "image_corrupt"),
    ("empty.png", "empty_file"),
    ("huge_chunk_length.png", "image_corrupt"),
    ("apng_10000_frames.png", "animated_not_allowed"),
];

/// Images refused by an animated pack: (file, code).
const ANIMATED_REFUSALS: &[(&str, &str)] = &[
    ("apng_10000_frames.png", "too_many_frames"),
    ("png_bomb.png", "image_too_large"),
    ("webp_bomb_vp8x.webp", "image_too_large"),
];

/// Archives refused whole: (file, code).
const ARCHIVE_REFUSALS: &[(&str, &str)] = &[
    ("zip_bomb.zip", "file_too_large"),
    ("zip_bomb_ratio.zip", "archive_bomb"),
    ("zip_bomb_lying.zip", "archive_bomb"),
    ("zip_bomb_overlap.zip", "archive_too_large"),
    ("zip_nested.zip", "archive_nested"),
    ("zip_slip.zip", "archive_unsafe_path"),
    ("zip_slip_absolute.zip", "archive_unsafe_path"),
    ("zip_slip_backslash.zip", "archive_unsafe_path"),
    ("symlink.zip", "archive_unsafe_path"),
    // An image sent as an archive: the PNG+ZIP polyglot is a readable ZIP, without a manifest.
    ("png_zip_polyglot.png", "invalid_manifest"),
    ("empty.png", "archive_corrupt"),
];

/// Images accepted as the image they also are; their payload must not be served.
const ACCEPTED_WITH_PAYLOAD: &[&str] = &[
    "png_html_polyglot.png",
    "png_zip_polyglot.png",
    "huge_text_chunk.png",
    "png_named.webp",
];

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/uploads/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `Content-Type` a client would send for the file (the service reads the bytes only).
fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("webp") => "image/webp",
        Some("svg") => "image/svg+xml",
        Some("gif") => "image/gif",
        Some("jpg") => "image/jpeg",
        Some("zip") => "application/zip",
        _ => "image/png",
    }
}

/// A creator's draft of `kind`, holding one valid sticker so that a change would show.
struct Draft<'a> {
    app: &'a TestApp,
    token: String,
    id: String,
    kind: &'static str,
}

impl<'a> Draft<'a> {
    async fn new(app: &'a TestApp, token: &str, kind: &'static str) -> Draft<'a> {
        let res = app
            .post(
                "/v1/creators/me/packs",
                token,
                &json!({"title": format!("Attacks {kind}"), "kind": kind}),
            )
            .await;
        let id = ok_json(res, StatusCode::CREATED).await["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let draft = Draft {
            app,
            token: token.to_owned(),
            id,
            kind,
        };
        let control = match kind {
            "animated" => "control_animated.png",
            _ => "control.png",
        };
        ok_json(
            draft.put(1, control, fixture(control)).await,
            StatusCode::OK,
        )
        .await;
        draft
    }

    async fn put(&self, position: u32, name: &str, body: Vec<u8>) -> reqwest::Response {
        let path = format!("/v1/creators/me/packs/{}/stickers/{position}", self.id);
        self.app
            .client
            .put(self.app.url(&path))
            .query(&[("emoji", "😀")])
            .bearer_auth(&self.token)
            .header("content-type", content_type(name))
            .body(body)
            .send()
            .await
            .expect("upload")
    }

    async fn post_archive(&self, body: Vec<u8>) -> reqwest::Response {
        let path = format!("/v1/creators/me/packs/{}/archive", self.id);
        self.app
            .client
            .post(self.app.url(&path))
            .bearer_auth(&self.token)
            .header("content-type", "application/zip")
            .body(body)
            .send()
            .await
            .expect("archive")
    }

    /// A minimal valid archive around one image: a manifest naming `name`, and the file,
    /// stored uncompressed so the image checks answer, not the archive's ratio check.
    fn archive_of(&self, name: &str, image: Vec<u8>) -> Vec<u8> {
        let manifest = format!(
            "title = \"Attack\"\nkind = \"{}\"\n\n[[stickers]]\nfile = \"{name}\"\nemoji = \"😀\"\n",
            self.kind
        );
        stored_zip(&[("pack.toml", manifest.into_bytes()), (name, image)])
    }

    /// What a refusal must leave alone: the draft as its creator sees it, and the blobs.
    async fn snapshot(&self) -> (Value, usize) {
        let res = self
            .app
            .get(&format!("/v1/creators/me/packs/{}", self.id), &self.token)
            .await;
        let pack = ok_json(res, StatusCode::OK).await;
        (pack, blob_count(self.app))
    }

    /// `res` is the problem `code`, the draft and the blobs are unchanged, the service alive.
    async fn assert_refused(
        &self,
        res: reqwest::Response,
        before: &(Value, usize),
        what: &str,
        code: &str,
    ) -> Value {
        let status = res.status();
        assert_eq!(status, UNPROCESSABLE, "{what}: answered {status}");
        let problem = assert_problem(res, UNPROCESSABLE, code).await;
        let after = self.snapshot().await;
        assert_eq!(before.0, after.0, "{what}: the draft changed");
        assert_eq!(before.1, after.1, "{what}: a blob was stored");
        assert_healthy(self.app).await;
        problem
    }
}

/// A ZIP of `entries`, stored (not compressed).
fn stored_zip(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        w.start_file(*name, options).expect("zip entry");
        w.write_all(bytes).expect("zip write");
    }
    w.finish().expect("zip").into_inner()
}

/// Files in the app's blob folder, at any depth.
fn blob_count(app: &TestApp) -> usize {
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

async fn assert_healthy(app: &TestApp) {
    for route in ["/healthz", "/readyz"] {
        let res = app.client.get(app.url(route)).send().await.expect(route);
        assert_eq!(res.status(), StatusCode::OK, "{route}");
    }
}

/// Served bytes (to the creator: the pack is a draft) are one PNG of ours: signature, no
/// metadata chunk, nothing after IEND, none of the payloads the corpus hides, and it decodes to
/// a `side`×`side` square (512 the sticker, 128 its thumbnail).
async fn assert_served_clean(app: &TestApp, token: &str, url: &str, side: u32, what: &str) {
    let res = app.get(url, token).await;
    assert_eq!(res.status(), StatusCode::OK, "{what}");
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/png"),
        "{what}"
    );
    let served = res.bytes().await.expect("blob bytes");
    assert!(
        served.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{what}: not a PNG"
    );
    let mut at = 8;
    let mut kinds = Vec::new();
    while at + 8 <= served.len() {
        let length = u32::from_be_bytes(served[at..at + 4].try_into().expect("4 bytes")) as usize;
        kinds.push(served[at + 4..at + 8].to_vec());
        at += 12 + length;
        if kinds.last().is_some_and(|k| k == b"IEND") {
            break;
        }
    }
    assert_eq!(at, served.len(), "{what}: bytes after IEND");
    for kind in &kinds {
        assert!(
            matches!(&kind[..], b"IHDR" | b"IDAT" | b"IEND"),
            "{what}: served a {} chunk",
            String::from_utf8_lossy(kind)
        );
    }
    for payload in [&b"<html"[..], b"<script", b"PK\x03\x04", b"PK\x01\x02"] {
        assert!(
            !served.windows(payload.len()).any(|w| w == payload),
            "{what}: served {:?}",
            String::from_utf8_lossy(payload)
        );
    }
    let decoded = image::load_from_memory(&served).expect("a PNG we encoded");
    assert_eq!((decoded.width(), decoded.height()), (side, side), "{what}");
}

// Each attack image by PUT: a 422 with its code; the sticker already there, the blobs and the
// service untouched. A valid upload still passes afterwards (no decode permit was leaked).
both!(
    attack_images_are_refused_by_put_and_change_nothing,
    |b: Backend| async move {
        let app = spawn(b).await;
        let (_, token) = creator(&app).await;
        for (kind, cases) in [("static", STATIC_REFUSALS), ("animated", ANIMATED_REFUSALS)] {
            let draft = Draft::new(&app, &token, kind).await;
            let before = draft.snapshot().await;
            for (name, code) in cases {
                let res = draft.put(1, name, fixture(name)).await;
                let what = format!("PUT {name} to a {kind} pack");
                draft.assert_refused(res, &before, &what, code).await;
            }
            let control = match kind {
                "animated" => "control_animated.png",
                _ => "control.png",
            };
            ok_json(
                draft.put(2, control, fixture(control)).await,
                StatusCode::OK,
            )
            .await;
        }
    }
);

// Each attack image as the one sticker of a minimal, valid archive: the same code, the file
// named in the detail, and the draft (stickers and texts) unchanged.
both!(
    attack_images_inside_an_archive_are_refused_and_change_nothing,
    |b: Backend| async move {
        let app = spawn(b).await;
        let (_, token) = creator(&app).await;
        for (kind, cases) in [("static", STATIC_REFUSALS), ("animated", ANIMATED_REFUSALS)] {
            let draft = Draft::new(&app, &token, kind).await;
            let before = draft.snapshot().await;
            for (name, code) in cases {
                let res = draft
                    .post_archive(draft.archive_of(name, fixture(name)))
                    .await;
                let what = format!("{name} inside an archive for a {kind} pack");
                let problem = draft.assert_refused(res, &before, &what, code).await;
                let detail = problem["detail"].as_str().unwrap_or_default();
                assert!(detail.starts_with(&format!("{name}:")), "{what}: {problem}");
            }
            let control = match kind {
                "animated" => "control_animated.png",
                _ => "control.webp",
            };
            let res = draft
                .post_archive(draft.archive_of(control, fixture(control)))
                .await;
            let pack = ok_json(res, StatusCode::OK).await;
            assert_eq!(pack["stickers"].as_array().map(Vec::len), Some(1));
        }
    }
);

// Bombs, zip-slip, symbolic links, nesting, a polyglot and an empty body sent as archives:
// refused whole, before any image is decoded or stored.
both!(
    attack_archives_are_refused_and_change_nothing,
    |b: Backend| async move {
        let app = spawn(b).await;
        let (_, token) = creator(&app).await;
        let draft = Draft::new(&app, &token, "static").await;
        let before = draft.snapshot().await;
        for (name, code) in ARCHIVE_REFUSALS {
            let res = draft.post_archive(fixture(name)).await;
            let what = format!("POST {name} as an archive");
            draft.assert_refused(res, &before, &what, code).await;
        }
        // Both archive slots are free again: a valid archive goes through.
        let res = draft
            .post_archive(draft.archive_of("control.png", fixture("control.png")))
            .await;
        ok_json(res, StatusCode::OK).await;
    }
);

// Polyglots, a metadata bomb and a PNG named .webp are PNGs: accepted by PUT and by archive,
// and what is served is our re-encoding, with neither the trailing HTML or ZIP nor the text.
both!(
    image_polyglots_are_accepted_and_served_without_their_payload,
    |b: Backend| async move {
        let app = spawn(b).await;
        let (_, token) = creator(&app).await;
        let draft = Draft::new(&app, &token, "static").await;
        for (i, name) in ACCEPTED_WITH_PAYLOAD.iter().enumerate() {
            let position = u32::try_from(i + 2).expect("a few positions");
            let res = draft.put(position, name, fixture(name)).await;
            let sticker = ok_json(res, StatusCode::OK).await;
            for (url, side) in [("image_url", 512), ("thumbnail_url", 128)] {
                let url = sticker[url].as_str().expect("url");
                assert_served_clean(&app, &token, url, side, &format!("PUT {name}")).await;
            }

            let res = draft
                .post_archive(draft.archive_of(name, fixture(name)))
                .await;
            let pack = ok_json(res, StatusCode::OK).await;
            let stickers = pack["stickers"].as_array().expect("stickers");
            assert_eq!(stickers.len(), 1, "{name}: {pack}");
            let url = stickers[0]["image_url"].as_str().expect("url");
            assert_served_clean(&app, &token, url, 512, &format!("{name} inside an archive")).await;
        }
        assert_healthy(&app).await;
    }
);
