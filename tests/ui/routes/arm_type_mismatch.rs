use prompt_chain::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum Category {
    Technical,
    Billing,
    General,
}

#[step]
async fn classify(_cx: &StepCx, ticket: &str) -> StepResult<Category> {
    let _ = ticket;
    Ok(Category::General)
}

#[step]
async fn technical_support(_cx: &StepCx, ticket: &str) -> StepResult<String> {
    Ok(ticket.to_owned())
}

#[step]
async fn handle_billing(_cx: &StepCx, ticket: &str) -> StepResult<String> {
    Ok(ticket.to_owned())
}

#[step]
async fn general_inquiry(_cx: &StepCx, ticket: &str) -> StepResult<String> {
    Ok(ticket.to_owned())
}

#[step]
async fn count_words(_cx: &StepCx, ticket: &str) -> StepResult<usize> {
    Ok(ticket.split_whitespace().count())
}

#[chain]
async fn support_router(ticket: String) -> String {
    step!(category = classify(ticket));
    route!(category {
        Category::Technical => step!(reply = technical_support(ticket)),
        Category::Billing => step!(reply = count_words(ticket)),
        Category::General => step!(reply = general_inquiry(ticket)),
    });
    reply
}

fn main() {}
