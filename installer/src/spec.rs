//! Hardware specs (`hardware-specs/*.toml`) and matching an inventory against one.
//!
//! The result is a table of requirements with expected, found, ok/FAIL and why, so an operator
//! sees every mismatch at once, not only the first.

use serde::{Deserialize, Serialize};

use crate::hardware::{FirmwareMode, Inventory};
use crate::size::ByteSize;
use crate::source::{SourceError, SourceFile};

/// A hardware spec as written in TOML.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawSpec {
    name: String,
    description: String,
    cpu: RawCpu,
    memory: RawMemory,
    nvme: RawNvme,
    nics: RawNics,
    firmware: RawFirmware,
    #[serde(default)]
    dmi: Option<RawDmi>,
    #[serde(default)]
    uplink: Option<RawUplink>,
}

/// How the provider routes the server's main address.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawUplink {
    /// Hetzner: the main IPv4 is routed to the server alone; neighbours in the same subnet are
    /// reached through the gateway, so the address is a /32 with the gateway as its peer.
    point_to_point: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawCpu {
    model_pattern: String,
    min_cores: u32,
    min_threads: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawMemory {
    min: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawNvme {
    count: u32,
    min_size: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawNics {
    min_count: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawFirmware {
    modes: Vec<FirmwareMode>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawDmi {
    product_pattern: String,
}

/// A validated hardware spec.
#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    pub name: String,
    pub description: String,
    pub cpu_model_pattern: String,
    #[serde(skip)]
    cpu_model: regex_lite::Regex,
    pub min_cores: u32,
    pub min_threads: u32,
    pub min_memory: ByteSize,
    /// Exactly this many NVMe drives must be present and free.
    pub nvme_count: u32,
    pub nvme_min_size: ByteSize,
    pub min_nics: u32,
    pub firmware_modes: Vec<FirmwareMode>,
    pub dmi_product_pattern: Option<String>,
    /// The uplink must be a /32 with the gateway as point-to-point peer (Hetzner's routing).
    pub uplink_point_to_point: bool,
    #[serde(skip)]
    dmi_product: Option<regex_lite::Regex>,
}

impl Spec {
    /// Parses and validates a spec; errors carry file:line:column.
    pub fn load(src: &SourceFile) -> Result<Spec, SourceError> {
        let raw: RawSpec = src.deserialize()?;
        let mut errs = Vec::new();
        let regex = |path: &str, pat: &str, errs: &mut Vec<(String, String, String)>| match regex_lite::Regex::new(pat) {
            Ok(r) => Some(r),
            Err(e) => {
                errs.push((path.into(), format!("not a valid regular expression: {e}"), "fix the pattern".into()));
                None
            }
        };
        let size = |path: &str, text: &str, errs: &mut Vec<(String, String, String)>| match ByteSize::parse(text) {
            Ok(s) => Some(s),
            Err(e) => {
                errs.push((path.into(), e, "write a size such as \"60GiB\"".into()));
                None
            }
        };
        let cpu_model = regex("cpu.model-pattern", &raw.cpu.model_pattern, &mut errs);
        let dmi_product = raw.dmi.as_ref().map(|d| regex("dmi.product-pattern", &d.product_pattern, &mut errs));
        let min_memory = size("memory.min", &raw.memory.min, &mut errs);
        let nvme_min_size = size("nvme.min-size", &raw.nvme.min_size, &mut errs);
        if raw.firmware.modes.is_empty() {
            errs.push(("firmware.modes".into(), "no firmware mode allowed".into(), "list \"bios\", \"uefi\" or both".into()));
        }
        if raw.nvme.count == 0 {
            errs.push(("nvme.count".into(), "a spec needs at least one NVMe drive".into(), "set count = 2 for a mirror".into()));
        }
        if !errs.is_empty() {
            return Err(src.errors(errs));
        }
        Ok(Spec {
            name: raw.name,
            description: raw.description,
            cpu_model_pattern: raw.cpu.model_pattern,
            cpu_model: cpu_model.expect("checked"),
            min_cores: raw.cpu.min_cores,
            min_threads: raw.cpu.min_threads,
            min_memory: min_memory.expect("checked"),
            nvme_count: raw.nvme.count,
            nvme_min_size: nvme_min_size.expect("checked"),
            min_nics: raw.nics.min_count,
            firmware_modes: raw.firmware.modes,
            dmi_product_pattern: raw.dmi.map(|d| d.product_pattern),
            uplink_point_to_point: raw.uplink.is_some_and(|u| u.point_to_point),
            dmi_product: dmi_product.flatten(),
        })
    }

    /// Checks every requirement against the inventory.
    pub fn check(&self, inv: &Inventory) -> SpecReport {
        let mut rows = Vec::new();
        let mut row = |requirement: &str, expected: String, found: String, ok: bool, why: String| {
            rows.push(CheckRow { requirement: requirement.into(), expected, found, ok, why });
        };

        let m = self.cpu_model.is_match(&inv.cpu.model);
        row("cpu model", format!("/{}/", self.cpu_model_pattern), inv.cpu.model.clone(), m,
            if m { String::new() } else { "CPU model does not match the spec's pattern".into() });
        let ok = inv.cpu.cores >= self.min_cores;
        row("cpu cores", format!(">= {}", self.min_cores), inv.cpu.cores.to_string(), ok,
            if ok { String::new() } else { format!("{} cores short", self.min_cores - inv.cpu.cores) });
        let ok = inv.cpu.threads >= self.min_threads;
        row("cpu threads", format!(">= {}", self.min_threads), inv.cpu.threads.to_string(), ok,
            if ok { String::new() } else { format!("{} threads short", self.min_threads - inv.cpu.threads) });
        let ok = inv.memory.total_bytes >= self.min_memory;
        row("memory", format!(">= {}", self.min_memory.exact()), inv.memory.total_bytes.to_string(), ok,
            if ok { String::new() } else { "less RAM than the spec requires (MemTotal)".into() });

        let nvme: Vec<_> = inv.nvme_disks().collect();
        let ok = nvme.len() as u32 == self.nvme_count;
        row("nvme drives", format!("{}", self.nvme_count), nvme.len().to_string(), ok,
            if ok { String::new() } else if (nvme.len() as u32) < self.nvme_count {
                format!("{} NVMe drive(s) missing: check Robot's hardware list or the drive's seating", self.nvme_count - nvme.len() as u32)
            } else {
                "more NVMe drives than the spec: name the targets by serial in the profile".into()
            });
        for d in &nvme {
            let label = format!("{} size", d.name);
            let ok = d.size_bytes >= self.nvme_min_size;
            row(&label, format!(">= {}", self.nvme_min_size), format!("{} ({} {})", d.size_bytes, d.model, d.serial), ok,
                if ok { String::new() } else { "drive smaller than the spec allows".into() });
            let label = format!("{} free", d.name);
            let ok = !d.in_use();
            row(&label, "not mounted, swap, held or booted from".into(),
                if ok { "free".into() } else { d.usage_summary() }, ok,
                if ok { String::new() } else { "in use by the running system: run keel from the rescue system, not from an installed node".into() });
        }
        let ok = inv.nics.len() as u32 >= self.min_nics;
        row("network interfaces", format!(">= {}", self.min_nics),
            format!("{} ({})", inv.nics.len(), inv.nics.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ")), ok,
            if ok { String::new() } else { "too few physical NICs".into() });
        let ok = self.firmware_modes.contains(&inv.firmware);
        row("firmware mode",
            self.firmware_modes.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(" or "),
            inv.firmware.to_string(), ok,
            if ok { String::new() } else { "boot mode not allowed by the spec".into() });
        if let (Some(pat), Some(re)) = (&self.dmi_product_pattern, &self.dmi_product) {
            let ok = re.is_match(&inv.dmi.product_name);
            row("dmi product", format!("/{pat}/"), inv.dmi.product_name.clone(), ok,
                if ok { String::new() } else { "DMI product name does not match".into() });
        }
        SpecReport { spec: self.name.clone(), rows }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    pub requirement: String,
    pub expected: String,
    pub found: String,
    pub ok: bool,
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SpecReport {
    pub spec: String,
    pub rows: Vec<CheckRow>,
}

impl SpecReport {
    pub fn passed(&self) -> bool {
        self.rows.iter().all(|r| r.ok)
    }

    pub fn failures(&self) -> usize {
        self.rows.iter().filter(|r| !r.ok).count()
    }

    /// The table `keel check` prints.
    pub fn table(&self) -> String {
        let rows: Vec<[String; 5]> = self
            .rows
            .iter()
            .map(|r| [r.requirement.clone(), r.expected.clone(), r.found.clone(),
                      if r.ok { "ok".into() } else { "FAIL".into() }, r.why.clone()])
            .collect();
        let mut out = crate::table::render(&["REQUIREMENT", "EXPECTED", "FOUND", "RESULT", "WHY"], &rows);
        out.push_str(&if self.passed() {
            format!("spec {}: all {} requirements met\n", self.spec, self.rows.len())
        } else {
            format!("spec {}: {} of {} requirements FAILED\n", self.spec, self.failures(), self.rows.len())
        });
        out
    }
}
