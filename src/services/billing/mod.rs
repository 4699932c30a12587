//! Billing through Stripe, by concept: starting purchases (`purchases`), ending monthly
//! donations (`donations`), support's refunds (`refund_requests`), what Stripe's events change
//! (`stripe_events` receives and routes them to `subscription_events`, `payments`, `refunds`,
//! `disputes`), Stripe's fees (`fees`) and creators' earnings and their hold (`earnings`).

pub mod disputes;
pub mod donations;
pub mod earnings;
pub mod fees;
pub mod payments;
pub mod purchases;
pub mod refund_requests;
pub mod refunds;
pub mod stripe_events;
pub mod subscription_events;
