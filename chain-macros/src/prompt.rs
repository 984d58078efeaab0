//! `prompt!`: a prompt template whose `{placeholders}` are variables in
//! scope, checked by the compiler, with the code's indentation stripped.

use proc_macro2::TokenStream;
use quote::quote;
use syn::LitStr;

/// Removes the indentation a template has because it sits in indented code:
/// a leading line break and trailing blank line go, and the smallest
/// indentation of the non-blank lines is removed from every line. A first
/// line written right after the opening quote has no code indentation: it is
/// kept as written, and the lines after it are dedented among themselves.
pub(crate) fn dedent(text: &str) -> String {
    let (text, first_inline) = match text.strip_prefix('\n') {
        Some(rest) => (rest, false),
        None => (text, true),
    };
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.len() > 1 && lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    let skip = usize::from(first_inline);
    let indent = lines
        .iter()
        .skip(skip)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .enumerate()
        .map(|(n, l)| {
            if n < skip {
                l
            } else if l.len() >= indent {
                &l[indent..]
            } else {
                l.trim_start()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The placeholders of a template, or the first malformed one.
fn placeholders(text: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
            }
            '{' => {
                let mut inside = String::new();
                for c in chars.by_ref() {
                    if c == '}' {
                        break;
                    }
                    inside.push(c);
                }
                let name = inside.split(':').next().unwrap_or_default().trim();
                let is_ident = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_alphanumeric() || c == '_');
                if !is_ident {
                    return Err(format!(
                        "prompt placeholders name a variable in scope, such as `{{diff}}`; `{{{inside}}}` does not (write `{{{{` for a literal brace)"
                    ));
                }
                names.push(name.to_owned());
            }
            _ => {}
        }
    }
    Ok(names)
}

/// `prompt!("...")`.
pub(crate) fn prompt(input: TokenStream) -> TokenStream {
    let literal: LitStr = match syn::parse2(input) {
        Ok(literal) => literal,
        Err(error) => {
            return syn::Error::new(
                error.span(),
                "`prompt!` takes one string literal: `prompt!(\"Summarize {text}\")`",
            )
            .to_compile_error();
        }
    };
    let template = dedent(&literal.value());
    if let Err(message) = placeholders(&template) {
        return syn::Error::new(literal.span(), message).to_compile_error();
    }
    // The dedented template keeps the user's span: rustc resolves each
    // `{name}` in the caller's scope and reports a typo on the prompt.
    let template = LitStr::new(&template, literal.span());
    quote!(::std::format!(#template))
}

#[cfg(test)]
mod tests {
    use super::{dedent, placeholders};

    #[test]
    fn strips_code_indentation() {
        let text = "\n        Analyze this diff:\n          {diff}\n\n        Be brief.\n    ";
        assert_eq!(dedent(text), "Analyze this diff:\n  {diff}\n\nBe brief.");
        assert_eq!(dedent("one line {x}"), "one line {x}");
        // A first line right after the quote: the rest is dedented alone.
        let text =
            "Summarize {text}\n            for {audience}:\n              - briefly\n        ";
        assert_eq!(
            dedent(text),
            "Summarize {text}\nfor {audience}:\n  - briefly"
        );
    }

    #[test]
    fn finds_placeholders_and_rejects_positional_ones() {
        assert_eq!(
            placeholders("{a} and {b:?} {{literal}}"),
            Ok(vec!["a".into(), "b".into()])
        );
        assert!(placeholders("a {} b").is_err());
        assert!(placeholders("a {x.y} b").is_err());
    }
}
