//! Run identifiers, and small helpers for ids, hashes and clocks.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest run id, in bytes.
const MAX_LEN: usize = 64;

/// The id of one run of a chain: a generated one (`run-` and 16 hex digits,
/// unique within a process and unlikely to repeat across processes), or a
/// name the caller gives (`RunId::named("T-1001")`) so that starting the same
/// work twice attaches to the first run instead of running it again.
///
/// A name is 1 to 64 ASCII characters: letters, digits, `-`, `_`, `.` and
/// `:`, starting with a letter or a digit. It is `Copy` (the characters are
/// kept inline), so ids move around as cheaply as numbers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId {
    len: u8,
    bytes: [u8; MAX_LEN],
}

/// Why a string is not a run id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidRunId {
    /// The name is empty.
    #[error("a run id cannot be empty")]
    Empty,
    /// The name is longer than 64 bytes.
    #[error("the run id `{0}…` is longer than 64 characters")]
    TooLong(String),
    /// The name holds a character outside the alphabet.
    #[error(
        "the run id `{name}` holds {character:?}; use letters, digits, `-`, `_`, `.` and `:`, starting with a letter or a digit"
    )]
    Character {
        /// The name.
        name: String,
        /// The first character not allowed.
        character: char,
    },
}

impl RunId {
    /// A fresh generated id (`run-` and 16 hex digits).
    pub fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let seed = *SEED.get_or_init(|| {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            nanos ^ (u64::from(std::process::id()) << 32)
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self::from_u64(splitmix64(
            seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        ))
    }

    /// A run id the caller chooses, such as the id of the ticket the run
    /// handles. See the type's documentation for the alphabet.
    pub fn named(name: &str) -> Result<Self, InvalidRunId> {
        let Some(first) = name.chars().next() else {
            return Err(InvalidRunId::Empty);
        };
        if name.len() > MAX_LEN {
            let cut: String = name.chars().take(MAX_LEN).collect();
            return Err(InvalidRunId::TooLong(cut));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
        if let Some(character) = name
            .chars()
            .find(|&c| !allowed(c))
            .or_else(|| (!first.is_ascii_alphanumeric()).then_some(first))
        {
            return Err(InvalidRunId::Character {
                name: name.to_owned(),
                character,
            });
        }
        let mut bytes = [0u8; MAX_LEN];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Ok(Self {
            len: name.len() as u8,
            bytes,
        })
    }

    /// The generated-style id a number names: `run-` and its 16 hex digits.
    pub fn from_u64(value: u64) -> Self {
        let mut bytes = [0u8; MAX_LEN];
        bytes[..4].copy_from_slice(b"run-");
        let digits = b"0123456789abcdef";
        for (i, byte) in bytes[4..20].iter_mut().enumerate() {
            *byte = digits[((value >> (60 - 4 * i)) & 0xf) as usize];
        }
        Self { len: 20, bytes }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored, so this never fails.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }

    /// A 64-bit hash of the id (seeds, derived ids).
    pub(crate) fn hash64(&self) -> u64 {
        fnv1a(self.as_str().as_bytes(), 0)
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl FromStr for RunId {
    type Err = InvalidRunId;

    fn from_str(name: &str) -> Result<Self, InvalidRunId> {
        Self::named(name)
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunId({:?})", self.as_str())
    }
}

impl Serialize for RunId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RunId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::named(&text).map_err(serde::de::Error::custom)
    }
}

/// A well-mixed 64-bit hash step (used for ids and retry jitter).
pub(crate) fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// FNV-1a, 64 bits: checksums of stored records and hashes of step inputs.
pub(crate) fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut hash = seed ^ 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// `text` cut to at most `max` characters, with `…` when cut.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{InvalidRunId, RunId};

    #[test]
    fn generated_ids_read_as_before_and_round_trip() {
        let id = RunId::from_u64(0x00ab_cdef_0123_4567);
        assert_eq!(id.to_string(), "run-00abcdef01234567");
        assert_eq!(RunId::named(id.as_str()), Ok(id));
        let fresh = RunId::new();
        assert_ne!(fresh, RunId::new());
        assert_eq!(fresh.as_str().len(), 20);
        let json = serde_json::to_string(&fresh).expect("serializes");
        assert_eq!(serde_json::from_str::<RunId>(&json).expect("parses"), fresh);
    }

    #[test]
    fn names_follow_the_documented_alphabet() {
        assert_eq!(
            RunId::named("T-1001").map(|id| id.to_string()),
            Ok("T-1001".to_owned())
        );
        assert!(RunId::named("order:42.retry_1").is_ok());
        assert_eq!(RunId::named(""), Err(InvalidRunId::Empty));
        assert!(matches!(
            RunId::named(&"x".repeat(65)),
            Err(InvalidRunId::TooLong(_))
        ));
        assert!(RunId::named(&"x".repeat(64)).is_ok());
        for bad in ["a/b", "a b", "-lead", "é", "a\nb"] {
            assert!(
                matches!(RunId::named(bad), Err(InvalidRunId::Character { .. })),
                "{bad:?}"
            );
        }
        assert!(serde_json::from_str::<RunId>("\"a b\"").is_err());
    }
}
