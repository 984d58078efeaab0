// Every form a map step accepts: over `Vec<T>` with the element by reference
// or by value, with shared inputs in any position, every per-element option,
// a mapped sub-chain, a map feeding later steps, collected outcomes, and a
// map inside a route arm.
#![deny(warnings)]
use prompt_chain::prelude::*;
use prompt_chain::ItemError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Doc {
    title: String,
    words: usize,
}

#[step]
async fn docs(_cx: &StepCx, text: &str) -> StepResult<Vec<Doc>> {
    Ok(text
        .split(';')
        .map(|t| Doc { title: t.to_owned(), words: t.len() })
        .collect())
}

// The element by reference, a shared input after it.
#[step]
async fn size(cx: &StepCx, doc: &Doc, scale: &usize) -> StepResult<usize> {
    assert!(cx.item().is_some());
    Ok(doc.words * scale)
}

// The element by value, a shared input before it.
#[step]
async fn title(_cx: &StepCx, prefix: &str, doc: Doc) -> StepResult<String> {
    Ok(format!("{prefix}{}", doc.title))
}

fn zero() -> usize {
    0
}

fn positive(n: &usize) -> Result<(), String> {
    if *n > 0 { Ok(()) } else { Err("empty".into()) }
}

// A map's key feeds later steps as a slice or a `Vec`.
#[step]
async fn total(_cx: &StepCx, sizes: &[usize]) -> StepResult<usize> {
    Ok(sizes.iter().sum())
}

#[step]
async fn joined(_cx: &StepCx, titles: Vec<String>) -> StepResult<String> {
    Ok(titles.join(","))
}

// Collected outcomes are typed.
#[step]
async fn failures(_cx: &StepCx, outcomes: &[Result<usize, ItemError>]) -> StepResult<usize> {
    Ok(outcomes.iter().filter(|o| o.is_err()).count())
}

// A sub-chain, mapped: one run per element.
#[chain]
async fn shout(doc: Doc) -> String {
    step!(loud = loud(doc));
    loud
}

#[step]
async fn loud(_cx: &StepCx, doc: &Doc) -> StepResult<String> {
    Ok(doc.title.to_uppercase())
}

#[step]
async fn many(_cx: &StepCx, docs: &[Doc]) -> StepResult<bool> {
    Ok(docs.len() > 1)
}

#[step]
async fn tally(
    _cx: &StepCx,
    sum: &usize,
    names: &str,
    bad: &usize,
    guarded: &[usize],
    loud_titles: &[String],
    per_arm: &[String],
) -> StepResult<String> {
    Ok(format!(
        "{sum} {names} {bad} {guarded:?} {} {}",
        loud_titles.join(","),
        per_arm.join(",")
    ))
}

#[chain]
async fn maps(text: String, scale: usize, prefix: String) -> String {
    step!(all = docs(text));
    step!(sizes = size(each all, scale), concurrency = 2, validate = positive);
    step!(
        titles = title(prefix, each all),
        retry = 1,
        reask = 1,
        timeout = 5s,
        deadline = 20s,
        max_tokens = 50,
        fallback_model = "backup",
        cache = 1h
    );
    step!(guarded = size(each all, scale), fallback = zero);
    step!(outcomes = size(each all, scale), on_error = collect);
    step!(loud_titles = shout(each all));
    step!(sum = total(sizes));
    step!(names = joined(titles));
    step!(bad = failures(outcomes));
    step!(plural = many(all));
    route!(plural {
        true => step!(per_arm = title(prefix, each all), concurrency = 1),
        false => step!(per_arm = shout(each all)),
    });
    step!(line = tally(sum, names, bad, guarded, loud_titles, per_arm));
    line
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rt = Runtime::default();
    let input = maps::Input { text: "ab;cde".into(), scale: 2, prefix: "#".into() };
    let out = maps::execute(&rt, input).await.result.unwrap();
    assert_eq!(out.sizes, vec![4, 6]);
    assert_eq!(out.sum, 10);
    assert_eq!(out.names, "#ab,#cde");
    assert_eq!(out.guarded, vec![4, 6]);
    assert_eq!(out.bad, 0);
    assert_eq!(out.loud_titles, vec!["AB".to_owned(), "CDE".to_owned()]);
    assert_eq!(out.per_arm, vec!["#ab".to_owned(), "#cde".to_owned()]);
    assert_eq!(out.line, "10 #ab,#cde 0 [4, 6] AB,CDE #ab,#cde");
}
