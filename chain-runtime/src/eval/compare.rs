//! Two evaluations of the same dataset compared (before and after a prompt
//! change): accuracy per metric, and each case whose outcome changed.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::report::EvalReport;
use super::table::{dollars, shown};

/// One case whose grades changed between two runs.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CaseChange {
    /// The case.
    pub id: String,
    /// Whether it passed before.
    pub passed_before: bool,
    /// Whether it passes now.
    pub passed_after: bool,
    /// Each key whose grade or value changed.
    pub keys: Vec<KeyChange>,
}

/// One key of one case, before and after.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct KeyChange {
    /// The key.
    pub key: String,
    /// Its grade before (`None`: not graded).
    pub grade_before: Option<f64>,
    /// Its grade after.
    pub grade_after: Option<f64>,
    /// Its value before.
    pub value_before: Option<Value>,
    /// Its value after.
    pub value_after: Option<Value>,
}

/// `after` against `before`. Made by [`EvalReport::compare`].
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Comparison {
    /// The earlier run's name.
    pub before: String,
    /// The later run's name.
    pub after: String,
    /// End-to-end accuracy before and after.
    pub accuracy: (f64, f64),
    /// Per metric (key, scorer): accuracy before and after.
    pub metrics: Vec<(String, String, f64, f64)>,
    /// Cases that passed before and fail now.
    pub regressions: Vec<CaseChange>,
    /// Cases that failed before and pass now.
    pub fixes: Vec<CaseChange>,
    /// Cases whose grades or values changed without changing pass or fail.
    pub changed: Vec<CaseChange>,
    /// Cost before and after.
    pub cost_usd: (Option<f64>, Option<f64>),
}

impl EvalReport {
    /// This run compared with `before` (the same dataset, an earlier run).
    pub fn compare(&self, before: &EvalReport) -> Comparison {
        let metrics = self
            .metrics
            .iter()
            .map(|m| {
                let old = before
                    .metrics
                    .iter()
                    .find(|o| o.key == m.key && o.scorer == m.scorer)
                    .map_or(0.0, |o| o.accuracy);
                (m.key.clone(), m.scorer.clone(), old, m.accuracy)
            })
            .collect();
        let (mut regressions, mut fixes, mut changed) = (Vec::new(), Vec::new(), Vec::new());
        for case in &self.cases {
            let Some(old) = before.case(&case.id) else {
                continue;
            };
            let keys: Vec<_> = case
                .scores
                .iter()
                .filter_map(|score| {
                    let was = old
                        .scores
                        .iter()
                        .find(|o| o.key == score.key && o.scorer == score.scorer);
                    let grade = |s: &super::KeyScore| s.score.as_ref().map(|s| s.value);
                    let (old_grade, old_value) =
                        was.map_or((None, None), |w| (grade(w), w.actual.clone()));
                    let same = old_grade == grade(score) && old_value == score.actual;
                    (!same).then(|| KeyChange {
                        key: score.key.clone(),
                        grade_before: old_grade,
                        grade_after: grade(score),
                        value_before: old_value,
                        value_after: score.actual.clone(),
                    })
                })
                .collect();
            let change = CaseChange {
                id: case.id.clone(),
                passed_before: old.passed,
                passed_after: case.passed,
                keys,
            };
            match (old.passed, case.passed) {
                (true, false) => regressions.push(change),
                (false, true) => fixes.push(change),
                _ if !change.keys.is_empty() => changed.push(change),
                _ => {}
            }
        }
        Comparison {
            before: before.name.clone(),
            after: self.name.clone(),
            accuracy: (before.accuracy, self.accuracy),
            metrics,
            regressions,
            fixes,
            changed,
            cost_usd: (before.cost_usd, self.cost_usd),
        }
    }
}

impl Comparison {
    /// The comparison for a terminal: accuracies, then each changed case
    /// with what its values were and are.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "`{}` → `{}`: accuracy {:.1} % → {:.1} % ({:+.1} points); cost {} → {}",
            self.before,
            self.after,
            self.accuracy.0 * 100.0,
            self.accuracy.1 * 100.0,
            (self.accuracy.1 - self.accuracy.0) * 100.0,
            dollars(self.cost_usd.0),
            dollars(self.cost_usd.1)
        );
        for (key, scorer, old, new) in &self.metrics {
            let _ = writeln!(
                out,
                "  {key:<24} {scorer:<18} {:>5.1} % → {:>5.1} %",
                old * 100.0,
                new * 100.0
            );
        }
        for (title, cases) in [
            ("regressions", &self.regressions),
            ("fixes", &self.fixes),
            ("changed", &self.changed),
        ] {
            if cases.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n{title} ({}):", cases.len());
            for case in cases {
                let _ = writeln!(out, "  {}", case.id);
                for change in &case.keys {
                    let grade = |g: Option<f64>| g.map_or("-".to_owned(), |g| format!("{g:.2}"));
                    let _ = writeln!(
                        out,
                        "    {}: {} → {}   {} → {}",
                        change.key,
                        grade(change.grade_before),
                        grade(change.grade_after),
                        shown(change.value_before.as_ref()),
                        shown(change.value_after.as_ref())
                    );
                }
            }
        }
        out
    }

    /// Whether no case that passed before fails now.
    pub fn no_regressions(&self) -> bool {
        self.regressions.is_empty()
    }
}
