//! Seats of a per-seat (team) subscription: its owner gives members seats, at most as many as
//! the subscription's quantity, and takes them back. A member holds the plan while seated.

use crate::app::AppState;
use crate::db::models::catalog::Product;
use crate::db::models::subscriptions::Subscription;
use crate::db::models::users;
use crate::db::{self, DbConn};
use crate::error::AppError;
use crate::services::changes;

/// The owner's own per-seat subscription; someone else's is "not found", not "forbidden", so
/// ids of other users' subscriptions cannot be probed.
fn owned_team(conn: &mut DbConn, id: &str, owner: &str) -> Result<Subscription, AppError> {
    let sub = Subscription::find(conn, id)?
        .filter(|s| s.user_id == owner)
        .ok_or_else(|| AppError::not_found(format!("subscription {id}")))?;
    let per_seat = Product::find(conn, &sub.product_id)?.is_some_and(|p| p.per_seat);
    if !per_seat {
        return Err(AppError::unprocessable(
            "not_per_seat",
            "only per-seat subscriptions have seats",
        ));
    }
    Ok(sub)
}

/// The subscription and its seated members.
pub async fn list(
    state: &AppState,
    owner: &str,
    id: &str,
) -> Result<(Subscription, Vec<String>), AppError> {
    let (owner, id) = (owner.to_owned(), id.to_owned());
    db::run(&state.pool, move |conn| {
        let sub = owned_team(conn, &id, &owner)?;
        let seats = Subscription::seat_holders(conn, &id)?;
        Ok((sub, seats))
    })
    .await
}

/// Seats `member`; returns the members after.
pub async fn assign(
    state: &AppState,
    owner: &str,
    id: &str,
    member: &str,
) -> Result<Vec<String>, AppError> {
    let (owner, id, member) = (owner.to_owned(), id.to_owned(), member.to_owned());
    changes::transaction(state, move |conn, changed| {
        let sub = owned_team(conn, &id, &owner)?;
        let seats = Subscription::seat_holders(conn, &id)?;
        if seats.contains(&member) {
            return Err(AppError::conflict(
                "seat_taken",
                "that member already has a seat",
            ));
        }
        if i64::try_from(seats.len()).unwrap_or(i64::MAX) >= i64::from(sub.quantity) {
            return Err(AppError::conflict(
                "no_free_seat",
                format!(
                    "all {} seats are assigned; raise the quantity first",
                    sub.quantity
                ),
            ));
        }
        users::ensure(conn, &member)?;
        Subscription::assign_seat(conn, &id, &member)?;
        changed.user(member);
        Ok(Subscription::seat_holders(conn, &id)?)
    })
    .await
}

/// Takes `member`'s seat back.
pub async fn unassign(
    state: &AppState,
    owner: &str,
    id: &str,
    member: &str,
) -> Result<(), AppError> {
    let (owner, id, member) = (owner.to_owned(), id.to_owned(), member.to_owned());
    changes::transaction(state, move |conn, changed| {
        owned_team(conn, &id, &owner)?;
        if !Subscription::remove_seat(conn, &id, &member)? {
            return Err(AppError::not_found(format!("seat of {member}")));
        }
        changed.user(member);
        Ok(())
    })
    .await
}
