//! Root images: a `zfs send` stream of `rpool/ROOT/pve-1` at the snapshot a network install
//! takes after its packages and before anything node-specific (`@keel-base`), zstd-compressed,
//! with a manifest beside it (`IMAGE.json`) that says what it holds, its size and SHA-256 and
//! the ZFS that wrote it. [`receive`] streams one into a pool: the download, the checksum, the
//! decompression and `zfs receive` overlap, in fixed memory (a few MiB whatever the size).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::exec::host::{command_line, Host, HostError};

/// Identifies the manifest's JSON shape.
pub const MANIFEST_SCHEMA: &str = "keel.image/v2";
/// The root file system an image holds (and an image install receives into).
pub const ROOT_DATASET: &str = "rpool/ROOT/pve-1";
/// The snapshot a network install takes of it before the node-specific steps.
pub const BASE_SNAPSHOT: &str = "keel-base";

/// Where the manifest of an image lives: beside it, `.json` appended.
pub fn manifest_location(image: &str) -> String {
    format!("{image}.json")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema: String,
    /// The image's file name.
    pub name: String,
    /// When it was built (RFC 3339, UTC).
    pub created: String,
    /// What it was sent from: dataset and snapshot, and the snapshot's GUID (the received
    /// snapshot carries the same one: that is how an install recognises it already has it).
    pub dataset: String,
    pub snapshot: String,
    pub snapshot_guid: String,
    /// Bytes of the image file (compressed) and of the `zfs send` stream inside it.
    pub size: u64,
    pub stream_size: u64,
    /// SHA-256 of the image file.
    pub sha256: String,
    pub compression: String,
    /// The OpenZFS module that wrote the stream (`/sys/module/zfs/version`).
    pub zfs_version: String,
    /// The feature set of the pool it was sent from (its `compatibility` property): the stream
    /// needs no feature outside it, so a pool limited to the same set (or a larger one) takes it.
    pub compatibility: String,
    /// `/etc/debian_version` of the image.
    pub debian_version: String,
    /// Kernels in the image's /boot.
    pub kernels: Vec<String>,
    /// Versions of the packages that define a node (Proxmox VE, its kernel, ZFS, corosync...).
    pub packages: BTreeMap<String, String>,
    /// The profile of the node it was built on: its SHA-256 and host name.
    pub profile_sha256: String,
    pub profile_hostname: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{location}: not a keel image manifest: {why}")]
    BadManifest { location: String, why: String },
    #[error("the image {name} was written by OpenZFS {image}, newer than this system's module {here}: its stream may use features this ZFS cannot receive. Use an image built with OpenZFS {here} or older, or a rescue system with a newer ZFS")]
    ZfsTooNew { name: String, image: String, here: String },
    #[error("the image {name} comes from a pool with the feature set {image}, which has features the install's pools will not have (zfs.compatibility {profile}): {why}. Build the image on a node whose pools use {profile}, or set zfs.compatibility to the image's set")]
    Compatibility { name: String, image: String, profile: String, why: String },
    #[error("downloading the image failed after {bytes} bytes: {err}")]
    Download { bytes: u64, err: io::Error },
    #[error("`{command}` exited with code {code}{}", tail(.stderr))]
    Receive { command: String, code: i32, stderr: String },
    #[error("the image has SHA-256 {found} over {bytes} bytes; its manifest says {expected} over {size} bytes. The received file system was destroyed: fetch the image again or check where it came from")]
    Checksum { found: String, bytes: u64, expected: String, size: u64 },
    #[error("the image is not zstd data the way its manifest says: {0}")]
    Decompress(io::Error),
    #[error(transparent)]
    Host(HostError),
}

fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!("; stderr ends with:\n  {}", lines[lines.len().saturating_sub(5)..].join("\n  "))
    }
}

impl Manifest {
    /// Parses and checks a manifest (`location` names it in errors).
    pub fn parse(location: &str, text: &str) -> Result<Manifest, ImageError> {
        let bad = |why: String| ImageError::BadManifest { location: location.to_string(), why };
        let m: Manifest = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if m.schema != MANIFEST_SCHEMA {
            return Err(bad(format!("schema \"{}\", this keel reads \"{MANIFEST_SCHEMA}\"", m.schema)));
        }
        if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!("sha256 \"{}\" is not 64 hex digits", m.sha256)));
        }
        if m.size == 0 {
            return Err(bad("size is 0".into()));
        }
        if m.compression != "zstd" {
            return Err(bad(format!("compression \"{}\": keel reads zstd images", m.compression)));
        }
        if m.dataset != ROOT_DATASET {
            return Err(bad(format!("it holds {}, keel installs {ROOT_DATASET} from an image", m.dataset)));
        }
        if m.snapshot.is_empty() || !m.snapshot.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) {
            return Err(bad(format!("snapshot name \"{}\" is not a plain ZFS snapshot name", m.snapshot)));
        }
        if version_numbers(&m.zfs_version).is_empty() {
            return Err(bad(format!("zfs_version \"{}\" has no version number", m.zfs_version)));
        }
        Ok(m)
    }

    /// The received snapshot: `rpool/ROOT/pve-1@keel-base`.
    pub fn received_snapshot(&self) -> String {
        format!("{ROOT_DATASET}@{}", self.snapshot)
    }
}

/// The numbers of a version string: "2.1.11-1" -> [2, 1, 11]; "zfs-kmod-2.2.7-pve1" -> [2, 2, 7].
fn version_numbers(v: &str) -> Vec<u64> {
    let start = v.find(|c: char| c.is_ascii_digit()).unwrap_or(v.len());
    v[start..]
        .split(['-', '~', '+'])
        .next()
        .unwrap_or("")
        .split('.')
        .map_while(|p| p.parse().ok())
        .collect()
}

/// Whether a stream written by ZFS `image` may carry features the module `here` lacks
/// (compared by release number; the packaging suffix does not count).
pub fn zfs_newer(image: &str, here: &str) -> bool {
    version_numbers(image) > version_numbers(here)
}

/// Refuses an image written by a newer ZFS than the one loaded here (`/sys/module/zfs/version`).
pub fn check_zfs(m: &Manifest, here: &str) -> Result<(), ImageError> {
    if zfs_newer(&m.zfs_version, here) {
        return Err(ImageError::ZfsTooNew { name: m.name.clone(), image: m.zfs_version.clone(), here: here.trim().to_string() });
    }
    Ok(())
}

/// Refuses an image whose stream may need features the new pools lack: the image's pool was
/// limited to `has` (its manifest's set, as this system's OpenZFS reads it), the new pools are
/// limited to `want` (`None`: `off`, every feature). A set this system cannot read counts as
/// unknown, so refused unless the new pools are `off`.
pub fn check_compatibility(m: &Manifest, set: &str, want: Option<&BTreeSet<String>>, has: Option<&BTreeSet<String>>) -> Result<(), ImageError> {
    let refuse = |why: String| ImageError::Compatibility { name: m.name.clone(), image: m.compatibility.clone(), profile: set.to_string(), why };
    let Some(want) = want else { return Ok(()) };
    if crate::zfs_features::set_files(&m.compatibility).is_empty() {
        return Err(refuse("its pool had no limit (off)".into()));
    }
    let Some(has) = has else { return Err(refuse("this system's OpenZFS does not know that set".into())) };
    let extra = crate::zfs_features::outside(has, want);
    if extra.is_empty() {
        Ok(())
    } else {
        Err(refuse(format!("{} not in {set}", extra.join(", "))))
    }
}

/// The packages a manifest lists, by name or prefix (`pve-*`, `proxmox-*`).
const KEY_PACKAGES: &[&str] = &["proxmox-ve", "pve-manager", "proxmox-default-kernel", "zfsutils-linux", "zfs-initramfs", "corosync", "openssh-server", "systemd", "grub-pc-bin", "ifupdown2"];
const KEY_PREFIXES: &[&str] = &["proxmox-kernel-", "pve-kernel-"];

/// Installed versions of the packages that define a node, from dpkg's status file.
pub fn key_packages(dpkg_status: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for block in dpkg_status.split("\n\n") {
        let field = |name: &str| block.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()));
        let (Some(pkg), Some(status), Some(version)) = (field("Package:"), field("Status:"), field("Version:")) else { continue };
        if status != "install ok installed" {
            continue;
        }
        if KEY_PACKAGES.contains(&pkg.as_str()) || KEY_PREFIXES.iter().any(|p| pkg.starts_with(p)) {
            out.insert(pkg, version);
        }
    }
    out
}

/// What a receive measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// Bytes of the image read (compressed) and handed to `zfs receive` (the stream).
    pub bytes: u64,
    pub stream_bytes: u64,
    pub sha256: String,
    pub seconds: f64,
}

/// A chunk of the download, or how it failed.
type Chunk = io::Result<Vec<u8>>;

/// Reads what the download thread sends, in order.
struct ChannelReader {
    rx: mpsc::Receiver<Chunk>,
    chunk: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(c)) if c.is_empty() => self.done = true,
                Ok(Ok(c)) => {
                    self.chunk = c;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // the download thread ended without its end marker: it panicked
                Err(_) => return Err(io::Error::other("the download stopped")),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Hashes and counts what passes through.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
    bytes: u64,
    /// The first read error (the decoder may turn it into its own).
    error: Option<io::ErrorKind>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hash.update(&buf[..n]);
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.error.get_or_insert(e.kind());
                Err(e)
            }
        }
    }
}

/// Counts what passes through.
struct Counting<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Size of the download's chunks and how many may wait: the most the pipeline holds in memory
/// besides the decoder's window.
pub const CHUNK_BYTES: usize = 1 << 20;
pub const CHUNKS_IN_FLIGHT: usize = 8;

/// Streams an image into `zfs receive -u TARGET`: a thread reads `source` (the download) into a
/// bounded queue while this one hashes, decompresses and feeds `zfs receive`. The SHA-256 and the
/// size must equal the manifest's; if not, what was received is destroyed. `zfs receive`
/// itself discards a stream that ends early.
pub fn receive(host: &mut dyn Host, source: Box<dyn Read + Send>, m: &Manifest, target: &str, timeout: Duration) -> Result<Received, ImageError> {
    let started = Instant::now();
    let (tx, rx) = mpsc::sync_channel::<Chunk>(CHUNKS_IN_FLIGHT);
    let download = std::thread::spawn(move || {
        let mut source = source;
        loop {
            let mut chunk = vec![0u8; CHUNK_BYTES];
            let mut filled = 0;
            // fill whole chunks: fewer, larger messages
            let r = loop {
                match source.read(&mut chunk[filled..]) {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        filled += n;
                        if filled == chunk.len() {
                            break Ok(());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            chunk.truncate(filled);
            let end = filled < CHUNK_BYTES;
            if filled > 0 && tx.send(Ok(chunk)).is_err() {
                return; // the receiving side gave up
            }
            match r {
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
                Ok(()) if end => {
                    let _ = tx.send(Ok(Vec::new()));
                    return;
                }
                Ok(()) => {}
            }
        }
    });
    let mut hashing = Hashing { inner: ChannelReader { rx, chunk: Vec::new(), pos: 0, done: false }, hash: Sha256::new(), bytes: 0, error: None };
    let argv: Vec<String> = ["zfs", "receive", "-u", target].iter().map(|s| s.to_string()).collect();
    let (run, stream_bytes) = {
        let decoder = match zstd::stream::read::Decoder::new(&mut hashing) {
            Ok(d) => d,
            Err(e) => return Err(ImageError::Decompress(e)),
        };
        let mut stream = Counting { inner: decoder, bytes: 0 };
        let r = host.run_with_input(&argv, &mut stream, timeout);
        (r, stream.bytes)
    };
    // whatever follows the last frame still counts for the checksum
    let rest = match &run {
        Ok(out) if out.success() => io::copy(&mut hashing, &mut io::sink()).map(|_| ()),
        _ => Ok(()),
    };
    let (bytes, download_failed) = (hashing.bytes, hashing.error.is_some());
    let sha256 = crate::profile::hex_digest(&hashing.hash.clone().finalize());
    drop(hashing); // ends the download thread if it still waits to send
    let _ = download.join();
    let out = match run {
        Ok(out) => out,
        Err(HostError::Io { err, .. }) if download_failed => return Err(ImageError::Download { bytes, err }),
        Err(HostError::Io { err, .. }) => return Err(ImageError::Decompress(err)),
        Err(e) => return Err(ImageError::Host(e)),
    };
    if !out.success() {
        return Err(ImageError::Receive { command: command_line(&argv), code: out.code, stderr: out.stderr });
    }
    let destroy = |host: &mut dyn Host| {
        let _ = host.run(&["zfs".into(), "destroy".into(), "-r".into(), target.into()], Duration::from_secs(300));
    };
    if let Err(err) = rest {
        destroy(host);
        return Err(ImageError::Download { bytes, err });
    }
    if sha256 != m.sha256 || bytes != m.size {
        destroy(host);
        return Err(ImageError::Checksum { found: sha256, bytes, expected: m.sha256.clone(), size: m.size });
    }
    Ok(Received { bytes, stream_bytes, sha256, seconds: started.elapsed().as_secs_f64() })
}

/// keel's own peak resident memory (VmHWM), in KiB: the figure that must stay flat while an
/// image of any size streams through.
pub fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests;
