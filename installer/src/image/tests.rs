use std::io::{self, Read};
use std::time::Duration;

use super::*;
use crate::exec::host::{FakeHost, Output};

fn payload(n: usize) -> Vec<u8> {
    // compressible but not trivial: a zfs stream is mostly file data
    (0..n).map(|i| ((i * 7919) % 251) as u8 ^ ((i / 4096) as u8)).collect()
}

fn image_of(data: &[u8]) -> (Vec<u8>, Manifest) {
    let z = zstd::encode_all(data, 3).expect("compresses");
    let m = Manifest {
        schema: MANIFEST_SCHEMA.into(),
        name: "pve-base.zfs.zst".into(),
        created: "2026-11-28T00:00:00Z".into(),
        dataset: ROOT_DATASET.into(),
        snapshot: BASE_SNAPSHOT.into(),
        snapshot_guid: "1234567890".into(),
        size: z.len() as u64,
        stream_size: data.len() as u64,
        sha256: crate::profile::hex_digest(&Sha256::digest(&z)),
        compression: "zstd".into(),
        zfs_version: "2.1.11-1".into(),
        compatibility: "openzfs-2.1-linux".into(),
        debian_version: "12.8".into(),
        kernels: vec!["vmlinuz-6.8.12-4-pve".into()],
        packages: BTreeMap::new(),
        profile_sha256: "00".repeat(32),
        profile_hostname: "lab-node-01".into(),
    };
    (z, m)
}

/// Gives `ok` bytes of `data`, then fails (a connection that broke).
struct Breaks {
    data: io::Cursor<Vec<u8>>,
    ok: u64,
}

impl Read for Breaks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.ok - self.data.position();
        if left == 0 {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by peer"));
        }
        let n = buf.len().min(left as usize);
        self.data.read(&mut buf[..n])
    }
}

#[test]
fn a_stream_reaches_zfs_receive_whole_and_checked() {
    let data = payload(5 * CHUNK_BYTES + 12345);
    let (z, m) = image_of(&data);
    let mut host = FakeHost::default();
    let r = receive(&mut host, Box::new(io::Cursor::new(z.clone())), &m, ROOT_DATASET, Duration::from_secs(60)).expect("received");
    assert_eq!(host.inputs.len(), 1);
    assert!(host.inputs[0] == data, "zfs receive got the decompressed stream, byte for byte");
    assert_eq!(host.commands(), vec!["zfs receive -u rpool/ROOT/pve-1".to_string()]);
    assert_eq!((r.bytes, r.stream_bytes, r.sha256.as_str()), (z.len() as u64, data.len() as u64, m.sha256.as_str()));
}

#[test]
fn a_wrong_checksum_destroys_what_was_received() {
    let data = payload(300_000);
    let (z, mut m) = image_of(&data);
    m.sha256 = "ab".repeat(32);
    let mut host = FakeHost::default();
    let e = receive(&mut host, Box::new(io::Cursor::new(z)), &m, ROOT_DATASET, Duration::from_secs(60)).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ImageError::Checksum { .. }), "{text}");
    assert!(text.contains(&"ab".repeat(32)) && text.contains("destroyed"), "{text}");
    assert_eq!(host.commands().last().map(String::as_str), Some("zfs destroy -r rpool/ROOT/pve-1"));
}

#[test]
fn a_broken_download_cuts_the_stream_short_and_says_how_far_it_got() {
    let data = payload(3 * CHUNK_BYTES);
    let (z, m) = image_of(&data);
    let cut = (z.len() / 2) as u64;
    let mut host = FakeHost::default();
    let e = receive(&mut host, Box::new(Breaks { data: io::Cursor::new(z), ok: cut }), &m, ROOT_DATASET, Duration::from_secs(60)).unwrap_err();
    match &e {
        ImageError::Download { bytes, err } => {
            assert_eq!(*bytes, cut);
            assert!(err.to_string().contains("connection reset"), "{err}");
        }
        other => panic!("expected a download error, got {other}"),
    }
    // zfs receive saw a short stream (it discards such a stream on its own)
    assert!(host.inputs[0].len() < data.len());
}

#[test]
fn data_that_is_not_zstd_is_refused_as_such() {
    let (_, m) = image_of(b"x");
    let mut host = FakeHost::default();
    let e = receive(&mut host, Box::new(io::Cursor::new(b"this is not a zstd frame at all".to_vec())), &m, ROOT_DATASET, Duration::from_secs(60)).unwrap_err();
    assert!(matches!(e, ImageError::Decompress(_)), "{e}");
}

#[test]
fn a_failing_zfs_receive_is_reported_with_its_words() {
    let data = payload(100_000);
    let (z, m) = image_of(&data);
    let mut host = FakeHost::default();
    host.answer("zfs receive", Output::failed(1, "cannot receive new filesystem stream: destination 'rpool/ROOT/pve-1' exists\nmust specify -F to overwrite it"));
    let e = receive(&mut host, Box::new(io::Cursor::new(z)), &m, ROOT_DATASET, Duration::from_secs(60)).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("`zfs receive -u rpool/ROOT/pve-1` exited with code 1") && text.contains("must specify -F"), "{text}");
}

#[test]
fn zfs_versions_compare_by_release_number() {
    assert!(zfs_newer("2.2.7-pve1", "2.1.11-1"));
    assert!(zfs_newer("zfs-kmod-2.2.0-1", "2.1.15"));
    assert!(!zfs_newer("2.1.11-1", "2.1.11-1~bpo12+1"));
    assert!(!zfs_newer("2.1.11-1", "2.2.6-1~bpo12+3"));
    assert!(!zfs_newer("2.1.11", "2.1.11"));
    let (_, m) = image_of(b"x");
    let e = check_zfs(&Manifest { zfs_version: "2.3.0-1".into(), ..m.clone() }, "2.1.11-1\n").unwrap_err().to_string();
    assert!(e.contains("OpenZFS 2.3.0-1, newer than this system's module 2.1.11-1"), "{e}");
    check_zfs(&m, "2.1.11-1").expect("same version is fine");
}

/// An image sent from a pool limited to one feature set goes into pools limited to the same
/// set or a larger one, never a smaller one, an unknown one or from a pool without a limit.
#[test]
fn an_images_feature_set_must_fit_the_new_pools() {
    let (_, m) = image_of(b"x"); // openzfs-2.1-linux
    let set = |w: &str| crate::zfs_features::parse_set(w);
    let (v21, v22) = (set("async_destroy lz4_compress"), set("async_destroy block_cloning lz4_compress"));
    check_compatibility(&m, "openzfs-2.1-linux", Some(&v21), Some(&v21)).expect("same set");
    check_compatibility(&m, "openzfs-2.2-linux", Some(&v22), Some(&v21)).expect("a larger set");
    check_compatibility(&m, "off", None, Some(&v21)).expect("pools without a limit take anything");
    let newer = Manifest { compatibility: "openzfs-2.2-linux".into(), ..m.clone() };
    let e = check_compatibility(&newer, "openzfs-2.1-linux", Some(&v21), Some(&v22)).unwrap_err().to_string();
    assert!(e.contains("feature set openzfs-2.2-linux") && e.contains("block_cloning not in openzfs-2.1-linux"), "{e}");
    let e = check_compatibility(&newer, "openzfs-2.1-linux", Some(&v21), None).unwrap_err().to_string();
    assert!(e.contains("does not know that set"), "{e}");
    let off = Manifest { compatibility: "off".into(), ..m.clone() };
    let e = check_compatibility(&off, "openzfs-2.1-linux", Some(&v21), None).unwrap_err().to_string();
    assert!(e.contains("its pool had no limit (off)"), "{e}");
}

#[test]
fn manifests_are_checked_field_by_field() {
    let (_, m) = image_of(b"x");
    let good = serde_json::to_string(&m).unwrap();
    assert_eq!(Manifest::parse("m.json", &good).unwrap(), m);
    let bad = |f: &dyn Fn(&mut Manifest)| {
        let mut x = m.clone();
        f(&mut x);
        Manifest::parse("img.json", &serde_json::to_string(&x).unwrap()).unwrap_err().to_string()
    };
    assert!(bad(&|x| x.schema = "keel.image/v9".into()).contains("schema \"keel.image/v9\""));
    assert!(bad(&|x| x.sha256 = "12".into()).contains("not 64 hex digits"));
    assert!(bad(&|x| x.dataset = "rpool/data".into()).contains("it holds rpool/data"));
    assert!(bad(&|x| x.snapshot = "a;b".into()).contains("plain ZFS snapshot name"));
    assert!(bad(&|x| x.compression = "gzip".into()).contains("keel reads zstd images"));
    let e = Manifest::parse("img.json", "{\"schema\": 1}").unwrap_err().to_string();
    assert!(e.starts_with("img.json: not a keel image manifest"), "{e}");
    assert_eq!(m.received_snapshot(), "rpool/ROOT/pve-1@keel-base");
    assert_eq!(manifest_location("http://r/v1/images/a.zfs.zst"), "http://r/v1/images/a.zfs.zst.json");
}

#[test]
fn key_packages_come_from_dpkg_status() {
    let status = "Package: proxmox-ve\nStatus: install ok installed\nVersion: 8.2.0\n\nPackage: zfsutils-linux\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.2.6-pve1\n\nPackage: proxmox-kernel-6.8.12-4-pve-signed\nStatus: install ok installed\nVersion: 6.8.12-4\n\nPackage: corosync\nStatus: deinstall ok config-files\nVersion: 3.1.7-pve3\n\nPackage: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b7\n";
    let p = key_packages(status);
    assert_eq!(p.len(), 3, "{p:?}");
    assert_eq!(p["zfsutils-linux"], "2.2.6-pve1");
    assert_eq!(p["proxmox-kernel-6.8.12-4-pve-signed"], "6.8.12-4");
    assert!(!p.contains_key("corosync"), "removed packages do not count");
}
