//! Ending a monthly donation: the donor stops it at any time; Stripe's subscription ends now
//! and bills nothing more. (Starting a donation is in `purchases`.)

use super::purchases::{gateway, stripe_error};
use crate::app::AppState;
use crate::db::models::donations::Donation;
use crate::db::{self, DbConn};
use crate::domain::states::DonationStatus;
use crate::error::AppError;
use crate::stripe::gateway::GatewayError;

/// Cancels the caller's own monthly donation; someone else's is "not found".
pub async fn cancel(state: &AppState, donor: &str, id: &str) -> Result<Donation, AppError> {
    let (d, i) = (donor.to_owned(), id.to_owned());
    let donation = db::run(&state.pool, move |conn| {
        Donation::find(conn, &i)?
            .filter(|x| x.donor_id == d)
            .ok_or_else(|| AppError::not_found(format!("donation {i}")))
    })
    .await?;
    if donation.status == DonationStatus::Canceled {
        return Ok(donation);
    }
    let stripe_id = match (&donation.stripe_subscription_id, donation.recurring) {
        (Some(s), true)
            if matches!(
                donation.status,
                DonationStatus::Active | DonationStatus::Pending
            ) =>
        {
            s.clone()
        }
        _ => {
            return Err(AppError::conflict(
                "not_cancelable",
                "only an active monthly donation can be canceled",
            ))
        }
    };
    match gateway(state)?.cancel_subscription(&stripe_id).await {
        Ok(_) => {}
        // Already ended at Stripe (a retry, or Stripe ended it): ours ends too.
        Err(GatewayError::Refused { status: 404, .. }) => {}
        Err(e) => return Err(stripe_error(e)),
    }
    let id = donation.id.clone();
    db::run(&state.pool, move |conn| {
        ended(conn, &id)?;
        Donation::find(conn, &id)?.ok_or_else(|| AppError::not_found("donation"))
    })
    .await
}

/// A monthly donation whose Stripe subscription ended (`customer.subscription.deleted`, or
/// the donor's cancel): nothing more is billed.
pub fn ended(conn: &mut DbConn, id: &str) -> Result<(), AppError> {
    Donation::set_status(conn, id, DonationStatus::Canceled)?;
    Ok(())
}
