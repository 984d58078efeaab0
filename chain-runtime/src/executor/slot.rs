//! Typed value slots: a run keeps one [`Slot`] per key, empty until its step
//! finishes, then set once. Values move between steps as typed Rust values,
//! never as JSON.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use super::keys::KeyType;
/// One key's value in a run: empty until its step finishes, then set once.
#[doc(hidden)]
#[derive(Debug)]
pub struct Slot<T> {
    cell: OnceLock<T>,
}

impl<T> Slot<crate::Loop<T>> {
    /// Checks an `until = path` condition against this loop key's element type.
    pub fn until(&self, condition: impl Fn(&T) -> bool) -> impl Fn(&T) -> bool {
        condition
    }

    /// Checks a `validate = path` hook against this loop key's element type.
    pub fn validate_each<E: std::fmt::Display>(
        &self,
        hook: impl Fn(&T) -> Result<(), E>,
    ) -> impl Fn(&T) -> Result<(), String> {
        message_of(hook)
    }
}

impl<T> Slot<Vec<T>> {
    /// Checks a map step's `validate = path` hook against one element of
    /// this key (the hook sees each item's output).
    pub fn validate_items<E: std::fmt::Display>(
        &self,
        hook: impl Fn(&T) -> Result<(), E>,
    ) -> impl Fn(&T) -> Result<(), String> {
        message_of(hook)
    }
}

impl<T> Slot<Vec<Result<T, crate::ItemError>>> {
    /// Checks a collecting map step's `validate = path` hook against one
    /// element's output.
    pub fn validate_collected<E: std::fmt::Display>(
        &self,
        hook: impl Fn(&T) -> Result<(), E>,
    ) -> impl Fn(&T) -> Result<(), String> {
        message_of(hook)
    }
}

impl<T> Slot<T> {
    /// Checks a `validate = path` hook against this key's type.
    pub fn validate<E: std::fmt::Display>(
        &self,
        hook: impl Fn(&T) -> Result<(), E>,
    ) -> impl Fn(&T) -> Result<(), String> {
        message_of(hook)
    }
}

/// A validation hook with its rejection turned into the message steps see.
fn message_of<T, E: std::fmt::Display>(
    hook: impl Fn(&T) -> Result<(), E>,
) -> impl Fn(&T) -> Result<(), String> {
    move |value| hook(value).map_err(|error| error.to_string())
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Slot<T> {
    /// An empty slot.
    pub const fn new() -> Self {
        Self {
            cell: OnceLock::new(),
        }
    }

    /// A slot that already holds `value` (a chain input, a restored output).
    pub fn filled(value: T) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(value);
        Self { cell }
    }

    /// Stores the value; a second set is ignored (a step writes its key once).
    pub fn set(&self, value: T) {
        let _ = self.cell.set(value);
    }

    /// Stores a step's output: like [`Slot::set`], with the type check spelled
    /// as a bound so a mismatch is reported in the user's terms.
    pub fn store<V: KeyType<T>>(&self, value: V) {
        self.set(value.into_key());
    }

    /// The value, if set.
    pub fn get(&self) -> Option<&T> {
        self.cell.get()
    }

    /// Waits until the slot is set.
    ///
    /// The returned future registers no waker: it is meant to be polled only by
    /// [`join_steps`](super::join::join_steps), which polls every pending step again whenever one of them
    /// finished, and a slot is only ever set by a step finishing.
    pub fn wait(&self) -> SlotWait<'_, T> {
        SlotWait { slot: self }
    }

    /// The value, consuming the slot.
    pub fn into_inner(self) -> Option<T> {
        self.cell.into_inner()
    }
}

/// Future of [`Slot::wait`].
#[doc(hidden)]
#[derive(Debug)]
pub struct SlotWait<'a, T> {
    slot: &'a Slot<T>,
}

impl<'a, T> Future for SlotWait<'a, T> {
    type Output = &'a T;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<&'a T> {
        match self.slot.cell.get() {
            Some(value) => Poll::Ready(value),
            None => Poll::Pending,
        }
    }
}
