//! `keel detect` as tables for a terminal.

use std::fmt::Write;

use keel_installer::hardware::{DiskKind, Inventory};
use keel_installer::table::{self, indent};

pub fn human(inv: &Inventory) -> String {
    let mut o = String::new();
    let d = &inv.dmi;
    let _ = writeln!(o, "system    {} {} (serial {}, board {} {})", or_dash(&d.sys_vendor), or_dash(&d.product_name), or_dash(&d.product_serial), or_dash(&d.board_vendor), or_dash(&d.board_name));
    let _ = writeln!(o, "firmware  {} (BIOS {} {})", inv.firmware, or_dash(&d.bios_vendor), or_dash(&d.bios_version));
    let _ = writeln!(o, "cpu       {} ({} cores, {} threads)", inv.cpu.model, inv.cpu.cores, inv.cpu.threads);
    let _ = writeln!(o, "memory    {}", inv.memory.total_bytes);
    let boot = match (&inv.boot.root_source, inv.boot.disks.is_empty()) {
        (Some(src), true) => format!("/ is {src} ({}): not booted from a local disk", inv.boot.root_fstype.as_deref().unwrap_or("?")),
        (Some(src), false) => format!("/ is {src}: booted from {}", inv.boot.disks.join(", ")),
        (None, _) => "no / mount found".into(),
    };
    let _ = writeln!(o, "boot      {boot}");

    let _ = writeln!(o, "\nNVMe drives");
    let rows: Vec<[String; 7]> = inv
        .nvme_disks()
        .map(|d| {
            [
                d.name.clone(),
                d.model.clone(),
                d.serial.clone(),
                d.firmware_rev.clone(),
                d.size_bytes.to_string(),
                format!("{}/{}", d.logical_block_size, d.physical_block_size),
                if d.in_use() { d.usage_summary() } else { "free".into() },
            ]
        })
        .collect();
    if rows.is_empty() {
        let _ = writeln!(o, "  none");
    } else {
        o.push_str(&indent(&table::render(&["NAME", "MODEL", "SERIAL", "FIRMWARE", "SIZE", "SECTOR L/P", "STATE"], &rows)));
        for disk in inv.nvme_disks() {
            let _ = writeln!(o, "  {}: by-id {}", disk.name, disk.stable_id.as_deref().unwrap_or("(none)"));
            for p in &disk.partitions {
                let _ = writeln!(o, "    {} {}", p.name, p.size_bytes);
            }
        }
    }

    let others: Vec<[String; 4]> = inv
        .disks
        .iter()
        .filter(|d| d.kind != DiskKind::Nvme)
        .map(|d| {
            [
                d.name.clone(),
                format!("{:?}", d.kind).to_lowercase(),
                d.size_bytes.to_string(),
                if d.in_use() { d.usage_summary() } else { "free".into() },
            ]
        })
        .collect();
    if !others.is_empty() {
        let _ = writeln!(o, "\nother block devices (never targets of an NVMe profile)");
        o.push_str(&indent(&table::render(&["NAME", "KIND", "SIZE", "STATE"], &others)));
    }

    let _ = writeln!(o, "\nnetwork interfaces");
    let rows: Vec<[String; 6]> = inv
        .nics
        .iter()
        .map(|n| {
            [
                n.name.clone(),
                n.mac.clone(),
                n.driver.clone().unwrap_or_else(|| "-".into()),
                n.pci_address.clone().unwrap_or_else(|| "-".into()),
                n.speed_mbps.map(|s| format!("{s} Mb/s")).unwrap_or_else(|| "-".into()),
                match n.carrier {
                    Some(true) => "link".into(),
                    Some(false) => "no link".into(),
                    None => format!("unknown ({})", n.operstate),
                },
            ]
        })
        .collect();
    if rows.is_empty() {
        let _ = writeln!(o, "  none");
    } else {
        o.push_str(&indent(&table::render(&["NAME", "MAC", "DRIVER", "PCI", "SPEED", "CARRIER"], &rows)));
    }
    o
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}
