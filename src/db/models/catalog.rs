//! Products, their prices, entitlement definitions and which entitlements a plan confers.

use super::{new_id, to_db};
use crate::db::schema::{entitlement_definitions, plan_entitlements, prices, products};
use crate::db::DbConn;
use crate::domain::states::{Interval, ProductKind};
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = products)]
pub struct Product {
    pub id: String,
    pub kind: ProductKind,
    pub name: String,
    pub description: String,
    pub creator_id: Option<String>,
    pub per_seat: bool,
    pub active: bool,
    pub stripe_product_id: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = prices)]
pub struct Price {
    pub id: String,
    pub product_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub interval: Option<Interval>,
    pub trial_days: i32,
    pub active: bool,
    pub stripe_price_id: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = entitlement_definitions)]
pub struct EntitlementDefinition {
    pub key: String,
    pub kind: String,
    pub description: String,
    pub created_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = plan_entitlements)]
pub struct PlanEntitlement {
    pub product_id: String,
    pub entitlement_key: String,
    pub value: Option<i64>,
}

pub struct NewProduct {
    pub id: Option<String>,
    pub kind: ProductKind,
    pub name: String,
    pub description: String,
    pub creator_id: Option<String>,
    pub per_seat: bool,
}

impl Product {
    pub fn create(conn: &mut DbConn, new: NewProduct) -> QueryResult<Product> {
        let product = Product {
            id: new.id.unwrap_or_else(|| new_id("prod")),
            kind: new.kind,
            name: new.name,
            description: new.description,
            creator_id: new.creator_id,
            per_seat: new.per_seat,
            active: true,
            stripe_product_id: None,
            created_at: to_db(Utc::now()),
        };
        super::packs::store_touched();
        diesel::insert_into(products::table)
            .values(&product)
            .execute(conn)?;
        Ok(product)
    }

    pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<Product>> {
        products::table
            .find(id)
            .select(Product::as_select())
            .first(conn)
            .optional()
    }

    pub fn all(conn: &mut DbConn) -> QueryResult<Vec<Product>> {
        products::table
            .order(products::created_at.asc())
            .select(Product::as_select())
            .load(conn)
    }

    pub fn active_plans(conn: &mut DbConn) -> QueryResult<Vec<Product>> {
        products::table
            .filter(products::kind.eq("plan"))
            .filter(products::active.eq(true))
            .order(products::created_at.asc())
            .select(Product::as_select())
            .load(conn)
    }

    pub fn update(
        conn: &mut DbConn,
        id: &str,
        name: Option<String>,
        description: Option<String>,
        active: Option<bool>,
    ) -> QueryResult<Product> {
        if let Some(name) = name {
            super::packs::store_touched();
            diesel::update(products::table.find(id))
                .set(products::name.eq(name))
                .execute(conn)?;
        }
        if let Some(description) = description {
            super::packs::store_touched();
            diesel::update(products::table.find(id))
                .set(products::description.eq(description))
                .execute(conn)?;
        }
        if let Some(active) = active {
            super::packs::store_touched();
            diesel::update(products::table.find(id))
                .set(products::active.eq(active))
                .execute(conn)?;
        }
        products::table
            .find(id)
            .select(Product::as_select())
            .first(conn)
    }

    /// Replaces the set of entitlements the product confers.
    pub fn set_entitlements(
        conn: &mut DbConn,
        id: &str,
        entitlements: &[(String, Option<i64>)],
    ) -> QueryResult<Vec<PlanEntitlement>> {
        diesel::delete(plan_entitlements::table.filter(plan_entitlements::product_id.eq(id)))
            .execute(conn)?;
        let rows: Vec<PlanEntitlement> = entitlements
            .iter()
            .map(|(key, value)| PlanEntitlement {
                product_id: id.to_owned(),
                entitlement_key: key.clone(),
                value: *value,
            })
            .collect();
        for row in &rows {
            diesel::insert_into(plan_entitlements::table)
                .values(row)
                .execute(conn)?;
        }
        Ok(rows)
    }

    pub fn entitlements_of(
        conn: &mut DbConn,
        product_ids: &[String],
    ) -> QueryResult<Vec<PlanEntitlement>> {
        plan_entitlements::table
            .filter(plan_entitlements::product_id.eq_any(product_ids))
            .order(plan_entitlements::entitlement_key.asc())
            .select(PlanEntitlement::as_select())
            .load(conn)
    }
}

pub struct NewPrice {
    pub id: Option<String>,
    pub product_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub interval: Option<Interval>,
    pub trial_days: i32,
}

impl Price {
    pub fn create(conn: &mut DbConn, new: NewPrice) -> QueryResult<Price> {
        let price = Price {
            id: new.id.unwrap_or_else(|| new_id("price")),
            product_id: new.product_id,
            amount_minor: new.amount_minor,
            currency: new.currency,
            interval: new.interval,
            trial_days: new.trial_days,
            active: true,
            stripe_price_id: None,
            created_at: to_db(Utc::now()),
        };
        super::packs::store_touched();
        diesel::insert_into(prices::table)
            .values(&price)
            .execute(conn)?;
        Ok(price)
    }

    pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<Price>> {
        prices::table
            .find(id)
            .select(Price::as_select())
            .first(conn)
            .optional()
    }

    pub fn set_active(conn: &mut DbConn, id: &str, active: bool) -> QueryResult<Price> {
        super::packs::store_touched();
        diesel::update(prices::table.find(id))
            .set(prices::active.eq(active))
            .execute(conn)?;
        prices::table
            .find(id)
            .select(Price::as_select())
            .first(conn)
    }

    pub fn of_products(conn: &mut DbConn, product_ids: &[String]) -> QueryResult<Vec<Price>> {
        prices::table
            .filter(prices::product_id.eq_any(product_ids))
            .order((prices::currency.asc(), prices::amount_minor.asc()))
            .select(Price::as_select())
            .load(conn)
    }
}

impl EntitlementDefinition {
    pub fn create(
        conn: &mut DbConn,
        key: String,
        kind: String,
        description: String,
    ) -> QueryResult<EntitlementDefinition> {
        let def = EntitlementDefinition {
            key,
            kind,
            description,
            created_at: to_db(Utc::now()),
        };
        diesel::insert_into(entitlement_definitions::table)
            .values(&def)
            .execute(conn)?;
        Ok(def)
    }

    pub fn all(conn: &mut DbConn) -> QueryResult<Vec<EntitlementDefinition>> {
        entitlement_definitions::table
            .order(entitlement_definitions::key.asc())
            .select(EntitlementDefinition::as_select())
            .load(conn)
    }

    pub fn find(conn: &mut DbConn, key: &str) -> QueryResult<Option<EntitlementDefinition>> {
        entitlement_definitions::table
            .find(key)
            .select(EntitlementDefinition::as_select())
            .first(conn)
            .optional()
    }
}
