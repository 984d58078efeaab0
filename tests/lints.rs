//! The code the macros generate, compiled under strict lints: a user with
//! `clippy::pedantic` or `unused_qualifications` denied must not be punished
//! for using `#[step]` and `#[chain]`. (`cargo clippy --all-targets` checks it.)

#![deny(
    clippy::pedantic,
    unused_qualifications,
    unused_results,
    missing_debug_implementations,
    trivial_casts,
    unreachable_pub,
    rust_2018_idioms,
    warnings
)]

use prompt_chain::prelude::*;
use serde::{Deserialize, Serialize};

/// A document's parts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Parts {
    /// Its words.
    pub words: Vec<String>,
}

/// Splits text into words.
///
/// # Errors
///
/// Never; the signature is what steps look like.
#[step]
pub async fn split(_cx: &StepCx, text: &str) -> StepResult<Parts> {
    Ok(Parts {
        words: text.split_whitespace().map(str::to_owned).collect(),
    })
}

/// Counts words.
///
/// # Errors
///
/// Never; the signature is what steps look like.
#[step]
pub async fn count(_cx: &StepCx, parts: &Parts) -> StepResult<usize> {
    Ok(parts.words.len())
}

/// Joins words back.
///
/// # Errors
///
/// Never; the signature is what steps look like.
#[step]
pub async fn rejoin(_cx: &StepCx, parts: Parts, n: usize) -> StepResult<String> {
    Ok(format!("{} ({n})", parts.words.join(" ")))
}

fn non_empty(parts: &Parts) -> Result<(), String> {
    if parts.words.is_empty() {
        Err("no words".to_owned())
    } else {
        Ok(())
    }
}

/// A small chain with every option.
///
/// # Errors
///
/// When a step fails.
#[chain]
pub async fn words(text: String) -> String {
    step!(
        parts = split(text),
        validate = non_empty,
        retry = 1,
        timeout = 1s
    );
    step!(n = count(parts));
    step!(joined = rejoin(parts, n));
    joined
}

#[tokio::test]
async fn strict_lints_accept_the_expansion() {
    let out = words::run(
        &Runtime::default(),
        words::Input {
            text: "a b  c".into(),
        },
    )
    .await;
    assert_eq!(out.ok().as_deref(), Some("a b c (3)"));
}
