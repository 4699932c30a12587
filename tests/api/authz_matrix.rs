//! Who may call what, as one table: every operation in `openapi.yaml` × nine callers → the
//! outcome class the docs and `auth::Caller` promise. Path parameters name real resources
//! owned by "the user", so other users meet them as someone else's (404, not 403). Only the
//! authorization outcome is asserted: an allowed caller may still get 409, 422 or 503 (no
//! Stripe here) for reasons of its own.

use crate::both;
use crate::helpers::{spawn, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The outcome class a caller must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Gets past authorization: anything but 401, 403 and 404.
    Allowed,
    /// 401: no credential.
    Unauthenticated,
    /// 403: a credential of the wrong kind, or a user without the role.
    Forbidden,
    /// 404: the resource is someone else's (ids cannot be probed).
    NotFound,
}
use Expect::{Allowed as A, Forbidden as F, NotFound as N, Unauthenticated as U};

impl Expect {
    fn holds(self, status: StatusCode) -> bool {
        match self {
            A => ![401, 403, 404].contains(&status.as_u16()),
            U => status == StatusCode::UNAUTHORIZED,
            F => status == StatusCode::FORBIDDEN,
            N => status == StatusCode::NOT_FOUND,
        }
    }
}

/// The callers, in the order of every row's columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Anonymous,
    /// Owns the fixtures; a creator (role and profile).
    User,
    AnotherUser,
    CreatorWithoutProfile,
    Moderator,
    Support,
    Finance,
    Admin,
    ServiceKey,
}
use Who::*;

const CALLERS: [Who; 9] = [
    Anonymous,
    User,
    AnotherUser,
    CreatorWithoutProfile,
    Moderator,
    Support,
    Finance,
    Admin,
    ServiceKey,
];

// Columns:                  anon user other creator mod support finance admin service
/// No credential needed; any credential is ignored (the Stripe webhook's is its signature).
const PUBLIC: [Expect; 9] = [A, A, A, A, A, A, A, A, A];
/// Any signed-in user, about themselves; service credentials are not users.
const ANY_USER: [Expect; 9] = [U, A, A, A, A, A, A, A, F];
/// The user's own resource: every other user, staff included, is told it does not exist.
const OWNER_ONLY: [Expect; 9] = [U, A, N, N, N, N, N, N, F];
/// The `creator` role (admins hold it too) and a creator profile (404 without one).
const CREATOR: [Expect; 9] = [U, A, F, N, F, F, F, N, F];
/// Any user with the `creator` role may register a profile (the owner has one: 409).
const REGISTER: [Expect; 9] = [U, A, F, A, F, F, F, A, F];
/// Moderators (admins hold the role too); nobody reviews their own pack.
const MODERATOR: [Expect; 9] = [U, F, F, F, A, F, F, A, F];
const SUPPORT: [Expect; 9] = [U, F, F, F, F, A, F, A, F];
const FINANCE: [Expect; 9] = [U, F, F, F, F, F, A, A, F];
const ADMIN: [Expect; 9] = [U, F, F, F, F, F, F, A, F];
/// Messenger servers only.
const SERVICE: [Expect; 9] = [U, F, F, F, F, F, F, F, A];

/// Cells where the service is known to let through (or turn away) a caller wrongly: skipped
/// with a note until fixed. (method, path template, caller).
const KNOWN_GAPS: &[(&str, &str, Who)] = &[];

/// A resource a path parameter names.
#[derive(Clone, Copy, Debug)]
enum Param {
    Owner,
    /// The user's subscription made by support (not billed by Stripe).
    OwnSubscription,
    /// The user's per-seat subscription, with `SeatedMember` seated.
    TeamSubscription,
    SeatedMember,
    Donation,
    Product,
    Price,
    Grant,
    Order,
    /// A spare credential for admins to revoke (not the one `ServiceKey` calls with).
    Credential,
    LedgerAccount,
    /// The owner's draft pack, with stickers at positions 1 and 2.
    DraftPack,
    Position1,
    Position2,
    /// A free pack of the owner's on sale, its first sticker and that sticker's image.
    SalePack,
    StickerId,
    Blob,
    /// A notice against the sale pack, and the owner's appeal of a suspension of another pack.
    Notice,
    Appeal,
    /// A pending edit of the sale pack's texts.
    Revision,
    /// A payout run with one draft line (the owner's), drawn by another finance user.
    PayoutRun,
    PayoutLine,
    /// This month, `yyyy-mm`.
    ThisMonth,
}
use Param::*;

struct Row {
    method: &'static str,
    path: &'static str,
    expect: [Expect; 9],
    params: &'static [Param],
    body: Option<fn(&Fixtures) -> Value>,
    /// A query string its callers send (a required parameter), without the `?`.
    query: Option<&'static str>,
}

fn row(method: &'static str, path: &'static str, expect: [Expect; 9]) -> Row {
    Row {
        method,
        path,
        expect,
        params: &[],
        body: None,
        query: None,
    }
}

impl Row {
    /// Values for the path's `{…}` parameters, in order.
    fn of(mut self, params: &'static [Param]) -> Row {
        self.params = params;
        self
    }

    fn body(mut self, body: fn(&Fixtures) -> Value) -> Row {
        self.body = Some(body);
        self
    }

    fn query(mut self, query: &'static str) -> Row {
        self.query = Some(query);
        self
    }
}

/// The matrix: one row per operation of `openapi.yaml`.
fn rows() -> Vec<Row> {
    vec![
        row("GET", "/healthz", PUBLIC),
        row("GET", "/readyz", PUBLIC),
        row("GET", "/metrics", PUBLIC),
        row("GET", "/.well-known/jwks.json", PUBLIC),
        row("GET", "/v1/plans", PUBLIC),
        row("POST", "/v1/webhooks/stripe", PUBLIC).body(|_| json!({})),
        row("POST", "/v1/webhooks/stripe-connect", PUBLIC).body(|_| json!({})),
        // The user's own view.
        row("GET", "/v1/me/entitlements", ANY_USER),
        row("POST", "/v1/me/entitlement-token", ANY_USER),
        row("GET", "/v1/me/subscriptions", ANY_USER),
        row("POST", "/v1/me/subscriptions", ANY_USER)
            .body(|_| json!({"price_id": "price_premium_monthly_usd"})),
        row("GET", "/v1/me/orders", ANY_USER),
        row("POST", "/v1/me/orders", ANY_USER).body(|f| json!({"price_id": f.price})),
        row("GET", "/v1/me/donations", ANY_USER),
        row("POST", "/v1/me/donations", ANY_USER)
            .body(|_| json!({"amount_minor": 500, "currency": "USD"})),
        row("GET", "/v1/me/subscriptions/{id}/seats", OWNER_ONLY).of(&[TeamSubscription]),
        row("POST", "/v1/me/subscriptions/{id}/seats", OWNER_ONLY)
            .of(&[TeamSubscription])
            .body(|_| json!({"user_id": "matrix-new-member"})),
        row(
            "DELETE",
            "/v1/me/subscriptions/{id}/seats/{user_id}",
            OWNER_ONLY,
        )
        .of(&[TeamSubscription, SeatedMember]),
        row("POST", "/v1/me/subscriptions/{id}/cancel", OWNER_ONLY).of(&[OwnSubscription]),
        row("POST", "/v1/me/subscriptions/{id}/resume", OWNER_ONLY).of(&[OwnSubscription]),
        row("POST", "/v1/me/subscriptions/{id}/quantity", OWNER_ONLY)
            .of(&[OwnSubscription])
            .body(|_| json!({"quantity": 2})),
        row("POST", "/v1/me/subscriptions/{id}/plan", OWNER_ONLY)
            .of(&[OwnSubscription])
            .body(|_| json!({"price_id": "price_premium_monthly_usd"})),
        row("POST", "/v1/me/donations/{id}/cancel", OWNER_ONLY).of(&[Donation]),
        row("GET", "/v1/creators/me/earnings", CREATOR),
        // Creators' packs (the owner's draft), in the order a pack lives.
        row("GET", "/v1/creators/me", CREATOR),
        row("PATCH", "/v1/creators/me", CREATOR).body(|_| json!({"country": "DE"})),
        row("GET", "/v1/creators/me/packs", CREATOR),
        row("POST", "/v1/creators/me/packs", CREATOR)
            .body(|_| json!({"title": "Matrix", "kind": "static"})),
        row("GET", "/v1/creators/me/packs/{id}", CREATOR).of(&[DraftPack]),
        row("PATCH", "/v1/creators/me/packs/{id}", CREATOR)
            .of(&[DraftPack])
            .body(|_| json!({"title": "Matrix draft"})),
        row(
            "PUT",
            "/v1/creators/me/packs/{id}/stickers/{position}",
            CREATOR,
        )
        .of(&[DraftPack, Position1]),
        row(
            "DELETE",
            "/v1/creators/me/packs/{id}/stickers/{position}",
            CREATOR,
        )
        .of(&[DraftPack, Position2]),
        row("PUT", "/v1/creators/me/packs/{id}/cover", CREATOR).of(&[DraftPack]),
        row("POST", "/v1/creators/me/packs/{id}/archive", CREATOR).of(&[DraftPack]),
        row("POST", "/v1/creators/me/packs/{id}/submit", CREATOR).of(&[DraftPack]),
        row("GET", "/v1/moderation/packs", MODERATOR),
        row("GET", "/v1/moderation/packs/{id}", MODERATOR).of(&[DraftPack]),
        row("POST", "/v1/moderation/packs/{id}/claim", MODERATOR).of(&[DraftPack]),
        row("POST", "/v1/moderation/packs/{id}/reject", MODERATOR)
            .of(&[DraftPack])
            .body(|_| json!({"reasons": ["other"]})),
        row("POST", "/v1/moderation/packs/{id}/approve", MODERATOR).of(&[DraftPack]),
        row("POST", "/v1/creators/me/packs/{id}/release", CREATOR).of(&[DraftPack]),
        row("POST", "/v1/moderation/packs/{id}/suspend", MODERATOR)
            .of(&[DraftPack])
            .body(|_| json!({"reasons": ["other"]})),
        row("POST", "/v1/creators/me/packs/{id}/retire", CREATOR).of(&[DraftPack]),
        // Takedowns.
        row("POST", "/v1/notices", ANY_USER).body(|f| {
            json!({"pack_id": f.sale_pack, "reason": "other", "claim": "Matrix.",
                   "contact": "matrix@example.com"})
        }),
        row("GET", "/v1/moderation/notices", MODERATOR),
        row("POST", "/v1/moderation/notices/{id}/dismiss", MODERATOR).of(&[Notice]),
        row("POST", "/v1/moderation/packs/{id}/remove", MODERATOR)
            .of(&[DraftPack])
            .body(|_| json!({"reasons": ["other"]})),
        row("GET", "/v1/moderation/packs/{id}/refunds", MODERATOR).of(&[SalePack]),
        row("POST", "/v1/creators/me/packs/{id}/appeal", CREATOR)
            .of(&[DraftPack])
            .body(|_| json!({"statement": "Matrix."})),
        row("GET", "/v1/moderation/revisions", MODERATOR),
        row("GET", "/v1/moderation/revisions/{id}", MODERATOR).of(&[Revision]),
        row("POST", "/v1/moderation/revisions/{id}/reject", MODERATOR)
            .of(&[Revision])
            .body(|_| json!({"reasons": ["other"]})),
        row("POST", "/v1/moderation/revisions/{id}/approve", MODERATOR).of(&[Revision]),
        row("GET", "/v1/moderation/appeals", MODERATOR),
        row("POST", "/v1/moderation/appeals/{id}/decide", MODERATOR)
            .of(&[Appeal])
            .body(|_| json!({"outcome": "upheld"})),
        // The store and delivery.
        row("GET", "/v1/store/packs", ANY_USER),
        row("GET", "/v1/store/packs/{id}", ANY_USER).of(&[SalePack]),
        row("POST", "/v1/me/packs/{id}/claim", ANY_USER).of(&[SalePack]),
        row("GET", "/v1/me/packs", ANY_USER),
        row("GET", "/v1/blobs/{sha256}", PUBLIC).of(&[Blob]),
        row("GET", "/v1/packs/{id}/stickers/{sticker_id}", PUBLIC).of(&[SalePack, StickerId]),
        // Messenger servers.
        row("POST", "/v1/entitlements/check", SERVICE).body(|f| json!({"user_ids": [f.owner]})),
        // Finance.
        row("GET", "/v1/admin/ledger/accounts/{id}", FINANCE).of(&[LedgerAccount]),
        row("GET", "/v1/creators/me/bank-account", CREATOR),
        row("GET", "/v1/creators/me/statements", CREATOR),
        row("GET", "/v1/creators/me/statements/{month}", CREATOR).of(&[ThisMonth]),
        row("GET", "/v1/admin/creators/{id}/statements/{month}", FINANCE).of(&[Owner, ThisMonth]),
        row("PUT", "/v1/creators/me/bank-account", CREATOR).body(|_| bank_account()),
        // The owner's Stripe account is a stored fixture (not chosen: the bank account pays).
        row("GET", "/v1/creators/me/payout-account", CREATOR),
        row("POST", "/v1/creators/me/payout-account", CREATOR),
        row("POST", "/v1/admin/creators/{id}/payout-hold", FINANCE)
            .of(&[Owner])
            .body(|_| json!({"held": false, "reason": "matrix"})),
        row("POST", "/v1/admin/stripe-fees/sync", FINANCE),
        row("GET", "/v1/admin/payout-runs", FINANCE),
        row("GET", "/v1/admin/payout-runs/{id}", FINANCE).of(&[PayoutRun]),
        row("GET", "/v1/admin/payout-runs/{id}/lines", FINANCE).of(&[PayoutRun]),
        row("GET", "/v1/admin/payout-runs/{id}/audit", FINANCE).of(&[PayoutRun]),
        row("GET", "/v1/admin/payout-runs/{id}/bank-file.csv", FINANCE).of(&[PayoutRun]),
        row("GET", "/v1/admin/payout-runs/{id}/sepa.xml", FINANCE).of(&[PayoutRun]),
        row(
            "POST",
            "/v1/admin/payout-runs/{id}/lines/{line_id}/outcome",
            FINANCE,
        )
        .of(&[PayoutRun, PayoutLine])
        .body(|_| json!({"outcome": "paid"})),
        row("POST", "/v1/admin/payout-runs/{id}/send", FINANCE).of(&[PayoutRun]),
        row("POST", "/v1/admin/payout-runs/{id}/outcome", FINANCE)
            .of(&[PayoutRun])
            .body(|_| json!({"outcome": "paid"})),
        row("POST", "/v1/admin/payout-runs/{id}/approve", FINANCE)
            .of(&[PayoutRun])
            .body(|_| json!({"digest": "0".repeat(64)})),
        row("POST", "/v1/admin/payout-runs/{id}/cancel", FINANCE).of(&[PayoutRun]),
        // After the rows that need its draft line: it draws no line (the owner's is open).
        row("POST", "/v1/admin/payout-runs", FINANCE).body(|_| json!({})),
        // Tax profiles: filed first, so the rows after it name one.
        row("PUT", "/v1/creators/me/tax-profile", CREATOR).body(|_| tax_profile()),
        row("GET", "/v1/creators/me/tax-profile", CREATOR),
        row("GET", "/v1/admin/creators/{id}/tax-profile", FINANCE).of(&[Owner]),
        row(
            "POST",
            "/v1/admin/creators/{id}/tax-profile/status",
            FINANCE,
        )
        .of(&[Owner])
        .body(|_| json!({"status": "valid", "reason": "matrix"})),
        row("GET", "/v1/admin/tax/creator-totals", FINANCE).query("year=2025"),
        row("GET", "/v1/admin/exports/ledger.csv", FINANCE).query("from=2026-01-01&to=2026-01-31"),
        row("GET", "/v1/admin/exports/journal.csv", FINANCE).query("from=2026-01-01&to=2026-01-31"),
        // Support.
        row("GET", "/v1/admin/users/{id}", SUPPORT).of(&[Owner]),
        row("POST", "/v1/admin/grants", SUPPORT).body(
            |f| json!({"user_id": f.owner, "entitlement_key": "premium", "reason": "matrix"}),
        ),
        row("DELETE", "/v1/admin/grants/{id}", SUPPORT).of(&[Grant]),
        row("POST", "/v1/admin/subscriptions", SUPPORT)
            .body(|f| json!({"user_id": f.owner, "price_id": "price_premium_monthly_usd"})),
        row("PATCH", "/v1/admin/subscriptions/{id}", SUPPORT)
            .of(&[OwnSubscription])
            .body(|_| json!({})),
        row("POST", "/v1/admin/orders", SUPPORT)
            .body(|f| json!({"buyer_id": f.owner, "price_id": f.price})),
        row("PATCH", "/v1/admin/orders/{id}", SUPPORT)
            .of(&[Order])
            .body(|_| json!({"status": "paid"})),
        row("POST", "/v1/admin/orders/{id}/refund", SUPPORT)
            .of(&[Order])
            .body(|_| json!({})),
        // Admin.
        row("GET", "/v1/admin/products", ADMIN),
        row("POST", "/v1/admin/products", ADMIN)
            .body(|_| json!({"kind": "sticker_pack", "name": "Matrix"})),
        row("PATCH", "/v1/admin/products/{id}", ADMIN)
            .of(&[Product])
            .body(|_| json!({})),
        row("PUT", "/v1/admin/products/{id}/entitlements", ADMIN)
            .of(&[Product])
            .body(|_| json!({"entitlements": []})),
        row("POST", "/v1/admin/products/{id}/prices", ADMIN)
            .of(&[Product])
            .body(|_| json!({"amount_minor": 299, "currency": "USD"})),
        row("PATCH", "/v1/admin/prices/{id}", ADMIN)
            .of(&[Price])
            .body(|_| json!({"active": true})),
        row("GET", "/v1/admin/creators/{user_id}", ADMIN).of(&[Owner]),
        row("PUT", "/v1/admin/creators/{user_id}", ADMIN)
            .of(&[Owner])
            .body(|_| json!({"display_name": "Olga", "revenue_share_bps": 7000})),
        row("GET", "/v1/admin/entitlement-definitions", ADMIN),
        row("POST", "/v1/admin/entitlement-definitions", ADMIN)
            .body(|_| json!({"key": "matrix_flag", "kind": "boolean"})),
        row("GET", "/v1/admin/service-credentials", ADMIN),
        row("POST", "/v1/admin/service-credentials", ADMIN).body(|_| json!({"name": "matrix"})),
        row("DELETE", "/v1/admin/service-credentials/{id}", ADMIN).of(&[Credential]),
        row("POST", "/v1/admin/signing-keys/rotate", ADMIN),
        // Last: it gives the creator without a profile one.
        row("POST", "/v1/creators/me", REGISTER)
            .body(|_| json!({"display_name": "New", "country": "JP", "payout_currency": "JPY"})),
    ]
}

/// The callers' credentials and the resources the rows' paths name.
struct Fixtures {
    owner: &'static str,
    tokens: Vec<(Who, String)>,
    own_subscription: String,
    team_subscription: String,
    seated_member: &'static str,
    donation: String,
    product: String,
    price: String,
    grant: String,
    order: String,
    credential: String,
    ledger_account: String,
    draft_pack: String,
    sale_pack: String,
    sticker_id: String,
    blob: String,
    notice: String,
    appeal: String,
    revision: String,
    payout_run: String,
    payout_line: String,
    this_month: String,
}

/// A valid bank account in USD.
fn bank_account() -> Value {
    json!({"holder_name": "Olga Matrix", "iban": "DE89370400440532013000", "town": "Berlin",
           "country": "DE", "currency": "USD"})
}

/// A valid W-9 (a US person's SSN).
fn tax_profile() -> Value {
    json!({"kind": "us_person", "legal_name": "Olga Matrix", "tin": "123-45-6789",
           "tin_type": "ssn", "country": "US", "certify": true})
}

impl Fixtures {
    fn credential_of(&self, who: Who) -> Option<&str> {
        self.tokens
            .iter()
            .find(|(w, _)| *w == who)
            .map(|(_, t)| t.as_str())
    }

    fn value(&self, param: Param) -> &str {
        match param {
            Owner => self.owner,
            OwnSubscription => &self.own_subscription,
            TeamSubscription => &self.team_subscription,
            SeatedMember => self.seated_member,
            Donation => &self.donation,
            Product => &self.product,
            Price => &self.price,
            Grant => &self.grant,
            Order => &self.order,
            Credential => &self.credential,
            LedgerAccount => &self.ledger_account,
            DraftPack => &self.draft_pack,
            Position1 => "1",
            Position2 => "2",
            SalePack => &self.sale_pack,
            StickerId => &self.sticker_id,
            Blob => &self.blob,
            Notice => &self.notice,
            Appeal => &self.appeal,
            Revision => &self.revision,
            PayoutRun => &self.payout_run,
            PayoutLine => &self.payout_line,
            ThisMonth => &self.this_month,
        }
    }

    /// The row's path with its parameters filled in.
    fn path(&self, row: &Row) -> String {
        let mut values = row.params.iter().map(|p| self.value(*p));
        let filled: Vec<String> = row
            .path
            .split('/')
            .map(|seg| match seg.starts_with('{') {
                true => values.next().expect("a value per parameter").to_owned(),
                false => seg.to_owned(),
            })
            .collect();
        assert!(values.next().is_none(), "{}: too many params", row.path);
        let path = filled.join("/");
        match row.query {
            Some(query) => format!("{path}?{query}"),
            None => path,
        }
    }
}

fn id_of(answer: &Value) -> String {
    answer["id"].as_str().expect("id").to_owned()
}

async fn created(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    assert_eq!(status, StatusCode::CREATED, "fixture: {body}");
    body
}

async fn fixtures(app: &TestApp) -> Fixtures {
    let owner = "matrix-owner";
    let res = app
        .client
        .put(app.url(&format!("/v1/admin/creators/{owner}")))
        .bearer_auth(app.admin())
        .json(&json!({"display_name": "Olga", "revenue_share_bps": 7000}))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK, "creator profile");
    let (product, price) = app.sticker_pack("matrix_pack", 199).await;
    let grant = id_of(&app.grant(owner, "premium", None).await);
    let own_subscription = id_of(&app.subscribe(owner, "price_premium_monthly_usd", 1).await);
    let team_subscription = id_of(&app.subscribe(owner, "price_team_monthly_usd", 3).await);
    let seated_member = "matrix-member";
    let token = app.token(owner, &["creator"]);
    let seats = format!("/v1/me/subscriptions/{team_subscription}/seats");
    created(
        app.post(&seats, &token, &json!({"user_id": seated_member}))
            .await,
    )
    .await;
    let order = json!({"buyer_id": owner, "price_id": price});
    let order = id_of(&created(app.post("/v1/admin/orders", &app.support(), &order).await).await);
    let spare = json!({"name": "to-revoke"});
    let spare = app
        .post("/v1/admin/service-credentials", &app.admin(), &spare)
        .await;
    let credential = id_of(&created(spare).await);
    let (donation, ledger_account) = stored_fixtures(app, owner).await;
    // Packs: a free one on sale, and a draft with two stickers.
    let sale = crate::packs::pack_on_sale(app, &token, None, 1).await;
    let sale_pack = id_of(&sale);
    let sticker_id = sale["stickers"][0]["sticker_id"]
        .as_str()
        .expect("sticker id")
        .to_owned();
    let blob = sale["stickers"][0]["image_sha256"]
        .as_str()
        .expect("sha")
        .to_owned();
    let res = app
        .post(
            "/v1/creators/me/packs",
            &token,
            &json!({"title": "Draft", "kind": "static"}),
        )
        .await;
    let draft_pack = id_of(&created(res).await);
    for position in [1, 2] {
        let png = crate::packs::sticker_png(300, 50);
        let res = crate::packs::upload(app, &token, &draft_pack, position, "😀", png).await;
        assert_eq!(res.status(), StatusCode::OK, "sticker fixture");
    }
    let notice = json!({"pack_id": sale_pack, "reason": "other", "claim": "Fixture.",
        "contact": "matrix@example.com"});
    let notice = app
        .post("/v1/notices", &app.token("matrix-other", &[]), &notice)
        .await;
    let notice = id_of(&created(notice).await);
    let suspended = id_of(&crate::packs::pack_on_sale(app, &token, None, 1).await);
    let res = app
        .post(
            &format!("/v1/moderation/packs/{suspended}/suspend"),
            &app.token("matrix-mod-2", &["moderator"]),
            &json!({"reasons": ["other"]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "suspension fixture");
    let appeal = app
        .post(
            &format!("/v1/creators/me/packs/{suspended}/appeal"),
            &token,
            &json!({"statement": "Fixture."}),
        )
        .await;
    let appeal = id_of(&created(appeal).await);
    let revision = app
        .patch(
            &format!("/v1/creators/me/packs/{sale_pack}"),
            &token,
            &json!({"title": "Matrix, revised"}),
        )
        .await;
    assert_eq!(revision.status(), StatusCode::ACCEPTED, "revision fixture");
    let revision = id_of(&revision.json::<Value>().await.expect("json"));
    // A payout run with the owner's line (stored_fixtures made 20.00 USD available).
    let res = app
        .client
        .put(app.url("/v1/creators/me/bank-account"))
        .bearer_auth(&token)
        .json(&bank_account())
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK, "bank account fixture");
    let run = app
        .post(
            "/v1/admin/payout-runs",
            &app.token("matrix-finance-2", &["finance"]),
            &json!({}),
        )
        .await;
    let run = created(run).await;
    let payout_run = id_of(&run);
    let lines = app
        .client
        .get(app.url(&format!("/v1/admin/payout-runs/{payout_run}/lines")))
        .bearer_auth(app.admin())
        .send()
        .await
        .expect("request")
        .json::<Value>()
        .await
        .expect("json");
    let payout_line = lines["lines"][0]["id"]
        .as_str()
        .expect("a payout line for the owner")
        .to_owned();
    let tokens = vec![
        (User, token),
        (AnotherUser, app.token("matrix-other", &[])),
        (
            CreatorWithoutProfile,
            app.token("matrix-creator", &["creator"]),
        ),
        (Moderator, app.token("matrix-moderator", &["moderator"])),
        (Support, app.support()),
        (Finance, app.token("matrix-finance", &["finance"])),
        (Admin, app.admin()),
        (ServiceKey, app.service_key().await),
    ];
    Fixtures {
        owner,
        tokens,
        own_subscription,
        team_subscription,
        seated_member,
        donation,
        product,
        price,
        grant,
        order,
        credential,
        ledger_account,
        draft_pack,
        sale_pack,
        sticker_id,
        blob,
        notice,
        appeal,
        revision,
        payout_run,
        payout_line,
        this_month: chrono::Utc::now().format("%Y-%m").to_string(),
    }
}

/// What only Stripe makes, written straight to the database: a monthly donation by `owner`,
/// a creator sale of theirs on the ledger, and their Stripe Connect account (onboarding not
/// finished, not chosen: their bank account stays their payout method). Returns (donation id,
/// a ledger account id).
async fn stored_fixtures(app: &TestApp, owner: &str) -> (String, String) {
    use kopilka::db::models::donations::{Donation, NewDonation};
    let pool = kopilka::db::connect(&app.db.url, 1).expect("connect");
    let mut conn = pool.get().expect("conn");
    kopilka::db::models::users::ensure(&mut conn, owner).expect("user");
    let donation = Donation::create(
        &mut conn,
        NewDonation {
            donor_id: owner.to_owned(),
            creator_id: None,
            amount_minor: 500,
            currency: "USD".into(),
            recurring: true,
            message: None,
            anonymous: false,
        },
    )
    .expect("donation");
    let usd = kopilka::domain::money::Currency::parse("USD").expect("USD");
    let sale = kopilka::domain::ledger::creator_sale(199, 36, &usd, owner, 7000).expect("sale");
    // Earnings that left their hold, for a payout run to draw (a platform-funded advance, so
    // the posting balances without a second sale).
    let mut available = kopilka::domain::ledger::release(owner, 2000, &usd).expect("release");
    available[0].account = kopilka::domain::ledger::Account::platform(
        kopilka::domain::ledger::AccountKind::PlatformRevenue,
        &usd,
    );
    drop(conn);
    let connect = kopilka::db::models::payouts::ConnectAccount {
        creator_id: owner.to_owned(),
        account_id: "acct_matrix".to_owned(),
        transfers: "inactive".to_owned(),
        details_submitted: false,
        chosen: false,
        cooling_off_until: None,
        event_created: 0,
        updated_at: kopilka::db::models::to_db(chrono::Utc::now()),
    };
    // BEGIN IMMEDIATE on SQLite, as the service posts: the service may be writing meanwhile.
    kopilka::db::transaction(&pool, move |c| {
        kopilka::db::models::payouts::ConnectAccount::insert(c, &connect)?;
        kopilka::db::models::ledger::post(c, "matrix:sale", "matrix", &sale)?;
        Ok(kopilka::db::models::ledger::post(
            c,
            "matrix:available",
            "matrix",
            &available,
        )?)
    })
    .await
    .expect("posting");
    (donation.id, "platform_revenue:platform:USD".to_owned())
}

fn known_gap(row: &Row, who: Who) -> bool {
    KNOWN_GAPS
        .iter()
        .any(|(m, p, w)| *m == row.method && *p == row.path && *w == who)
}

both!(
    every_operation_answers_every_caller_as_the_matrix_says,
    |b: Backend| async move {
        let app = spawn(b).await;
        let fx = fixtures(&app).await;
        let mut wrong = Vec::new();
        let mut gaps_fixed = Vec::new();
        for row in rows() {
            let path = fx.path(&row);
            for (who, expect) in CALLERS.into_iter().zip(row.expect) {
                let mut req = app.client.request(
                    Method::from_bytes(row.method.as_bytes()).unwrap(),
                    app.url(&path),
                );
                if let Some(credential) = fx.credential_of(who) {
                    req = req.bearer_auth(credential);
                }
                if let Some(body) = row.body {
                    req = req.json(&body(&fx));
                }
                let res = req.send().await.expect("request");
                let status = res.status();
                let code = res.json::<Value>().await.ok().map(|b| b["code"].clone());
                let ok = expect.holds(status);
                let line = format!(
                    "{} {} as {who:?}: got {status} {}, expected {expect:?}",
                    row.method,
                    row.path,
                    code.unwrap_or(Value::Null)
                );
                match (known_gap(&row, who), ok) {
                    (true, false) => eprintln!("KNOWN GAP (skipped): {line}"),
                    (true, true) => gaps_fixed.push(line),
                    (false, false) => wrong.push(line),
                    (false, true) => {}
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "authorization differs from the matrix:\n{}",
            wrong.join("\n")
        );
        assert!(
            gaps_fixed.is_empty(),
            "fixed: remove from KNOWN_GAPS:\n{}",
            gaps_fixed.join("\n")
        );
    }
);

#[test]
fn the_matrix_has_exactly_one_row_per_documented_operation() {
    let rows = rows();
    let listed: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    let unique: BTreeSet<(String, String)> = listed.iter().cloned().collect();
    assert_eq!(unique.len(), listed.len(), "an operation has two rows");
    let documented = crate::openapi::documented();
    let missing: Vec<_> = documented.difference(&unique).collect();
    let extra: Vec<_> = unique.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "operations of openapi.yaml missing from the matrix: {missing:?}"
    );
    assert!(extra.is_empty(), "rows not in openapi.yaml: {extra:?}");
    for (method, path, who) in KNOWN_GAPS {
        assert!(
            unique.contains(&(method.to_string(), path.to_string())),
            "KNOWN_GAPS names no row: {method} {path} ({who:?})"
        );
    }
    for row in &rows {
        let holes = row.path.matches('{').count();
        assert_eq!(
            holes,
            row.params.len(),
            "{} {}: params",
            row.method,
            row.path
        );
    }
}
