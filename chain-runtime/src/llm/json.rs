//! Finding the JSON in a model's reply, and parsing it into a type.

use super::LlmError;

/// Returns the JSON value inside a reply: the contents of a ```` ```json ```` fence
/// if there is one, else the first balanced `{...}` or `[...]`; `None` when the
/// reply holds neither. Strings are respected, so braces inside them do not count.
pub fn extract_json(reply: &str) -> Option<&str> {
    if let Some(fenced) = fenced_block(reply) {
        return Some(fenced);
    }
    let start = reply.find(['{', '['])?;
    let end = balanced_end(&reply[start..])?;
    Some(&reply[start..start + end])
}

fn fenced_block(reply: &str) -> Option<&str> {
    let open = reply.find("```")?;
    let after = &reply[open + 3..];
    let body_start = after.find('\n')? + 1;
    let body = &after[body_start..];
    // The closing fence starts a line: a JSON string holds no raw newline,
    // so a ``` inside one never does (a snippet in a string is not the end).
    let close = if body.starts_with("```") {
        0
    } else {
        body.find("\n```")? + 1
    };
    let inner = body[..close].trim();
    (!inner.is_empty()).then_some(inner)
}

fn balanced_end(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// Parses a model reply into `T`, tolerating code fences and surrounding prose.
pub fn parse_reply<T: serde::de::DeserializeOwned>(reply: &str) -> Result<T, LlmError> {
    let candidate = extract_json(reply).unwrap_or(reply.trim());
    serde_json::from_str(candidate).map_err(|error| LlmError::Parse {
        error: error.to_string(),
        raw: reply.to_owned(),
        reasks: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::extract_json;

    #[test]
    fn finds_fenced_json() {
        let reply = "Sure! Here it is:\n```json\n{\"a\": 1}\n```\nAnything else?";
        assert_eq!(extract_json(reply), Some("{\"a\": 1}"));
    }

    #[test]
    fn finds_json_in_prose_respecting_strings() {
        let reply = "The answer is {\"text\": \"a } brace\", \"n\": [1, 2]} as requested.";
        assert_eq!(
            extract_json(reply),
            Some("{\"text\": \"a } brace\", \"n\": [1, 2]}")
        );
    }

    #[test]
    fn a_fence_inside_a_json_string_is_not_the_end() {
        let reply =
            "```json\n{\"summary\": \"use ```rust\\nfn main() {}\\n``` here\", \"ok\": true}\n```";
        let json = extract_json(reply).expect("found");
        let value: serde_json::Value = serde_json::from_str(json).expect("whole JSON");
        assert_eq!(value["ok"], true);
        assert!(value["summary"].as_str().expect("text").contains("```rust"));
    }

    #[test]
    fn none_without_json() {
        assert_eq!(extract_json("no json here"), None);
        assert_eq!(extract_json("{ unbalanced"), None);
    }
}
