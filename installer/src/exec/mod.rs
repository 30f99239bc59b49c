//! Runs a [`Plan`](crate::plan::Plan) on the machine through a [`Host`]: preflight,
//! confirmation, the disk-phase steps with their "already done?" checks, and the journal that
//! makes a re-run continue where the last one stopped.

pub mod host;

pub use host::{FakeHost, Host, HostError, Output, SystemHost};
