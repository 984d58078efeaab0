//! The JSON a streamed reply holds so far: `{"summary": "The sync is st`
//! reads as `{"summary": "The sync is st"}`. Used for partial structured
//! outputs; it never panics on any input (its tests feed it every prefix of
//! generated JSON and arbitrary bytes).

use serde_json::Value;

/// The value the JSON prefix in `text` (from its first `{` or `[`) stands
/// for so far: an open string is closed where it stops, open containers
/// are closed, and a member cut before its value is left out. `None` if
/// there is no JSON yet, or the prefix is not the start of JSON.
pub fn partial_json(text: &str) -> Option<Value> {
    let start = text.find(['{', '['])?;
    let text = &text[start..];
    let mut closers: Vec<char> = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    // The last place a member or element can be cut off cleanly: just after
    // an opening bracket, or just before a comma; with the closers then open.
    let mut cut: Option<(usize, Vec<char>)> = None;
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
            '{' | '[' => {
                closers.push(if c == '{' { '}' } else { ']' });
                cut = Some((i + 1, closers.clone()));
            }
            '}' | ']' => {
                if closers.pop() != Some(c) {
                    return None;
                }
                if closers.is_empty() {
                    // The value is complete: what follows is not part of it.
                    return serde_json::from_str(&text[..=i]).ok();
                }
            }
            ',' => cut = Some((i, closers.clone())),
            _ => {}
        }
    }
    // The whole prefix, closed where it stops.
    let mut whole = text.to_owned();
    if in_string {
        if escaped {
            whole.pop();
        }
        whole.push('"');
    }
    whole.extend(closers.iter().rev());
    if let Ok(value) = serde_json::from_str(&whole) {
        return Some(value);
    }
    // Cut before the member in progress (a key without its value, a
    // literal or a number half written).
    let (at, open) = cut?;
    let mut shorter = text[..at].to_owned();
    shorter.extend(open.iter().rev());
    serde_json::from_str(&shorter).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::partial_json;

    #[test]
    fn a_prefix_reads_as_the_value_so_far() {
        assert_eq!(partial_json("no json yet"), None);
        assert_eq!(partial_json("```json\n{"), Some(json!({})));
        assert_eq!(
            partial_json(r#"{"summary": "The sync is st"#),
            Some(json!({"summary": "The sync is st"}))
        );
        assert_eq!(
            partial_json(r#"{"a": 1, "b"#),
            Some(json!({"a": 1})),
            "a key without its value is left out"
        );
        assert_eq!(partial_json(r#"{"a": 1, "b": tr"#), Some(json!({"a": 1})));
        assert_eq!(
            partial_json(r#"{"tags": ["x", "y"#),
            Some(json!({"tags": ["x", "y"]}))
        );
        assert_eq!(
            partial_json(r#"{"a": "quote \""#),
            Some(json!({"a": "quote \""}))
        );
        assert_eq!(
            partial_json(r#"{"a": "cut at \"#),
            Some(json!({"a": "cut at "})),
            "a dangling escape is dropped"
        );
        assert_eq!(
            partial_json(r#"{"a": 1} and then prose {"#),
            Some(json!({"a": 1}))
        );
        assert_eq!(partial_json("{]"), None);
    }

    /// A small deterministic generator of JSON values.
    fn value(seed: &mut u64, depth: u32) -> Value {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let pick = (*seed >> 33) % if depth == 0 { 4 } else { 6 };
        let n = ((*seed >> 40) % 4) as usize;
        match pick {
            0 => json!(((*seed >> 20) % 2000) as i64 - 1000),
            1 => json!(["text \"q\" \\ é", "", "a,b}", "日本"][n]),
            2 => [json!(true), json!(false), Value::Null, json!(1.5)][n].clone(),
            3 => json!(((*seed >> 20) % 100) as f64 / 8.0),
            4 => Value::Array((0..n).map(|_| value(seed, depth - 1)).collect()),
            _ => Value::Object(
                (0..n)
                    .map(|i| (format!("k{i}"), value(seed, depth - 1)))
                    .collect(),
            ),
        }
    }

    #[test]
    fn every_prefix_of_generated_json_parses_or_is_none_and_the_whole_is_exact() {
        let mut seed = 7;
        for _ in 0..300 {
            let original = value(&mut seed, 4);
            for text in [
                original.to_string(),
                serde_json::to_string_pretty(&original).unwrap_or_default(),
            ] {
                for (end, _) in text.char_indices() {
                    // Never panics; a prefix of an object stays an object.
                    if let Some(partial) = partial_json(&text[..end])
                        && original.is_object()
                    {
                        assert!(partial.is_object(), "{} → {partial}", &text[..end]);
                    }
                }
                if original.is_object() || original.is_array() {
                    assert_eq!(partial_json(&text).as_ref(), Some(&original), "{text}");
                }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed: u64 = 99;
        let alphabet = [
            '{', '}', '[', ']', '"', '\\', ',', ':', 'a', '1', ' ', 'é', 't',
        ];
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..(seed % 24) {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                text.push(alphabet[((seed >> 33) % alphabet.len() as u64) as usize]);
            }
            let _ = partial_json(&text);
            seed = seed.wrapping_add(1);
        }
    }
}
