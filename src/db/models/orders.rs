//! One-off purchases: packs for oneself, gifts to another user, donations.

use super::{new_id, to_db};
use crate::db::schema::orders;
use crate::db::DbConn;
use crate::domain::states::{OrderKind, OrderStatus, SalesChannel};
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = orders)]
pub struct Order {
    pub id: String,
    pub buyer_id: String,
    pub recipient_id: Option<String>,
    pub product_id: String,
    pub price_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub status: OrderStatus,
    pub paid_at: Option<NaiveDateTime>,
    pub stripe_payment_intent_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub kind: OrderKind,
    /// For a gifted subscription period: how many days the recipient gets.
    pub gift_days: Option<i32>,
    /// A gift's message to its recipient.
    pub message: Option<String>,
    /// Where the sale was made: which of the creator's rules split it.
    pub channel: SalesChannel,
}

pub struct NewOrder {
    pub buyer_id: String,
    pub recipient_id: Option<String>,
    pub product_id: String,
    pub price_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub status: OrderStatus,
    pub kind: OrderKind,
    pub gift_days: Option<i32>,
    pub message: Option<String>,
    pub channel: SalesChannel,
}

impl Order {
    pub fn create(conn: &mut DbConn, new: NewOrder) -> QueryResult<Order> {
        let now = to_db(Utc::now());
        let order = Order {
            id: new_id("ord"),
            paid_at: (new.status == OrderStatus::Paid).then_some(now),
            buyer_id: new.buyer_id,
            recipient_id: new.recipient_id,
            product_id: new.product_id,
            price_id: new.price_id,
            amount_minor: new.amount_minor,
            currency: new.currency,
            status: new.status,
            stripe_payment_intent_id: None,
            created_at: now,
            updated_at: now,
            kind: new.kind,
            gift_days: new.gift_days,
            message: new.message,
            channel: new.channel,
        };
        if order.status == OrderStatus::Paid {
            // "Popular" in the store counts paid orders (pending ones change nothing there).
            super::packs::store_touched();
        }
        diesel::insert_into(orders::table)
            .values(&order)
            .execute(conn)?;
        Ok(order)
    }

    pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<Order>> {
        orders::table
            .find(id)
            .select(Order::as_select())
            .first(conn)
            .optional()
    }

    pub fn set_status(conn: &mut DbConn, id: &str, status: OrderStatus) -> QueryResult<Order> {
        let now = to_db(Utc::now());
        // "Popular" in the store counts paid orders.
        super::packs::store_touched();
        diesel::update(orders::table.find(id))
            .set((orders::status.eq(status), orders::updated_at.eq(now)))
            .execute(conn)?;
        if status == OrderStatus::Paid {
            // "Popular" in the store counts paid orders.
            super::packs::store_touched();
            diesel::update(orders::table.find(id).filter(orders::paid_at.is_null()))
                .set(orders::paid_at.eq(now))
                .execute(conn)?;
        }
        orders::table
            .find(id)
            .select(Order::as_select())
            .first(conn)
    }

    pub fn by_payment_intent(conn: &mut DbConn, pi: &str) -> QueryResult<Option<Order>> {
        orders::table
            .filter(orders::stripe_payment_intent_id.eq(pi))
            .select(Order::as_select())
            .first(conn)
            .optional()
    }

    pub fn set_payment_intent(conn: &mut DbConn, id: &str, pi: &str) -> QueryResult<()> {
        diesel::update(orders::table.find(id))
            .set(orders::stripe_payment_intent_id.eq(pi))
            .execute(conn)?;
        Ok(())
    }

    /// The user's orders, as buyer or recipient, newest first.
    pub fn of_user(conn: &mut DbConn, user: &str) -> QueryResult<Vec<Order>> {
        orders::table
            .filter(orders::buyer_id.eq(user).or(orders::recipient_id.eq(user)))
            .order(orders::created_at.desc())
            .select(Order::as_select())
            .load(conn)
    }

    /// Whether `user` holds the pack through a paid order (bought or received).
    pub fn holds_pack(conn: &mut DbConn, user: &str, product: &str) -> QueryResult<bool> {
        let n: i64 = orders::table
            .filter(orders::product_id.eq(product))
            .filter(orders::status.eq(OrderStatus::Paid))
            .filter(
                orders::recipient_id.eq(user).or(orders::recipient_id
                    .is_null()
                    .and(orders::buyer_id.eq(user))),
            )
            .count()
            .get_result(conn)?;
        Ok(n > 0)
    }

    /// The user who holds what the order bought: the gift's recipient, else the buyer.
    pub fn holder(&self) -> &str {
        self.recipient_id.as_deref().unwrap_or(&self.buyer_id)
    }
}

/// The packs a user holds through paid orders (bought for themselves or received as gifts).
pub fn packs_held(conn: &mut DbConn, user: &str) -> QueryResult<Vec<String>> {
    orders::table
        .filter(orders::status.eq(OrderStatus::Paid))
        .filter(orders::kind.eq(OrderKind::Pack))
        .filter(
            orders::recipient_id.eq(user).or(orders::recipient_id
                .is_null()
                .and(orders::buyer_id.eq(user))),
        )
        .select(orders::product_id)
        .distinct()
        .limit(10_000)
        .load(conn)
}
