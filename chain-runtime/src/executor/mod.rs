//! The executor behind `#[chain]`: the generated code keeps one typed
//! [`Slot`] per key and polls every step in one dataflow [`join_steps`];
//! each step runs through [`RunCx`], which applies the runtime's policies.
//!
//! One concern per file: the run's lifecycle (`run`), a step to its output
//! (`step`), one attempt and the loop of attempts (`attempt`), the pure
//! retry / re-ask / fallback decisions (`policy`), restore and save
//! (`durability`), the step cache (`cache`), loops (`looping`), map steps
//! (`map`), human steps and suspension (`suspend`), routes (`route`), slots, keys and the join, and a failed run's
//! context.

mod attempt;
mod cache;
mod durability;
mod error_context;
mod join;
mod keys;
mod lease;
mod looping;
mod map;
mod policy;
mod route;
mod run;
mod slot;
mod step;
mod stub;
mod suspend;

pub(crate) use durability::load_input;
pub use error_context::{ContextValue, with_completed};
pub use join::{Branch, RunDeadline, join_steps, join_steps_within};
pub use keys::{FromElement, FromKey, KeyType, MapSource};
pub use run::{RunCx, RunOptions};
pub use slot::Slot;
