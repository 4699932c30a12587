//! Stripe: the gateway for the calls we make, the objects we read back (from answers and
//! events), the events typed at the edge, and webhook
//! signature verification.

pub mod events;
pub mod gateway;
pub mod objects;
pub mod signature;
