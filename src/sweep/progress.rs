//! Progress of a sweep on stderr: a bar on a terminal, plain lines otherwise.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Reports runs as they start and end.
pub struct Progress {
    bar: Option<ProgressBar>,
    done: usize,
    total: usize,
}

impl Progress {
    /// Progress over `total` runs, `done` of which are already recorded.
    pub fn new(total: usize, done: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} runs | {elapsed_precise} elapsed | eta {eta} | {wide_msg}")
                    .expect("constant template"),
            );
            bar.set_position(done as u64);
            bar
        });
        Progress { bar, done, total }
    }

    /// A run begins.
    pub fn start(&self, id: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(id.to_string()),
            None => eprintln!("[{}/{}] {id} ...", self.done + 1, self.total),
        }
    }

    /// A run ended; `outcome` is a short description ("ok, decode 31.2 tok/s", "failed: …").
    pub fn finish(&mut self, id: &str, outcome: &str) {
        self.done += 1;
        match &self.bar {
            Some(bar) => {
                bar.println(format!("{id}: {outcome}"));
                bar.inc(1);
            }
            None => eprintln!("[{}/{}] {id}: {outcome}", self.done, self.total),
        }
    }

    /// Clears the bar.
    pub fn close(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
