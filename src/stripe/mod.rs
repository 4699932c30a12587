//! Stripe: webhook verification now; the gateway for purchases comes with the billing work.

pub mod signature;
