//! The evaluation as one self-contained HTML page a person reads: totals,
//! metrics, steps, and every case (failures first), filterable.

use std::fmt::Write as _;

use super::report::{CaseResult, EvalReport};
use super::table::{dollars, shown};
use crate::report::escape;

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2330}\
h1{font-size:20px;margin:0 0 4px}p.sub{color:#5b6474;margin:0 0 16px}\
table{border-collapse:collapse;margin:8px 0 20px;min-width:480px}\
th,td{border-bottom:1px solid #e3e6ec;padding:4px 10px;text-align:left;vertical-align:top}\
th{background:#f4f6f9;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}\
tr.fail td:first-child{border-left:4px solid #c62828}tr.pass td:first-child{border-left:4px solid #2e7d32}\
tr.skip td:first-child{border-left:4px solid #9e9e9e}code{font-size:12px;white-space:pre-wrap;word-break:break-word}\
.bad{color:#c62828}.good{color:#2e7d32}label{user-select:none}";

impl EvalReport {
    /// The report as a self-contained HTML page (no scripts or styles from
    /// elsewhere): totals, each metric and step, and each case with its
    /// expected and actual values, failures first; a checkbox (or
    /// `#only-failed` in the address) hides the cases that passed.
    pub fn html(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>eval {}</title><style>{STYLE}</style></head><body>",
            escape(&self.name)
        );
        let _ = write!(
            out,
            "<h1>eval <code>{}</code>: <span id=\"accuracy\" class=\"{}\">{:.1} %</span> passed</h1>\
             <p class=\"sub\">{} of {} cases passed end to end; {} run, {} completed. Tokens {} ({}), judges {} ({}). Run time p50 {} ms, p95 {} ms.{}</p>",
            escape(&self.name),
            if self.passed == self.cases_run {
                "good"
            } else {
                "bad"
            },
            self.accuracy * 100.0,
            self.passed,
            self.cases_run,
            self.cases_run,
            self.completed,
            self.tokens,
            dollars(self.cost_usd),
            self.judge_tokens,
            dollars(self.judge_cost_usd),
            self.p50_ms,
            self.p95_ms,
            self.stopped
                .as_deref()
                .map(|s| format!(" Stopped early: {}.", escape(s)))
                .unwrap_or_default()
        );
        out.push_str("<h2>Metrics</h2><table id=\"metrics\"><tr><th>key</th><th>scorer</th><th>accuracy</th><th>passed</th><th>mean grade</th></tr>");
        for m in &self.metrics {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{:.1} %</td><td class=\"num\">{}/{}</td><td class=\"num\">{:.2}</td></tr>",
                escape(&m.key),
                escape(&m.scorer),
                m.accuracy * 100.0,
                m.passed,
                m.graded,
                m.mean_score
            );
        }
        out.push_str("</table><h2>Steps</h2><table id=\"steps\"><tr><th>step</th><th>runs</th><th>succeeded</th><th>failed</th><th>attempts</th><th>tokens</th><th>cost</th></tr>");
        for s in &self.steps {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                escape(&s.step),
                s.runs,
                s.succeeded,
                s.failed,
                s.attempts,
                s.tokens,
                dollars(s.cost_usd)
            );
        }
        out.push_str("</table><h2>Cases</h2><label><input type=\"checkbox\" id=\"only-failed\"> only cases that did not pass</label>");
        out.push_str("<table id=\"cases\"><tr><th>case</th><th>result</th><th>graded keys: expected → actual</th><th>time</th><th>tokens</th></tr>");
        let mut cases: Vec<&CaseResult> = self.cases.iter().collect();
        cases.sort_by_key(|c| c.passed);
        for case in cases {
            case_row(&mut out, case);
        }
        // `#only-failed` in the address opens the page filtered.
        out.push_str("</table><script>(function(){var box=document.getElementById('only-failed');function apply(){document.querySelectorAll('#cases tr.pass').forEach(function(r){r.style.display=box.checked?'none':''})}box.addEventListener('change',apply);if(location.hash==='#only-failed'){box.checked=true;apply()}document.documentElement.setAttribute('data-ready','1')})();</script></body></html>\n");
        out
    }
}

fn case_row(out: &mut String, case: &CaseResult) {
    let (class, result) = match (case.status, case.passed) {
        (None, _) => ("skip", "not run".to_owned()),
        (Some(_), true) => ("pass", "passed".to_owned()),
        (Some(status), false) => ("fail", format!("failed ({status:?})").to_lowercase()),
    };
    let _ = write!(
        out,
        "<tr class=\"{class}\"><td><code>{}</code></td><td>{}",
        escape(&case.id),
        escape(&result)
    );
    if let Some(error) = &case.error {
        let _ = write!(out, "<br><code class=\"bad\">{}</code>", escape(error));
    }
    out.push_str("</td><td>");
    for score in case.scores.iter().filter(|s| s.graded) {
        let grade = score
            .score
            .as_ref()
            .map_or("—".to_owned(), |s| format!("{:.2}", s.value));
        let _ = write!(
            out,
            "<div class=\"{}\"><code>{}</code> [{}] {}: <code>{}</code> → <code>{}</code>",
            if score.passed { "good" } else { "bad" },
            escape(&score.key),
            escape(&score.scorer),
            grade,
            escape(&shown(score.expected.as_ref())),
            escape(&shown(score.actual.as_ref()))
        );
        if let Some(reason) = score.score.as_ref().and_then(|s| s.reason.as_deref()) {
            let _ = write!(out, " <i>{}</i>", escape(reason));
        }
        if let Some(error) = &score.error {
            let _ = write!(out, " <i>{}</i>", escape(error));
        }
        out.push_str("</div>");
    }
    let _ = write!(
        out,
        "</td><td class=\"num\">{} ms</td><td class=\"num\">{}</td></tr>",
        case.duration_ms, case.tokens
    );
}
