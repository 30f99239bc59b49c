//! OpenZFS feature sets (`zpool create -o compatibility=SET`): a pool made by a newer OpenZFS
//! (a rescue system, keel-live) imports on the installed node only if it enables no feature the
//! node's OpenZFS lacks. The sets are OpenZFS's own files (`compatibility.d`, read from the
//! system that runs keel); this module parses them and compares a pool's features with one.
//! Pure: the files and `zpool get` output come in as text.

use std::collections::BTreeSet;

/// Where OpenZFS looks for a set, in its order (`zpool_load_compat`: the system's directory
/// first, then the one the package ships).
pub const COMPAT_DIRS: [&str; 2] = ["/etc/zfs/compatibility.d", "/usr/share/zfs/compatibility.d"];

/// The property value that restricts nothing (every feature this OpenZFS has).
pub const OFF: &str = "off";

/// The set files a property value names: `openzfs-2.1-linux,grub2` -> both (OpenZFS takes the
/// features common to all of them). Empty for `off`.
pub fn set_files(value: &str) -> Vec<&str> {
    if value == OFF || value.is_empty() {
        return Vec::new();
    }
    value.split(',').map(str::trim).filter(|f| !f.is_empty()).collect()
}

/// Whether a value is a list of plain set file names (no path, no dot file), or `off`.
pub fn valid_value(value: &str) -> bool {
    value == OFF
        || (!value.is_empty()
            && value.split(',').all(|f| !f.is_empty() && !f.starts_with('.') && f.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))))
}

/// The features one set file lists: words separated by spaces, tabs or commas, `#` to the end
/// of a line is a comment (as `zpool_load_compat` reads them).
pub fn parse_set(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.split([' ', '\t', ',']))
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// The features common to every file (OpenZFS's rule for a list of sets).
pub fn intersect(sets: Vec<BTreeSet<String>>) -> BTreeSet<String> {
    let mut it = sets.into_iter();
    let Some(first) = it.next() else { return BTreeSet::new() };
    it.fold(first, |acc, s| acc.intersection(&s).cloned().collect())
}

/// A pool's features that are enabled or active (`zpool get -H -o property,value all POOL`
/// lines `feature@name<TAB>enabled`): the names.
pub fn enabled_features(zpool_get: &str) -> BTreeSet<String> {
    zpool_get
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let name = f.next()?.strip_prefix("feature@")?;
            let state = f.next()?.trim();
            (state == "enabled" || state == "active").then(|| name.to_string())
        })
        .collect()
}

/// Enabled or active features of a pool that the set does not list.
pub fn outside(enabled: &BTreeSet<String>, set: &BTreeSet<String>) -> Vec<String> {
    enabled.difference(set).cloned().collect()
}

/// Whether `zfs get` showing `shown` means the profile's `want`. One quirk: OpenZFS 2.3 made
/// `on` mean `sa` and lists `on` first, so it shows `xattr=sa` as `on` (openzfs/zfs
/// `module/zcommon/zfs_prop.c`, commits e419a63bf4 "xattr dataset prop: change defaults to sa",
/// 2.3.0, and fa4d4b1f80 "Fix display of default xattr to show 'sa'", later); before 2.3 `on`
/// meant `dir`. `zfs_version` is the running module's (`/sys/module/zfs/version`).
pub fn same_property(prop: &str, want: &str, shown: &str, zfs_version: &str) -> bool {
    if want == shown {
        return true;
    }
    let numbers: Vec<u64> = zfs_version.trim().split(['-', '~', '+']).next().unwrap_or("").split('.').map_while(|p| p.parse().ok()).collect();
    prop == "xattr" && want == "sa" && shown == "on" && numbers.as_slice() >= [2, 3].as_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_set_file_like_openzfs() {
        let set = parse_set("# Features supported by OpenZFS 2.1 on Linux\nasync_destroy\nbookmarks  # old\nlz4_compress, zstd_compress\tlarge_dnode\n\n");
        assert_eq!(set.into_iter().collect::<Vec<_>>(), ["async_destroy", "bookmarks", "large_dnode", "lz4_compress", "zstd_compress"]);
    }

    #[test]
    fn a_list_of_sets_keeps_what_all_have() {
        let a = parse_set("a\nb\nc");
        let b = parse_set("b\nc\nd");
        assert_eq!(intersect(vec![a, b]).into_iter().collect::<Vec<_>>(), ["b", "c"]);
        assert!(intersect(Vec::new()).is_empty());
    }

    #[test]
    fn values_and_files() {
        assert_eq!(set_files("openzfs-2.1-linux"), ["openzfs-2.1-linux"]);
        assert_eq!(set_files("openzfs-2.2-linux,grub2"), ["openzfs-2.2-linux", "grub2"]);
        assert!(set_files("off").is_empty());
        for ok in ["off", "openzfs-2.2-linux", "grub2,openzfs-2.1-linux", "compat-2021"] {
            assert!(valid_value(ok), "{ok}");
        }
        for bad in ["", "../etc/passwd", "/usr/share/zfs/compatibility.d/x", ".hidden", "a,,b", "a b"] {
            assert!(!valid_value(bad), "{bad}");
        }
    }

    #[test]
    fn xattr_sa_shown_as_on_by_openzfs_2_3() {
        assert!(same_property("xattr", "sa", "sa", "2.1.11-1"));
        assert!(same_property("xattr", "sa", "on", "2.3.2-2~bpo12+2"));
        assert!(same_property("xattr", "sa", "on", "2.4.0-1"));
        assert!(!same_property("xattr", "sa", "on", "2.2.7-pve2"), "before 2.3 on is dir");
        assert!(!same_property("xattr", "sa", "dir", "2.3.2"));
        assert!(!same_property("atime", "off", "on", "2.3.2"));
        assert!(!same_property("xattr", "sa", "on", ""), "unknown version: not assumed");
    }

    #[test]
    fn features_enabled_outside_a_set() {
        let get = "rpool\tsize\t1000\nrpool\tfeature@async_destroy\tenabled\nrpool\tfeature@head_errlog\tactive\nrpool\tfeature@block_cloning\tdisabled\n";
        // the pool name column: `zpool get -H -o property,value` has none, keep both shapes right
        let get2 = "feature@async_destroy\tenabled\nfeature@head_errlog\tactive\nfeature@block_cloning\tdisabled\nsize\t1000\n";
        assert!(enabled_features(get).is_empty(), "three columns are not the shape keel asks for");
        let on = enabled_features(get2);
        assert_eq!(on.iter().collect::<Vec<_>>(), ["async_destroy", "head_errlog"]);
        assert_eq!(outside(&on, &parse_set("async_destroy\nbookmarks")), ["head_errlog"]);
        assert!(outside(&on, &parse_set("async_destroy head_errlog")).is_empty());
    }
}
