//! Bounded loops: a step repeated until a condition holds or a bound is hit.

use serde::{Deserialize, Serialize};

/// The output of a loop step (`step!(key = f(state, ...), until = done, max = N)`):
/// the last iteration's value, how many iterations ran, and why it stopped.
///
/// Hitting the bound is an ordinary outcome, not an error: check
/// [`Loop::converged`] (or route on [`Loop::stop`]) to treat it differently.
/// A step parameter `&T` (or `T`) can take a `Loop<T>` key directly: it gets
/// the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loop<T> {
    /// The value of the last iteration.
    pub value: T,
    /// How many iterations ran (at least 1).
    pub iterations: u32,
    /// Why the loop stopped.
    pub stop: LoopStop,
}

/// Why one element of a map step that collects its failures
/// (`on_error = collect`) has no output: its key holds
/// `Vec<Result<U, ItemError>>`, one entry per element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("item {item} failed on attempt {attempts}: {message}")]
pub struct ItemError {
    /// The element's position, from 0.
    pub item: usize,
    /// The attempts it used.
    pub attempts: u32,
    /// Why it failed (the step's error, as text).
    pub message: String,
    /// Whether a retry could have helped.
    pub retryable: bool,
}

/// Why a loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoopStop {
    /// The `until` condition held.
    Converged,
    /// `max` iterations ran without the condition holding.
    MaxIterations,
}

impl<T> Loop<T> {
    /// Whether the `until` condition held (rather than the bound being hit).
    pub fn converged(&self) -> bool {
        self.stop == LoopStop::Converged
    }

    /// The last iteration's value.
    pub fn into_value(self) -> T {
        self.value
    }
}
