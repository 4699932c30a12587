//! A Stripe Connect stand-in for tests: no Stripe emulator has Connect. It answers Express
//! accounts, onboarding links, transfers and their reversals as Stripe's current API does
//! (form-encoded requests; Stripe-shaped objects, errors and events), keeps their state, and lets
//! a test steer what only Stripe or the creator could do (finish onboarding, the platform's
//! balance, outages). Every other call goes on to `relay_to` (localstripe) as it came.
//!
//! What it models, and how closely:
//! - An account starts with each requested capability `inactive` and requirements due;
//!   `onboard` makes them `active`, as finishing Stripe's hosted onboarding does. Only Express
//!   accounts (`type=express`, or `controller[stripe_dashboard][type]=express`).
//! - A transfer needs the destination's `transfers` capability active
//!   (`insufficient_capabilities_for_transfer`) and enough platform balance in its currency
//!   (`balance_insufficient`); a currency never given to `set_balance` has no limit. Transfers
//!   take from that balance and reversals give back.
//! - Idempotency as Stripe's v1 API: the first answer of a POST that got past validation is saved
//!   under its `Idempotency-Key` (refusals such as `balance_insufficient` included) and replayed,
//!   with `Idempotent-Replayed: true`, for the same method, path and parameters; the key with
//!   anything else is a 400 `idempotency_error`. Validation errors (a missing parameter) and
//!   `fail_next`'s failures (an outage in front of Stripe's idempotency layer) are not saved.
//! - Unknown ids answer `resource_missing` (Stripe's exact status and wording for accounts vary).

use crate::billing_helpers::{event, relayed, stripe_proxy};
use crate::stripe_shapes::assert_stripe_shaped;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// The API version the stub's events are rendered in: the app's default (`config/default.toml`).
pub const API_VERSION: &str = "2026-09-30.endive";

/// How long an account link lives, as Stripe's do (seconds).
const LINK_LIFETIME: i64 = 300;

/// Stripe's answer when the platform's available balance cannot cover a transfer (test mode).
const NO_FUNDS: &str = "You have insufficient available funds in your Stripe account. Try adding \
    funds directly to your available balance by creating Charges using the 4000000000000077 test \
    card. See: https://stripe.com/docs/testing#available-balance";

/// One request the stub received: method, path, form (or query) pairs, idempotency key.
pub type Request = (String, String, Vec<(String, String)>, Option<String>);

/// A running stand-in; clones share its state.
#[derive(Clone)]
pub struct ConnectStub {
    state: Arc<Mutex<State>>,
    url: String,
}

#[derive(Default)]
struct State {
    relay_to: String,
    accounts: HashMap<String, Value>,
    /// Each account's attributes as they were before `onboard`/`restrict`/an update changed them,
    /// since its last `account.updated` event was built (that event's `previous_attributes`).
    previous: HashMap<String, Map<String, Value>>,
    /// In creation order.
    transfers: Vec<Value>,
    /// Available platform balance by lowercase currency; absent: unlimited.
    balances: HashMap<String, i64>,
    /// (path prefix, status) the next matching request answers instead.
    failures: Vec<(String, u16)>,
    saved: HashMap<String, Saved>,
    requests: Vec<Request>,
    /// The platform's balance transactions `add_stripe_fee` made, newest first (as Stripe
    /// lists them).
    fees: Vec<Value>,
}

/// The first answer given under an idempotency key, and what it answered.
struct Saved {
    method: String,
    path: String,
    params: Vec<(String, String)>,
    answer: Answer,
}

#[derive(Clone)]
struct Answer {
    status: u16,
    body: Value,
    /// Whether Stripe would save it under the request's idempotency key.
    save: bool,
}

impl Answer {
    fn ok(body: Value) -> Answer {
        Answer {
            status: 200,
            body,
            save: true,
        }
    }

    /// A refusal of a request Stripe ran (saved under its idempotency key, as Stripe does).
    fn refused(code: Option<&str>, param: Option<&str>, message: &str) -> Answer {
        let body = error_body("invalid_request_error", code, param, message);
        Answer {
            status: 400,
            body,
            save: true,
        }
    }

    /// A request Stripe rejects before running it: not saved.
    fn invalid(code: Option<&str>, param: &str, message: &str) -> Answer {
        let body = error_body("invalid_request_error", code, Some(param), message);
        Answer {
            status: 400,
            body,
            save: false,
        }
    }

    fn missing(param: &str) -> Answer {
        let message = format!("Missing required param: {param}.");
        Answer::invalid(Some("parameter_missing"), param, &message)
    }

    fn no_such(status: u16, kind: &str, id: &str, param: &str) -> Answer {
        let message = format!("No such {kind}: '{id}'");
        let body = error_body(
            "invalid_request_error",
            Some("resource_missing"),
            Some(param),
            &message,
        );
        Answer {
            status,
            body,
            save: false,
        }
    }

    fn idempotency_error(key: &str) -> Answer {
        let message = format!(
            "Keys for idempotent requests can only be used with the same parameters they were \
             first used with. Try using a key other than '{key}' if you meant to execute a \
             different request."
        );
        let body = error_body("idempotency_error", None, None, &message);
        Answer {
            status: 400,
            body,
            save: false,
        }
    }

    /// What `fail_next` answers: an outage (5xx), a rate limit (429) or another refusal.
    fn injected(status: u16) -> Answer {
        let body = match status {
            429 => error_body(
                "invalid_request_error",
                Some("rate_limit"),
                None,
                "Too many requests hit the API too quickly. We recommend an exponential backoff \
                 of your requests.",
            ),
            s if s >= 500 => error_body(
                "api_error",
                None,
                None,
                "Something went wrong on Stripe's end. (connect_stub: injected failure)",
            ),
            _ => error_body(
                "invalid_request_error",
                None,
                None,
                "connect_stub: injected failure",
            ),
        };
        Answer {
            status,
            body,
            save: false,
        }
    }
}

/// Stripe's error body.
fn error_body(kind: &str, code: Option<&str>, param: Option<&str>, message: &str) -> Value {
    let mut error = json!({"type": kind, "message": message});
    if let Some(code) = code {
        error["code"] = code.into();
        let doc = format!(
            "https://stripe.com/docs/error-codes/{}",
            code.replace('_', "-")
        );
        error["doc_url"] = doc.into();
    }
    if let Some(param) = param {
        error["param"] = param.into();
    }
    json!({ "error": error })
}

/// One page of a Stripe list (`limit`, default 10; `starting_after` an id of `matching`).
fn list_page(matching: &[&Value], query: &Value, url: &str) -> Answer {
    let limit = query["limit"]
        .as_str()
        .and_then(|l| l.parse().ok())
        .unwrap_or(10);
    let start = query["starting_after"]
        .as_str()
        .and_then(|a| matching.iter().position(|t| t["id"] == a))
        .map_or(0, |i| i + 1);
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|t| (*t).clone())
        .collect();
    let has_more = matching.len() > start + page.len();
    Answer::ok(json!({"object": "list", "data": page, "has_more": has_more, "url": url}))
}

fn stripe_id(prefix: &str, len: usize) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..len]
    )
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Stripe's form encoding (`a[b][c]=v`) as nested JSON, every value a string.
fn nested(form: &[(String, String)]) -> Value {
    let mut root = json!({});
    for (key, value) in form {
        let names: Vec<&str> = key.split('[').map(|p| p.trim_end_matches(']')).collect();
        let Some((last, path)) = names.split_last() else {
            continue;
        };
        let mut at = &mut root;
        for name in path {
            if !at[*name].is_object() {
                at[*name] = json!({});
            }
            at = &mut at[*name];
        }
        at[*last] = Value::String(value.clone());
    }
    root
}

/// `metadata[…]` as Stripe keeps it (an empty value sets nothing).
fn metadata(params: &Value) -> Map<String, Value> {
    let given = params["metadata"].as_object().cloned().unwrap_or_default();
    given.into_iter().filter(|(_, v)| v != "").collect()
}

fn requirements(due: &[&str]) -> Value {
    let reason = (!due.is_empty()).then_some("requirements.past_due");
    json!({
        "alternatives": [], "current_deadline": null, "currently_due": due,
        "disabled_reason": reason, "errors": [], "eventually_due": due, "past_due": due,
        "pending_verification": [],
    })
}

/// What Stripe asks a new US individual's Express account for.
const DUE_AT_START: [&str; 8] = [
    "business_profile.mcc",
    "business_profile.url",
    "business_type",
    "external_account",
    "individual.first_name",
    "individual.last_name",
    "tos_acceptance.date",
    "tos_acceptance.ip",
];

fn positive(value: &Value) -> Option<i64> {
    value.as_str()?.parse::<i64>().ok().filter(|a| *a > 0)
}

impl State {
    /// The stub's answer to a request it owns, and whether it is a replay; `None`: relay it.
    fn answer(
        &mut self,
        method: &str,
        path: &str,
        form: &[(String, String)],
        key: Option<&str>,
    ) -> Option<(Answer, bool)> {
        let rest = path.strip_prefix("/v1/")?.trim_end_matches('/');
        let parts: Vec<&str> = rest.split('/').collect();
        let owned = matches!(
            (method, parts.as_slice()),
            (
                "POST",
                ["accounts"] | ["accounts", _] | ["account_links"] | ["transfers"]
            ) | (
                "GET",
                ["accounts", _]
                    | ["transfers"]
                    | ["transfers", _]
                    | ["transfers", _, "reversals"]
                    | ["balance_transactions"]
            ) | ("POST", ["transfers", _, "reversals"])
        );
        if !owned {
            return None;
        }
        let mut params = form.to_vec();
        params.sort();
        let key = key.filter(|_| method == "POST");
        if let Some((key, saved)) = key.and_then(|k| Some((k, self.saved.get(k)?))) {
            let same = saved.method == method && saved.path == path && saved.params == params;
            return Some(match same {
                true => (saved.answer.clone(), true),
                false => (Answer::idempotency_error(key), false),
            });
        }
        let answer = match (method, parts.as_slice()) {
            ("POST", ["accounts"]) => self.create_account(form),
            ("GET", ["accounts", id]) => self.get_account(id),
            ("POST", ["accounts", id]) => self.update_account(id, form),
            ("POST", ["account_links"]) => self.create_link(form),
            ("POST", ["transfers"]) => self.create_transfer(form),
            ("GET", ["transfers", id]) => self.get_transfer(id, |t| t.clone()),
            ("GET", ["balance_transactions"]) => self.list_fees(form),
            ("GET", ["transfers"]) => self.list_transfers(form),
            ("GET", ["transfers", id, "reversals"]) => {
                self.get_transfer(id, |t| t["reversals"].clone())
            }
            (_, [_, id, _]) => self.reverse(id, form),
            _ => unreachable!("routed above"),
        };
        if let (Some(key), true) = (key, answer.save) {
            let saved = Saved {
                method: method.to_owned(),
                path: path.to_owned(),
                params,
                answer: answer.clone(),
            };
            self.saved.insert(key.to_owned(), saved);
        }
        Some((answer, false))
    }

    fn create_account(&mut self, form: &[(String, String)]) -> Answer {
        let p = nested(form);
        let (legacy, dashboard) = (
            p["type"].as_str(),
            p["controller"]["stripe_dashboard"]["type"].as_str(),
        );
        let express = (legacy.is_some() || dashboard.is_some())
            && legacy.is_none_or(|t| t == "express")
            && dashboard.is_none_or(|d| d == "express");
        if !express {
            let message = "connect_stub answers Express accounts only: type=express or \
                           controller[stripe_dashboard][type]=express";
            return Answer::invalid(None, "type", message);
        }
        // `type=express` accounts report these controller values; controller properties are
        // echoed with Stripe's defaults (unverified: such accounts' `type` is taken as `none`).
        let c = &p["controller"];
        let (kind, payer) = match legacy {
            Some(_) => ("express", "application_express"),
            None => ("none", c["fees"]["payer"].as_str().unwrap_or("account")),
        };
        let controller = json!({
            "fees": {"payer": payer},
            "is_controller": true,
            "losses": {"payments": c["losses"]["payments"].as_str().unwrap_or("application")},
            "requirement_collection": c["requirement_collection"].as_str().unwrap_or("stripe"),
            "stripe_dashboard": {"type": "express"},
            "type": "application",
        });
        let requested = p["capabilities"].as_object().cloned().unwrap_or_default();
        let capabilities: Map<String, Value> = (requested.into_iter())
            .filter(|(_, c)| c["requested"] == "true")
            .map(|(name, _)| (name, "inactive".into()))
            .collect();
        let country = p["country"].as_str().unwrap_or("US").to_ascii_uppercase();
        let currency = match country.as_str() {
            "US" => "usd",
            "GB" => "gbp",
            "CA" => "cad",
            "AU" => "aud",
            "CH" => "chf",
            "JP" => "jpy",
            _ => "eur",
        };
        let id = stripe_id("acct", 16);
        let mut profile = json!({
            "mcc": null, "name": null, "product_description": null, "support_email": null,
            "support_phone": null, "support_url": null, "url": null,
        });
        for (k, v) in p["business_profile"].as_object().into_iter().flatten() {
            profile[k] = v.clone();
        }
        let account = json!({
            "id": id, "object": "account", "business_profile": profile,
            "business_type": p["business_type"], "capabilities": capabilities,
            "charges_enabled": false, "controller": controller, "country": country,
            "created": now(),
            "default_currency": p["default_currency"].as_str().unwrap_or(currency),
            "details_submitted": false, "email": p["email"],
            "external_accounts": {"object": "list", "data": [], "has_more": false,
                                  "url": format!("/v1/accounts/{id}/external_accounts")},
            "future_requirements": requirements(&[]), "metadata": metadata(&p),
            "payouts_enabled": false, "requirements": requirements(&DUE_AT_START),
            "tos_acceptance": {"date": null, "ip": null, "user_agent": null},
            "type": kind,
        });
        self.accounts.insert(id, account.clone());
        Answer::ok(account)
    }

    fn get_account(&self, id: &str) -> Answer {
        match self.accounts.get(id) {
            Some(account) => Answer::ok(account.clone()),
            None => Answer::no_such(404, "account", id, "account"),
        }
    }

    /// `POST /v1/accounts/{id}`: email, metadata, business profile, more capabilities.
    fn update_account(&mut self, id: &str, form: &[(String, String)]) -> Answer {
        let p = nested(form);
        let changed = self.change(id, |account| {
            if let Some(email) = p["email"].as_str() {
                account["email"] = email.into();
            }
            for (k, v) in p["metadata"].as_object().into_iter().flatten() {
                if v == "" {
                    if let Some(m) = account["metadata"].as_object_mut() {
                        m.remove(k);
                    }
                } else {
                    account["metadata"][k] = v.clone();
                }
            }
            for (k, v) in p["business_profile"].as_object().into_iter().flatten() {
                account["business_profile"][k] = v.clone();
            }
            for (name, c) in p["capabilities"].as_object().into_iter().flatten() {
                if c["requested"] == "true" && account["capabilities"][name].is_null() {
                    account["capabilities"][name] = "inactive".into();
                }
            }
        });
        match changed {
            Some(account) => Answer::ok(account),
            None => Answer::no_such(404, "account", id, "account"),
        }
    }

    /// Applies `f` to account `id`, remembering what it changed for the next `account.updated`.
    fn change(&mut self, id: &str, f: impl FnOnce(&mut Value)) -> Option<Value> {
        let account = self.accounts.get_mut(id)?;
        let before = account.clone();
        f(account);
        let previous = self.previous.entry(id.to_owned()).or_default();
        for (key, old) in before.as_object().into_iter().flatten() {
            if account[key] != *old && !previous.contains_key(key) {
                previous.insert(key.clone(), old.clone());
            }
        }
        Some(account.clone())
    }

    fn create_link(&mut self, form: &[(String, String)]) -> Answer {
        let p = nested(form);
        let given = |name: &str| p[name].as_str().filter(|v| !v.is_empty());
        let Some(account) = given("account") else {
            return Answer::missing("account");
        };
        let Some(kind) = given("type") else {
            return Answer::missing("type");
        };
        for url in ["refresh_url", "return_url"] {
            match given(url) {
                None => return Answer::missing(url),
                Some(u) if !u.starts_with("https://") && !u.starts_with("http://") => {
                    return Answer::invalid(Some("url_invalid"), url, "Not a valid URL")
                }
                Some(_) => {}
            }
        }
        match kind {
            "account_onboarding" => {}
            "account_update" => {
                let message = "You cannot create `account_update` type Account Links for \
                               accounts with access to a Stripe-hosted Dashboard.";
                return Answer::invalid(None, "type", message);
            }
            _ => {
                let message = "Invalid type: must be one of account_onboarding or account_update";
                return Answer::invalid(None, "type", message);
            }
        }
        if !self.accounts.contains_key(account) {
            return Answer::no_such(400, "account", account, "account");
        }
        let created = now();
        Answer::ok(json!({
            "object": "account_link", "created": created, "expires_at": created + LINK_LIFETIME,
            "url": format!("https://connect.stripe.com/setup/e/{account}/{}", stripe_id("l", 12)),
        }))
    }

    fn create_transfer(&mut self, form: &[(String, String)]) -> Answer {
        let p = nested(form);
        for param in ["amount", "currency", "destination"] {
            if p[param].as_str().is_none_or(str::is_empty) {
                return Answer::missing(param);
            }
        }
        let Some(amount) = positive(&p["amount"]) else {
            let code = Some("parameter_invalid_integer");
            return Answer::invalid(code, "amount", "Invalid positive integer");
        };
        let currency = p["currency"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let destination = p["destination"].as_str().unwrap_or_default();
        let Some(account) = self.accounts.get(destination) else {
            return Answer::no_such(400, "destination", destination, "destination");
        };
        if account["capabilities"]["transfers"] != "active" {
            let message = "Your destination account needs to have at least one of the following \
                           capabilities enabled: transfers, crypto_transfers, legacy_payments";
            let code = Some("insufficient_capabilities_for_transfer");
            return Answer::refused(code, None, message);
        }
        if let Some(balance) = self.balances.get_mut(&currency) {
            if *balance < amount {
                return Answer::refused(Some("balance_insufficient"), None, NO_FUNDS);
            }
            *balance -= amount;
        }
        let id = stripe_id("tr", 24);
        let transfer = json!({
            "id": id, "object": "transfer", "amount": amount, "amount_reversed": 0,
            "balance_transaction": stripe_id("txn", 24), "created": now(), "currency": currency,
            "description": p["description"], "destination": destination,
            "destination_payment": stripe_id("py", 24), "livemode": false,
            "metadata": metadata(&p),
            "reversals": {"object": "list", "data": [], "has_more": false,
                          "url": format!("/v1/transfers/{id}/reversals")},
            "reversed": false, "source_transaction": p["source_transaction"],
            "source_type": "card", "transfer_group": p["transfer_group"],
        });
        self.transfers.push(transfer.clone());
        Answer::ok(transfer)
    }

    /// `GET /v1/balance_transactions` (`type`, `created[gte]`, `limit`, `starting_after`):
    /// only the fees `add_stripe_fee` made live here.
    fn list_fees(&self, query: &[(String, String)]) -> Answer {
        let p = nested(query);
        let since = p["created"]["gte"]
            .as_str()
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(0);
        let matching: Vec<&Value> = self
            .fees
            .iter()
            .filter(|t| p["type"].as_str().is_none_or(|k| t["type"] == k))
            .filter(|t| t["created"].as_i64().unwrap_or(0) >= since)
            .collect();
        list_page(&matching, &p, "/v1/balance_transactions")
    }

    /// `GET /v1/transfers` (`transfer_group`, `limit`, `starting_after`), newest first.
    fn list_transfers(&self, query: &[(String, String)]) -> Answer {
        let p = nested(query);
        let matching: Vec<&Value> = self
            .transfers
            .iter()
            .rev()
            .filter(|t| {
                p["transfer_group"]
                    .as_str()
                    .is_none_or(|g| t["transfer_group"] == g)
            })
            .collect();
        list_page(&matching, &p, "/v1/transfers")
    }

    fn get_transfer(&self, id: &str, part: impl FnOnce(&Value) -> Value) -> Answer {
        match self.transfers.iter().find(|t| t["id"] == id) {
            Some(transfer) => Answer::ok(part(transfer)),
            None => Answer::no_such(404, "transfer", id, "id"),
        }
    }

    /// `POST /v1/transfers/{id}/reversals`: the whole remaining amount, or `amount` of it.
    fn reverse(&mut self, id: &str, form: &[(String, String)]) -> Answer {
        let p = nested(form);
        let Some(transfer) = self.transfers.iter_mut().find(|t| t["id"] == id) else {
            return Answer::no_such(404, "transfer", id, "id");
        };
        let total = transfer["amount"].as_i64().unwrap_or_default();
        let remaining = total - transfer["amount_reversed"].as_i64().unwrap_or_default();
        if remaining == 0 {
            let message = format!("Transfer {id} has already been fully reversed.");
            return Answer::refused(None, None, &message);
        }
        let amount = match (&p["amount"], positive(&p["amount"])) {
            (Value::Null, _) => remaining,
            (_, Some(amount)) => amount,
            (_, None) => {
                let code = Some("parameter_invalid_integer");
                return Answer::invalid(code, "amount", "Invalid positive integer");
            }
        };
        if amount > remaining {
            let message = format!(
                "You have requested a reversal of {amount}, which exceeds the amount remaining \
                 to reverse on this transfer ({remaining})."
            );
            return Answer::refused(None, Some("amount"), &message);
        }
        let currency = transfer["currency"].as_str().unwrap_or_default().to_owned();
        let reversal = json!({
            "id": stripe_id("trr", 24), "object": "transfer_reversal", "amount": amount,
            "balance_transaction": stripe_id("txn", 24), "created": now(), "currency": currency,
            "destination_payment_refund": stripe_id("pyr", 24), "metadata": metadata(&p),
            "source_refund": null, "transfer": id,
        });
        let reversed = total - remaining + amount;
        transfer["amount_reversed"] = reversed.into();
        transfer["reversed"] = (reversed == total).into();
        if let Some(list) = transfer["reversals"]["data"].as_array_mut() {
            list.insert(0, reversal.clone()); // Stripe's lists are newest first.
        }
        if let Some(balance) = self.balances.get_mut(&currency) {
            *balance += amount;
        }
        Answer::ok(reversal)
    }

    /// Takes the first `fail_next` entry whose prefix `path` has.
    fn take_failure(&mut self, path: &str) -> Option<u16> {
        let at = self
            .failures
            .iter()
            .position(|(p, _)| path.starts_with(p))?;
        Some(self.failures.remove(at).1)
    }
}

fn respond(answer: &Answer, key: Option<&str>, replayed: bool) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(answer.status).expect("status");
    let mut res = HttpResponse::build(status);
    res.insert_header(("Request-Id", stripe_id("req", 14)));
    if let Some(key) = key {
        res.insert_header(("Idempotency-Key", key.to_owned()));
    }
    if replayed {
        res.insert_header(("Idempotent-Replayed", "true"));
    }
    res.json(&answer.body)
}

/// Passes a request on to `base` as it came (`billing_helpers::relay`, to another server).
async fn relay(base: &str, req: &HttpRequest, body: &web::Bytes) -> HttpResponse {
    let url = format!("{}{}", base.trim_end_matches('/'), req.uri());
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).expect("method");
    let mut out = reqwest::Client::new()
        .request(method, url)
        .body(body.to_vec());
    for (name, value) in req.headers() {
        if name != "host" && name != "content-length" {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    match out.send().await {
        Ok(res) => relayed(res).await,
        Err(e) => {
            let message = format!("connect_stub could not reach {base}: {e}");
            HttpResponse::BadGateway().json(error_body("api_error", None, None, &message))
        }
    }
}

async fn handle(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let method = req.method().as_str().to_owned();
    let path = req.path().to_owned();
    let raw = match method.as_str() {
        "GET" => req.query_string().to_owned(),
        _ => String::from_utf8_lossy(&body).into_owned(),
    };
    let form = web::Query::<Vec<(String, String)>>::from_query(&raw)
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let key = (req.headers().get("Idempotency-Key"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (answer, relay_to) = {
        let mut state = state.lock().expect("connect stub state");
        let request = (method.clone(), path.clone(), form.clone(), key.clone());
        state.requests.push(request);
        match state.take_failure(&path) {
            Some(status) => (Some((Answer::injected(status), false)), String::new()),
            None => {
                let answer = state.answer(&method, &path, &form, key.as_deref());
                (answer, state.relay_to.clone())
            }
        }
    };
    match answer {
        Some((answer, replayed)) => respond(&answer, key.as_deref(), replayed),
        None => relay(&relay_to, &req, &body).await,
    }
}

/// A Stripe event as Stripe sends it (`account`: the connected account it is about, for Connect).
fn stripe_event(kind: &str, object: Value, account: Option<&str>) -> Value {
    let mut e = event(kind, object);
    e["api_version"] = API_VERSION.into();
    e["livemode"] = false.into();
    e["pending_webhooks"] = 1.into();
    e["request"] = json!({"id": null, "idempotency_key": null});
    if let Some(account) = account {
        e["account"] = account.into();
    }
    assert_stripe_shaped(&e);
    e
}

impl ConnectStub {
    /// Starts the stand-in on 127.0.0.1 (a random port) in the current actix runtime; calls it
    /// does not answer go to `relay_to` (localstripe's base URL).
    pub fn start(relay_to: String) -> ConnectStub {
        let state = Arc::new(Mutex::new(State {
            relay_to,
            ..State::default()
        }));
        let url = stripe_proxy(state.clone(), handle);
        ConnectStub { state, url }
    }

    /// The base URL, as `stripe_proxy`'s (`http://127.0.0.1:PORT/`): the app's `stripe.api_base`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("connect stub state")
    }

    /// The creator finished Stripe's onboarding: every requested capability is `active`,
    /// details submitted, payouts (and, with `card_payments`, charges) enabled, nothing due.
    pub fn onboard(&self, account: &str) {
        let onboarded = self.state().change(account, |a| {
            for status in a["capabilities"].as_object_mut().into_iter().flatten() {
                *status.1 = "active".into();
            }
            a["charges_enabled"] = (a["capabilities"]["card_payments"] == "active").into();
            a["details_submitted"] = true.into();
            a["payouts_enabled"] = true.into();
            a["requirements"] = requirements(&[]);
            a["tos_acceptance"]["date"] = now().into();
            a["tos_acceptance"]["ip"] = "127.0.0.1".into();
        });
        assert!(onboarded.is_some(), "no account {account} in the stub");
    }

    /// Stripe needs `due` from the creator: every capability `inactive`, payouts and charges
    /// disabled (as an `account.updated` after a missed verification deadline shows).
    pub fn restrict(&self, account: &str, due: &[&str]) {
        let restricted = self.state().change(account, |a| {
            for status in a["capabilities"].as_object_mut().into_iter().flatten() {
                *status.1 = "inactive".into();
            }
            a["charges_enabled"] = false.into();
            a["payouts_enabled"] = false.into();
            a["requirements"] = requirements(due);
        });
        assert!(restricted.is_some(), "no account {account} in the stub");
    }

    /// The platform's available balance in `currency`; transfers beyond it are refused.
    pub fn set_balance(&self, currency: &str, amount: i64) {
        let currency = currency.to_ascii_lowercase();
        self.state().balances.insert(currency, amount);
    }

    /// The platform's available balance in `currency`, if `set_balance` limited it.
    pub fn balance(&self, currency: &str) -> Option<i64> {
        let currency = currency.to_ascii_lowercase();
        self.state().balances.get(&currency).copied()
    }

    /// The next request whose path starts with `path_prefix` (`/v1/transfers`; `/v1` may be
    /// left out) answers `status` with a Stripe error body, before the idempotency layer: a
    /// retry with the same key runs.
    pub fn fail_next(&self, path_prefix: &str, status: u16) {
        let prefix = match path_prefix.trim_start_matches('/') {
            p if p.starts_with("v1/") => format!("/{p}"),
            p => format!("/v1/{p}"),
        };
        self.state().failures.push((prefix, status));
    }

    /// Every request received so far, relayed and failed ones included, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.state().requests.clone()
    }

    /// Account `id` as Stripe would answer it now.
    pub fn account(&self, id: &str) -> Value {
        let account = self.state().accounts.get(id).cloned();
        account.unwrap_or_else(|| panic!("no account {id} in the stub"))
    }

    /// Transfer `id` as Stripe would answer it now.
    pub fn transfer(&self, id: &str) -> Value {
        let transfer = self
            .state()
            .transfers
            .iter()
            .find(|t| t["id"] == id)
            .cloned();
        transfer.unwrap_or_else(|| panic!("no transfer {id} in the stub"))
    }

    /// Stripe debits the platform a fee of `amount` (positive, minor units): a `stripe_fee`
    /// balance transaction such as Connect's monthly active-account and payout fees; returns
    /// its id.
    pub fn add_stripe_fee(&self, amount: i64, currency: &str, description: &str) -> String {
        let id = format!("txn_{}", &uuid::Uuid::new_v4().simple().to_string()[..24]);
        let created = now();
        let txn = json!({
            "id": id, "object": "balance_transaction", "amount": -amount,
            "available_on": created, "created": created,
            "currency": currency.to_ascii_lowercase(), "description": description,
            "exchange_rate": null, "fee": 0, "fee_details": [], "net": -amount,
            "reporting_category": "fee", "source": null, "status": "available",
            "type": "stripe_fee",
        });
        assert_object_shaped(&txn);
        self.state().fees.insert(0, txn);
        id
    }

    /// Stripe forgets idempotency keys after at least a day: every saved answer is dropped.
    pub fn forget_keys(&self) {
        self.state().saved.clear();
    }

    /// Every transfer made, in order.
    pub fn transfers(&self) -> Vec<Value> {
        self.state().transfers.clone()
    }

    /// `account.updated` for a connected account, as its Connect endpoint gets it: `account` is
    /// the account's id, `data.object` the account now, `data.previous_attributes` what changed
    /// since the last such event built here (if anything did).
    pub fn account_updated_event(&self, account_id: &str) -> Value {
        let (account, previous) = {
            let mut state = self.state();
            let previous = state.previous.remove(account_id).filter(|p| !p.is_empty());
            (state.accounts.get(account_id).cloned(), previous)
        };
        let account = account.unwrap_or_else(|| panic!("no account {account_id} in the stub"));
        let mut e = stripe_event("account.updated", account, Some(account_id));
        if let Some(previous) = previous {
            e["data"]["previous_attributes"] = Value::Object(previous);
        }
        e
    }

    /// `transfer.reversed` (full or partial) for a platform transfer, as the platform's own
    /// endpoint gets it: `data.object` the transfer now, no `account`.
    pub fn transfer_reversed_event(&self, transfer_id: &str) -> Value {
        stripe_event("transfer.reversed", self.transfer(transfer_id), None)
    }
}

/// A `Stripe-Signature` header value for `payload` under `secret`, signed now (Stripe's scheme:
/// `kopilka::stripe::signature::sign`).
pub fn sign(payload: &str, secret: &str) -> String {
    kopilka::stripe::signature::sign(payload.as_bytes(), secret, now())
}

/// Panics naming every key of a Stripe object (not an event) that Stripe's current API lacks.
pub fn assert_object_shaped(object: &Value) {
    let kind = object["object"]
        .as_str()
        .expect("a Stripe object names its type");
    assert_stripe_shaped(&event(&format!("{kind}.checked"), object.clone()));
}

/// The stub against what Stripe answers (no app, no database; Stripe's schema via TEST_PYTHON).
mod tests {
    use super::*;

    struct Reply {
        status: u16,
        body: Value,
        replayed: bool,
    }

    /// A call as the app's gateway makes it: form-encoded, bearer key, maybe an idempotency key.
    async fn call(
        stub: &ConnectStub,
        method: &str,
        path: &str,
        form: &[(&str, &str)],
        key: Option<&str>,
    ) -> Reply {
        let client = reqwest::Client::new();
        let url = format!("{}v1{path}", stub.url());
        let mut req = match method {
            "GET" => client.get(url),
            _ => client.post(url).form(form),
        }
        .bearer_auth("sk_test_kopilka");
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        let res = req.send().await.expect("connect stub");
        let status = res.status().as_u16();
        let replayed = res.headers().contains_key("idempotent-replayed");
        let body = res.json().await.expect("json");
        Reply {
            status,
            body,
            replayed,
        }
    }

    /// A Stripe object answered with 200, checked against Stripe's schema.
    fn object(reply: Reply) -> Value {
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_object_shaped(&reply.body);
        reply.body
    }

    fn refused(reply: &Reply, status: u16, kind: &str, code: Option<&str>) {
        let error = &reply.body["error"];
        assert_eq!(reply.status, status, "{}", reply.body);
        assert_eq!(error["type"], kind, "{}", reply.body);
        assert_eq!(error["code"].as_str(), code, "{}", reply.body);
        assert!(error["message"].is_string(), "{}", reply.body);
    }

    /// A stub whose relay target does not exist (these tests never relay but for one).
    fn stub() -> ConnectStub {
        ConnectStub::start("http://127.0.0.1:9".into())
    }

    async fn express_account(stub: &ConnectStub) -> Value {
        let form = [
            ("type", "express"),
            ("country", "US"),
            ("email", "artist@example.com"),
            ("capabilities[card_payments][requested]", "true"),
            ("capabilities[transfers][requested]", "true"),
            ("metadata[kopilka_creator_id]", "c1"),
        ];
        object(call(stub, "POST", "/accounts", &form, Some("acct-c1")).await)
    }

    async fn transfer(stub: &ConnectStub, to: &str, amount: &str, key: &str) -> Reply {
        let form = [
            ("amount", amount),
            ("currency", "usd"),
            ("destination", to),
            ("transfer_group", "payout_p1"),
            ("metadata[kopilka_payout_id]", "p1"),
        ];
        call(stub, "POST", "/transfers", &form, Some(key)).await
    }

    fn link_form(account: &str) -> Vec<(&str, &str)> {
        vec![
            ("account", account),
            ("type", "account_onboarding"),
            ("refresh_url", "https://kopilka.example/connect/refresh"),
            ("return_url", "https://kopilka.example/connect/return"),
        ]
    }

    #[actix_web::test]
    async fn an_express_account_is_onboarded_paid_and_reversed_as_stripe_would() {
        let stub = stub();
        let account = express_account(&stub).await;
        let id = account["id"].as_str().unwrap().to_owned();
        assert_eq!(account["type"], "express");
        assert_eq!(account["capabilities"]["transfers"], "inactive");
        assert_eq!(account["details_submitted"], false);
        assert_eq!(
            account["requirements"]["disabled_reason"],
            "requirements.past_due"
        );
        assert_eq!(account["metadata"]["kopilka_creator_id"], "c1");
        assert_eq!(
            account["controller"]["fees"]["payer"],
            "application_express"
        );
        let (_, path, form, key) = stub.requests().pop().unwrap();
        assert_eq!(path, "/v1/accounts");
        assert!(form.contains(&("capabilities[transfers][requested]".into(), "true".into())));
        assert_eq!(key.as_deref(), Some("acct-c1"));

        // Two links, each new; both short-lived.
        let first = object(call(&stub, "POST", "/account_links", &link_form(&id), None).await);
        let second = object(call(&stub, "POST", "/account_links", &link_form(&id), None).await);
        assert_ne!(first["url"], second["url"]);
        for link in [&first, &second] {
            assert_eq!(link["object"], "account_link");
            let created = link["created"].as_i64().unwrap();
            assert_eq!(link["expires_at"].as_i64(), Some(created + 300));
        }
        let mut no_refresh = link_form(&id);
        no_refresh.retain(|(k, _)| *k != "refresh_url");
        let reply = call(&stub, "POST", "/account_links", &no_refresh, None).await;
        refused(
            &reply,
            400,
            "invalid_request_error",
            Some("parameter_missing"),
        );
        assert_eq!(reply.body["error"]["param"], "refresh_url");
        let mut update = link_form(&id);
        update[1].1 = "account_update";
        let reply = call(&stub, "POST", "/account_links", &update, None).await;
        refused(&reply, 400, "invalid_request_error", None);

        // No payout before onboarding.
        let reply = transfer(&stub, &id, "700", "payout-p1-early").await;
        let code = Some("insufficient_capabilities_for_transfer");
        refused(&reply, 400, "invalid_request_error", code);

        stub.onboard(&id);
        let account = object(call(&stub, "GET", &format!("/accounts/{id}"), &[], None).await);
        assert_eq!(account["capabilities"]["transfers"], "active");
        assert_eq!(account["details_submitted"], true);
        assert_eq!(account["payouts_enabled"], true);
        assert_eq!(account, stub.account(&id));
        let updated = stub.account_updated_event(&id);
        assert_eq!(updated["account"], id.as_str());
        assert_eq!(
            updated["data"]["object"]["capabilities"]["transfers"],
            "active"
        );
        let previous = &updated["data"]["previous_attributes"];
        assert_eq!(previous["capabilities"]["transfers"], "inactive");
        assert_eq!(previous["details_submitted"], false);

        // The same key and parameters: one transfer, answered again.
        let paid = object(transfer(&stub, &id, "700", "payout-p1").await);
        let again = transfer(&stub, &id, "700", "payout-p1").await;
        assert!(again.replayed);
        assert_eq!(object(again)["id"], paid["id"]);
        assert_eq!(stub.transfers().len(), 1);
        assert_eq!(paid["destination"], id.as_str());
        assert_eq!(paid["metadata"]["kopilka_payout_id"], "p1");
        assert_eq!(paid["transfer_group"], "payout_p1");
        // The same key, another amount.
        let reply = transfer(&stub, &id, "800", "payout-p1").await;
        refused(&reply, 400, "idempotency_error", None);
        assert_eq!(stub.transfers().len(), 1);

        // Reversed in two parts, then nothing is left to reverse.
        let tr = paid["id"].as_str().unwrap().to_owned();
        let reversals = format!("/transfers/{tr}/reversals");
        let part = object(call(&stub, "POST", &reversals, &[("amount", "300")], None).await);
        assert_eq!(
            (part["amount"].as_i64(), &part["transfer"]),
            (Some(300), &paid["id"])
        );
        let now = stub.transfer(&tr);
        assert_eq!(
            (now["amount_reversed"].as_i64(), &now["reversed"]),
            (Some(300), &json!(false))
        );
        let rest = object(call(&stub, "POST", &reversals, &[], Some("rev-p1")).await);
        assert_eq!(rest["amount"], 400);
        let now = object(call(&stub, "GET", &format!("/transfers/{tr}"), &[], None).await);
        assert_eq!(
            (now["amount_reversed"].as_i64(), &now["reversed"]),
            (Some(700), &json!(true))
        );
        assert_eq!(now["reversals"]["data"][0]["id"], rest["id"]);
        assert_eq!(now["reversals"]["data"].as_array().map(Vec::len), Some(2));
        let reply = call(&stub, "POST", &reversals, &[("amount", "1")], None).await;
        refused(&reply, 400, "invalid_request_error", None);
        let list = call(&stub, "GET", &reversals, &[], None).await;
        assert_eq!(list.body, now["reversals"]);

        let reversed = stub.transfer_reversed_event(&tr);
        assert_eq!(reversed["type"], "transfer.reversed");
        assert_eq!(reversed["data"]["object"]["reversed"], true);
        assert!(reversed.get("account").is_none(), "a platform event");
        // Nothing changed since the last account.updated.
        let quiet = stub.account_updated_event(&id);
        assert!(
            quiet["data"].get("previous_attributes").is_none(),
            "{quiet}"
        );
    }

    #[actix_web::test]
    async fn transfers_beyond_the_platform_balance_are_refused_and_the_refusal_is_replayed() {
        let stub = stub();
        let id = express_account(&stub).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        stub.onboard(&id);
        stub.set_balance("USD", 1000);

        let reply = transfer(&stub, &id, "1500", "payout-big").await;
        refused(
            &reply,
            400,
            "invalid_request_error",
            Some("balance_insufficient"),
        );
        stub.set_balance("usd", 5000);
        // Stripe saved the refusal under the key: the same key answers it again.
        let reply = transfer(&stub, &id, "1500", "payout-big").await;
        assert!(reply.replayed);
        refused(
            &reply,
            400,
            "invalid_request_error",
            Some("balance_insufficient"),
        );

        stub.set_balance("usd", 1000);
        let paid = object(transfer(&stub, &id, "1000", "payout-big-2").await);
        assert_eq!(stub.balance("usd"), Some(0));
        let reply = transfer(&stub, &id, "1", "payout-small").await;
        refused(
            &reply,
            400,
            "invalid_request_error",
            Some("balance_insufficient"),
        );
        let reversals = format!("/transfers/{}/reversals", paid["id"].as_str().unwrap());
        object(call(&stub, "POST", &reversals, &[("amount", "400")], None).await);
        assert_eq!(stub.balance("usd"), Some(400));
        // A currency whose balance was never set has no limit.
        let form = [
            ("amount", "999999"),
            ("currency", "eur"),
            ("destination", id.as_str()),
        ];
        object(call(&stub, "POST", "/transfers", &form, None).await);
        assert_eq!(stub.transfers().len(), 2);
    }

    #[actix_web::test]
    async fn an_injected_outage_answers_once_and_the_retry_with_the_same_key_runs() {
        let stub = stub();
        let id = express_account(&stub).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        stub.onboard(&id);
        stub.fail_next("/v1/transfers", 500);
        stub.fail_next("account_links", 429);

        let reply = transfer(&stub, &id, "250", "payout-retry").await;
        refused(&reply, 500, "api_error", None);
        let paid = transfer(&stub, &id, "250", "payout-retry").await;
        assert!(!paid.replayed, "the outage was not saved under the key");
        object(paid);
        let again = transfer(&stub, &id, "250", "payout-retry").await;
        assert!(again.replayed);
        assert_eq!(stub.transfers().len(), 1);
        let tries = stub.requests().into_iter().filter(|(m, p, _, k)| {
            m == "POST" && p == "/v1/transfers" && k.as_deref() == Some("payout-retry")
        });
        assert_eq!(tries.count(), 3);

        let reply = call(&stub, "POST", "/account_links", &link_form(&id), None).await;
        refused(&reply, 429, "invalid_request_error", Some("rate_limit"));
        object(call(&stub, "POST", "/account_links", &link_form(&id), None).await);
    }

    #[actix_web::test]
    async fn controller_properties_make_an_express_account_and_other_kinds_are_refused() {
        let stub = stub();
        let form = [
            ("controller[stripe_dashboard][type]", "express"),
            ("controller[fees][payer]", "application"),
            ("controller[losses][payments]", "application"),
            ("controller[requirement_collection]", "stripe"),
            ("capabilities[transfers][requested]", "true"),
            ("country", "DE"),
            ("business_profile[url]", "https://artist.example"),
        ];
        let account = object(call(&stub, "POST", "/accounts", &form, None).await);
        let controller = &account["controller"];
        assert_eq!(controller["stripe_dashboard"]["type"], "express");
        assert_eq!(controller["fees"]["payer"], "application");
        assert_eq!(controller["losses"]["payments"], "application");
        assert_eq!(
            (&account["country"], &account["default_currency"]),
            (&json!("DE"), &json!("eur"))
        );
        assert_eq!(account["business_profile"]["url"], "https://artist.example");
        assert!(account["capabilities"].get("card_payments").is_none());

        let id = account["id"].as_str().unwrap().to_owned();
        let update = [
            ("metadata[kopilka_creator_id]", "c2"),
            ("email", "new@example.com"),
        ];
        let path = format!("/accounts/{id}");
        let updated = object(call(&stub, "POST", &path, &update, None).await);
        assert_eq!(updated["metadata"]["kopilka_creator_id"], "c2");
        let event = stub.account_updated_event(&id);
        let previous = event["data"]["previous_attributes"].as_object().unwrap();
        assert_eq!(previous.get("email"), Some(&Value::Null));
        assert_eq!(previous.get("metadata"), Some(&json!({})));

        stub.onboard(&id);
        stub.restrict(&id, &["individual.verification.document"]);
        let restricted = stub.account(&id);
        assert_object_shaped(&restricted);
        assert_eq!(restricted["capabilities"]["transfers"], "inactive");
        assert_eq!(restricted["payouts_enabled"], false);
        let due = &restricted["requirements"]["currently_due"];
        assert_eq!(due, &json!(["individual.verification.document"]));

        let standard = call(&stub, "POST", "/accounts", &[("type", "standard")], None).await;
        refused(&standard, 400, "invalid_request_error", None);
        let unknown = call(&stub, "GET", "/accounts/acct_nope", &[], None).await;
        refused(
            &unknown,
            404,
            "invalid_request_error",
            Some("resource_missing"),
        );
    }

    #[actix_web::test]
    async fn calls_the_stub_does_not_answer_are_relayed_as_they_came() {
        async fn echo(req: HttpRequest, body: web::Bytes, _: web::Data<()>) -> HttpResponse {
            let auth = req
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap());
            HttpResponse::Ok().json(json!({
                "uri": req.uri().to_string(), "auth": auth,
                "body": String::from_utf8_lossy(&body),
            }))
        }
        let stub = ConnectStub::start(stripe_proxy((), echo));
        let form = [("email", "buyer@example.com")];
        let reply = call(&stub, "POST", "/customers?expand[]=x", &form, None).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body["uri"], "/v1/customers?expand[]=x");
        assert_eq!(reply.body["auth"], "Bearer sk_test_kopilka");
        assert_eq!(reply.body["body"], "email=buyer%40example.com");
        let (method, path, form, _) = stub.requests().pop().unwrap();
        assert_eq!((method.as_str(), path.as_str()), ("POST", "/v1/customers"));
        assert_eq!(form, [("email".to_owned(), "buyer@example.com".to_owned())]);
    }

    #[test]
    #[should_panic(expected = "event.data.object.bogus")]
    fn an_object_with_a_field_stripe_lacks_is_caught() {
        assert_object_shaped(&json!({"id": "tr_1", "object": "transfer", "bogus": 1}));
    }

    #[test]
    fn signatures_are_stripes() {
        let payload = r#"{"id":"evt_1","type":"account.updated"}"#;
        let header = sign(payload, "whsec_connect");
        let secrets = ["whsec_connect".to_owned()];
        let checked =
            kopilka::stripe::signature::verify(&header, payload.as_bytes(), &secrets, 300, now());
        assert_eq!(checked, Ok(()));
    }
}
