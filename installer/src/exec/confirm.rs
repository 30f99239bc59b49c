//! The operator's consent to destroy the target disks: typing the host name at a terminal, or,
//! unattended, `--yes` together with the exact serials.

use super::preflight::Preflight;
use crate::plan::Plan;

/// The table shown before the question: what will be destroyed.
pub fn disks_to_destroy(plan: &Plan, pre: &Preflight) -> String {
    let rows: Vec<[String; 6]> = plan
        .targets
        .iter()
        .map(|t| {
            let mut contents = pre.contents.get(&t.serial).cloned().unwrap_or_default();
            if let Some(table) = pre.tables.get(&t.serial).filter(|t| !t.is_empty()) {
                contents.insert(0, format!("{table} partition table"));
            }
            [
                t.label.clone(),
                pre.devices.get(&t.by_id).cloned().unwrap_or_else(|| "?".into()),
                t.model.clone(),
                t.serial.clone(),
                t.size_bytes.to_string(),
                if contents.is_empty() {
                    if t.existing_partitions.is_empty() { "empty".into() } else { format!("{} partitions, no file systems", t.existing_partitions.len()) }
                } else {
                    contents.join(", ")
                },
            ]
        })
        .collect();
    let mut out = crate::table::render(&["DISK", "DEVICE", "MODEL", "SERIAL", "SIZE", "ON IT NOW"], &rows);
    for c in &plan.cleared {
        out.push_str(&format!("and the ZFS labels of {} ({}, serial {}, not a target: --clear-zfs-labels)\n", c.kernel_name, c.model, c.serial));
    }
    for f in &pre.foreign {
        let on = if f.disks.is_empty() { f.found.members.join(", ") } else { f.disks.join(", ") };
        if f.cleared {
            out.push_str(&format!("cleared: {on} holds pool {} (GUID {}), not ours\n", f.found.name, f.found.guid));
        } else {
            out.push_str(&format!("left alone: {on} holds pool {} (GUID {}, {}), not ours\n", f.found.name, f.found.guid, if f.found.imported { "imported" } else { "exported" }));
        }
    }
    out
}

/// Unattended consent: the serials given must be exactly those the plan writes to (the
/// targets and the disks whose ZFS labels it clears), order free.
pub fn check_serials(plan: &Plan, given: &[String]) -> Result<(), String> {
    let mut want = plan.written_serials();
    let mut got: Vec<String> = given.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    want.sort();
    got.sort();
    if want == got {
        Ok(())
    } else {
        Err(format!(
            "--confirm-serials {} does not match the disks this plan destroys ({}); nothing was written",
            if got.is_empty() { "(none)".to_string() } else { got.join(",") },
            want.join(",")
        ))
    }
}

/// Unattended consent without a person (`keel install --unattended`, keel-live's PXE boot):
/// the serials the profile pins (`disks.serials`, written by the operator and armed in the
/// registry) stand for `--confirm-serials`. A profile that pins none gives no consent.
pub fn check_pinned(plan: &Plan, pinned: &[String]) -> Result<(), String> {
    if pinned.iter().all(|s| s.trim().is_empty()) {
        return Err(format!(
            "an unattended install destroys only drives its profile pins: set disks.serials = [{}] in {}'s profile (the serials `keel detect` shows), or run keel install with --yes --confirm-serials; nothing was written",
            plan.written_serials().iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", "),
            plan.hostname
        ));
    }
    check_serials(plan, pinned).map_err(|_| {
        format!(
            "the profile pins disks.serials = [{}], but this plan destroys {}: an unattended install goes no further than the profile pins; nothing was written",
            pinned.join(", "),
            plan.written_serials().join(", ")
        )
    })
}

/// Interactive consent: the operator types the node's host name.
pub fn check_typed(hostname: &str, typed: &str) -> Result<(), String> {
    if typed.trim() == hostname {
        Ok(())
    } else {
        Err(format!("you typed \"{}\", not \"{hostname}\": nothing was written", typed.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::check_typed;

    #[test]
    fn the_typed_host_name_must_be_the_nodes_exactly() {
        assert_eq!(check_typed("pve-node-01", "pve-node-01\n"), Ok(()));
        assert_eq!(check_typed("pve-node-01", "  pve-node-01  "), Ok(()));
        for wrong in ["pve-node-02\n", "PVE-NODE-01", "pve-node-0", "", "yes"] {
            let e = check_typed("pve-node-01", wrong).unwrap_err();
            assert!(e.contains("not \"pve-node-01\": nothing was written"), "{wrong:?}: {e}");
        }
    }
}
