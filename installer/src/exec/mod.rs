//! Runs a [`Plan`](crate::plan::Plan) on the machine through a [`Host`]: preflight,
//! confirmation, the disk-phase steps with their "already done?" checks, and the journal that
//! makes a re-run continue where the last one stopped.

pub mod checks;
pub mod confirm;
pub mod engine;
pub mod host;
pub mod preflight;
pub mod spool;
pub mod journal;
pub mod pools;
pub mod replace;

pub use host::{FakeHost, Host, HostError, Output, SystemHost};

#[cfg(test)]
mod tests;
