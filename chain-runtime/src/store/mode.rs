//! [`Durability`]: how promptly a durable run's units reach the store, and
//! so what a crash can lose.

use std::time::Duration;

/// How promptly a run's unit outputs reach the checkpoint store. Set it for
/// every run with [`RuntimeBuilder::durability`](crate::RuntimeBuilder::durability),
/// or for some runs with [`Runtime::with_durability`](crate::Runtime::with_durability).
/// Without a store it changes nothing.
///
/// In every mode a resumed run restores what was recorded and runs the rest,
/// and its answer is the one an uninterrupted run would give: units are
/// written in the order their outputs became visible, so what a crash keeps
/// is always a prefix — a unit is never restored while a unit it read from
/// is run again. What the modes differ in is what a crash (the process
/// killed, the machine losing power) can lose, and so run again on resume.
///
/// | mode | a unit is written | a crash loses | cost per unit |
/// |---|---|---|---|
/// | [`Sync`](Durability::Sync) | before any step reads it | at most the units in flight | one commit, shared by the units saved at that moment (group commit) |
/// | [`Batched`](Durability::Batched) | within `max_delay` | the units of the last `max_delay` | one commit per run per `max_delay` |
/// | [`Exit`](Durability::Exit) | when the run completes, fails, suspends or is cancelled | every unit of a run that had not ended | one commit per run |
///
/// What runs again after a crash runs with the same idempotency keys
/// ([`StepCx::idempotency_key`](crate::StepCx::idempotency_key)): in the
/// deferred modes a step with side effects should pass them on. In every mode
/// a run's start and its questions to a person (human steps) are written at
/// once, and a run returns only after its end (and every unit before it) is
/// written: an [`Outcome`](crate::Outcome) in hand is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Every unit's output is durable before any other step can read it
    /// (the default). After a crash, only the units in flight run again; a
    /// tool call that returned is never made twice.
    #[default]
    Sync,
    /// Outputs are written in the background, at most `max_delay` after they
    /// were produced; steps go on without waiting for the disk. A crash loses
    /// at most the last `max_delay` of a run's units (they run again on
    /// resume). A failed write fails the run at its next unit or at its end.
    Batched {
        /// The longest an output waits before it is written.
        max_delay: Duration,
    },
    /// Outputs stay in memory until the run completes, fails, suspends or
    /// is cancelled, then are written in one go. A crash loses the whole
    /// progress of every run that had not ended (each is resumed from its
    /// recorded input); for short runs whose crash costs little to redo.
    Exit,
}

impl Durability {
    /// [`Batched`](Durability::Batched) with `max_delay`.
    pub fn batched(max_delay: Duration) -> Self {
        Durability::Batched { max_delay }
    }
}
