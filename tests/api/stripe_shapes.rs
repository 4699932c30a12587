//! Stripe-shaped events the tests build carry only fields Stripe's current API has, so no
//! test passes on a payload real Stripe would never send.
//!
//! The schema is that of Stripe's own Python package (`stripe==16.*`, which pins API version
//! `2026-10-28.endive`): `tests/stripe_schema.py` dumps the fields its resource classes
//! annotate, nested objects included, as JSON, run once per test process with the tests' venv.
//! A key that schema lacks is still accepted where Stripe's example object of the type
//! (`../shared/stripe/fixtures3.json`, from Stripe's OpenAPI repository) has it at the same
//! place. Keys under `metadata` are free-form.
//!
//! The same schema checks our decoders (`decoder_fields`): every field the serde structs of
//! `src/stripe/objects.rs` and `events.rs` read is in Stripe's current API, but for the few
//! read only from older API versions, which must be absent from it.

use serde_json::{Map, Value};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

struct Schema {
    /// Which `stripe` package and API version the types are from.
    source: String,
    /// Resource type (`OBJECT_NAME`) → node (see `tests/stripe_schema.py`).
    types: Map<String, Value>,
    /// `resources.<type>` of fixtures3.json, when the file is there.
    examples: Option<Map<String, Value>>,
}

static SCHEMA: OnceLock<Schema> = OnceLock::new();

fn schema() -> &'static Schema {
    SCHEMA.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let python = crate::real_parts::python();
        let out = Command::new(&python)
            .arg(root.join("tests/stripe_schema.py"))
            .output()
            .unwrap_or_else(|e| panic!("running {python:?} tests/stripe_schema.py: {e}"));
        assert!(
            out.status.success(),
            "tests/stripe_schema.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dump: Value = serde_json::from_slice(&out.stdout).expect("stripe_schema.py's JSON");
        let types = dump["types"].as_object().expect("types").clone();
        for wanted in [
            "event",
            "invoice",
            "subscription",
            "charge",
            "refund",
            "dispute",
        ] {
            assert!(types.contains_key(wanted), "no {wanted} in Stripe's schema");
        }
        let fixtures = root.join("../shared/stripe/fixtures3.json");
        let examples = match std::fs::read(&fixtures) {
            Ok(bytes) => {
                let all: Value = serde_json::from_slice(&bytes).expect("fixtures3.json");
                Some(all["resources"].as_object().expect("resources").clone())
            }
            Err(e) => {
                eprintln!(
                    "stripe_shapes: {fixtures:?} unreadable ({e}); Stripe-shaped events are \
                     checked against stripe-python's types alone, without Stripe's examples"
                );
                None
            }
        };
        Schema {
            source: format!(
                "stripe-python {}, API {}",
                dump["package"], dump["api_version"]
            ),
            types,
            examples,
        }
    })
}

/// The resource type an event's object is, when it does not say (`"object"`).
fn type_of_event(kind: &str) -> Option<&'static str> {
    let by_prefix = [
        ("invoice.", "invoice"),
        ("customer.subscription.", "subscription"),
        ("charge.dispute.", "dispute"),
        ("charge.refund", "refund"),
        ("refund.", "refund"),
        ("charge.", "charge"),
        ("payment_intent.", "payment_intent"),
        ("setup_intent.", "setup_intent"),
        ("subscription_schedule.", "subscription_schedule"),
    ];
    // `charge.refunded` is a charge's event; `charge.refund.updated` a refund's.
    if kind == "charge.refunded" {
        return Some("charge");
    }
    by_prefix
        .iter()
        .find(|(prefix, _)| kind.starts_with(prefix))
        .map(|(_, ty)| *ty)
}

/// Where the walk is: what Stripe's schema allows here (a union of nodes: `null` a scalar,
/// `{"free": true}`, `{"fields": …}`, `{"refs": […]}`) and the examples' values at this place.
#[derive(Clone, Default)]
struct Place<'a> {
    nodes: Vec<&'a Value>,
    examples: Vec<&'a Value>,
}

struct Walk<'a> {
    schema: &'a Schema,
    use_examples: bool,
    unknown: Vec<String>,
}

impl<'a> Walk<'a> {
    fn resource(&self, ty: &str) -> Place<'a> {
        let examples = match (&self.schema.examples, self.use_examples) {
            (Some(all), true) => all.get(ty).into_iter().collect(),
            _ => Vec::new(),
        };
        Place {
            nodes: self.schema.types.get(ty).into_iter().collect(),
            examples,
        }
    }

    fn known_type(&self, ty: &str) -> bool {
        self.schema.types.contains_key(ty)
            || self
                .schema
                .examples
                .as_ref()
                .is_some_and(|e| e.contains_key(ty))
    }

    fn value(&mut self, value: &Value, place: Place<'a>, path: &str) {
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.value(item, place.clone(), &format!("{path}[{i}]"));
                }
            }
            Value::Object(map) => self.object(map, place, path),
            _ => {}
        }
    }

    fn object(&mut self, map: &Map<String, Value>, mut place: Place<'a>, path: &str) {
        // A free-form map (`metadata`, an event's `data.object`, …): any keys.
        if place.nodes.iter().any(|n| n["free"] == true) {
            return;
        }
        // An object that names its type (an expanded or embedded resource) is that type's.
        if let Some(ty) = map.get("object").and_then(Value::as_str) {
            if self.schema.types.contains_key(ty) {
                let same: Vec<&Value> = (place.examples.iter())
                    .filter(|e| e["object"] == ty)
                    .copied()
                    .collect();
                place = self.resource(ty);
                place.examples.extend(same);
            } else if ty != "list" && ty != "search_result" && !self.known_type(ty) {
                self.unknown
                    .push(format!("{path}.object = {ty:?} (no such Stripe type)"));
            }
        }
        // A field of some resource type (expandable, or embedded) has that resource's fields.
        let mut nodes = Vec::new();
        for node in place.nodes {
            if node.get("fields").is_some() {
                nodes.push(node);
            }
            for ty in node["refs"].as_array().into_iter().flatten() {
                let resource = self.resource(ty.as_str().unwrap_or_default());
                nodes.extend(resource.nodes);
                place.examples.extend(resource.examples);
            }
        }
        for (key, child) in map {
            let here = format!("{path}.{key}");
            let schema: Vec<&Value> = nodes.iter().filter_map(|n| n["fields"].get(key)).collect();
            let examples: Vec<&Value> = (place.examples.iter())
                .filter_map(|e| e.get(key))
                .flat_map(|v| match v {
                    Value::Array(items) => items.iter().collect(),
                    v => vec![v],
                })
                .collect();
            if schema.is_empty() {
                // Only Stripe's example has it: as what the example holds. An example's
                // `null` (Stripe's examples keep some removed fields, e.g. an invoice's
                // `subscription`) allows a `null`, and no more.
                if examples.is_empty() {
                    self.unknown.push(here);
                    continue;
                }
                if examples.iter().all(|e| e.is_null()) && !child.is_null() {
                    self.unknown
                        .push(format!("{here} (Stripe's example has it only as null)"));
                    continue;
                }
            }
            if key == "metadata" {
                continue;
            }
            let place = Place {
                nodes: schema,
                examples,
            };
            self.value(child, place, &here);
        }
    }
}

fn unknown_keys(schema: &Schema, event: &Value, use_examples: bool) -> Vec<String> {
    let mut walk = Walk {
        schema,
        use_examples,
        unknown: Vec::new(),
    };
    let Some(envelope) = event.as_object() else {
        panic!("a Stripe event is an object: {event}");
    };
    // The envelope; its `data.object` is free-form to Stripe's `Event` type, and checked below
    // as the resource it is.
    walk.object(envelope, walk.resource("event"), "event");
    let object = &event["data"]["object"];
    if let Some(map) = object.as_object() {
        let named = object["object"].as_str();
        let inferred = event["type"].as_str().and_then(type_of_event);
        let Some(ty) = named.or(inferred) else {
            panic!("cannot tell which Stripe type the object of {event} is");
        };
        let mut place = walk.resource(ty);
        assert!(!place.nodes.is_empty(), "no Stripe type {ty:?}");
        // Stripe's example event's object, too, when it is of this type.
        let event_example = walk.resource("event").examples;
        place.examples.extend(
            (event_example.iter())
                .map(|e| &e["data"]["object"])
                .filter(|o| o["object"] == ty),
        );
        walk.object(map, place, "event.data.object");
    }
    walk.unknown
}

/// Every key of `event` (a Stripe event, its `data.object` included) that Stripe's current
/// API does not have: full paths, e.g. `event.data.object.payments.data[0].payment.bogus`.
pub fn stripe_shape_errors(event: &Value) -> Vec<String> {
    unknown_keys(schema(), event, true)
}

/// Panics naming every key of `event` that Stripe's current API does not have.
pub fn assert_stripe_shaped(event: &Value) {
    let unknown = stripe_shape_errors(event);
    assert!(
        unknown.is_empty(),
        "a Stripe-shaped event ({} {}) has what Stripe's API ({}) does not:\n  {}\nevent: {event}",
        event["type"],
        event["id"],
        schema().source,
        unknown.join("\n  ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing_helpers::event;
    use serde_json::json;

    fn example(ty: &str) -> Option<Value> {
        match &schema().examples {
            Some(all) => Some(all.get(ty).cloned().expect("an example")),
            None => {
                eprintln!("fixtures3.json is missing: not checking Stripe's {ty} example");
                None
            }
        }
    }

    /// The paths of `errors`, without their notes.
    fn paths(mut errors: Vec<String>) -> Vec<String> {
        errors.sort();
        errors
            .into_iter()
            .map(|e| e.split(" (").next().unwrap_or_default().to_owned())
            .collect()
    }

    /// The value at an error's path (`event.data.object.items.data[0].price`).
    fn at<'v>(event: &'v Value, path: &str) -> &'v Value {
        let pointer = path
            .trim_start_matches("event")
            .replace(['.', '['], "/")
            .replace(']', "");
        event.pointer(&pointer).expect(path)
    }

    fn current_invoice() -> Value {
        json!({
            "id": "in_1", "object": "invoice", "customer": "cus_1", "currency": "usd",
            "amount_paid": 499, "status": "paid",
            "parent": {"type": "subscription_details", "subscription_details": {
                "subscription": "sub_1", "metadata": {"kopilka_subscription_id": "s1", "anything": "x"}}},
            "payments": {"object": "list", "has_more": false, "data": [{
                "object": "invoice_payment", "id": "inpay_1", "status": "paid",
                "payment": {"type": "payment_intent", "payment_intent": {
                    "id": "pi_1", "object": "payment_intent",
                    "latest_charge": {"id": "ch_1", "object": "charge", "balance_transaction":
                        {"id": "txn_1", "object": "balance_transaction", "fee": 45}}}}}]},
            "lines": {"object": "list", "data": [{"object": "line_item", "id": "il_1",
                "period": {"start": 1, "end": 2}}]},
        })
    }

    #[test]
    fn a_current_invoice_event_passes() {
        let errors = stripe_shape_errors(&event("invoice.paid", current_invoice()));
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn keys_stripe_does_not_have_are_named_by_their_paths() {
        let mut invoice = current_invoice();
        invoice["charge"] = json!("ch_1"); // removed from current invoices
        invoice["subscription"] = json!("sub_1"); // now parent.subscription_details.subscription
        invoice["bogus"] = json!(1);
        invoice["metadata"] = json!({"bogus": "metadata is free-form"});
        invoice["parent"]["subscription_details"]["bogus"] = json!(2);
        let payment = &mut invoice["payments"]["data"][0]["payment"];
        payment["payment_intent"]["latest_charge"]["bogus"] = json!(3);
        payment["payment_intent"]["latest_charge"]["balance_transaction"]["bogus"] = json!(4);
        let mut ev = event("invoice.paid", invoice);
        ev["bogus"] = json!(5);
        assert_eq!(
            paths(stripe_shape_errors(&ev)),
            [
                "event.bogus",
                "event.data.object.bogus",
                "event.data.object.charge",
                "event.data.object.parent.subscription_details.bogus",
                "event.data.object.payments.data[0].payment.payment_intent.latest_charge.balance_transaction.bogus",
                "event.data.object.payments.data[0].payment.payment_intent.latest_charge.bogus",
                "event.data.object.subscription",
            ]
        );
    }

    #[test]
    #[should_panic(expected = "event.data.object.charge")]
    fn an_old_api_invoice_fails() {
        assert_stripe_shaped(&event(
            "invoice.paid",
            json!({"id": "in_1", "object": "invoice", "charge": "ch_1", "amount_paid": 1}),
        ));
    }

    #[test]
    #[should_panic(expected = "event.data.object.bogus")]
    fn an_invented_key_fails() {
        assert_stripe_shaped(&event(
            "invoice.paid",
            json!({"id": "in_1", "object": "invoice", "bogus": "x"}),
        ));
    }

    #[test]
    fn old_subscription_charge_refund_and_dispute_fields_fail() {
        let sub = json!({"id": "sub_1", "object": "subscription", "current_period_end": 2,
                         "quantity": 1, "metadata": {"free": "form"},
                         "items": {"object": "list", "data": [{"id": "si_1", "object": "subscription_item",
                                   "current_period_end": 2, "quantity": 1, "price": {"id": "price_1", "bogus": 1}}]}});
        let errors = stripe_shape_errors(&event("customer.subscription.updated", sub));
        assert_eq!(
            paths(errors),
            [
                "event.data.object.current_period_end",
                "event.data.object.items.data[0].price.bogus",
                "event.data.object.quantity"
            ]
        );
        // Without `"object"`, the type comes from the event's.
        let refund = json!({"id": "re_1", "date": 5, "amount": 100});
        let errors = stripe_shape_errors(&event("charge.refund.updated", refund));
        assert_eq!(paths(errors), ["event.data.object.date"]);
        let charge = json!({"id": "ch_1", "invoice": "in_1",
                            "refunds": {"data": [{"id": "re_1", "date": 5}]}});
        let errors = stripe_shape_errors(&event("charge.refunded", charge));
        assert_eq!(
            paths(errors),
            [
                "event.data.object.invoice",
                "event.data.object.refunds.data[0].date"
            ]
        );
        let dispute = json!({"id": "dp_1", "charge": "ch_1",
                             "balance_transactions": [{"fee": 1, "bogus": 2}]});
        let errors = stripe_shape_errors(&event("charge.dispute.created", dispute));
        assert_eq!(
            paths(errors),
            ["event.data.object.balance_transactions[0].bogus"]
        );
    }

    #[test]
    fn stripes_own_examples_pass() {
        for ty in [
            "invoice",
            "subscription",
            "charge",
            "dispute",
            "refund",
            "payment_intent",
            "setup_intent",
            "invoice_payment",
            "subscription_item",
            "balance_transaction",
            "customer",
        ] {
            let Some(object) = example(ty) else { return };
            let ev = event(&format!("{ty}.updated"), object);
            assert_stripe_shaped(&ev);
            // The package's types alone accept them too, but for keys the examples keep as
            // null (an invoice's `subscription`): the two sources agree.
            for path in unknown_keys(schema(), &ev, false) {
                assert!(at(&ev, &path).is_null(), "{ty}: {path}");
            }
        }
    }

    #[test]
    fn keys_only_stripes_example_has_pass_as_the_example_has_them() {
        // Stripe's example invoice keeps `subscription` (as null), which the current API
        // removed: a null passes, an id does not.
        if let Some(mut invoice) = example("invoice") {
            let errors = stripe_shape_errors(&event("invoice.paid", invoice.clone()));
            assert!(errors.is_empty(), "{errors:?}");
            invoice["subscription"] = json!("sub_1");
            let errors = stripe_shape_errors(&event("invoice.paid", invoice));
            assert_eq!(
                errors,
                ["event.data.object.subscription (Stripe's example has it only as null)"]
            );
        }
        // A key Stripe's example has with a value, where the package has none.
        let with_example = Schema {
            source: "test".into(),
            types: schema().types.clone(),
            examples: Some(
                json!({"invoice": {"object": "invoice", "future": {"x": {"y": 1}}}})
                    .as_object()
                    .cloned()
                    .unwrap(),
            ),
        };
        let invoice = json!({"id": "in_1", "object": "invoice", "future": {"x": {"y": 2}}});
        let ev = event("invoice.paid", invoice);
        assert!(unknown_keys(&with_example, &ev, true).is_empty());
        assert_eq!(
            unknown_keys(&with_example, &ev, false),
            ["event.data.object.future"]
        );
        let mut more = ev.clone();
        more["data"]["object"]["future"]["x"]["z"] = json!(3);
        assert_eq!(
            unknown_keys(&with_example, &more, true),
            ["event.data.object.future.x.z"]
        );
    }
}

/// Every field our decoders (the serde structs of `src/stripe/objects.rs` and `events.rs`) read
/// exists in Stripe's current schema, but for the ones read deliberately from older API
/// versions, which must be absent from it (else they are not legacy).
#[cfg(test)]
mod decoder_fields {
    use super::*;

    /// A `pub struct` deriving `Deserialize`, with the JSON names of the fields it reads.
    #[derive(Debug, PartialEq)]
    struct Decoder {
        name: String,
        /// (Rust name, JSON name); a field with aliases appears once per name.
        fields: Vec<(String, String)>,
    }

    /// Where a decoder's object sits in Stripe's schema.
    enum Where {
        /// Paths into the tree `tests/stripe_schema.py` dumps: a resource type (`OBJECT_NAME`)
        /// then field names, through nested objects and expandable/embedded resources
        /// (`invoice.parent.subscription_details`). Every field must be at every path.
        Schema(&'static [&'static str]),
        /// Not one of Stripe's objects: the fields Stripe's documentation gives it.
        Documented(&'static str, &'static [&'static str]),
    }

    /// Every decoder struct and where it sits.
    const PLACES: &[(&str, Where)] = &[
        ("Invoice", Where::Schema(&["invoice"])),
        ("InvoicePayment", Where::Schema(&["invoice_payment"])),
        (
            "InvoicePaymentDetails",
            Where::Schema(&["invoice_payment.payment"]),
        ),
        ("InvoiceLine", Where::Schema(&["line_item"])),
        ("Period", Where::Schema(&["line_item.period"])),
        ("InvoiceParent", Where::Schema(&["invoice.parent"])),
        (
            "SubscriptionDetails",
            Where::Schema(&["invoice.parent.subscription_details"]),
        ),
        (
            "ConfirmationSecret",
            Where::Schema(&["invoice.confirmation_secret"]),
        ),
        ("Subscription", Where::Schema(&["subscription"])),
        ("SubscriptionItem", Where::Schema(&["subscription_item"])),
        (
            "SubscriptionSchedule",
            Where::Schema(&["subscription_schedule"]),
        ),
        (
            "SchedulePhase",
            Where::Schema(&["subscription_schedule.phases"]),
        ),
        ("Charge", Where::Schema(&["charge"])),
        (
            "BalanceTransaction",
            Where::Schema(&["balance_transaction", "dispute.balance_transactions"]),
        ),
        ("Refund", Where::Schema(&["refund"])),
        ("Dispute", Where::Schema(&["dispute"])),
        ("PaymentIntent", Where::Schema(&["payment_intent"])),
        ("SetupIntent", Where::Schema(&["setup_intent"])),
        ("Customer", Where::Schema(&["customer"])),
        ("Account", Where::Schema(&["account"])),
        (
            "AccountCapabilities",
            Where::Schema(&["account.capabilities"]),
        ),
        ("AccountLink", Where::Schema(&["account_link"])),
        ("Transfer", Where::Schema(&["transfer"])),
        // Any object we need only the id of: everywhere the decoders use it.
        (
            "Ref",
            Where::Schema(&[
                "subscription_item.price",
                "subscription_item.plan",
                "invoice.parent.subscription_details.subscription",
                "subscription.schedule",
            ]),
        ),
        // Any list object (`ListObject`: object, data, has_more, url).
        (
            "List",
            Where::Schema(&["invoice.lines", "subscription.items"]),
        ),
        ("Event", Where::Schema(&["event"])),
        ("EventData", Where::Schema(&["event.data"])),
        // An error answer is no resource of the schema: `{"error": {...}}`, as documented.
        (
            "ErrorBody",
            Where::Documented("https://docs.stripe.com/api/errors", &["error"]),
        ),
        // Its `error` is Stripe's OpenAPI `api_errors`, which a PaymentIntent's
        // `last_payment_error` is too (stripe-python's `ErrorObject` has the same fields).
        (
            "ApiError",
            Where::Schema(&["payment_intent.last_payment_error"]),
        ),
    ];

    /// Fields read only for older API versions (the service decodes both shapes; localstripe
    /// speaks 2020-08-27), documented as such in `objects.rs`: (struct, JSON field, why).
    /// Each must be absent from Stripe's current schema.
    const OLDER_API: &[(&str, &str, &str)] = &[
        (
            "Invoice",
            "subscription",
            "now parent.subscription_details.subscription",
        ),
        (
            "Invoice",
            "subscription_details",
            "now parent.subscription_details",
        ),
        ("Invoice", "charge", "now payments.data[].payment.charge"),
        (
            "Invoice",
            "payment_intent",
            "now payments.data[].payment.payment_intent",
        ),
        (
            "Subscription",
            "current_period_start",
            "now on items.data[]",
        ),
        ("Subscription", "current_period_end", "now on items.data[]"),
        ("PaymentIntent", "charges", "now latest_charge"),
    ];

    const SOURCES: [(&str, &str); 2] = [
        (
            "src/stripe/objects.rs",
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/src/stripe/objects.rs"
            )),
        ),
        (
            "src/stripe/events.rs",
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/stripe/events.rs")),
        ),
    ];

    fn is_ident(c: char) -> bool {
        c.is_alphanumeric() || c == '_'
    }

    /// `src` without its comments (doc comments included); string and char literals kept.
    fn without_comments(src: &str) -> String {
        let s: Vec<char> = src.chars().collect();
        let at = |i: usize| s.get(i).copied().unwrap_or('\0');
        let mut out = String::new();
        let mut i = 0;
        while i < s.len() {
            let c = s[i];
            if c == '/' && at(i + 1) == '/' {
                while i < s.len() && s[i] != '\n' {
                    i += 1;
                }
            } else if c == '/' && at(i + 1) == '*' {
                let mut depth = 0;
                loop {
                    if i >= s.len() {
                        break;
                    } else if s[i] == '/' && at(i + 1) == '*' {
                        depth += 1;
                        i += 2;
                    } else if s[i] == '*' && at(i + 1) == '/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                out.push(' ');
            } else if c == 'r'
                && (i == 0 || !is_ident(s[i - 1]))
                && matches!(at(i + 1), '"' | '#')
                && {
                    let hashes = s[i + 1..].iter().take_while(|&&h| h == '#').count();
                    at(i + 1 + hashes) == '"'
                }
            {
                // A raw string: up to `"` and as many `#`.
                let hashes = s[i + 1..].iter().take_while(|&&h| h == '#').count();
                let start = i;
                i += hashes + 2;
                while i < s.len() && !(s[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#')) {
                    i += 1;
                }
                i = (i + hashes + 1).min(s.len());
                out.extend(&s[start..i]);
            } else if c == '"' {
                let start = i;
                i += 1;
                while i < s.len() && s[i] != '"' {
                    i += if s[i] == '\\' { 2 } else { 1 };
                }
                i = (i + 1).min(s.len());
                out.extend(&s[start..i]);
            } else if c == '\'' && (at(i + 1) == '\\' || at(i + 2) == '\'') {
                // A char literal (not a lifetime).
                let start = i;
                i += 1;
                while i < s.len() && s[i] != '\'' {
                    i += if s[i] == '\\' { 2 } else { 1 };
                }
                i = (i + 1).min(s.len());
                out.extend(&s[start..i]);
            } else {
                out.push(c);
                i += 1;
            }
        }
        out
    }

    /// The byte index just past the bracket closing the one at byte `open` of `s` (strings
    /// skipped).
    fn matching(s: &str, open: usize) -> usize {
        let s = s.as_bytes();
        let (o, c) = match s[open] {
            b'{' => (b'{', b'}'),
            b'(' => (b'(', b')'),
            b'[' => (b'[', b']'),
            b'<' => (b'<', b'>'),
            other => panic!("no bracket: {}", other as char),
        };
        let mut depth = 0;
        let mut i = open;
        while i < s.len() {
            if s[i] == b'"' {
                i += 1;
                while i < s.len() && s[i] != b'"' {
                    i += if s[i] == b'\\' { 2 } else { 1 };
                }
            } else if s[i] == o {
                depth += 1;
            } else if s[i] == c {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            i += 1;
        }
        panic!("unclosed {}", o as char)
    }

    /// `s` split at its top-level commas (not inside brackets or strings), trimmed.
    fn split_top(s: &str) -> Vec<String> {
        let mut parts = vec![String::new()];
        let mut depth = 0i32;
        let mut in_str = false;
        let mut escaped = false;
        for c in s.chars() {
            if in_str {
                in_str = escaped || c != '"';
                escaped = !escaped && c == '\\';
            } else {
                match c {
                    '"' => in_str = true,
                    '(' | '[' | '{' | '<' => depth += 1,
                    ')' | ']' | '}' | '>' => depth -= 1,
                    ',' if depth == 0 => {
                        parts.push(String::new());
                        continue;
                    }
                    _ => {}
                }
            }
            parts.last_mut().expect("a part").push(c);
        }
        parts
            .into_iter()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect()
    }

    /// `decl` split into its leading attributes (`#[...]`, each without `#[` and `]`) and
    /// the rest.
    fn attributes(decl: &str) -> (Vec<&str>, &str) {
        let mut attrs = Vec::new();
        let mut rest = decl.trim_start();
        while rest.starts_with("#[") {
            let end = matching(rest, 1);
            attrs.push(rest[2..end - 1].trim());
            rest = rest[end..].trim_start();
        }
        (attrs, rest)
    }

    /// The arguments of each `#[serde(...)]` among `attrs`.
    fn serde_args(attrs: &[&str]) -> Vec<String> {
        let mut args = Vec::new();
        for attr in attrs {
            if let Some(inner) = attr.strip_prefix("serde") {
                let inner = inner.trim();
                args.extend(split_top(&inner[1..inner.len() - 1]));
            }
        }
        args
    }

    /// The string literal an argument like `rename = "type"` names.
    fn literal(arg: &str) -> String {
        let (_, value) = arg.split_once('=').expect("key = \"value\"");
        value.trim().trim_matches('"').to_owned()
    }

    /// The JSON names a field with these `#[serde(...)]` arguments is read under (none when
    /// skipped).
    fn json_names(field: &str, args: &[String]) -> Vec<String> {
        let mut name = field.to_owned();
        let mut aliases = Vec::new();
        for arg in args {
            let key: String = arg.chars().take_while(|&c| is_ident(c)).collect();
            match key.as_str() {
                "rename" if arg[key.len()..].trim_start().starts_with('(') => {
                    let inner = arg[key.len()..].trim();
                    for part in split_top(&inner[1..inner.len() - 1]) {
                        if part.starts_with("deserialize") {
                            name = literal(&part);
                        }
                    }
                }
                "rename" => name = literal(arg),
                "alias" => aliases.push(literal(arg)),
                "skip" | "skip_deserializing" => return Vec::new(),
                "default"
                | "deserialize_with"
                | "with"
                | "skip_serializing"
                | "skip_serializing_if"
                | "serialize_with"
                | "borrow"
                | "bound" => {}
                _ => panic!("field {field}: #[serde({arg})] is not understood by this check"),
            }
        }
        let mut names = vec![name];
        names.extend(aliases);
        names
    }

    /// Every `pub struct` deriving `Deserialize` in `source`, with the fields it reads.
    fn decoders(source: &str) -> Vec<Decoder> {
        let text = without_comments(source);
        let mut found = Vec::new();
        let mut from = 0;
        while let Some(at) = text[from..].find("struct").map(|k| k + from) {
            from = at + "struct".len();
            let before = text[..at].chars().next_back();
            let after = text[from..].chars().next();
            if before.is_some_and(is_ident) || !after.is_some_and(char::is_whitespace) {
                continue;
            }
            // Its attributes and visibility: back to the previous item or block.
            let start = text[..at].rfind([';', '}', '{']).map_or(0, |k| k + 1);
            let (attrs, visibility) = attributes(&text[start..at]);
            let derives_deserialize = attrs.iter().any(|attr| {
                attr.strip_prefix("derive").is_some_and(|list| {
                    let list = list.trim();
                    split_top(&list[1..list.len() - 1])
                        .iter()
                        .any(|d| d.rsplit("::").next() == Some("Deserialize"))
                })
            });
            if !derives_deserialize || !visibility.starts_with("pub") {
                continue;
            }
            let name_at = from + (text[from..].len() - text[from..].trim_start().len());
            let name: String = text[name_at..]
                .chars()
                .take_while(|&c| is_ident(c))
                .collect();
            for arg in serde_args(&attrs) {
                assert!(
                    matches!(arg.as_str(), "default" | "deny_unknown_fields")
                        || arg.starts_with("bound")
                        || arg.starts_with("crate"),
                    "struct {name}: #[serde({arg})] is not understood by this check"
                );
            }
            let mut i = name_at + name.len();
            let bytes = text.as_bytes();
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if bytes.get(i) == Some(&b'<') {
                i = matching(&text, i);
            }
            while i < bytes.len() && !matches!(bytes[i], b'{' | b'(' | b';') {
                i += 1; // a `where` clause
            }
            assert_eq!(
                bytes.get(i),
                Some(&b'{'),
                "struct {name}: only structs with named fields are understood by this check"
            );
            let end = matching(&text, i);
            let mut fields = Vec::new();
            for field in split_top(&text[i + 1..end - 1]) {
                let (attrs, decl) = attributes(&field);
                let decl = match decl.strip_prefix("pub") {
                    Some(rest) if rest.trim_start().starts_with('(') => {
                        let rest = rest.trim_start();
                        &rest[matching(rest, 0)..]
                    }
                    Some(rest) => rest,
                    None => decl,
                };
                let (rust, _) = decl.split_once(':').expect("name: Type");
                let rust = rust.trim().trim_start_matches("r#").to_owned();
                for json in json_names(&rust, &serde_args(&attrs)) {
                    fields.push((rust.clone(), json));
                }
            }
            found.push(Decoder { name, fields });
            from = end;
        }
        found
    }

    /// Stripe's schema (and example values) at a path of `Where::Schema`.
    fn place_at<'a>(schema: &'a Schema, path: &str) -> Result<Place<'a>, String> {
        let walk = Walk {
            schema,
            use_examples: true,
            unknown: Vec::new(),
        };
        let mut segments = path.split('.');
        let ty = segments.next().unwrap_or_default();
        let mut place = walk.resource(ty);
        if place.nodes.is_empty() {
            return Err(format!("no type {ty:?} in Stripe's schema"));
        }
        for key in segments {
            let here = expanded(&walk, place);
            let nodes: Vec<&Value> = (here.nodes.iter())
                .filter_map(|n| n["fields"].get(key))
                .collect();
            let examples: Vec<&Value> = (here.examples.iter())
                .filter_map(|e| e.get(key))
                .flat_map(|v| match v {
                    Value::Array(items) => items.iter().collect(),
                    v => vec![v],
                })
                .filter(|v| !v.is_null())
                .collect();
            if nodes.is_empty() && examples.is_empty() {
                return Err(format!("Stripe's schema has no {path}"));
            }
            place = Place { nodes, examples };
        }
        Ok(place)
    }

    /// A place's nodes and examples with the resources it refers to (expandable or
    /// embedded) put in.
    fn expanded<'a>(walk: &Walk<'a>, place: Place<'a>) -> Place<'a> {
        let mut out = Place {
            nodes: Vec::new(),
            examples: place.examples,
        };
        for node in place.nodes {
            out.nodes.push(node);
            for ty in node["refs"].as_array().into_iter().flatten() {
                let resource = walk.resource(ty.as_str().unwrap_or_default());
                out.nodes.extend(resource.nodes);
                out.examples.extend(resource.examples);
            }
        }
        out
    }

    #[derive(Debug, PartialEq)]
    enum Presence {
        /// Stripe's package types it here (or this place is a free-form map).
        Typed,
        /// Only Stripe's example has it, with a value.
        Example,
        /// Only Stripe's example has it, and only as null: removed from the current API.
        NullExample,
        Absent,
    }

    fn presence(schema: &Schema, place: &Place<'_>, key: &str) -> Presence {
        let walk = Walk {
            schema,
            use_examples: true,
            unknown: Vec::new(),
        };
        let here = expanded(&walk, place.clone());
        let free = here.nodes.iter().any(|n| n["free"] == true);
        if free || here.nodes.iter().any(|n| n["fields"].get(key).is_some()) {
            return Presence::Typed;
        }
        let examples: Vec<&Value> = here.examples.iter().filter_map(|e| e.get(key)).collect();
        if examples.iter().any(|v| !v.is_null()) {
            Presence::Example
        } else if !examples.is_empty() {
            Presence::NullExample
        } else {
            Presence::Absent
        }
    }

    /// What is wrong with the fields `decoders` read, each error starting `Struct.field`:
    /// a field Stripe's current schema lacks where the struct sits, or one of `older_api`
    /// that the current schema has (or that no decoder reads).
    fn field_errors(
        schema: &Schema,
        decoders: &[Decoder],
        places: &[(&str, Where)],
        older_api: &[(&str, &str, &str)],
    ) -> Vec<String> {
        let mut errors = Vec::new();
        for decoder in decoders {
            let Some((_, place)) = places.iter().find(|(name, _)| *name == decoder.name) else {
                errors.push(format!(
                    "{}: a decoder with no place in Stripe's schema (add it to PLACES)",
                    decoder.name
                ));
                continue;
            };
            for (rust, json) in &decoder.fields {
                let name = if rust == json {
                    format!("{}.{json}", decoder.name)
                } else {
                    format!("{}.{json} ({rust})", decoder.name)
                };
                let legacy = (older_api.iter()).any(|(s, f, _)| *s == decoder.name && f == json);
                match place {
                    Where::Documented(doc, fields) => {
                        if !fields.contains(&json.as_str()) {
                            errors
                                .push(format!("{name}: not in Stripe's documented shape ({doc})"));
                        }
                        if legacy {
                            errors.push(format!("{name}: allow-listed as older-API only, but Stripe documents it ({doc})"));
                        }
                    }
                    Where::Schema(paths) => {
                        for path in *paths {
                            let place = match place_at(schema, path) {
                                Ok(place) => place,
                                Err(e) => {
                                    errors.push(format!("{name}: PLACES: {e}"));
                                    continue;
                                }
                            };
                            match (presence(schema, &place, json), legacy) {
                                (Presence::Typed | Presence::Example, false) => {}
                                (Presence::NullExample, false) => errors.push(format!(
                                    "{name}: Stripe's current API has no {path}.{json} \
                                     (its example keeps it, only as null)"
                                )),
                                (Presence::Absent, false) => errors.push(format!(
                                    "{name}: Stripe's current API has no {path}.{json}"
                                )),
                                (Presence::Typed | Presence::Example, true) => {
                                    errors.push(format!(
                                    "{name}: allow-listed as older-API only, but Stripe's current \
                                     API has {path}.{json}"
                                ))
                                }
                                (Presence::NullExample | Presence::Absent, true) => {}
                            }
                        }
                    }
                }
            }
        }
        for (s, f, _) in older_api {
            let read = (decoders.iter())
                .any(|d| d.name == *s && d.fields.iter().any(|(_, json)| json == f));
            if !read {
                errors.push(format!(
                    "{s}.{f}: allow-listed as older-API only, but no decoder reads it"
                ));
            }
        }
        errors
    }

    fn our_decoders() -> Vec<Decoder> {
        SOURCES
            .iter()
            .flat_map(|(_, source)| decoders(source))
            .collect()
    }

    #[test]
    fn every_field_our_decoders_read_is_in_stripes_schema() {
        let ours = our_decoders();
        let errors = field_errors(schema(), &ours, PLACES, OLDER_API);
        assert!(
            errors.is_empty(),
            "our Stripe decoders ({}) read what Stripe's API ({}) does not have:\n  {}",
            SOURCES.map(|(path, _)| path).join(", "),
            schema().source,
            errors.join("\n  ")
        );
        // No place for a decoder that is gone.
        for (name, _) in PLACES {
            assert!(
                ours.iter().any(|d| d.name == *name),
                "PLACES names {name}, which is no decoder in {:?}",
                SOURCES.map(|(path, _)| path)
            );
        }
    }

    #[test]
    fn the_decoders_are_read_from_the_source() {
        let ours = our_decoders();
        let names: Vec<&str> = ours.iter().map(|d| d.name.as_str()).collect();
        let mut expected: Vec<&str> = PLACES.iter().map(|(name, _)| *name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        expected.sort_unstable();
        assert_eq!(sorted, expected);
        let fields = |name: &str| -> Vec<(String, String)> {
            ours.iter().find(|d| d.name == name).unwrap().fields.clone()
        };
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect()
        };
        // Renamed fields are read under their JSON names.
        assert_eq!(
            fields("ApiError"),
            pairs(&[("kind", "type"), ("code", "code"), ("message", "message")])
        );
        assert_eq!(
            fields("Event"),
            pairs(&[
                ("id", "id"),
                ("event_type", "type"),
                ("created", "created"),
                ("api_version", "api_version"),
                ("account", "account"),
                ("data", "data"),
            ])
        );
        assert_eq!(
            fields("List"),
            pairs(&[("data", "data"), ("has_more", "has_more")])
        );
        // Doc comments (with commas and parentheses) are no fields.
        assert_eq!(fields("Dispute").len(), 7);
        assert_eq!(fields("Invoice").len(), 17);
    }

    #[test]
    fn extraction_handles_renames_comments_generics_and_skips() {
        let source = r#"
            use serde::Deserialize;
            /// Not a decoder: { no Deserialize }, pub struct Fake { pub x: i64 }
            #[derive(Clone, Debug)]
            pub struct Plain { pub ignored: i64 }
            #[derive(Deserialize)]
            pub enum Kind { A, B }
            #[derive(Clone, serde::Deserialize)]
            #[serde(default)]
            pub struct Thing<T> where T: Clone {
                /// The id, e.g. "in_1", of { anything }.
                pub id: String, // trailing, comment
                #[serde(rename = "type")]
                pub kind: Option<String>,
                pub map: std::collections::HashMap<String, Vec<T>>,
                #[serde(alias = "old_name", default)]
                pub new_name: i64,
                #[serde(skip)]
                pub cache: i64,
                pub(crate) r#ref: String,
                /* a block — comment, with { and " */
                pub bytes: [u8; 4],
            }
        "#;
        assert_eq!(
            decoders(source),
            [Decoder {
                name: "Thing".into(),
                fields: [
                    ("id", "id"),
                    ("kind", "type"),
                    ("map", "map"),
                    ("new_name", "new_name"),
                    ("new_name", "old_name"),
                    ("ref", "ref"),
                    ("bytes", "bytes"),
                ]
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect(),
            }]
        );
    }

    #[test]
    fn an_invented_field_is_named() {
        let source = "#[derive(Deserialize)] pub struct Invoice { pub bogus: i64 }";
        let errors = field_errors(schema(), &decoders(source), PLACES, &[]);
        assert_eq!(
            errors,
            ["Invoice.bogus: Stripe's current API has no invoice.bogus"]
        );
        // Also where a struct sits deeper, or is renamed.
        let source = r#"#[derive(Deserialize)] pub struct Period { pub start: i64, pub stop: i64 }
            #[derive(Deserialize)] pub struct Ref { #[serde(rename = "idd")] pub id: String }"#;
        let errors = field_errors(schema(), &decoders(source), PLACES, &[]);
        assert_eq!(
            errors,
            [
                "Period.stop: Stripe's current API has no line_item.period.stop",
                "Ref.idd (id): Stripe's current API has no subscription_item.price.idd",
                "Ref.idd (id): Stripe's current API has no subscription_item.plan.idd",
                "Ref.idd (id): Stripe's current API has no \
                 invoice.parent.subscription_details.subscription.idd",
                "Ref.idd (id): Stripe's current API has no subscription.schedule.idd",
            ]
        );
        // A struct with no place is named too.
        let source = "#[derive(Deserialize)] pub struct Novel { pub id: String }";
        let errors = field_errors(schema(), &decoders(source), PLACES, &[]);
        assert_eq!(
            errors,
            ["Novel: a decoder with no place in Stripe's schema (add it to PLACES)"]
        );
    }

    #[test]
    fn older_api_fields_fail_unless_allow_listed_and_absent() {
        let source = "#[derive(Deserialize)] pub struct Invoice { pub status: String, \
                      pub subscription: Option<String>, pub charge: Option<String> }";
        let ours = decoders(source);
        // Without the allow-list, the older shape's fields fail (`subscription` is in
        // Stripe's example invoice, but only as null).
        let errors = field_errors(schema(), &ours, PLACES, &[]);
        let errors: Vec<&str> = errors
            .iter()
            .map(|e| e.split(" (").next().unwrap_or_default())
            .collect();
        assert_eq!(
            errors,
            [
                "Invoice.subscription: Stripe's current API has no invoice.subscription",
                "Invoice.charge: Stripe's current API has no invoice.charge",
            ]
        );
        let older: &[(&str, &str, &str)] =
            &[("Invoice", "subscription", ""), ("Invoice", "charge", "")];
        assert!(field_errors(schema(), &ours, PLACES, older).is_empty());
        // An allow-listed field Stripe has is no older-API field; a typo names nothing read.
        let older: &[(&str, &str, &str)] = &[
            ("Invoice", "subscription", ""),
            ("Invoice", "charge", ""),
            ("Invoice", "status", ""),
            ("Invoice", "chrage", ""),
        ];
        assert_eq!(
            field_errors(schema(), &ours, PLACES, older),
            [
                "Invoice.status: allow-listed as older-API only, but Stripe's current API has \
                 invoice.status",
                "Invoice.chrage: allow-listed as older-API only, but no decoder reads it",
            ]
        );
    }

    #[test]
    fn every_place_is_in_stripes_schema() {
        for (name, place) in PLACES {
            if let Where::Schema(paths) = place {
                for path in *paths {
                    if let Err(e) = place_at(schema(), path) {
                        panic!("{name}: {e}");
                    }
                }
            }
        }
        assert!(place_at(schema(), "invoice.parent.bogus").is_err());
        assert!(place_at(schema(), "bogus").is_err());
    }
}
