//! The thin layer between the install engine and the machine: commands, files, block-device
//! paths. [`SystemHost`] is the real one; [`FakeHost`] records every call and answers from a
//! script, so the engine is tested without touching a disk.

use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a finished command left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(stdout: &str) -> Output {
        Output { code: 0, stdout: stdout.to_string(), stderr: String::new() }
    }

    pub fn failed(code: i32, stderr: &str) -> Output {
        Output { code, stdout: String::new(), stderr: stderr.to_string() }
    }

    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// The last `n` non-empty lines of stderr, for error messages (of stdout when stderr is
    /// empty: apt and dpkg print their warnings there).
    pub fn stderr_tail(&self, n: usize) -> String {
        let text = if self.stderr.trim().is_empty() { &self.stdout } else { &self.stderr };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("`{command}` could not be started: {err}")]
    Spawn { command: String, err: std::io::Error },
    #[error("`{command}` did not finish within {timeout:?} and was killed")]
    Timeout { command: String, timeout: Duration },
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
}

/// Everything the engine may do to the machine.
pub trait Host {
    /// Runs a command (no shell) with captured output; kills it after `timeout`.
    fn run(&mut self, argv: &[String], timeout: Duration) -> Result<Output, HostError>;
    /// Runs a command with `input` streamed to its standard input (no shell, output captured).
    /// When reading `input` fails, the command's stdin is closed early (it sees a short stream)
    /// and the read error is returned once the command has exited.
    fn run_with_input(&mut self, argv: &[String], input: &mut dyn Read, timeout: Duration) -> Result<Output, HostError>;
    fn read_file(&mut self, path: &Path) -> Result<String, HostError>;
    fn read_bytes(&mut self, path: &Path) -> Result<Vec<u8>, HostError>;
    /// The first `n` bytes of a file or device (boot code on a disk).
    fn read_head(&mut self, path: &Path, n: usize) -> Result<Vec<u8>, HostError>;
    fn write_file(&mut self, path: &Path, content: &[u8], mode: u32) -> Result<(), HostError>;
    fn append_file(&mut self, path: &Path, content: &[u8]) -> Result<(), HostError>;
    /// True if the path exists (following symlinks).
    fn exists(&mut self, path: &Path) -> bool;
    /// The device a by-id path points to, fully resolved.
    fn resolve(&mut self, path: &Path) -> Result<PathBuf, HostError>;
    /// Where a program is (PATH, then the sbin and bin directories), if anywhere.
    fn program_path(&mut self, name: &str) -> Option<PathBuf>;
    /// Whether a program is on PATH.
    fn has_program(&mut self, name: &str) -> bool {
        self.program_path(name).is_some()
    }
    fn is_root(&mut self) -> bool;
    /// Waits (real host) or records the wait (fake).
    fn sleep(&mut self, d: Duration);
}

/// Shell-style rendering of a command line for messages and logs.
pub fn command_line(argv: &[String]) -> String {
    argv.iter().map(|a| crate::plan::shell_quote(a)).collect::<Vec<_>>().join(" ")
}

/// A program by name on PATH, then in /usr/sbin and /sbin.
fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A started command whose stdout and stderr are drained on threads (so a chatty command
/// cannot block on a full pipe).
struct Started {
    command: String,
    child: std::process::Child,
    out: std::thread::JoinHandle<Vec<u8>>,
    err: std::thread::JoinHandle<Vec<u8>>,
}

fn start(argv: &[String], stdin: Stdio) -> Result<Started, HostError> {
    let command = command_line(argv);
    // Root's tools live in sbin, which a non-login PATH may lack.
    let program = find_program(&argv[0]).unwrap_or_else(|| PathBuf::from(&argv[0]));
    let mut child = Command::new(program)
        .args(&argv[1..])
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LC_ALL", "C")
        .spawn()
        .map_err(|err| HostError::Spawn { command: command.clone(), err })?;
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped")));
    let err = drain(Box::new(child.stderr.take().expect("piped")));
    Ok(Started { command, child, out, err })
}

impl Started {
    /// Waits for the exit (killing the command after `timeout`, counted from `since`).
    fn wait(mut self, timeout: Duration, since: Instant) -> Result<Output, HostError> {
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if since.elapsed() >= timeout => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(HostError::Timeout { command: self.command, timeout });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(err) => return Err(HostError::Spawn { command: self.command, err }),
            }
        };
        let stdout = String::from_utf8_lossy(&self.out.join().unwrap_or_default()).into_owned();
        let stderr = String::from_utf8_lossy(&self.err.join().unwrap_or_default()).into_owned();
        use std::os::unix::process::ExitStatusExt;
        let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        Ok(Output { code, stdout, stderr })
    }
}

/// The machine keel runs on.
/// A host in front of another: everything goes through to [`Layer::inner`]; a layer only adds
/// something around the commands, the waits and the writes (timing, the install's log).
pub trait Layer {
    fn inner(&mut self) -> &mut dyn Host;
    /// Runs `run` (the command on the inner host); a layer observes it.
    fn command(&mut self, _argv: &[String], run: &mut dyn FnMut(&mut dyn Host) -> Result<Output, HostError>) -> Result<Output, HostError> {
        run(self.inner())
    }
    /// Waits on the inner host.
    fn wait(&mut self, d: Duration) {
        self.inner().sleep(d)
    }
    /// Told before a file is written.
    fn writing(&mut self, _path: &Path, _len: usize, _mode: u32) {}
}

impl<L: Layer> Host for L {
    fn run(&mut self, argv: &[String], timeout: Duration) -> Result<Output, HostError> {
        self.command(argv, &mut |h| h.run(argv, timeout))
    }
    fn run_with_input(&mut self, argv: &[String], input: &mut dyn Read, timeout: Duration) -> Result<Output, HostError> {
        self.command(argv, &mut |h| h.run_with_input(argv, input, timeout))
    }
    fn read_file(&mut self, path: &Path) -> Result<String, HostError> {
        self.inner().read_file(path)
    }
    fn read_bytes(&mut self, path: &Path) -> Result<Vec<u8>, HostError> {
        self.inner().read_bytes(path)
    }
    fn read_head(&mut self, path: &Path, n: usize) -> Result<Vec<u8>, HostError> {
        self.inner().read_head(path, n)
    }
    fn write_file(&mut self, path: &Path, content: &[u8], mode: u32) -> Result<(), HostError> {
        self.writing(path, content.len(), mode);
        self.inner().write_file(path, content, mode)
    }
    fn append_file(&mut self, path: &Path, content: &[u8]) -> Result<(), HostError> {
        self.inner().append_file(path, content)
    }
    fn exists(&mut self, path: &Path) -> bool {
        self.inner().exists(path)
    }
    fn resolve(&mut self, path: &Path) -> Result<PathBuf, HostError> {
        self.inner().resolve(path)
    }
    fn program_path(&mut self, name: &str) -> Option<PathBuf> {
        self.inner().program_path(name)
    }
    fn is_root(&mut self) -> bool {
        self.inner().is_root()
    }
    fn sleep(&mut self, d: Duration) {
        self.wait(d)
    }
}

/// A layer that adds up the wall time spent in the commands run through it and in its waits
/// (the rest of an install's time is keel's own: journal, files, logs, planning).
pub struct Timed<'a> {
    inner: &'a mut dyn Host,
    spent: std::rc::Rc<std::cell::Cell<Duration>>,
}

impl<'a> Timed<'a> {
    /// The layer, and the counter it adds to.
    pub fn new(inner: &'a mut dyn Host) -> (Timed<'a>, std::rc::Rc<std::cell::Cell<Duration>>) {
        let spent = std::rc::Rc::new(std::cell::Cell::new(Duration::ZERO));
        (Timed { inner, spent: spent.clone() }, spent)
    }
}

impl Layer for Timed<'_> {
    fn inner(&mut self) -> &mut dyn Host {
        &mut *self.inner
    }
    fn command(&mut self, _argv: &[String], run: &mut dyn FnMut(&mut dyn Host) -> Result<Output, HostError>) -> Result<Output, HostError> {
        let since = Instant::now();
        let r = run(&mut *self.inner);
        self.spent.set(self.spent.get() + since.elapsed());
        r
    }
    fn wait(&mut self, d: Duration) {
        let since = Instant::now();
        self.inner.sleep(d);
        self.spent.set(self.spent.get() + since.elapsed());
    }
}

pub struct SystemHost;

impl Host for SystemHost {
    fn run(&mut self, argv: &[String], timeout: Duration) -> Result<Output, HostError> {
        start(argv, Stdio::null())?.wait(timeout, Instant::now())
    }

    fn run_with_input(&mut self, argv: &[String], input: &mut dyn Read, timeout: Duration) -> Result<Output, HostError> {
        let since = Instant::now();
        let mut started = start(argv, Stdio::piped())?;
        let mut stdin = started.child.stdin.take().expect("piped");
        let mut buf = vec![0u8; 256 * 1024];
        let mut failed = None;
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            // the command stopped reading (it failed): its exit code and stderr say why
            if std::io::Write::write_all(&mut stdin, &buf[..n]).is_err() {
                break;
            }
            if since.elapsed() >= timeout {
                break;
            }
        }
        // a short stream: the command sees its end and must fail on its own
        drop(stdin);
        let out = started.wait(timeout, since)?;
        match failed {
            Some(err) => Err(HostError::Io { path: "the input stream".into(), err }),
            None => Ok(out),
        }
    }

    fn read_file(&mut self, path: &Path) -> Result<String, HostError> {
        std::fs::read_to_string(path).map_err(|err| HostError::Io { path: path.display().to_string(), err })
    }

    fn read_bytes(&mut self, path: &Path) -> Result<Vec<u8>, HostError> {
        std::fs::read(path).map_err(|err| HostError::Io { path: path.display().to_string(), err })
    }

    fn read_head(&mut self, path: &Path, n: usize) -> Result<Vec<u8>, HostError> {
        let io = |err| HostError::Io { path: path.display().to_string(), err };
        let mut buf = Vec::with_capacity(n);
        std::fs::File::open(path).map_err(io)?.take(n as u64).read_to_end(&mut buf).map_err(io)?;
        Ok(buf)
    }

    fn write_file(&mut self, path: &Path, content: &[u8], mode: u32) -> Result<(), HostError> {
        use std::os::unix::fs::PermissionsExt;
        let io = |err| HostError::Io { path: path.display().to_string(), err };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        // Write beside, then rename: a crash never leaves half a file.
        let tmp = path.with_extension("keel-tmp");
        std::fs::write(&tmp, content).map_err(io)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    fn append_file(&mut self, path: &Path, content: &[u8]) -> Result<(), HostError> {
        use std::io::Write;
        let io = |err| HostError::Io { path: path.display().to_string(), err };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
        f.write_all(content).map_err(io)?;
        f.sync_data().map_err(io)
    }

    fn exists(&mut self, path: &Path) -> bool {
        path.exists()
    }

    fn resolve(&mut self, path: &Path) -> Result<PathBuf, HostError> {
        std::fs::canonicalize(path).map_err(|err| HostError::Io { path: path.display().to_string(), err })
    }

    fn program_path(&mut self, name: &str) -> Option<PathBuf> {
        find_program(name)
    }

    fn is_root(&mut self) -> bool {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
            .unwrap_or(false)
    }

    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// One recorded call of the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Run(String),
    Write(String),
    Append(String),
}

/// A scripted host for unit tests: answers commands by prefix, keeps files in memory, and
/// records every command and write in order.
#[derive(Default)]
pub struct FakeHost {
    pub calls: Vec<Call>,
    /// (command-line prefix, queued answers); the last answer of a queue repeats.
    pub answers: Vec<(String, VecDeque<Result<Output, String>>)>,
    pub files: std::collections::BTreeMap<PathBuf, Vec<u8>>,
    pub links: std::collections::BTreeMap<PathBuf, PathBuf>,
    pub programs: Vec<String>,
    pub root: bool,
    /// (command-line prefix, file, content): running such a command creates the file.
    pub effects: Vec<(String, PathBuf, Vec<u8>)>,
    /// (command-line prefix, link, target): running such a command makes the symbolic link.
    pub link_effects: Vec<(String, PathBuf, PathBuf)>,
    /// What each `run_with_input` read from its input, in order.
    pub inputs: Vec<Vec<u8>>,
    /// (text in a command line, answer prefix, answer): running such a command changes how
    /// later commands are answered (`zpool create ... rpool` makes `zpool list rpool` succeed).
    pub triggers: Vec<(String, String, Output)>,
}

impl FakeHost {
    /// Answers commands starting with `prefix` with `out` (queued; the last one repeats).
    pub fn answer(&mut self, prefix: &str, out: Output) {
        self.answer_result(prefix, Ok(out));
    }

    /// Replaces every queued answer for `prefix` with `out`.
    pub fn set(&mut self, prefix: &str, out: Output) {
        self.answers.retain(|(p, _)| p != prefix);
        self.answer(prefix, out);
    }

    /// Makes commands starting with `prefix` time out.
    pub fn hang(&mut self, prefix: &str) {
        self.answer_result(prefix, Err("timeout".into()));
    }

    fn answer_result(&mut self, prefix: &str, r: Result<Output, String>) {
        if let Some((_, q)) = self.answers.iter_mut().find(|(p, _)| p == prefix) {
            q.push_back(r);
        } else {
            self.answers.push((prefix.to_string(), VecDeque::from([r])));
        }
    }

    pub fn commands(&self) -> Vec<String> {
        self.calls.iter().filter_map(|c| if let Call::Run(s) = c { Some(s.clone()) } else { None }).collect()
    }
}

impl Host for FakeHost {
    fn run(&mut self, argv: &[String], timeout: Duration) -> Result<Output, HostError> {
        let line = command_line(argv);
        self.calls.push(Call::Run(line.clone()));
        for (prefix, path, content) in &self.effects {
            if line.starts_with(prefix.as_str()) {
                self.files.insert(path.clone(), content.clone());
            }
        }
        for (prefix, link, target) in &self.link_effects {
            if line.starts_with(prefix.as_str()) {
                self.links.insert(link.clone(), target.clone());
            }
        }
        let fired: Vec<(String, Output)> = self.triggers.iter().filter(|(p, _, _)| line.contains(p.as_str())).map(|(_, a, o)| (a.clone(), o.clone())).collect();
        for (prefix, out) in fired {
            self.set(&prefix, out);
        }
        // longest matching prefix wins
        let best = self
            .answers
            .iter_mut()
            .filter(|(p, _)| line.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len());
        let answer = match best {
            Some((_, q)) if q.len() > 1 => q.pop_front().expect("non-empty"),
            Some((_, q)) => q.front().cloned().expect("non-empty"),
            None => Ok(Output::ok("")),
        };
        answer.map_err(|_| HostError::Timeout { command: line, timeout })
    }

    fn run_with_input(&mut self, argv: &[String], input: &mut dyn Read, timeout: Duration) -> Result<Output, HostError> {
        let mut data = Vec::new();
        let read = input.read_to_end(&mut data);
        self.inputs.push(data);
        let out = self.run(argv, timeout)?;
        read.map_err(|err| HostError::Io { path: "the input stream".into(), err })?;
        Ok(out)
    }

    fn read_file(&mut self, path: &Path) -> Result<String, HostError> {
        self.files
            .get(path)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .ok_or_else(|| HostError::Io { path: path.display().to_string(), err: std::io::ErrorKind::NotFound.into() })
    }

    fn read_bytes(&mut self, path: &Path) -> Result<Vec<u8>, HostError> {
        self.files.get(path).cloned().ok_or_else(|| HostError::Io { path: path.display().to_string(), err: std::io::ErrorKind::NotFound.into() })
    }

    fn read_head(&mut self, path: &Path, n: usize) -> Result<Vec<u8>, HostError> {
        // a program of the fake's is an ELF binary unless a test put other content there
        if !self.files.contains_key(path) && path.parent() == Some(Path::new("/usr/sbin")) && path.file_name().is_some_and(|f| self.programs.iter().any(|p| f == p.as_str())) {
            let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
            elf.truncate(n);
            return Ok(elf);
        }
        let mut b = self.read_bytes(path)?;
        b.truncate(n);
        Ok(b)
    }

    fn write_file(&mut self, path: &Path, content: &[u8], _mode: u32) -> Result<(), HostError> {
        self.calls.push(Call::Write(path.display().to_string()));
        self.files.insert(path.to_path_buf(), content.to_vec());
        Ok(())
    }

    fn append_file(&mut self, path: &Path, content: &[u8]) -> Result<(), HostError> {
        self.calls.push(Call::Append(path.display().to_string()));
        self.files.entry(path.to_path_buf()).or_default().extend_from_slice(content);
        Ok(())
    }

    fn exists(&mut self, path: &Path) -> bool {
        self.files.contains_key(path) || self.links.contains_key(path)
    }

    fn resolve(&mut self, path: &Path) -> Result<PathBuf, HostError> {
        self.links
            .get(path)
            .cloned()
            .ok_or_else(|| HostError::Io { path: path.display().to_string(), err: std::io::ErrorKind::NotFound.into() })
    }

    /// A program the fake has lives in /usr/sbin.
    fn program_path(&mut self, name: &str) -> Option<PathBuf> {
        self.programs.iter().any(|p| p == name).then(|| PathBuf::from("/usr/sbin").join(name))
    }

    fn is_root(&mut self) -> bool {
        self.root
    }

    fn sleep(&mut self, _d: Duration) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn system_host_captures_output_and_exit_code() {
        let out = SystemHost.run(&argv(&["sh", "-c", "echo out; echo err >&2; exit 3"]), Duration::from_secs(10)).unwrap();
        assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (3, "out\n", "err\n"));
    }

    #[test]
    fn system_host_kills_a_hanging_command() {
        let start = Instant::now();
        let err = SystemHost.run(&argv(&["sleep", "30"]), Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, HostError::Timeout { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(10));
        assert!(err.to_string().contains("`sleep 30` did not finish"), "{err}");
    }

    #[test]
    fn system_host_reports_a_missing_program() {
        let err = SystemHost.run(&argv(&["keel-no-such-program"]), Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("could not be started"), "{err}");
    }

    #[test]
    fn system_host_streams_input_to_a_command() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let out = SystemHost.run_with_input(&argv(&["wc", "-c"]), &mut std::io::Cursor::new(data), Duration::from_secs(30)).unwrap();
        assert_eq!((out.code, out.stdout.trim()), (0, "3000000"));
    }

    #[test]
    fn system_host_input_stops_when_the_command_stops_reading() {
        // `false` exits at once: the write fails, the exit code is what counts, nothing hangs
        let mut endless = std::io::repeat(7);
        let out = SystemHost.run_with_input(&argv(&["sh", "-c", "echo refused >&2; exit 4"]), &mut endless, Duration::from_secs(30)).unwrap();
        assert_eq!((out.code, out.stderr.as_str()), (4, "refused\n"));
    }

    #[test]
    fn system_host_input_failure_closes_the_stream_and_is_returned() {
        struct Fails(usize);
        impl Read for Fails {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "stalled"));
                }
                self.0 -= 1;
                buf[..10].fill(b'x');
                Ok(10)
            }
        }
        let err = SystemHost.run_with_input(&argv(&["wc", "-c"]), &mut Fails(3), Duration::from_secs(30)).unwrap_err();
        assert!(err.to_string().contains("the input stream: stalled"), "{err}");
    }

    #[test]
    fn fake_answers_by_longest_prefix_and_queues() {
        let mut h = FakeHost::default();
        h.answer("zpool", Output::failed(1, "no pools"));
        h.answer("zpool list rpool", Output::ok("rpool\n"));
        h.answer("zpool list rpool", Output::ok("again\n"));
        let r = |h: &mut FakeHost, s: &[&str]| h.run(&argv(s), Duration::from_secs(1)).unwrap();
        assert_eq!(r(&mut h, &["zpool", "list", "rpool"]).stdout, "rpool\n");
        assert_eq!(r(&mut h, &["zpool", "list", "rpool"]).stdout, "again\n");
        assert_eq!(r(&mut h, &["zpool", "list", "rpool"]).stdout, "again\n");
        assert_eq!(r(&mut h, &["zpool", "import"]).code, 1);
        assert_eq!(h.commands().len(), 4);
    }
}
