//! For the crash tests: a log of every step execution (run, unit, process),
//! appended to a file shared by the parent and its child processes, the
//! seeded mixer that picks kill moments, and the kill itself.

use std::io::Write;
use std::path::PathBuf;

use prompt_chain::StepCx;

/// Where a step records that it ran, and which process it ran in.
#[derive(Debug, Clone)]
pub(crate) struct CallLog {
    pub(crate) path: PathBuf,
    pub(crate) process: u32,
}

impl CallLog {
    /// Appends `run unit process` for the step running in `cx`.
    pub(crate) fn record(&self, cx: &StepCx) -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        writeln!(file, "{} {} {}", cx.run_id(), unit(cx), self.process)
    }
}

/// A step's unit: its key, or `key#i` for element `i` of a map step.
pub(crate) fn unit(cx: &StepCx) -> String {
    match cx.item() {
        Some(item) => format!("{}#{item}", cx.key()),
        None => cx.key().to_owned(),
    }
}

/// splitmix64: the next number of a seeded sequence.
pub(crate) fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Waits for `child` to exit until `after` has passed, then kills it with
/// SIGKILL: its exit status if it exited by itself, `None` if it was killed.
pub(crate) fn exit_or_kill(
    child: &mut std::process::Child,
    after: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + after;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return Some(status);
        }
        if std::time::Instant::now() >= deadline {
            child.kill().expect("SIGKILL");
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
