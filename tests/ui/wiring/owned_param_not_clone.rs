use prompt_chain::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Report {
    text: String,
}

#[step]
async fn write(_cx: &StepCx, topic: &str) -> StepResult<Report> {
    Ok(Report { text: topic.to_owned() })
}

#[step]
async fn publish(_cx: &StepCx, report: Report) -> StepResult<String> {
    Ok(report.text)
}

#[chain]
async fn pipeline(topic: String) -> String {
    step!(report = write(topic));
    step!(url = publish(report));
    url
}

fn main() {}
