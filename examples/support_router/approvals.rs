//! Refund approvals: a refund above the limit (or of an unknown amount)
//! waits for a person. The run suspends in the store (`runs.db` in the data
//! directory) holding nothing in the process; `--pending` lists the waiting
//! refunds and `--approve RUN_ID` / `--reject RUN_ID` decide one, from any
//! process sharing the database file.

use prompt_chain::prelude::*;
use prompt_chain::schemars::JsonSchema;
use prompt_chain::{Outcome, RunId};
use serde::{Deserialize, Serialize};

use super::{BillingDetails, BillingIssue, Reply, TEXT_TOKENS, Ticket, support_router};

/// Refunds up to this many dollars are granted without a person.
pub(crate) const REFUND_LIMIT: f64 = 100.0;

/// Whether a billing ticket needs a person's approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Review {
    /// A refund above the limit, or of an unknown amount.
    Needed,
    /// Anything else.
    NotNeeded,
}

/// A person's decision on a refund: the answer type of the human step, so
/// `support_router::answer::decision` takes nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "prompt_chain::schemars")]
pub(crate) struct RefundDecision {
    /// Whether the refund is granted.
    pub(crate) approved: bool,
    /// Why, in a few words (passed on to the customer's answer).
    #[schemars(length(max = 200))]
    pub(crate) note: String,
}

/// The decision when nobody decided within the wait: no refund yet, and a
/// person will write.
pub(crate) fn unreviewed() -> RefundDecision {
    RefundDecision {
        approved: false,
        note: "nobody reviewed the refund in time; a person will contact the customer".into(),
    }
}

/// Does this billing ticket need a person? A refund above the limit, or of
/// an amount the ticket does not say.
#[step]
pub(crate) async fn review_refund(_cx: &StepCx, details: &BillingDetails) -> StepResult<Review> {
    let needed = details.issue == BillingIssue::Refund
        && details.amount.is_none_or(|amount| amount > REFUND_LIMIT);
    Ok(if needed {
        Review::Needed
    } else {
        Review::NotNeeded
    })
}

/// The answer to a refund a person decided on.
#[step]
pub(crate) async fn answer_refund(
    cx: &StepCx,
    ticket: &Ticket,
    details: &BillingDetails,
    decision: &RefundDecision,
) -> StepResult<Reply> {
    let verdict = if decision.approved {
        "The refund was approved"
    } else {
        "The refund was not approved"
    };
    let text = cx
        .llm()
        .max_tokens(TEXT_TOKENS)
        .text(format!(
            "Answer this billing ticket about a refund. {verdict}; the reviewer's note: {}.\n\n\
             Details: {}\n\n{}",
            decision.note,
            serde_json::to_string(details)?,
            ticket.prompt()
        ))
        .await?;
    Ok(Reply {
        handled_by: format!(
            "billing › refund ({})",
            if decision.approved {
                "approved"
            } else {
                "refused"
            }
        ),
        text,
        article: None,
        escalation: None,
    })
}

/// `--pending`: every refund waiting for a decision, from the store.
pub(crate) async fn print_pending(rt: &Runtime) -> Result<(), Box<dyn std::error::Error>> {
    let waiting = rt.waiting().await?;
    if waiting.is_empty() {
        println!("No refund waits for a decision.");
    }
    for question in waiting {
        let ticket = &question.payload["ticket"];
        let amount = question.payload["details"]["amount"]
            .as_f64()
            .map_or_else(|| "an unknown amount".to_owned(), |a| format!("${a:.2}"));
        println!(
            "{}  {} ({}): {} — {}",
            question.run_id,
            ticket["id"].as_str().unwrap_or("?"),
            ticket["customer"].as_str().unwrap_or("?"),
            question.prompt,
            amount
        );
    }
    Ok(())
}

/// `--approve RUN_ID` / `--reject RUN_ID`: records the decision and lets the
/// run finish; returns its outcome.
pub(crate) async fn decide(
    rt: &Runtime,
    run: &str,
    approved: bool,
    note: Option<String>,
) -> Result<Outcome<support_router::Output>, Box<dyn std::error::Error>> {
    let run_id = RunId::named(run)?;
    let decision = RefundDecision {
        approved,
        note: note.unwrap_or_else(|| {
            if approved {
                "approved by the billing lead".into()
            } else {
                "refused by the billing lead".into()
            }
        }),
    };
    let author = std::env::var("USER").unwrap_or_else(|_| "support_router".into());
    let answer = prompt_chain::human::Answer::new(decision).by(author);
    Ok(support_router::answer::decision(rt, run_id, answer).await?)
}
