//! keel-registry: the phone-home server. `store` holds the database (SQLite or PostgreSQL),
//! `api` the HTTP endpoints, `secret` the token handling, `ipxe` the boot scripts.

pub mod api;
pub mod error;
pub mod images;
pub mod ipxe;
pub mod secret;
pub mod server;
pub mod status_page;
pub mod store;
pub mod tls;

pub use api::{router, AppState, Shared};
pub use store::Store;
