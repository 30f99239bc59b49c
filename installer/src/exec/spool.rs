//! The phone-home outbox: progress events are written to a spool on disk before anything is
//! sent, numbered by the spool itself (so a journal started over with `--restart` cannot reuse a
//! number the registry already holds), and delivered in order. A registry that is down costs
//! nothing but a later delivery: the install never waits on it, and what was not delivered
//! stays in the spool for the next attempt (or the next run of keel).
//!
//! Files in the spool folder: `events.jsonl` (one JSON object per line, each with its `seq`),
//! `delivered` (the highest seq the registry acknowledged; replaced atomically).

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("phone-home spool {path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("phone-home spool {path} line {line} is damaged: {why}")]
    Damaged { path: String, line: usize, why: String },
}

/// Sends a batch of events (in order) to the registry; `Err` says why it could not.
pub trait Deliver {
    fn deliver(&mut self, events: &[Value]) -> Result<(), String>;
}

pub struct Spool {
    dir: PathBuf,
    last_seq: u64,
    delivered: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |err| SpoolError::Io { path: path.display().to_string(), err }
}

impl Spool {
    /// Opens the spool in `dir`, creating it. A last line cut short by a crash (no newline) is
    /// dropped: it was never acknowledged to anyone.
    pub fn open(dir: &Path) -> Result<Spool, SpoolError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let events = dir.join("events.jsonl");
        let mut last_seq = 0;
        if events.exists() {
            let text = fs::read_to_string(&events).map_err(io(&events))?;
            let complete = match text.rfind('\n') {
                Some(i) => &text[..=i],
                None => "",
            };
            if complete.len() != text.len() {
                fs::write(&events, complete).map_err(io(&events))?;
            }
            for (i, line) in complete.lines().enumerate() {
                let v: Value = serde_json::from_str(line).map_err(|e| SpoolError::Damaged { path: events.display().to_string(), line: i + 1, why: e.to_string() })?;
                let seq = v["seq"].as_u64().ok_or_else(|| SpoolError::Damaged { path: events.display().to_string(), line: i + 1, why: "no seq".into() })?;
                if seq != last_seq + 1 {
                    return Err(SpoolError::Damaged { path: events.display().to_string(), line: i + 1, why: format!("seq {seq} follows {last_seq}") });
                }
                last_seq = seq;
            }
        }
        let cursor = dir.join("delivered");
        let delivered = match fs::read_to_string(&cursor) {
            Ok(t) => t.trim().parse().map_err(|_| SpoolError::Damaged { path: cursor.display().to_string(), line: 1, why: format!("{t:?} is not a number") })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io(&cursor)(e)),
        };
        Ok(Spool { dir: dir.to_path_buf(), last_seq, delivered: std::cmp::min(delivered, last_seq) })
    }

    /// Appends an event (a JSON object) under the next sequence number, synced to disk.
    pub fn push(&mut self, mut event: Value) -> Result<u64, SpoolError> {
        let seq = self.last_seq + 1;
        if let Some(o) = event.as_object_mut() {
            // a journal entry's own number is kept beside the spool's
            if let Some(j) = o.remove("seq") {
                o.entry("journal_seq").or_insert(j);
            }
            o.insert("seq".into(), Value::from(seq));
        }
        let path = self.dir.join("events.jsonl");
        let mut f = OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
        f.write_all(format!("{event}\n").as_bytes()).map_err(io(&path))?;
        f.sync_data().map_err(io(&path))?;
        self.last_seq = seq;
        Ok(seq)
    }

    /// How many events wait for delivery.
    pub fn backlog(&self) -> u64 {
        self.last_seq - self.delivered
    }

    /// Up to `max` undelivered events, oldest first.
    pub fn pending(&self, max: usize) -> Result<Vec<Value>, SpoolError> {
        if self.backlog() == 0 {
            return Ok(Vec::new());
        }
        let path = self.dir.join("events.jsonl");
        let f = File::open(&path).map_err(io(&path))?;
        let mut out = Vec::new();
        for line in BufReader::new(f).lines() {
            let line = line.map_err(io(&path))?;
            let v: Value = serde_json::from_str(&line).map_err(|e| SpoolError::Damaged { path: path.display().to_string(), line: 0, why: e.to_string() })?;
            if v["seq"].as_u64().is_some_and(|s| s > self.delivered) {
                out.push(v);
                if out.len() == max {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn set_delivered(&mut self, seq: u64) -> Result<(), SpoolError> {
        let cursor = self.dir.join("delivered");
        let tmp = self.dir.join("delivered.tmp");
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(format!("{seq}\n").as_bytes()).map_err(io(&tmp))?;
        f.sync_data().map_err(io(&tmp))?;
        fs::rename(&tmp, &cursor).map_err(io(&cursor))?;
        self.delivered = seq;
        Ok(())
    }

    /// Delivers what is pending, in order, `batch` events per call, until the spool is empty
    /// or a delivery fails. Returns how many were delivered, and the failure if one stopped it.
    pub fn flush(&mut self, to: &mut dyn Deliver, batch: usize) -> Result<(u64, Option<String>), SpoolError> {
        let mut sent = 0;
        loop {
            let events = self.pending(batch.max(1))?;
            let Some(last) = events.last().and_then(|e| e["seq"].as_u64()) else { return Ok((sent, None)) };
            if let Err(why) = to.deliver(&events) {
                return Ok((sent, Some(why)));
            }
            sent += events.len() as u64;
            self.set_delivered(last)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A registry that is down until told otherwise, and sometimes acknowledges nothing.
    #[derive(Default)]
    struct Registry {
        up: bool,
        received: Vec<u64>,
        /// Stores the batch but the answer is lost (the agent will send it again).
        lose_answers: usize,
    }

    impl Deliver for Registry {
        fn deliver(&mut self, events: &[Value]) -> Result<(), String> {
            if !self.up {
                return Err("connection refused".into());
            }
            for e in events {
                let seq = e["seq"].as_u64().unwrap();
                if !self.received.contains(&seq) {
                    self.received.push(seq);
                }
            }
            if self.lose_answers > 0 {
                self.lose_answers -= 1;
                return Err("timed out waiting for the answer".into());
            }
            Ok(())
        }
    }

    #[test]
    fn registry_down_then_up_gets_every_event_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        let mut reg = Registry::default();
        for i in 0..25 {
            spool.push(json!({ "event": "start", "step": format!("s{i}") })).unwrap();
            let (sent, why) = spool.flush(&mut reg, 10).unwrap();
            assert_eq!((sent, why.as_deref()), (0, Some("connection refused")));
        }
        assert_eq!(spool.backlog(), 25);
        // keel itself restarts: the spool is read back from disk
        drop(spool);
        let mut spool = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.backlog(), 25);
        reg.up = true;
        reg.lose_answers = 1;
        let (sent, why) = spool.flush(&mut reg, 10).unwrap();
        assert_eq!((sent, why.is_some()), (0, true), "the first answer was lost");
        assert_eq!(spool.flush(&mut reg, 10).unwrap(), (25, None));
        assert_eq!(reg.received, (1..=25).collect::<Vec<_>>(), "each once, in order");
        assert_eq!(spool.backlog(), 0);
        spool.push(json!({ "event": "finished" })).unwrap();
        assert_eq!(spool.flush(&mut reg, 10).unwrap(), (1, None));
        assert_eq!(reg.received.last(), Some(&26));
        assert_eq!(Spool::open(dir.path()).unwrap().backlog(), 0, "the cursor survives");
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        spool.push(json!({ "event": "start" })).unwrap();
        drop(spool);
        let events = dir.path().join("events.jsonl");
        let mut f = OpenOptions::new().append(true).open(&events).unwrap();
        f.write_all(b"{\"event\":\"do").unwrap();
        drop(f);
        let mut spool = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.backlog(), 1);
        assert_eq!(spool.push(json!({ "event": "done" })).unwrap(), 2);
        fs::write(&events, "{\"seq\":1}\n{\"seq\":3}\n").unwrap();
        let err = Spool::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("line 2") && err.contains("seq 3 follows 1"), "{err}");
    }
}
