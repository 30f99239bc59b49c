//! The partition layout shared by both drives (DESIGN.md): p1 ESP, p2 rpool, p3 datapool (the
//! rest), p4 BIOS boot in the gap before the first MiB. Numbers are in the disk's logical
//! sectors, computed once from the smallest target so every drive gets the same table.

use serde::Serialize;

use crate::size::{ByteSize, MIB};

#[derive(Debug, Clone, Serialize)]
pub struct PartitionSpec {
    pub number: u32,
    /// GPT partition name.
    pub name: &'static str,
    /// sgdisk type code.
    pub type_code: &'static str,
    pub first_sector: u64,
    pub last_sector: u64,
    pub size_bytes: ByteSize,
    pub purpose: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    pub logical_block_size: u32,
    /// In file order of creation: p4 (gap) first when present, then p1..p3.
    pub partitions: Vec<PartitionSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutError(pub String);

pub struct LayoutInput {
    pub disk_bytes: u64,
    pub logical_block_size: u32,
    pub esp: ByteSize,
    pub rpool: ByteSize,
    pub datapool_min: ByteSize,
    pub bios_boot: bool,
}

pub fn compute(i: &LayoutInput) -> Result<Layout, LayoutError> {
    let lbs = i.logical_block_size as u64;
    if lbs != 512 && lbs != 4096 {
        return Err(LayoutError(format!("logical block size {lbs} is neither 512 nor 4096")));
    }
    let sectors = i.disk_bytes / lbs;
    let mib = MIB / lbs;
    // GPT: protective MBR + header + 16 KiB of entries at the start, a copy at the end.
    let gpt_sectors = 1 + 16 * 1024 / lbs;
    let first_usable = 1 + gpt_sectors;
    let last_usable = sectors.saturating_sub(gpt_sectors + 1);
    let mut parts = Vec::new();
    if i.bios_boot {
        parts.push(PartitionSpec {
            number: 4,
            name: "bios-boot",
            type_code: "EF02",
            first_sector: first_usable,
            last_sector: mib - 1,
            size_bytes: ByteSize((mib - first_usable) * lbs),
            purpose: "BIOS boot (GRUB core image for legacy boot)",
        });
    }
    let esp_first = mib;
    let esp_last = esp_first + i.esp.0 / lbs - 1;
    let rpool_first = esp_last + 1;
    let rpool_last = rpool_first + i.rpool.0 / lbs - 1;
    let data_first = rpool_last + 1;
    // End the last partition on a MiB boundary.
    let data_last = ((last_usable + 1) / mib) * mib - 1;
    let needed = ByteSize((data_first + i.datapool_min.0 / lbs) * lbs + gpt_sectors * lbs);
    if data_last <= data_first || (data_last - data_first + 1) * lbs < i.datapool_min.0 {
        return Err(LayoutError(format!(
            "the layout needs at least {} (ESP {} + rpool {} + datapool at least {}) but the disk holds {}",
            needed,
            i.esp.exact(),
            i.rpool.exact(),
            i.datapool_min.exact(),
            ByteSize(i.disk_bytes)
        )));
    }
    parts.push(PartitionSpec {
        number: 1,
        name: "esp",
        type_code: "EF00",
        first_sector: esp_first,
        last_sector: esp_last,
        size_bytes: i.esp,
        purpose: "EFI system partition (vfat), kept in sync on both drives",
    });
    parts.push(PartitionSpec {
        number: 2,
        name: "rpool",
        type_code: "BF01",
        first_sector: rpool_first,
        last_sector: rpool_last,
        size_bytes: i.rpool,
        purpose: "rpool: ZFS mirror, root file system and swap zvol",
    });
    parts.push(PartitionSpec {
        number: 3,
        name: "datapool",
        type_code: "BF01",
        first_sector: data_first,
        last_sector: data_last,
        size_bytes: ByteSize((data_last - data_first + 1) * lbs),
        purpose: "datapool: ZFS mirror for guests, backups and templates",
    });
    Ok(Layout { logical_block_size: i.logical_block_size, partitions: parts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::size::GIB;

    fn input(disk_bytes: u64, lbs: u32) -> LayoutInput {
        LayoutInput { disk_bytes, logical_block_size: lbs, esp: ByteSize(GIB), rpool: ByteSize(50 * GIB), datapool_min: ByteSize(100 * GIB), bios_boot: true }
    }

    #[test]
    fn ax41_512gb_layout() {
        let l = compute(&input(512_110_190_592, 512)).unwrap();
        let by = |n| l.partitions.iter().find(|p| p.number == n).unwrap();
        assert_eq!((by(4).first_sector, by(4).last_sector), (34, 2047));
        assert_eq!((by(1).first_sector, by(1).last_sector), (2048, 2048 + 2097152 - 1));
        assert_eq!(by(2).first_sector, 2099200);
        assert_eq!(by(2).size_bytes.0, 50 * GIB);
        // last usable sector of a 1000215216-sector disk is 1000215182; aligned down to 1 MiB
        assert_eq!(by(3).last_sector, 1000214527);
        assert_eq!((by(3).last_sector + 1) % 2048, 0);
        // no overlaps, in disk order
        let mut v: Vec<_> = l.partitions.iter().map(|p| (p.first_sector, p.last_sector)).collect();
        v.sort();
        assert!(v.windows(2).all(|w| w[0].1 < w[1].0));
    }

    #[test]
    fn four_k_sectors() {
        let l = compute(&input(512_110_190_592, 4096)).unwrap();
        let p4 = l.partitions.iter().find(|p| p.number == 4).unwrap();
        assert_eq!((p4.first_sector, p4.last_sector), (6, 255));
        let p1 = l.partitions.iter().find(|p| p.number == 1).unwrap();
        assert_eq!(p1.first_sector, 256);
    }

    #[test]
    fn too_small_disk_is_refused_with_sizes() {
        let err = compute(&input(100 * GIB, 512)).unwrap_err();
        assert!(err.0.contains("rpool 50GiB") && err.0.contains("datapool at least 100GiB"), "{}", err.0);
    }
}
