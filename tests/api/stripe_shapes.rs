//! Stripe-shaped events the tests build carry only fields Stripe's current API has, so no
//! test passes on a payload real Stripe would never send.
//!
//! The schema is that of Stripe's own Python package (`stripe==16.*`, which pins API version
//! `2026-10-28.endive`): `tests/stripe_schema.py` dumps the fields its resource classes
//! annotate, nested objects included, as JSON, run once per test process with the tests' venv.
//! A key that schema lacks is still accepted where Stripe's example object of the type
//! (`../shared/stripe/fixtures3.json`, from Stripe's OpenAPI repository) has it at the same
//! place. Keys under `metadata` are free-form.

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
