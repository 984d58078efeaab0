//! The `desk` chain the observability tests run: a classification, a route
//! with two arms, a retried step after it; and its scripted model.

use std::time::Duration;

use prompt_chain::llm::ScriptedReply;
use prompt_chain::prelude::*;
use serde::{Deserialize, Serialize};

const MS: Duration = Duration::from_millis(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Question,
    Complaint,
}

#[step]
pub(crate) async fn classify(cx: &StepCx, text: &str) -> StepResult<Kind> {
    Ok(cx.llm().json(format!("classify: {text}")).await?)
}

#[step]
pub(crate) async fn answer(cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("answer: {text}")).await?)
}

#[step]
pub(crate) async fn apologize(cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("apologize: {text}")).await?)
}

#[step]
pub(crate) async fn publish(cx: &StepCx, reply: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("publish: {reply}")).await?)
}

#[chain]
pub(crate) async fn desk(text: String) -> String {
    step!(kind = classify(text));
    route!(kind {
        Kind::Question => step!(reply = answer(text)),
        Kind::Complaint => step!(reply = apologize(text)),
    });
    step!(published = publish(reply), retry = 1);
    published
}

pub(crate) fn model(publish: ScriptedReply) -> ScriptedModel {
    ScriptedModel::new()
        .on_step(
            "classify",
            ScriptedReply::text("\"complaint\"").after(MS * 100),
        )
        .on_step("apologize", ScriptedReply::text("sorry").after(MS * 200))
        .on_step("publish", publish)
}
