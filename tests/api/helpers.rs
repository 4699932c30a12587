//! The test harness: `TestApp` speaks the service's language (`app.grant(user, key)`), and
//! `both!` runs a test on SQLite and, when configured, on PostgreSQL.

use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection, RunQueryDsl};
use kopilka::app::Application;
use kopilka::config::{Settings, DEV_HS256_SECRET};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// Defines `<name>_sqlite` and `<name>_postgres` from one async body taking `Backend`.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:expr) => {
        paste::paste! {
            #[actix_web::test]
            async fn [<$name _sqlite>]() {
                ($body)($crate::helpers::Backend::Sqlite).await
            }
            #[actix_web::test]
            #[cfg_attr(
                not(kopilka_postgres_tests),
                ignore = "TEST_POSTGRES_URL was not set when the tests were built"
            )]
            async fn [<$name _postgres>]() {
                ($body)($crate::helpers::Backend::Postgres).await
            }
        }
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn postgres_url() -> Option<String> {
    std::env::var("TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A database that exists for one test and is dropped after it.
pub struct TestDb {
    pub url: String,
    pg_admin: Option<(String, String)>,
}

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        let name = format!("kopilka_test_{}", uuid::Uuid::new_v4().simple());
        match backend {
            Backend::Sqlite => TestDb {
                url: std::env::temp_dir()
                    .join(format!("{name}.db"))
                    .to_string_lossy()
                    .into_owned(),
                pg_admin: None,
            },
            Backend::Postgres => {
                // Given but unset or unreachable is a failure, never a silent pass.
                let admin = postgres_url()
                    .expect("TEST_POSTGRES_URL: set when the tests were built, unset now");
                let mut conn = PgConnection::establish(&admin)
                    .unwrap_or_else(|e| panic!("TEST_POSTGRES_URL is unreachable: {e}"));
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .expect("create test database");
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                TestDb {
                    url: format!("{base}/{name}"),
                    pg_admin: Some((admin, name)),
                }
            }
        }
    }
}

impl TestDb {
    /// The PostgreSQL admin URL and this test's database name (`None` on SQLite).
    pub fn postgres_admin(&self) -> Option<(&str, &str)> {
        self.pg_admin
            .as_ref()
            .map(|(a, n)| (a.as_str(), n.as_str()))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.pg_admin {
            Some((admin, name)) => {
                if let Ok(mut conn) = PgConnection::establish(admin) {
                    let _ =
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut conn);
                }
            }
            None => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", self.url));
                }
            }
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub settings: Settings,
    pub db: std::sync::Arc<TestDb>,
    /// The localstripe webhook endpoint registered for this app, silenced when it stops.
    pub stripe_hook: std::sync::OnceLock<String>,
    /// Stops the app's own system; joined before the database goes.
    running: Option<(
        tokio::sync::oneshot::Sender<()>,
        std::thread::JoinHandle<()>,
    )>,
}

pub fn test_settings(db_url: &str) -> Settings {
    let mut settings = Settings::load(None).expect("default settings load");
    settings.http.port = 0;
    settings.http.host = "127.0.0.1".into();
    settings.database.url = db_url.to_owned().into();
    settings.database.pool_size = 4;
    // Tests state what holdings confer; the free tier everyone holds is tested on its own
    // (`entitlements::the_free_tier_*`), with the demo's default plan switched on.
    settings.entitlements.default_plan = None;
    // Each test's sticker images in a folder of its own.
    let blobs = tempfile::tempdir().expect("blob dir").keep();
    settings.packs.blobs = kopilka::services::blobs::BlobSettings::Local {
        dir: blobs.to_string_lossy().into_owned(),
    };
    settings
}

pub async fn spawn(backend: Backend) -> TestApp {
    let db = std::sync::Arc::new(TestDb::new(backend));
    spawn_with(db, |_| {}).await
}

/// Starts an instance on `db` (shared between instances in multi-instance tests).
pub async fn spawn_with(db: std::sync::Arc<TestDb>, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings(&db.url);
    tweak(&mut settings);
    // The app runs on an actix system of its own thread, so that dropping the TestApp stops
    // all of it (server, jobs, pools, listener) before its database is dropped: an app left
    // running would keep connecting to a database that is gone.
    let (started, port) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app_settings = settings.clone();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = Application::build(app_settings).expect("application builds");
            let handle = app.handle();
            started
                .send(app.port())
                .expect("the test waits for its app");
            let server = actix_web::rt::spawn(app.run_until_stopped());
            let _ = stopped.await;
            handle.stop(false).await;
            let _ = server.await;
        })
    });
    let port = port.recv().expect("application starts");
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        settings,
        db,
        stripe_hook: std::sync::OnceLock::new(),
        running: Some((stop, thread)),
    }
}

/// After every test: the app stops, then the ledger's invariants are checked in its database.
impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.running.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
        if let Some(hook) = self.stripe_hook.get() {
            crate::billing_helpers::silence_hook(hook);
        }
        if !std::thread::panicking() {
            crate::billing_helpers::assert_ledger_invariants(&self.db.url);
        }
    }
}

impl TestApp {
    /// A user token as the identity service would issue it (HS256 in development).
    pub fn token(&self, sub: &str, roles: &[&str]) -> String {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        kopilka::auth::user_tokens::sign_hs256(
            DEV_HS256_SECRET,
            &self.settings.auth.issuer,
            &self.settings.auth.audience,
            sub,
            &roles,
            3600,
        )
        .expect("sign")
    }

    /// A user token whose `country` claim says where the user is.
    pub fn token_in(&self, sub: &str, country: &str) -> String {
        kopilka::auth::user_tokens::sign_hs256_in(
            DEV_HS256_SECRET,
            &self.settings.auth.issuer,
            &self.settings.auth.audience,
            sub,
            &[],
            3600,
            Some(country),
        )
        .expect("sign")
    }

    pub fn support(&self) -> String {
        self.token("support-sam", &["support"])
    }

    pub fn admin(&self) -> String {
        self.token("admin-ada", &["admin"])
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// A public route's JSON.
    pub async fn public(&self, path: &str) -> Value {
        let res = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.expect("json")
    }

    /// A fresh entitlement token for the user: `{token, expires_at, kid}`.
    pub async fn entitlement_token(&self, user: &str) -> Value {
        let res = self
            .client
            .post(self.url("/v1/me/entitlement-token"))
            .bearer_auth(self.token(user, &[]))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.expect("json")
    }

    /// The user's effective entitlements, as the user's own client sees them.
    pub async fn entitlements(&self, user: &str) -> Value {
        let res = self
            .get("/v1/me/entitlements", &self.token(user, &[]))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.expect("json")
    }

    /// The keys the user holds now.
    pub async fn keys(&self, user: &str) -> Vec<String> {
        keys_of(&self.entitlements(user).await)
    }

    pub async fn grant(&self, user: &str, key: &str, expires_at: Option<DateTime<Utc>>) -> Value {
        let res = self
            .post(
                "/v1/admin/grants",
                &self.support(),
                &json!({"user_id": user, "entitlement_key": key, "reason": "test", "expires_at": expires_at}),
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "grant: {:?}",
            res.text().await
        );
        res.json().await.expect("json")
    }

    pub async fn subscribe(&self, user: &str, price: &str, quantity: i32) -> Value {
        let res = self
            .post(
                "/v1/admin/subscriptions",
                &self.support(),
                &json!({"user_id": user, "price_id": price, "quantity": quantity}),
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "subscribe: {:?}",
            res.text().await
        );
        res.json().await.expect("json")
    }

    pub async fn service_key(&self) -> String {
        let res = self
            .post(
                "/v1/admin/service-credentials",
                &self.admin(),
                &json!({"name": "messenger-eu"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.expect("json");
        body["api_key"].as_str().expect("api_key").to_owned()
    }

    /// A sticker pack with a one-off USD price; returns (product id, price id).
    pub async fn sticker_pack(&self, id: &str, amount_minor: i64) -> (String, String) {
        let res = self
            .post(
                "/v1/admin/products",
                &self.admin(),
                &json!({"id": id, "kind": "sticker_pack", "name": format!("Pack {id}")}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED, "{:?}", res.text().await);
        let res = self
            .post(
                &format!("/v1/admin/products/{id}/prices"),
                &self.admin(),
                &json!({"amount_minor": amount_minor, "currency": "USD"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let price: Value = res.json().await.expect("json");
        (id.to_owned(), price["id"].as_str().expect("id").to_owned())
    }
}

pub fn keys_of(answer: &Value) -> Vec<String> {
    answer["entitlements"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["key"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts the response is a problem document with this status and code.
pub async fn assert_problem(res: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status);
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let body: Value = res.json().await.expect("problem json");
    assert_eq!(body["code"], code, "problem: {body}");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["detail"].is_string() && body["title"].is_string() && body["type"].is_string());
    body
}

/// Polls `check` until it holds or the deadline passes; returns whether it held.
pub async fn eventually<F, Fut>(deadline: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
