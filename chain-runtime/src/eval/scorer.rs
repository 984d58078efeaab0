//! Scorers: how one key's value is graded against the expected one —
//! exactly, by a function of the user's, or by a model (LLM-as-judge).

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::llm::{BoxFuture, ChatRequest, LanguageModel, PriceTable, Usage, parse_reply};

/// What a scorer sees of one case and one key.
#[derive(Debug, Clone, Copy)]
pub struct ScoreInput<'a> {
    /// The case's id.
    pub case: &'a str,
    /// The key graded.
    pub key: &'a str,
    /// The case's input, as JSON.
    pub input: &'a Value,
    /// The expected value, if the case gives one.
    pub expected: Option<&'a Value>,
    /// The value the run produced, if it got that far.
    pub actual: Option<&'a Value>,
}

/// A grade: from 0 (wrong) to 1 (right), with an optional reason.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub struct Score {
    /// The grade, in `[0, 1]`.
    pub value: f64,
    /// Why, when the scorer says (a judge's reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Score {
    /// A grade without a reason, clamped to `[0, 1]` (NaN is 0).
    pub fn new(value: f64) -> Self {
        Self {
            value: if value.is_nan() {
                0.0
            } else {
                value.clamp(0.0, 1.0)
            },
            reason: None,
        }
    }

    /// 1 if `right`, else 0.
    pub fn pass(right: bool) -> Self {
        Self::new(if right { 1.0 } else { 0.0 })
    }

    /// With a reason.
    #[must_use]
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// What grading one value cost (a judge's model calls).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScoreCost {
    /// Tokens used.
    pub usage: Usage,
    /// Their price, if the judge's model has one.
    pub cost_usd: Option<f64>,
}

/// Grades one key's value. Implement it for a scorer of your own, or use
/// [`ExactMatch`], [`scorer_fn`] or [`Judge`].
pub trait Scorer: Send + Sync + 'static {
    /// The scorer's name, for tables (`exact`, `judge`, ...).
    fn name(&self) -> &str;

    /// The grade of `input.actual` (an error if grading itself failed: a
    /// judge that did not answer).
    fn score<'a>(
        &'a self,
        input: ScoreInput<'a>,
    ) -> BoxFuture<'a, Result<(Score, ScoreCost), String>>;

    /// The grade a case passes at (default 1: right).
    fn threshold(&self) -> f64 {
        1.0
    }

    /// Whether the scorer grades against an expected value (default yes):
    /// a case that gives none for the key is then not graded on it.
    fn needs_expected(&self) -> bool {
        true
    }
}

/// Right when the value equals the expected one as JSON. With
/// [`ExactMatch::ignoring_case`], strings are compared trimmed and
/// case-insensitively.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExactMatch {
    loose: bool,
}

impl ExactMatch {
    /// JSON equality.
    pub fn new() -> Self {
        Self::default()
    }

    /// Strings compared trimmed and case-insensitively.
    pub fn ignoring_case() -> Self {
        Self { loose: true }
    }
}

impl Scorer for ExactMatch {
    fn name(&self) -> &str {
        if self.loose {
            "exact (any case)"
        } else {
            "exact"
        }
    }

    fn score<'a>(
        &'a self,
        input: ScoreInput<'a>,
    ) -> BoxFuture<'a, Result<(Score, ScoreCost), String>> {
        let right = match (input.expected, input.actual) {
            (Some(Value::String(a)), Some(Value::String(b))) if self.loose => {
                a.trim().eq_ignore_ascii_case(b.trim())
            }
            (Some(expected), Some(actual)) => expected == actual,
            _ => false,
        };
        Box::pin(std::future::ready(Ok((
            Score::pass(right),
            ScoreCost::default(),
        ))))
    }
}

/// A scorer from a function of the expected and the actual value (either
/// may be missing).
pub fn scorer_fn(
    name: impl Into<String>,
    f: impl Fn(Option<&Value>, Option<&Value>) -> Score + Send + Sync + 'static,
) -> impl Scorer {
    FnScorer {
        name: name.into(),
        f: Box::new(f),
        threshold: 1.0,
    }
}

type ScoreFn = dyn Fn(Option<&Value>, Option<&Value>) -> Score + Send + Sync;

struct FnScorer {
    name: String,
    f: Box<ScoreFn>,
    threshold: f64,
}

impl Scorer for FnScorer {
    fn name(&self) -> &str {
        &self.name
    }

    fn score<'a>(
        &'a self,
        input: ScoreInput<'a>,
    ) -> BoxFuture<'a, Result<(Score, ScoreCost), String>> {
        let score = (self.f)(input.expected, input.actual);
        Box::pin(std::future::ready(Ok((score, ScoreCost::default()))))
    }

    fn threshold(&self) -> f64 {
        self.threshold
    }
}

/// LLM-as-judge: a model grades the value against a rubric (and the
/// expected value, when the case has one), answering a score from 0 to 1
/// and a reason. Passes at 0.5 unless [`Judge::passing_at`] says otherwise.
#[derive(Clone)]
pub struct Judge {
    model: Arc<dyn LanguageModel>,
    rubric: String,
    threshold: f64,
    prices: Option<PriceTable>,
}

impl fmt::Debug for Judge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Judge")
            .field("model", &self.model.name())
            .field("rubric", &self.rubric)
            .finish_non_exhaustive()
    }
}

impl Judge {
    /// A judge asking `model` whether a value meets `rubric`.
    pub fn new(model: impl LanguageModel, rubric: impl Into<String>) -> Self {
        Self::shared(Arc::new(model), rubric)
    }

    /// [`Judge::new`] with a shared model.
    pub fn shared(model: Arc<dyn LanguageModel>, rubric: impl Into<String>) -> Self {
        Self {
            model,
            rubric: rubric.into(),
            threshold: 0.5,
            prices: None,
        }
    }

    /// The grade a case passes at.
    #[must_use]
    pub fn passing_at(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    /// Prices for the judge's own calls (their cost is reported apart from
    /// the chain's).
    #[must_use]
    pub fn prices(mut self, prices: PriceTable) -> Self {
        self.prices = Some(prices);
        self
    }

    fn prompt(&self, input: &ScoreInput<'_>) -> String {
        let show = |value: Option<&Value>| match value {
            Some(Value::String(text)) => text.clone(),
            Some(value) => value.to_string(),
            None => "(none)".to_owned(),
        };
        format!(
            "You grade one output of a program.\n\nRubric: {}\n\nThe program's input:\n{}\n\nExpected (may be empty):\n{}\n\nActual output for `{}`:\n{}\n\nAnswer with only JSON: {{\"score\": a number from 0 (fails the rubric) to 1 (meets it fully), \"reason\": \"one short sentence\"}}",
            self.rubric,
            input.input,
            show(input.expected),
            input.key,
            show(input.actual)
        )
    }
}

/// A judge's answer.
#[derive(Deserialize)]
struct Verdict {
    score: f64,
    #[serde(default)]
    reason: Option<String>,
}

impl Scorer for Judge {
    fn name(&self) -> &str {
        "judge"
    }

    fn score<'a>(
        &'a self,
        input: ScoreInput<'a>,
    ) -> BoxFuture<'a, Result<(Score, ScoreCost), String>> {
        Box::pin(async move {
            let request = ChatRequest::user(self.prompt(&input));
            let completion = self
                .model
                .complete(&request)
                .await
                .map_err(|error| format!("the judge's model failed: {error}"))?;
            let cost = ScoreCost {
                usage: completion.usage,
                cost_usd: self
                    .prices
                    .as_ref()
                    .and_then(|prices| prices.cost(self.model.name(), completion.usage)),
            };
            let verdict: Verdict = parse_reply(&completion.text)
                .map_err(|error| format!("the judge's reply is not a verdict: {error}"))?;
            let mut score = Score::new(verdict.score);
            score.reason = verdict.reason;
            Ok((score, cost))
        })
    }

    fn threshold(&self) -> f64 {
        self.threshold
    }

    /// A rubric grades a value with or without an expected one.
    fn needs_expected(&self) -> bool {
        false
    }
}
