//! `openapi.yaml` describes exactly the routes the service serves.

use crate::helpers::{spawn, Backend};
use std::collections::BTreeSet;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// (METHOD, path) pairs in the spec.
pub fn documented() -> BTreeSet<(String, String)> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    let spec: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mut out = BTreeSet::new();
    for (path, item) in spec["paths"].as_mapping().unwrap() {
        for m in METHODS {
            if item.get(m).is_some() {
                out.insert((m.to_uppercase(), path.as_str().unwrap().to_owned()));
            }
        }
    }
    out
}

/// The Rust files under `dir`, in its subfolders too (`src/http/views/`).
fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// (METHOD, path) pairs registered in `src/http`:
/// `web::resource("/path").route(web::get()…).route(web::post()…)`.
fn registered() -> BTreeSet<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http");
    let mut out = BTreeSet::new();
    for file in rust_files(std::path::Path::new(dir)) {
        let text = std::fs::read_to_string(file).unwrap();
        let flat: String = text.split_whitespace().collect();
        for part in flat.split("web::resource(\"").skip(1) {
            let Some((path, rest)) = part.split_once('"') else {
                continue;
            };
            for route in rest.split(".route(web::").skip(1) {
                if let Some((method, _)) = route.split_once('(') {
                    out.insert((method.to_uppercase(), path.to_owned()));
                }
            }
        }
    }
    out
}

#[test]
fn every_served_route_is_documented_and_every_documented_route_is_served() {
    let documented = documented();
    let registered = registered();
    assert!(
        registered.len() > 20,
        "route scan found only {registered:?}"
    );
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&registered).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in openapi.yaml: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "in openapi.yaml but not served: {unserved:?}"
    );
}

/// The running service answers every documented operation with something other than
/// "no such route".
#[actix_web::test]
async fn running_service_answers_every_documented_operation() {
    let app = spawn(Backend::Sqlite).await;
    for (method, path) in documented() {
        let concrete: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let res = app
            .client
            .request(method.parse().unwrap(), app.url(&concrete))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        assert!(
            !(status == 404 && body.contains("route not found")) && status != 405,
            "{method} {path}: the service does not serve it ({status} {body})"
        );
    }
}
