//! keel's provisioning model: hardware inventory, hardware specs, profiles, plans and the
//! renderers of the files an install writes. Pure code: nothing here touches the machine
//! except [`hardware::probe`], which only reads files under a root directory it is given.

pub mod exec;
pub mod hardware;
pub mod hostkeys;
pub mod image;
pub mod live;
pub mod plan;
pub mod profile;
pub mod pve_storage;
pub mod render;
pub mod replace;
pub mod size;
pub mod source;
pub mod spec;
pub mod verify;
pub mod table;
pub mod zfs_features;
