//! The real host, with every command and its whole output appended to the install's log file
//! (the journal keeps command lines and failures; the log keeps everything).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use keel_installer::exec::host::command_line;
use keel_installer::exec::{Host, HostError, Output, SystemHost};

pub struct LoggingHost {
    inner: SystemHost,
    log: Option<std::fs::File>,
}

impl LoggingHost {
    pub fn new(log: &Path) -> LoggingHost {
        if let Some(dir) = log.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).ok();
        LoggingHost { inner: SystemHost, log: file }
    }

    fn write(&mut self, text: &str) {
        if let Some(f) = &mut self.log {
            let _ = f.write_all(text.as_bytes());
        }
    }
}

impl LoggingHost {
    fn log_command(&mut self, argv: &[String], start: Instant, r: &Result<Output, HostError>) {
        let mut text = format!("{} $ {}\n", keel_installer::exec::journal::now(), command_line(argv));
        match &r {
            Ok(o) => {
                text.push_str(&format!("  exit {} after {:.2}s\n", o.code, start.elapsed().as_secs_f64()));
                for (name, body) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
                    for l in body.lines() {
                        text.push_str(&format!("  {name}| {l}\n"));
                    }
                }
            }
            Err(e) => text.push_str(&format!("  error: {e}\n")),
        }
        self.write(&text);
    }
}

impl Host for LoggingHost {
    fn run(&mut self, argv: &[String], timeout: Duration) -> Result<Output, HostError> {
        let start = Instant::now();
        let r = self.inner.run(argv, timeout);
        self.log_command(argv, start, &r);
        r
    }
    fn run_with_input(&mut self, argv: &[String], input: &mut dyn std::io::Read, timeout: Duration) -> Result<Output, HostError> {
        let start = Instant::now();
        let r = self.inner.run_with_input(argv, input, timeout);
        self.log_command(argv, start, &r);
        r
    }
    fn read_file(&mut self, path: &Path) -> Result<String, HostError> {
        self.inner.read_file(path)
    }
    fn read_bytes(&mut self, path: &Path) -> Result<Vec<u8>, HostError> {
        self.inner.read_bytes(path)
    }
    fn read_head(&mut self, path: &Path, n: usize) -> Result<Vec<u8>, HostError> {
        self.inner.read_head(path, n)
    }
    fn write_file(&mut self, path: &Path, content: &[u8], mode: u32) -> Result<(), HostError> {
        self.write(&format!("{} write {} ({} bytes, mode {mode:o})\n", keel_installer::exec::journal::now(), path.display(), content.len()));
        self.inner.write_file(path, content, mode)
    }
    fn append_file(&mut self, path: &Path, content: &[u8]) -> Result<(), HostError> {
        self.inner.append_file(path, content)
    }
    fn exists(&mut self, path: &Path) -> bool {
        self.inner.exists(path)
    }
    fn resolve(&mut self, path: &Path) -> Result<PathBuf, HostError> {
        self.inner.resolve(path)
    }
    fn has_program(&mut self, name: &str) -> bool {
        self.inner.has_program(name)
    }
    fn is_root(&mut self) -> bool {
        self.inner.is_root()
    }
    fn sleep(&mut self, d: Duration) {
        self.inner.sleep(d)
    }
}
