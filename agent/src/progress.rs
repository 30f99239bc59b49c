//! What an install shows while it runs: on a terminal an overall bar (steps done, elapsed time,
//! what runs now) above the finished steps; otherwise plain lines; or one JSON event per line.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use keel_installer::exec::journal::{Entry, Record};

use crate::cli::ProgressFormat;

pub struct Progress {
    json: bool,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new(format: ProgressFormat) -> Progress {
        let json = format == ProgressFormat::Json;
        let bar = (!json && std::io::stdout().is_terminal()).then(|| {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {wide_msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress { json, bar }
    }

    pub fn event(&mut self, e: &Entry) {
        if self.json {
            println!("{}", serde_json::to_string(e).expect("entries serialize"));
            return;
        }
        let line = e.record.describe();
        match &self.bar {
            None => println!("{line}"),
            Some(bar) => {
                match &e.record {
                    Record::Start { step, n, total, .. } => {
                        bar.set_length(*total as u64);
                        bar.set_position(*n as u64 - 1);
                        bar.set_message(step.clone());
                    }
                    Record::Command { step, command } => bar.set_message(format!("{step}: {command}")),
                    Record::Done { .. } | Record::Skipped { .. } | Record::Verified { .. } => bar.inc(1),
                    Record::Finished { .. } | Record::Paused { .. } | Record::Failed { .. } => bar.finish_and_clear(),
                    _ => {}
                }
                bar.println(line);
            }
        }
    }
}
