//! Stripe: the gateway for the calls we make, the objects we read back, and webhook
//! signature verification.

pub mod gateway;
pub mod objects;
pub mod signature;
