//! A mirror's members as `zpool status` shows them. Two listings of the same pool, printed one
//! after the other, have the same lines in the same order: `zpool status -P` names each leaf by
//! its path (a missing device by its GUID, with "was PATH"), `zpool status -g` names every vdev
//! by its GUID. Read side by side they give each leaf its GUID, its path and its state, so a
//! member is always named by its GUID, never by a device name another disk can carry.

use crate::exec::pools::is_group;

/// One leaf vdev (a partition) of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    pub guid: String,
    /// `/dev/...` path of a present device.
    pub path: Option<String>,
    /// The path a missing device had (`was /dev/...`).
    pub was: Option<String>,
    /// ONLINE, UNAVAIL, FAULTED, REMOVED, OFFLINE, DEGRADED ...
    pub state: String,
    /// Under a `replacing-N` vdev: a `zpool replace` has not finished.
    pub replacing: bool,
    /// "(resilvering)" after its counters.
    pub resilvering: bool,
    /// Its position among the pool's leaves (0: the first member).
    pub index: usize,
}

impl Leaf {
    /// The path it has or had.
    pub fn any_path(&self) -> Option<&str> {
        self.path.as_deref().or(self.was.as_deref())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Scan {
    /// No resilver running (none ever, finished, or a scrub).
    Idle(String),
    /// A resilver is running; the line with its figures and the percentage done, if printed.
    Resilvering { detail: String, percent: Option<f64> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct PoolStatus {
    pub name: String,
    pub state: String,
    pub leaves: Vec<Leaf>,
    pub scan: Scan,
}

impl PoolStatus {
    pub fn resilvering(&self) -> bool {
        matches!(self.scan, Scan::Resilvering { .. }) || self.leaves.iter().any(|l| l.replacing || l.resilvering)
    }
}

struct Line {
    indent: usize,
    name: String,
    state: String,
    rest: String,
}

fn config_lines(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut inside = false;
    for raw in text.lines() {
        let t = raw.trim();
        if t == "config:" {
            inside = true;
            continue;
        }
        if !inside {
            continue;
        }
        if t.starts_with("errors:") {
            break;
        }
        if t.is_empty() {
            if !out.is_empty() {
                break;
            }
            continue;
        }
        let mut words = t.split_whitespace();
        let name = words.next().unwrap_or("").to_string();
        if name == "NAME" {
            continue;
        }
        let state = words.next().unwrap_or("").to_string();
        let rest: Vec<&str> = words.collect();
        let indent = raw.chars().take_while(|c| c.is_whitespace()).map(|c| if c == '\t' { 8 } else { 1 }).sum();
        out.push(Line { indent, name, state, rest: rest.join(" ") });
    }
    out
}

/// The scan line and the lines continuing it.
fn scan(text: &str) -> Scan {
    let mut lines = text.lines().skip_while(|l| !l.trim_start().starts_with("scan:"));
    let Some(first) = lines.next() else { return Scan::Idle(String::new()) };
    let mut all = vec![first.trim().trim_start_matches("scan:").trim().to_string()];
    // its figures continue on lines that start with a tab (the next field, `config:`, does not)
    for l in lines.take_while(|l| l.starts_with('\t') && !l.trim().is_empty()) {
        all.push(l.trim().to_string());
    }
    let joined = all.join(", ");
    if !all[0].starts_with("resilver in progress") {
        return Scan::Idle(all[0].clone());
    }
    let percent = joined.split(',').find_map(|part| part.trim().strip_suffix("% done").and_then(|p| p.trim().parse::<f64>().ok()));
    let detail = all[1..].join(", ");
    Scan::Resilvering { detail, percent }
}

/// Reads `zpool status -P POOL` and `zpool status -g POOL` (taken one after the other).
pub fn parse(by_path: &str, by_guid: &str) -> Result<PoolStatus, String> {
    let p = config_lines(by_path);
    let g = config_lines(by_guid);
    if p.is_empty() {
        return Err("no config section in `zpool status -P`".into());
    }
    if p.len() != g.len() {
        return Err(format!("`zpool status -P` lists {} vdevs and `-g` {}: the pool changed between them", p.len(), g.len()));
    }
    let name = p[0].name.clone();
    let state = p[0].state.clone();
    let mut leaves = Vec::new();
    // the vdevs above the current line, by indentation
    let mut parents: Vec<(usize, String)> = Vec::new();
    for (a, b) in p.iter().zip(&g).skip(1) {
        while parents.last().is_some_and(|(i, _)| *i >= a.indent) {
            parents.pop();
        }
        if is_group(&a.name) {
            parents.push((a.indent, a.name.clone()));
            continue;
        }
        let path = a.name.starts_with('/').then(|| a.name.clone());
        let was = a.rest.split_whitespace().skip_while(|w| *w != "was").nth(1).map(String::from);
        leaves.push(Leaf {
            guid: b.name.clone(),
            path,
            was,
            state: a.state.clone(),
            replacing: parents.iter().any(|(_, n)| n.starts_with("replacing")),
            resilvering: a.rest.contains("(resilvering)"),
            index: leaves.len(),
        });
    }
    Ok(PoolStatus { name, state, leaves, scan: scan(by_path) })
}

/// The whole disk's by-id path of a partition path (`...-part2` → `...`).
pub fn disk_of(path: &str) -> &str {
    match path.rfind("-part") {
        Some(i) if path[i + 5..].chars().all(|c| c.is_ascii_digit()) && i + 5 < path.len() => &path[..i],
        _ => path,
    }
}

/// The serial in a by-id name as udev makes it for NVMe and ATA drives (`nvme-MODEL_SERIAL`,
/// `ata-MODEL_SERIAL`: the part after the last underscore), for messages about a drive that
/// is gone.
pub fn serial_in_by_id(path: &str) -> Option<&str> {
    let disk = disk_of(path);
    let name = disk.rsplit('/').next()?;
    name.rsplit_once('_').map(|(_, s)| s).filter(|s| !s.is_empty())
}
