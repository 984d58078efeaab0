//! "Did you mean" suggestions for misspelled keys and options.

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|candidate| (distance(word, candidate), candidate))
        .filter(|(d, candidate)| *d <= limit && *candidate != word)
        .min_by_key(|(d, _)| *d)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, counting an adjacent transposition as one edit.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2 = vec![0usize; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (prev[j] + 1).min(row[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(prev2[j - 2] + 1);
            }
        }
        prev2 = std::mem::replace(&mut prev, row);
    }
    prev[b.len()]
}

/// The option meant by a name other libraries use for it (`retries`, `max_retries`, ...).
pub(crate) fn option_alias(word: &str) -> Option<&'static str> {
    match word {
        "retries" | "max_retries" | "retry_count" | "attempts" | "max_attempts" | "retrys" => {
            Some("retry")
        }
        "validator" | "validation" | "check" | "validate_with" | "validates" => Some("validate"),
        "reasks" | "re_ask" | "max_reasks" | "repair" => Some("reask"),
        "default" | "or_else" | "fallback_value" => Some("fallback"),
        "fallback_llm" | "backup_model" | "model_fallback" => Some("fallback_model"),
        "timeout_ms" | "timeout_secs" | "time_limit" | "timeouts" => Some("timeout"),
        "total_timeout" | "step_timeout" | "deadline_ms" => Some("deadline"),
        "while_not" | "stop_when" | "until_fn" | "done" | "condition" => Some("until"),
        "max_iterations" | "max_iter" | "iterations" | "times" | "repeat" | "loop" => Some("max"),
        "ttl" | "cache_ttl" | "memoize" | "cached" => Some("cache"),
        _ => None,
    }
}

/// `a`, `b` and `c` — a list of keys in backticks for messages.
pub(crate) fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(|item| format!("`{item}`")).collect();
    match items.len() {
        0 => "none".to_owned(),
        1 => items[0].clone(),
        n => format!("{} and {}", items[..n - 1].join(", "), items[n - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::{closest, distance, list};

    #[test]
    fn suggests_near_misses_only() {
        let keys = ["changes_summary", "original_code", "new_code"];
        assert_eq!(closest("changes_summery", keys), Some("changes_summary"));
        assert_eq!(closest("change_summary", keys), Some("changes_summary"));
        assert_eq!(closest("nwe_code", keys), Some("new_code"));
        assert_eq!(closest("totally_else", keys), None);
    }

    #[test]
    fn transposition_is_one_edit() {
        assert_eq!(distance("retyr", "retry"), 1);
        assert_eq!(distance("", "abc"), 3);
    }

    #[test]
    fn lists_read_naturally() {
        assert_eq!(list(["a"]), "`a`");
        assert_eq!(list(["a", "b", "c"]), "`a`, `b` and `c`");
    }
}
