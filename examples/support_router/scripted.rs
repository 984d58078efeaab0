//! The offline stand-in for a real model: deterministic rules that read the
//! same prompts a real model gets (the ticket after `Ticket:`, the article
//! after `Article:`) and answer in the format the prompt asks for. With a
//! real model configured, none of this runs.

use std::time::Duration;

use prompt_chain::llm::{
    ChatRequest, Completion, FinishReason, LlmError, Role, ScriptedModel, ScriptedReply, ToolCall,
    Usage,
};
use serde_json::json;

use super::kb::tokenize;

/// The scripted model, with latencies in the range real calls take.
pub(crate) fn model() -> ScriptedModel {
    let ms = Duration::from_millis;
    ScriptedModel::new()
        .named("scripted (offline)")
        .on_step("classify", ScriptedReply::from_fn(classify).after(ms(120)))
        .on_step(
            "extract_error_details",
            ScriptedReply::from_fn(error_details).after(ms(180)),
        )
        .on_step(
            "format_solution",
            ScriptedReply::from_completion_fn(solution_turn).after(ms(260)),
        )
        .on_step(
            "extract_billing_details",
            ScriptedReply::from_fn(billing_details).after(ms(150)),
        )
        .on_step(
            "answer_billing",
            ScriptedReply::from_fn(billing_answer).after(ms(220)),
        )
        .on_step(
            "answer_refund",
            ScriptedReply::from_fn(refund_answer).after(ms(200)),
        )
        .on_step(
            "identify_topic",
            ScriptedReply::from_fn(topic).after(ms(90)),
        )
        .on_step(
            "answer_general",
            ScriptedReply::from_fn(general_answer).after(ms(200)),
        )
}

/// The text after `marker` in the prompt (the whole prompt if absent).
fn section<'a>(request: &'a ChatRequest, marker: &str) -> &'a str {
    let prompt = request.prompt();
    prompt.split_once(marker).map_or(prompt, |(_, rest)| rest)
}

fn ticket(request: &ChatRequest) -> String {
    section(request, "Ticket:\n").to_lowercase()
}

fn has_any(text: &str, words: &[&str]) -> usize {
    words.iter().filter(|word| text.contains(*word)).count()
}

const BILLING: &[&str] = &[
    "charged",
    "charge",
    "invoice",
    "refund",
    "billing",
    "payment",
    "subscription",
    "receipt",
    "annual plan",
    "yearly plan",
    "monthly plan",
    "price",
];
const TECHNICAL: &[&str] = &[
    "error",
    "crash",
    "fail",
    "stuck",
    "not working",
    "bug",
    "sync",
    "log in",
    "sign-in",
    "upload",
    "api",
    "timeout",
    "times out",
    "rejected",
    "429",
    "broken",
    "shows one hour off",
];

fn classify(request: &ChatRequest) -> String {
    let text = ticket(request);
    let billing = has_any(&text, BILLING);
    let technical = has_any(&text, TECHNICAL);
    let category = if billing > technical {
        "billing"
    } else if technical > 0 {
        "technical"
    } else {
        "general"
    };
    json!({ "category": category }).to_string()
}

/// An error code such as `E-1042`, or an HTTP status such as `429`.
fn error_code(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .find_map(|word| {
            let upper = word.to_uppercase();
            let code = upper.strip_prefix("E-")?;
            (code.len() == 4 && code.chars().all(|c| c.is_ascii_digit())).then_some(upper.clone())
        })
        .or_else(|| {
            text.split(|c: char| !c.is_ascii_digit())
                .find(|n| n.len() == 3 && (n.starts_with('4') || n.starts_with('5')))
                .map(str::to_owned)
        })
}

fn error_details(request: &ChatRequest) -> String {
    let text = ticket(request);
    let product = [
        ("api", "api"),
        ("integration", "integration"),
        ("phone", "mobile"),
        ("mobile", "mobile"),
        ("two-factor", "web"),
        ("sso", "sso"),
        ("desktop", "desktop"),
    ]
    .iter()
    .find(|(word, _)| text.contains(word))
    .map_or("web", |(_, product)| product);
    let subject = text
        .lines()
        .find_map(|line| line.strip_prefix("subject: "))
        .unwrap_or("a technical problem");
    let body = text
        .split_once("\n\n")
        .map_or(text.as_str(), |(_, body)| body);
    let mut terms: Vec<String> = tokenize(body)
        .into_iter()
        .filter(|t| t.len() > 3 || t.starts_with("e-") || t.chars().all(|c| c.is_ascii_digit()))
        .collect();
    terms.dedup();
    terms.truncate(8);
    json!({
        "product": product,
        "error_code": error_code(&text),
        "summary": subject,
        "search_terms": terms,
    })
    .to_string()
}

fn first_name(request: &ChatRequest) -> String {
    section(request, "Ticket:\n")
        .lines()
        .find_map(|line| line.strip_prefix("From: "))
        .and_then(|name| name.split_whitespace().next())
        .unwrap_or("there")
        .to_owned()
}

/// The technical answer's turns: first look the customer up (a tool call),
/// then answer with what the account said.
fn solution_turn(request: &ChatRequest, _: usize) -> Result<Completion, LlmError> {
    let account = request
        .messages
        .iter()
        .find(|message| message.role == Role::Tool)
        .and_then(|message| serde_json::from_str::<serde_json::Value>(&message.content).ok());
    let (text, tool_calls) = match account {
        None => {
            let customer = section(request, "Ticket:\n")
                .lines()
                .find_map(|line| line.strip_prefix("From: "))
                .unwrap_or_default();
            let call = ToolCall {
                id: "call_1".to_owned(),
                name: "lookup_account".to_owned(),
                arguments: json!({ "customer": customer }).to_string(),
            };
            (String::new(), vec![call])
        }
        Some(account) => {
            let mut text = solution(request);
            if let (Some(plan), Some(version)) = (
                account["plan"].as_str(),
                account["desktop_version"].as_str(),
            ) {
                text = text.replacen(
                    "thanks for the details.",
                    &format!(
                        "thanks for the details. I checked your account: you are on the {plan} plan with desktop app {version}."
                    ),
                    1,
                );
            }
            (text, Vec::new())
        }
    };
    let input_tokens = request
        .messages
        .iter()
        .map(|m| m.content.len() as u64 / 4)
        .sum();
    let output_tokens = (text.len() as u64 / 4).max(8);
    Ok(Completion {
        finish_reason: if tool_calls.is_empty() {
            FinishReason::Stop
        } else {
            FinishReason::ToolCalls
        },
        tool_calls,
        text,
        usage: Usage::new(input_tokens, output_tokens),
    })
}

fn solution(request: &ChatRequest) -> String {
    let article = section(request, "Article: ");
    let title = article.lines().next().unwrap_or("our help center");
    let steps: Vec<&str> = article
        .lines()
        .skip_while(|line| !line.starts_with("Steps:"))
        .skip(1)
        .take_while(|line| !line.is_empty())
        .collect();
    format!(
        "Hi {},\n\nthanks for the details. This is a known issue, covered in our article \"{title}\". Here is how to fix it:\n{}\n\nIf it keeps happening after these steps, reply to this message and we will dig in with you.\n— Nimbus Support",
        first_name(request),
        steps.join("\n")
    )
}

fn billing_details(request: &ChatRequest) -> String {
    let text = ticket(request);
    let issue = if text.contains("twice") || text.contains("duplicate") {
        "double_charge"
    } else if text.contains("refund") {
        "refund"
    } else if text.contains("switch") || text.contains("yearly") || text.contains("annual") {
        "plan_change"
    } else {
        "other"
    };
    let invoice = text
        .split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .find(|word| word.starts_with("inv-"))
        .map(str::to_uppercase);
    let amount = text
        .split_once('$')
        .and_then(|(_, rest)| {
            rest.split(|c: char| !(c.is_ascii_digit() || c == '.'))
                .next()
        })
        .and_then(|n| n.trim_end_matches('.').parse::<f64>().ok());
    json!({ "issue": issue, "invoice": invoice, "amount": amount }).to_string()
}

fn billing_answer(request: &ChatRequest) -> String {
    let details = section(request, "Details: ");
    let name = first_name(request);
    let body = if details.contains("double_charge") {
        let invoice = details
            .split('"')
            .find(|part| part.starts_with("INV-"))
            .unwrap_or("your invoice");
        format!(
            "we are sorry about the duplicate charge on {invoice}. We have reversed the second payment; the refund reaches your card within 5 business days."
        )
    } else if details.contains("\"refund\"") {
        "plans bought in the last 30 days are refundable in full. We have cancelled the annual plan and refunded it; you can pick the monthly plan under Billing → Plan.".to_owned()
    } else if details.contains("plan_change") {
        "you can switch to yearly billing under Billing → Plan → Change billing period. The remaining days of this month are credited to the first yearly invoice.".to_owned()
    } else {
        "our billing team will look at your account and answer within one business day.".to_owned()
    };
    format!("Hi {name},\n\n{body}\n— Nimbus Billing")
}

fn topic(request: &ChatRequest) -> String {
    let text = ticket(request);
    let topic = if has_any(
        &text,
        &[
            "discount",
            "non-profit",
            "nonprofit",
            "charity",
            "education",
        ],
    ) > 0
    {
        "pricing"
    } else if has_any(
        &text,
        &["gdpr", "data processing", "dpa", "contract", "legal"],
    ) > 0
    {
        "legal"
    } else if has_any(
        &text,
        &[
            "soc 2",
            "security",
            "penetration",
            "iso 27001",
            "vendor review",
        ],
    ) > 0
    {
        "security"
    } else {
        "other"
    };
    json!({ "topic": topic }).to_string()
}

fn general_answer(request: &ChatRequest) -> String {
    let topic = section(request, "Topic: ");
    let body = if topic.starts_with("pricing") {
        "yes: registered non-profits get 50% off every plan. Send us proof of status from your billing email and we apply it to the next invoice."
    } else if topic.starts_with("legal") {
        "our data processing agreement is pre-signed and available under Admin → Legal → DPA. Your legal team can countersign it there and download the PDF."
    } else if topic.starts_with("security") {
        "our SOC 2 Type II report is available under NDA. Request it at trust.nimbus.example and you will get access within one business day."
    } else {
        "thanks for your question. A member of our team will get back to you within one business day."
    };
    format!("Hi {},\n\n{body}\n— Nimbus Support", first_name(request))
}

/// The answer to a refund a person decided on.
fn refund_answer(request: &ChatRequest) -> String {
    let text = request.prompt();
    if text.contains("The refund was approved") {
        "Hi,\n\nyour refund was approved: we have cancelled the annual plan and refunded it in \
         full; it reaches your card within 5 business days.\n— Nimbus Billing"
            .to_owned()
    } else {
        "Hi,\n\nwe could not approve the refund right away; a member of our billing team will \
         contact you within one business day about the options.\n— Nimbus Billing"
            .to_owned()
    }
}
