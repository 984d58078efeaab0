//! Escalated tickets, persisted as JSON lines so they survive the process.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One escalation: a ticket handed to the second-level team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Escalation {
    pub(crate) id: String,
    pub(crate) ticket: String,
    pub(crate) customer: String,
    pub(crate) subject: String,
    pub(crate) product: String,
    pub(crate) error_code: Option<String>,
    pub(crate) summary: String,
    /// Seconds since the Unix epoch.
    pub(crate) created_at: u64,
}

/// The file `escalations.jsonl` in a data directory; appends are serialized
/// and synced before the id is handed out.
#[derive(Debug)]
pub(crate) struct EscalationStore {
    path: PathBuf,
    lock: Mutex<()>,
}

/// What an escalation is made from.
pub(crate) struct NewEscalation<'a> {
    pub(crate) ticket: &'a str,
    pub(crate) customer: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) product: &'a str,
    pub(crate) error_code: Option<&'a str>,
    pub(crate) summary: &'a str,
}

impl EscalationStore {
    /// Opens (creating if needed) the store in `dir`.
    pub(crate) fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(Self {
            path: dir.join("escalations.jsonl"),
            lock: Mutex::new(()),
        })
    }

    /// Where the records are.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a record and returns it with its new id.
    pub(crate) fn create(&self, new: NewEscalation<'_>) -> io::Result<Escalation> {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let number = self.all()?.len() + 1;
        let escalation = Escalation {
            id: format!("ESC-{number:04}"),
            ticket: new.ticket.to_owned(),
            customer: new.customer.to_owned(),
            subject: new.subject.to_owned(),
            product: new.product.to_owned(),
            error_code: new.error_code.map(str::to_owned),
            summary: new.summary.to_owned(),
            created_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        let mut line = serde_json::to_string(&escalation)?;
        line.push('\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(line.as_bytes())?;
        file.sync_data()?;
        Ok(escalation)
    }

    /// Every record, oldest first; a torn last line (a crash mid-write) is skipped.
    pub(crate) fn all(&self) -> io::Result<Vec<Escalation>> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        let mut records = Vec::new();
        for line in BufReader::new(file).lines() {
            if let Ok(record) = serde_json::from_str(&line?) {
                records.push(record);
            }
        }
        Ok(records)
    }
}
