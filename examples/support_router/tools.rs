//! The tools the technical team's model may call while it writes an answer:
//! the customer's account and the knowledge base. Each call is recorded in
//! the run, so a resumed run does not call a finished tool again.

use prompt_chain::prelude::*;
use serde::Serialize;

use super::kb::KnowledgeBase;

/// A customer's account, as the support desk sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Account {
    pub(crate) customer: String,
    pub(crate) plan: &'static str,
    pub(crate) seats: u32,
    pub(crate) desktop_version: &'static str,
}

/// The account directory (a fixed table here; a CRM in production).
#[derive(Debug, Default)]
pub(crate) struct Accounts;

impl Accounts {
    /// The account of `customer` (matched by name, case-insensitively).
    pub(crate) fn find(&self, customer: &str) -> Option<Account> {
        const KNOWN: &[(&str, &str, u32, &str)] = &[
            ("dana whitfield", "Team", 12, "4.2.1"),
            ("marcus lee", "Pro", 1, "4.3.0"),
            ("priya raman", "Non-profit", 5, "4.3.0"),
            ("tom okafor", "Pro", 1, "4.1.7"),
            ("elena petrova", "Team", 30, "4.3.0"),
        ];
        let wanted = customer.trim().to_lowercase();
        let (plan, seats, version) = KNOWN
            .iter()
            .find(|(name, ..)| *name == wanted)
            .map_or(("Free", 1, "4.3.0"), |(_, plan, seats, version)| {
                (*plan, *seats, *version)
            });
        (!wanted.is_empty()).then(|| Account {
            customer: customer.trim().to_owned(),
            plan,
            seats,
            desktop_version: version,
        })
    }
}

/// Looks up a customer's account by their full name: plan, number of seats
/// and the desktop app version they run.
#[tool]
pub(crate) async fn lookup_account(cx: &ToolCx, customer: String) -> StepResult<Account> {
    cx.require::<Accounts>()?.find(&customer).ok_or_else(|| {
        StepError::msg("give the customer's full name, as in the ticket's From line")
    })
}

/// One article found in the knowledge base.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ArticleHit {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) score: f64,
}

/// Searches the help-center knowledge base with a few keywords; returns up
/// to three articles (id, title, relevance score).
#[tool]
pub(crate) async fn search_knowledge_base(
    cx: &ToolCx,
    query: String,
) -> StepResult<Vec<ArticleHit>> {
    let kb = cx.require::<KnowledgeBase>()?;
    Ok(kb
        .search(&query)
        .into_iter()
        .take(3)
        .map(|hit| ArticleHit {
            id: hit.article.id.clone(),
            title: hit.article.title.clone(),
            score: (hit.score * 10.0).round() / 10.0,
        })
        .collect())
}
