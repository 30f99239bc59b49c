//! Byte sizes as operators write them in profiles and specs ("1GiB", "500GB", "8G").

use std::fmt;

/// A size in bytes. Parsed from "512", "1MiB", "50GiB", "500GB", "8G" (bare G/M/K/T = binary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;
pub const TIB: u64 = 1024 * GIB;

impl ByteSize {
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// Parses a size; the error says what was wrong and what is accepted.
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(format!("\"{text}\" is not a size: write a whole number and a unit, such as \"50GiB\""));
        }
        let n: u64 = num.parse().map_err(|_| format!("\"{text}\": number too large"))?;
        let mult = match unit.trim() {
            "" | "B" => 1,
            "K" | "KiB" => KIB,
            "M" | "MiB" => MIB,
            "G" | "GiB" => GIB,
            "T" | "TiB" => TIB,
            "kB" | "KB" => 1000,
            "MB" => 1000 * 1000,
            "GB" => 1000 * 1000 * 1000,
            "TB" => 1000 * 1000 * 1000 * 1000,
            other => {
                return Err(format!(
                    "\"{text}\": unknown unit \"{other}\" (use B, KiB, MiB, GiB, TiB or kB, MB, GB, TB)"
                ))
            }
        };
        n.checked_mul(mult).map(ByteSize).ok_or_else(|| format!("\"{text}\": size too large"))
    }

    /// Exact binary form when the size is a whole number of a binary unit ("50GiB"), else bytes.
    pub fn exact(self) -> String {
        for (unit, name) in [(TIB, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
            if self.0 >= unit && self.0 % unit == 0 {
                return format!("{}{}", self.0 / unit, name);
            }
        }
        format!("{}B", self.0)
    }
}

impl ByteSize {
    /// Short binary form for tables: exact when whole ("50GiB"), else one decimal ("425.9GiB").
    pub fn short(self) -> String {
        for (unit, name) in [(TIB, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
            if self.0 >= unit {
                return if self.0 % unit == 0 {
                    format!("{}{name}", self.0 / unit)
                } else {
                    format!("{:.1}{name}", self.0 as f64 / unit as f64)
                };
            }
        }
        format!("{}B", self.0)
    }
}

/// Human form for tables: decimal GB as disk vendors count, with the binary value beside it.
impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        if self.0 >= 1000 * 1000 * 1000 {
            write!(f, "{:.1} GB ({:.1} GiB)", b / 1e9, b / GIB as f64)
        } else if self.0 >= 1000 * 1000 {
            write!(f, "{:.1} MB", b / 1e6)
        } else {
            write!(f, "{} B", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(ByteSize::parse("1GiB").unwrap().0, GIB);
        assert_eq!(ByteSize::parse("50G").unwrap().0, 50 * GIB);
        assert_eq!(ByteSize::parse("500GB").unwrap().0, 500_000_000_000);
        assert_eq!(ByteSize::parse("1MiB").unwrap().0, MIB);
        assert_eq!(ByteSize::parse("4096").unwrap().0, 4096);
        assert!(ByteSize::parse("GiB").unwrap_err().contains("not a size"));
        assert!(ByteSize::parse("5 parsecs").unwrap_err().contains("unknown unit"));
        assert!(ByteSize::parse("99999999999999999999").is_err());
        assert!(ByteSize::parse("99999999999TiB").unwrap_err().contains("too large"));
    }

    #[test]
    fn exact_form() {
        assert_eq!(ByteSize(50 * GIB).exact(), "50GiB");
        assert_eq!(ByteSize(MIB).exact(), "1MiB");
        assert_eq!(ByteSize(1000).exact(), "1000B");
        assert_eq!(ByteSize(GIB + GIB / 2).short(), "1.5GiB");
        assert_eq!(ByteSize(1007 * KIB).short(), "1007KiB");
    }
}
