//! The flagship example, run by the test suite on its own files: every sample
//! ticket takes the route it should, every arm of every route is taken,
//! escalations are persisted, and failures name their path.

use prompt_chain::{Runtime, report::StepStatus};

#[allow(dead_code, private_interfaces)]
#[path = "../examples/support_router/main.rs"]
mod support_router_example;

use support_router_example::{
    Category, KbLookup, RefundDecision, Ticket, route_all, runtime, sample_tickets, support_router,
    technical_support,
};

fn ticket(id: &str, subject: &str, body: &str) -> Ticket {
    Ticket {
        id: id.into(),
        customer: "Test Customer".into(),
        subject: subject.into(),
        body: body.into(),
    }
}

#[tokio::test(start_paused = true)]
async fn every_sample_ticket_takes_its_route() {
    let data = tempfile::tempdir().expect("temp dir");
    let rt = runtime(data.path()).expect("the example's runtime loads");
    let tickets = sample_tickets().expect("the sample tickets load");
    assert!(tickets.len() >= 10);
    let outcomes = route_all(&rt, tickets).await;
    let routes: Vec<(String, String)> = outcomes
        .iter()
        .map(|(ticket, outcome)| {
            let route = match &outcome.result {
                Ok(out) => out.reply.handled_by.clone(),
                Err(error) if error.is_suspension() => "waiting for a person".to_owned(),
                Err(error) => panic!("{} failed: {error}", ticket.id),
            };
            (ticket.id.clone(), route)
        })
        .collect();
    let expected = [
        ("T-1001", "technical › knowledge base"),
        ("T-1002", "billing › double charge"),
        ("T-1003", "general › pricing"),
        ("T-1004", "technical › knowledge base"),
        ("T-1005", "technical › knowledge base"),
        ("T-1006", "waiting for a person"),
        ("T-1007", "technical › escalated"),
        ("T-1008", "general › legal"),
        ("T-1009", "technical › knowledge base"),
        ("T-1010", "billing › plan change"),
        ("T-1011", "technical › knowledge base"),
        ("T-1012", "technical › escalated"),
        ("T-1013", "general › security"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(id, route)| ((*id).to_owned(), (*route).to_owned()))
        .collect();
    assert_eq!(routes, expected);

    // The outer route is in each report; every category was taken.
    let taken: std::collections::HashSet<&str> = outcomes
        .iter()
        .filter_map(|(_, outcome)| outcome.report.route_taken("category"))
        .collect();
    assert_eq!(
        taken,
        [
            "Category::Technical",
            "Category::Billing",
            "Category::General"
        ]
        .into()
    );
    let (_, billing) = &outcomes[1];
    assert_eq!(
        billing.report.step("technical_support").map(|s| s.status),
        Some(StepStatus::Skipped)
    );

    // The refund of an unknown amount waits for a person; approving it
    // finishes the run, which restores what ran before the question.
    let (_, refund) = &outcomes[5];
    let question = &refund.result.as_ref().expect_err("suspended").waiting()[0];
    assert_eq!(question.key, "decision");
    assert_eq!(question.payload["ticket"]["id"], "T-1006");
    assert_eq!(question.payload["details"]["issue"], "refund");
    let pending = rt.waiting().await.expect("listed");
    assert_eq!(pending.len(), 1);
    let decision = RefundDecision {
        approved: true,
        note: "bought yesterday".into(),
    };
    let done = support_router::answer::decision(&rt, refund.report.run_id, decision)
        .await
        .expect("the decision is taken");
    let reply = done.result.expect("the run finishes").reply;
    assert_eq!(reply.handled_by, "billing › refund (approved)");
    assert!(reply.text.contains("refunded it in full"), "{}", reply.text);
    assert_eq!(
        done.report.step("classify").map(|s| s.status),
        Some(StepStatus::Restored)
    );

    // The answers quote the article's steps and the escalations are on disk.
    let (_, sync) = &outcomes[0];
    let reply = &sync.result.as_ref().expect("handled").reply;
    assert_eq!(reply.article.as_deref(), Some("sync-stuck-preparing-files"));
    assert!(
        reply.text.contains("Delete the index folder"),
        "{}",
        reply.text
    );
    // The model looked the customer up with its `lookup_account` tool.
    assert!(
        reply
            .text
            .contains("you are on the Team plan with desktop app 4.2.1"),
        "{}",
        reply.text
    );
    let file = std::fs::read_to_string(data.path().join("escalations.jsonl"))
        .expect("escalations written");
    let escalated: Vec<serde_json::Value> = file
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON record per line"))
        .collect();
    let mut tickets: Vec<&str> = escalated
        .iter()
        .filter_map(|e| e["ticket"].as_str())
        .collect();
    tickets.sort_unstable();
    assert_eq!(tickets, ["T-1007", "T-1012"]);
    let mut ids: Vec<&str> = escalated.iter().filter_map(|e| e["id"].as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["ESC-0001", "ESC-0002"]);
}

#[tokio::test(start_paused = true)]
async fn the_knowledge_base_ranks_by_relevance_with_a_margin() {
    let data = tempfile::tempdir().expect("temp dir");
    let rt = runtime(data.path()).expect("runtime");
    let mut found = Vec::new();
    let mut missed = Vec::new();
    for ticket in sample_tickets().expect("tickets") {
        let out = technical_support::execute(
            &rt,
            technical_support::Input {
                ticket: ticket.clone(),
            },
        )
        .await
        .result
        .expect("runs");
        match out.lookup {
            KbLookup::Found(article) => found.push((ticket.id, article.id, article.score)),
            KbLookup::NotFound { best_score } => missed.push(best_score),
        }
    }
    let articles: Vec<(&str, &str)> = found
        .iter()
        .map(|(t, a, _)| (t.as_str(), a.as_str()))
        .collect();
    assert_eq!(
        articles,
        [
            ("T-1001", "sync-stuck-preparing-files"),
            ("T-1004", "two-factor-codes-rejected"),
            ("T-1005", "api-rate-limit-429"),
            ("T-1009", "mobile-uploads-fail"),
            ("T-1011", "desktop-crash-on-startup"),
        ]
    );
    // The threshold sits in a wide gap, not on an edge.
    let lowest_found = found.iter().map(|(_, _, s)| *s).fold(f64::MAX, f64::min);
    let highest_missed = missed.iter().copied().fold(0.0, f64::max);
    assert!(lowest_found > 12.0, "{lowest_found}");
    assert!(highest_missed < 6.0, "{highest_missed}");
}

#[tokio::test(start_paused = true)]
async fn a_new_ticket_is_routed_and_an_unknown_problem_escalated() {
    let data = tempfile::tempdir().expect("temp dir");
    let rt = runtime(data.path()).expect("runtime");
    let outcomes = route_all(
        &rt,
        vec![
            ticket(
                "T-1",
                "Storage",
                "Uploads fail with error E-4410 storage full, though I deleted files yesterday.",
            ),
            ticket(
                "T-2",
                "Printer",
                "The print preview is broken: tables show an error when printing.",
            ),
        ],
    )
    .await;
    let first = outcomes[0].1.result.as_ref().expect("handled");
    assert_eq!(first.category, Category::Technical);
    assert_eq!(
        first.reply.article.as_deref(),
        Some("storage-full-after-deleting")
    );
    let second = outcomes[1].1.result.as_ref().expect("handled");
    assert_eq!(second.reply.handled_by, "technical › escalated");
    assert_eq!(second.reply.escalation.as_deref(), Some("ESC-0001"));
}

#[tokio::test]
async fn a_missing_knowledge_base_fails_with_the_whole_path() {
    let model = prompt_chain::llm::ScriptedModel::new()
        .on_step("classify", r#"{"category": "technical"}"#)
        .on_step(
            "extract_error_details",
            r#"{"product": "desktop", "error_code": "E-1042", "summary": "sync stuck", "search_terms": ["sync"]}"#,
        );
    let rt = Runtime::builder().model(model).build();
    let outcome = support_router::execute(
        &rt,
        support_router::Input {
            ticket: ticket("T-3", "Sync", "Sync fails with E-1042"),
        },
    )
    .await;
    let error = outcome.result.expect_err("no knowledge base is configured");
    assert_eq!(
        error.path(),
        ["support_router", "technical_support", "search_kb"]
    );
    assert!(
        error.to_string().contains("needs a dependency of type")
            && error.to_string().contains("KnowledgeBase"),
        "{error}"
    );
    assert!(
        !error.is_retryable(),
        "a missing dependency is not worth retrying"
    );
    assert_eq!(
        error.completed().get("category"),
        Some(&serde_json::json!("technical"))
    );
    assert_eq!(
        outcome.report.route_taken("category"),
        Some("Category::Technical")
    );
}

/// The README shows the router as an excerpt of the example: keep it verbatim.
#[test]
fn the_readme_excerpt_matches_the_example() {
    let readme = include_str!("../README.md");
    let example = include_str!("../examples/support_router/main.rs");
    let excerpt = readme
        .split("```rust,ignore\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README has the router excerpt");
    assert!(excerpt.contains("route!(category {"));
    assert!(
        example.contains(excerpt),
        "README excerpt differs from the example:\n{excerpt}"
    );
}
