//! [`AttemptLog`]: a step's attempts, the first kept inline.

use std::fmt;

use serde::Serialize;

use super::AttemptRecord;

/// The attempts of a step, in order. The first is kept inline, so a step
/// that succeeds on its first attempt allocates nothing for its log.
#[derive(Clone, Default, PartialEq)]
pub struct AttemptLog {
    first: Option<AttemptRecord>,
    rest: Vec<AttemptRecord>,
}

impl AttemptLog {
    /// Appends an attempt.
    pub fn push(&mut self, attempt: AttemptRecord) {
        if self.first.is_none() {
            self.first = Some(attempt);
        } else {
            self.rest.push(attempt);
        }
    }

    /// How many attempts were logged.
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    /// Whether no attempt was logged.
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// The attempt at `index` (0 is the first), if logged.
    pub fn get(&self, index: usize) -> Option<&AttemptRecord> {
        match index {
            0 => self.first.as_ref(),
            n => self.rest.get(n - 1),
        }
    }

    /// The attempts, in order.
    pub fn iter(&self) -> impl Iterator<Item = &AttemptRecord> + '_ {
        self.first.iter().chain(&self.rest)
    }

    /// The last attempt, if any.
    pub fn last(&self) -> Option<&AttemptRecord> {
        self.rest.last().or(self.first.as_ref())
    }
}

impl std::ops::Index<usize> for AttemptLog {
    type Output = AttemptRecord;

    /// The attempt at `index`; panics past the end, like a slice.
    fn index(&self, index: usize) -> &AttemptRecord {
        match self.get(index) {
            Some(attempt) => attempt,
            None => panic!("attempt {index} of {} is not in the log", self.len()),
        }
    }
}

impl<'a> IntoIterator for &'a AttemptLog {
    type Item = &'a AttemptRecord;
    type IntoIter =
        std::iter::Chain<std::option::Iter<'a, AttemptRecord>, std::slice::Iter<'a, AttemptRecord>>;

    fn into_iter(self) -> Self::IntoIter {
        self.first.iter().chain(&self.rest)
    }
}

impl fmt::Debug for AttemptLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for AttemptLog {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}
