//! Test fixtures: the seed machine after a drive swap, `zpool status` listings, a survivor's table.

use std::path::Path;

use super::status::{parse, PoolStatus};
use crate::hardware::{probe, Inventory};
use crate::profile::Profile;

pub(crate) const A: &str = "S675NX0T100001";
pub(crate) const B: &str = "S675NX0T100002";
pub(crate) const NEW: &str = "S675NX0T100009";
pub(crate) const MODEL: &str = "SAMSUNG_MZVL2512HCJQ-00B00";

pub(crate) fn root(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

pub(crate) fn profile() -> (Profile, String) {
    let path = root("profiles/pve-node-01.toml");
    (Profile::load(&path).unwrap().profile, std::fs::read_to_string(&path).unwrap())
}

/// The seed machine after Hetzner swapped drive B: a blank drive with another serial.
pub(crate) fn swapped() -> Inventory {
    let mut inv = probe(&root("tests/fixtures/ax41-nvme")).unwrap();
    let d = inv.disks.iter_mut().find(|d| d.serial == B).unwrap();
    d.serial = NEW.into();
    d.stable_id = Some(format!("nvme-{MODEL}_{NEW}"));
    d.by_id = vec![format!("nvme-{MODEL}_{NEW}")];
    d.partitions.clear();
    inv
}

pub(crate) fn by_id(serial: &str, part: u32) -> String {
    format!("/dev/disk/by-id/nvme-{MODEL}_{serial}-part{part}")
}

/// `zpool status -P` and `-g` of a two-drive mirror: (name or path, state, rest) per leaf.
pub(crate) fn status(pool: &str, state: &str, scan: &str, leaves: &[(&str, &str, &str, &str)], replacing: Option<usize>) -> (String, String) {
    let mut p = format!("  pool: {pool}\n state: {state}\nstatus: One or more devices could not be used because the label is missing or\n\tinvalid.  Sufficient replicas exist for the pool to continue\n\tfunctioning in a degraded state.\naction: Replace the device using 'zpool replace'.\n  scan: {scan}\nconfig:\n\n\tNAME                     STATE     READ WRITE CKSUM\n\t{pool}                     {state}     0     0     0\n\t  mirror-0               {state}     0     0     0\n");
    let mut g = format!("  pool: {pool}\n state: {state}\n  scan: {scan}\nconfig:\n\n\tNAME                     STATE     READ WRITE CKSUM\n\t{pool}                     {state}     0     0     0\n\t  1111111111111111111    {state}     0     0     0\n");
    for (i, (name, st, guid, rest)) in leaves.iter().enumerate() {
        let indent = if replacing.is_some_and(|r| i >= r) { "\t      " } else { "\t    " };
        if replacing == Some(i) {
            p.push_str(&format!("\t    replacing-{i}            DEGRADED     0     0     0\n"));
            g.push_str("\t    2222222222222222222    DEGRADED     0     0     0\n");
        }
        p.push_str(&format!("{indent}{name}  {st}  0 0 0  {rest}\n"));
        g.push_str(&format!("{indent}{guid}  {st}  0 0 0  {rest}\n"));
    }
    p.push_str("\nerrors: No known data errors\n");
    g.push_str("\nerrors: No known data errors\n");
    (p, g)
}

pub(crate) fn degraded(pool: &str, n: u32) -> PoolStatus {
    let (p, g) = status(pool, "DEGRADED", "none requested", &[
        (&by_id(A, n), "ONLINE", &format!("10{n}"), ""),
        (&format!("20{n}"), "UNAVAIL", &format!("20{n}"), &format!("was {}", by_id(B, n))),
    ], None);
    parse(&p, &g).unwrap()
}

pub(crate) fn both_degraded() -> Vec<PoolStatus> {
    vec![degraded("rpool", 2), degraded("datapool", 3)]
}

pub(crate) fn sfdisk(dev: &str, p3_size: u64) -> String {
    format!(r#"{{"partitiontable": {{"label": "gpt", "id": "X", "device": "{dev}", "unit": "sectors", "firstlba": 34, "lastlba": 1000215182, "sectorsize": 512,
      "partitions": [
        {{"node": "{dev}p1", "start": 2048, "size": 1048576, "type": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "uuid": "1", "name": "esp"}},
        {{"node": "{dev}p2", "start": 1050624, "size": 104857600, "type": "6A898CC3-1DD2-11B2-99A6-080020736631", "uuid": "2", "name": "rpool"}},
        {{"node": "{dev}p3", "start": 105908224, "size": {p3_size}, "type": "6A898CC3-1DD2-11B2-99A6-080020736631", "uuid": "3", "name": "datapool"}},
        {{"node": "{dev}p4", "start": 34, "size": 2014, "type": "21686148-6449-6E6F-744E-656564454649", "uuid": "4", "name": "bios-boot"}}
      ]}}}}"#)
}

