//! `keel image build|show|receive` and the image sources of `keel install --image`: a file, or
//! an HTTP(S) download that resumes with range requests when the connection breaks.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use keel_installer::exec::engine::{ImageSource, ZFS_VERSION_FILE};
use keel_installer::image::{self, Manifest, MANIFEST_SCHEMA};
use sha2::{Digest, Sha256};

fn is_url(location: &str) -> bool {
    location.starts_with("http://") || location.starts_with("https://")
}

/// How long a download may go without receiving a byte before the connection counts as broken.
const STALL: Duration = Duration::from_secs(60);
/// How often a broken download is resumed before keel gives up.
const RESUMES: u32 = 8;

/// Reads an image's manifest (`IMAGE.json`, beside it).
pub fn manifest(location: &str, fingerprint: Option<&str>) -> Result<Manifest> {
    let at = image::manifest_location(location);
    let text = if is_url(location) {
        let client = crate::phone_home::http_client(fingerprint, Duration::from_secs(30))?;
        let r = client.get(&at).send().with_context(|| format!("fetching the image manifest {at}"))?;
        if !r.status().is_success() {
            bail!("fetching the image manifest {at}: HTTP {} (the manifest lives beside the image, its name + .json)", r.status());
        }
        r.text().with_context(|| format!("reading {at}"))?
    } else {
        std::fs::read_to_string(&at).with_context(|| format!("reading the image manifest {at} (it lives beside the image, its name + .json)"))?
    };
    Ok(Manifest::parse(&at, &text)?)
}

/// Opens the image from its start each time it is called: a file, or a [`Download`].
pub fn source(location: &str, size: u64, fingerprint: Option<&str>) -> Result<ImageSource> {
    let location = location.to_string();
    if is_url(&location) {
        let client = crate::phone_home::http_client(fingerprint, STALL)?;
        Ok(ImageSource(Arc::new(move || Ok(Box::new(Download::new(client.clone(), &location, size)) as Box<dyn Read + Send>))))
    } else {
        Ok(ImageSource(Arc::new(move || Ok(Box::new(std::fs::File::open(&location)?) as Box<dyn Read + Send>))))
    }
}

/// An HTTP download of `size` bytes that, when the connection breaks or stalls, asks again for
/// the rest (`Range: bytes=N-`) instead of starting over, up to [`RESUMES`] times.
pub struct Download {
    client: reqwest::blocking::Client,
    url: String,
    size: u64,
    pos: u64,
    body: Option<reqwest::blocking::Response>,
    resumes: u32,
    /// Wait before the next attempt (doubles, at most 30 s).
    pause: Duration,
}

impl Download {
    pub fn new(client: reqwest::blocking::Client, url: &str, size: u64) -> Download {
        Download { client, url: url.to_string(), size, pos: 0, body: None, resumes: 0, pause: Duration::from_secs(1) }
    }

    /// How often it resumed.
    #[cfg(test)]
    pub fn resumes(&self) -> u32 {
        self.resumes
    }

    fn open(&mut self) -> io::Result<reqwest::blocking::Response> {
        let mut req = self.client.get(&self.url);
        if self.pos > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={}-", self.pos));
        }
        let r = req.send().map_err(|e| io::Error::other(format!("GET {}: {e}", self.url)))?;
        let status = r.status().as_u16();
        match (self.pos, status) {
            (0, 200) | (1.., 206) => Ok(r),
            (1.., 200) => Err(io::Error::new(io::ErrorKind::Unsupported, format!("{} ignores range requests (HTTP 200 to Range: bytes={}-): the download cannot resume", self.url, self.pos))),
            (_, s) => Err(io::Error::new(if (400..500).contains(&s) { io::ErrorKind::NotFound } else { io::ErrorKind::Other }, format!("GET {}: HTTP {s}", self.url))),
        }
    }

    /// A broken connection: wait, then resume (or give up when a resume cannot help).
    fn broke(&mut self, err: io::Error) -> io::Result<()> {
        self.body = None;
        if matches!(err.kind(), io::ErrorKind::Unsupported | io::ErrorKind::NotFound) || self.resumes >= RESUMES {
            return Err(err);
        }
        self.resumes += 1;
        eprintln!("keel: the image download broke after {} of {} bytes ({err}); resuming from there in {:?} (attempt {} of {RESUMES})", self.pos, self.size, self.pause, self.resumes);
        std::thread::sleep(self.pause);
        self.pause = (self.pause * 2).min(Duration::from_secs(30));
        Ok(())
    }
}

impl Read for Download {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos >= self.size {
                return Ok(0);
            }
            if self.body.is_none() {
                match self.open() {
                    Ok(r) => self.body = Some(r),
                    Err(e) => {
                        self.broke(e)?;
                        continue;
                    }
                }
            }
            let want = buf.len().min((self.size - self.pos) as usize);
            match self.body.as_mut().expect("opened").read(&mut buf[..want]) {
                Ok(0) => self.broke(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection early"))?,
                Ok(n) => {
                    self.pos += n as u64;
                    self.pause = Duration::from_secs(1);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.broke(e)?,
            }
        }
    }
}

/// `keel image show`: the manifest, readable.
pub fn show(location: &str, fingerprint: Option<&str>) -> Result<ExitCode> {
    let m = manifest(location, fingerprint)?;
    println!("image      {}\ncreated    {}\nfrom       {}@{} (guid {}) of {}\nsize       {} bytes (stream {} bytes), {}\nsha256     {}\nOpenZFS    {} (feature set {})\nDebian     {}\nkernels    {}",
        m.name, m.created, m.dataset, m.snapshot, m.snapshot_guid, m.profile_hostname, m.size, m.stream_size, m.compression, m.sha256, m.zfs_version, m.compatibility, m.debian_version, m.kernels.join(", "));
    for (p, v) in &m.packages {
        println!("package    {p} {v}");
    }
    Ok(ExitCode::SUCCESS)
}

fn zfs(args: &[&str]) -> Result<String> {
    zfs_tool("zfs", args)
}

/// Runs `zfs` or `zpool` and returns its trimmed output, or what failed.
fn zfs_tool(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program).args(args).stdin(Stdio::null()).output().with_context(|| format!("running {program} {}", args.join(" ")))?;
    if !out.status.success() {
        bail!("`{program} {}` exited with {}: {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// What [`write_compressed`] wrote.
struct Written {
    size: u64,
    stream_size: u64,
    sha256: String,
}

/// Compresses `stream` (zstd at `level`) into the file `out`, hashing what is written, synced;
/// progress every 10 s on stderr.
fn write_compressed(mut stream: impl Read, out: &Path, level: i32, started: Instant) -> Result<Written> {
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut enc = zstd::stream::write::Encoder::new(HashingFile { file, hash: Sha256::new(), bytes: 0 }, level).context("zstd")?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut stream_size, mut shown) = (0u64, Instant::now());
    loop {
        let n = stream.read(&mut buf).context("reading the stream")?;
        if n == 0 {
            break;
        }
        enc.write_all(&buf[..n]).with_context(|| format!("writing {}", out.display()))?;
        stream_size += n as u64;
        if shown.elapsed() >= Duration::from_secs(10) {
            eprintln!("keel: image: {} MiB sent after {:.0} s", stream_size >> 20, started.elapsed().as_secs_f64());
            shown = Instant::now();
        }
    }
    let done = enc.finish().context("finishing the zstd stream")?;
    done.file.sync_all().context("syncing the image")?;
    Ok(Written { size: done.bytes, stream_size, sha256: keel_installer::profile::hex_digest(&done.hash.finalize()) })
}

/// Writes through to a file, hashing and counting.
struct HashingFile {
    file: std::fs::File,
    hash: Sha256,
    bytes: u64,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

pub struct BuildArgs {
    pub dataset: String,
    pub snapshot: String,
    pub profile: Option<PathBuf>,
    pub out: PathBuf,
    pub level: i32,
}

/// `keel image build`: `zfs send DATASET@SNAPSHOT | zstd > OUT`, hashed as it is written, and
/// the manifest beside it (`OUT.json`) from what the snapshot holds.
pub fn build(a: &BuildArgs) -> Result<ExitCode> {
    let snap = format!("{}@{}", a.dataset, a.snapshot);
    let guid = zfs(&["get", "-H", "-p", "-o", "value", "guid", &snap]).with_context(|| {
        format!("no snapshot {snap}: a network install by keel takes it (step os.base-snapshot, after the packages and before anything of the node); an install from an image receives it")
    })?;
    let mounted = zfs(&["get", "-H", "-o", "value", "mounted", &a.dataset])?;
    let mountpoint = zfs(&["get", "-H", "-o", "value", "mountpoint", &a.dataset])?;
    if mounted != "yes" {
        bail!("{} is not mounted: keel reads the package list from its snapshot under the mount point (`zfs mount {}`, on a target under its pool's altroot)", a.dataset, a.dataset);
    }
    let snapdir = Path::new(&mountpoint).join(".zfs/snapshot").join(&a.snapshot);
    let read = |rel: &str| std::fs::read_to_string(snapdir.join(rel)).with_context(|| format!("reading {} in the snapshot", snapdir.join(rel).display()));
    let debian_version = read("etc/debian_version")?.trim().to_string();
    let packages = image::key_packages(&read("var/lib/dpkg/status")?);
    let mut kernels: Vec<String> = std::fs::read_dir(snapdir.join("boot"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("vmlinuz-")).collect())
        .unwrap_or_default();
    kernels.sort();
    let profile_path = a.profile.clone().unwrap_or_else(|| Path::new(&mountpoint).join("etc/keel/profile.toml"));
    let profile_bytes = std::fs::read(&profile_path).with_context(|| format!("reading the node's profile {} (--profile FILE)", profile_path.display()))?;
    let profile_hostname = toml::from_str::<toml::Value>(&String::from_utf8_lossy(&profile_bytes))
        .ok()
        .and_then(|v| v.get("node")?.get("hostname")?.as_str().map(String::from))
        .unwrap_or_default();
    let pool = a.dataset.split('/').next().unwrap_or_default().to_string();
    // the stream needs only features of its pool's set; older OpenZFS has no such property
    let compatibility = zfs_tool("zpool", &["get", "-H", "-o", "value", "compatibility", &pool]).with_context(|| format!("reading pool {pool}'s feature set (compatibility, OpenZFS 2.1 or newer)"))?;
    let zfs_version = std::fs::read_to_string(ZFS_VERSION_FILE).with_context(|| format!("reading {ZFS_VERSION_FILE} (is the ZFS module loaded?)"))?.trim().to_string();
    let name = a.out.file_name().map(|n| n.to_string_lossy().into_owned()).context("--out needs a file name")?;

    let started = Instant::now();
    let mut child = Command::new("zfs").args(["send", &snap]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().context("starting zfs send")?;
    let send = child.stdout.take().expect("piped");
    let mut err_pipe = child.stderr.take().expect("piped");
    let err_thread = std::thread::spawn(move || {
        let mut e = String::new();
        let _ = err_pipe.read_to_string(&mut e);
        e
    });
    let part = a.out.with_extension("part");
    let written = write_compressed(send, &part, a.level, started);
    let err = err_thread.join().unwrap_or_default();
    let status = child.wait().context("waiting for zfs send")?;
    // a failed write (disk full) also ends zfs send (broken pipe): the write's error is the cause
    let written = written.inspect_err(|_| {
        let _ = std::fs::remove_file(&part);
    })?;
    if !status.success() {
        let _ = std::fs::remove_file(&part);
        bail!("`zfs send {snap}` exited with {status}: {}", err.trim());
    }
    let Written { size, stream_size, sha256 } = written;
    let m = Manifest {
        schema: MANIFEST_SCHEMA.into(),
        name,
        created: keel_installer::exec::journal::now(),
        dataset: a.dataset.clone(),
        snapshot: a.snapshot.clone(),
        snapshot_guid: guid,
        size,
        stream_size,
        sha256,
        compression: "zstd".into(),
        zfs_version,
        compatibility,
        debian_version,
        kernels,
        packages,
        profile_sha256: keel_installer::profile::hex_digest(&Sha256::digest(&profile_bytes)),
        profile_hostname,
    };
    std::fs::rename(&part, &a.out).with_context(|| format!("renaming {} to {}", part.display(), a.out.display()))?;
    let manifest_path = image::manifest_location(&a.out.display().to_string());
    std::fs::write(&manifest_path, serde_json::to_string_pretty(&m)? + "\n").with_context(|| format!("writing {manifest_path}"))?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "keel: image {} written: {:.1} MiB from a {:.1} MiB stream in {secs:.1} s; manifest {manifest_path}",
        a.out.display(),
        m.size as f64 / 1048576.0,
        stream_size as f64 / 1048576.0
    );
    Ok(ExitCode::SUCCESS)
}

/// `keel image receive` (for benchmarks and manual use): the install's own receive pipeline
/// into any dataset, then its figures (time, throughput, keel's peak memory).
pub fn receive(location: &str, dataset: &str, fingerprint: Option<&str>) -> Result<ExitCode> {
    let m = manifest(location, fingerprint)?;
    let here = std::fs::read_to_string(ZFS_VERSION_FILE).with_context(|| format!("reading {ZFS_VERSION_FILE} (is the ZFS module loaded?)"))?;
    image::check_zfs(&m, &here)?;
    let open = source(location, m.size, fingerprint)?;
    let reader = (open.0)().with_context(|| format!("opening {location}"))?;
    let mut host = keel_installer::exec::SystemHost;
    let r = image::receive(&mut host, reader, &m, dataset, Duration::from_secs(6 * 3600))?;
    println!(
        "received {} into {dataset}: {} bytes (stream {}) in {:.2} s, {:.1} MiB/s; sha256 ok; peak memory {} KiB",
        m.name,
        r.bytes,
        r.stream_bytes,
        r.seconds,
        r.bytes as f64 / 1048576.0 / r.seconds.max(0.001),
        image::peak_memory_kib().unwrap_or(0)
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_installer::exec::host::FakeHost;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    /// A one-file HTTP server on loopback: `answer(n, range_start)` says, for the n-th
    /// connection, the status and how many bytes of the rest to send before hanging up.
    fn serve(body: Vec<u8>, answer: fn(usize, u64) -> (u16, usize)) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/images/x.zfs.zst", l.local_addr().unwrap());
        std::thread::spawn(move || {
            for (n, conn) in l.incoming().enumerate() {
                let mut conn = conn.unwrap();
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut start = 0u64;
                loop {
                    let mut line = String::new();
                    r.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                        start = v.trim().trim_end_matches('-').parse().unwrap();
                    }
                    if line.trim().is_empty() {
                        break;
                    }
                }
                let (status, send) = answer(n, start);
                let from = if status == 206 { start as usize } else { 0 };
                let rest = &body[from..];
                let head = match status {
                    206 => format!("HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {}-{}/{}\r\n\r\n", rest.len(), from, body.len() - 1, body.len()),
                    200 => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", rest.len()),
                    s => format!("HTTP/1.1 {s} Nope\r\nContent-Length: 0\r\n\r\n"),
                };
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&rest[..send.min(rest.len())]);
                // dropped: the connection closes, early when send < rest
            }
        });
        url
    }

    fn body() -> Vec<u8> {
        (0..3_000_000u32).map(|i| (i % 251) as u8).collect()
    }

    /// What `image build` writes is what the install's receive takes: the same stream comes
    /// out at `zfs receive`, and the size and SHA-256 it records are the file's.
    #[test]
    fn a_built_image_is_received_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let stream: Vec<u8> = (0..4_000_000u32).map(|i| ((i / 3) % 251) as u8).collect();
        let path = dir.path().join("base.zfs.zst");
        let w = write_compressed(io::Cursor::new(stream.clone()), &path, 3, Instant::now()).unwrap();
        let file = std::fs::read(&path).unwrap();
        assert_eq!((w.size, w.stream_size), (file.len() as u64, stream.len() as u64));
        assert_eq!(w.sha256, keel_installer::profile::hex_digest(&Sha256::digest(&file)));
        assert!(w.size < w.stream_size / 4, "compressed: {} of {}", w.size, w.stream_size);
        let m = Manifest {
            schema: MANIFEST_SCHEMA.into(),
            name: "base.zfs.zst".into(),
            created: "2026-11-28T00:00:00Z".into(),
            dataset: image::ROOT_DATASET.into(),
            snapshot: image::BASE_SNAPSHOT.into(),
            snapshot_guid: "1".into(),
            size: w.size,
            stream_size: w.stream_size,
            sha256: w.sha256.clone(),
            compression: "zstd".into(),
            zfs_version: "2.1.11-1".into(),
            compatibility: "openzfs-2.1-linux".into(),
            debian_version: "12.8".into(),
            kernels: vec![],
            packages: Default::default(),
            profile_sha256: String::new(),
            profile_hostname: String::new(),
        };
        let open = source(&path.display().to_string(), m.size, None).unwrap();
        let mut host = FakeHost::default();
        let r = image::receive(&mut host, (open.0)().unwrap(), &m, "rpool/ROOT/pve-1", Duration::from_secs(60)).unwrap();
        assert!(host.inputs[0] == stream, "zfs receive gets exactly what zfs send gave");
        assert_eq!(r.sha256, w.sha256);
    }

    #[test]
    fn a_broken_download_resumes_where_it_broke() {
        let b = body();
        // first connection: a third of the body, then gone; after that, the rest as asked
        let url = serve(b.clone(), |n, _| if n == 0 { (200, 1_000_000) } else { (206, usize::MAX) });
        let mut d = Download::new(crate::phone_home::http_client(None, Duration::from_secs(10)).unwrap(), &url, b.len() as u64);
        let mut got = Vec::new();
        d.read_to_end(&mut got).unwrap();
        assert!(got == b, "the resumed download is the file, byte for byte ({} of {} bytes)", got.len(), b.len());
        assert_eq!(d.resumes(), 1);
    }

    #[test]
    fn a_server_without_ranges_cannot_resume_and_says_so() {
        let b = body();
        let url = serve(b.clone(), |n, _| if n == 0 { (200, 500_000) } else { (200, usize::MAX) });
        let mut d = Download::new(crate::phone_home::http_client(None, Duration::from_secs(10)).unwrap(), &url, b.len() as u64);
        let e = d.read_to_end(&mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("ignores range requests (HTTP 200 to Range: bytes=500000-)"), "{e}");
    }

    #[test]
    fn a_missing_image_is_not_retried() {
        let url = serve(Vec::new(), |_, _| (404, 0));
        let started = Instant::now();
        let mut d = Download::new(crate::phone_home::http_client(None, Duration::from_secs(10)).unwrap(), &url, 10);
        let e = d.read_to_end(&mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("HTTP 404"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(1) && d.resumes() == 0);
    }
}
