//! The options of a `step!`: `retry = 3`, `timeout = 30s`, `validate = path`...

use syn::{Expr, ExprLit, Ident, Lit};

use crate::ast::StepOptions;
use crate::ctxt::Ctxt;
use crate::suggest;

/// The options `step!` accepts.
const OPTIONS: [&str; 10] = [
    "validate",
    "retry",
    "reask",
    "timeout",
    "deadline",
    "fallback",
    "fallback_model",
    "until",
    "max",
    "cache",
];

/// Reads the options of one step, reporting each one that is unknown,
/// repeated or of the wrong kind.
pub(super) fn parse_options(cx: &mut Ctxt, raw: Vec<(Ident, Expr)>) -> StepOptions {
    let mut options = StepOptions::default();
    let mut seen: Vec<String> = Vec::new();
    let mut until_token: Option<Ident> = None;
    let mut max_given = false;
    for (name, value) in raw {
        let label = name.to_string();
        if seen.contains(&label) {
            cx.error_spanned_by(&name, format!("option `{label}` is given twice"));
            continue;
        }
        seen.push(label.clone());
        match label.as_str() {
            "validate" => match value {
                Expr::Path(path) if path.qself.is_none() => options.validate = Some(path.path),
                other => cx.error_spanned_by(
                    other,
                    "`validate` takes the path of a function `fn(&T) -> Result<(), E>`, such as `validate = has_files`",
                ),
            },
            "retry" => match int_literal(&value) {
                Some((lit, "")) => match lit.base10_parse::<u32>() {
                    Ok(n) => options.retry = Some(n),
                    Err(error) => cx.syn_error(error),
                },
                _ => cx.error_spanned_by(
                    value,
                    "`retry` takes the number of retries after a failed attempt, such as `retry = 3`",
                ),
            },
            "reask" => match int_literal(&value) {
                Some((lit, "")) => match lit.base10_parse::<u32>() {
                    Ok(n) => options.reask = Some(n),
                    Err(error) => cx.syn_error(error),
                },
                _ => cx.error_spanned_by(
                    value,
                    "`reask` takes how many times a rejected output is asked for again, such as `reask = 2`",
                ),
            },
            "fallback" => match value {
                Expr::Path(path) if path.qself.is_none() => options.fallback = Some(path.path),
                other => cx.error_spanned_by(
                    other,
                    "`fallback` takes the path of a function `fn() -> T` giving the step's output when every attempt failed",
                ),
            },
            "fallback_model" => match value {
                Expr::Lit(ExprLit { lit: Lit::Str(name), .. }) => options.fallback_model = Some(name.value()),
                other => cx.error_spanned_by(
                    other,
                    "`fallback_model` takes the name of a model added with `named_model`, such as `fallback_model = \"fast\"`",
                ),
            },
            "until" => match value {
                Expr::Path(path) if path.qself.is_none() => {
                    until_token = Some(name.clone());
                    options.until = Some(path.path);
                }
                other => cx.error_spanned_by(
                    other,
                    "`until` takes the path of a function `fn(&T) -> bool` that says when the loop is done, such as `until = approved`",
                ),
            },
            "max" => match int_literal(&value).inspect(|_| max_given = true) {
                Some((lit, "")) => match lit.base10_parse::<u32>() {
                    Ok(0) => cx.error_spanned_by(lit, "`max` is the most iterations a loop runs: at least 1"),
                    Ok(n) => options.max = Some(n),
                    Err(error) => cx.syn_error(error),
                },
                _ => cx.error_spanned_by(
                    value,
                    "`max` takes the most iterations the loop runs, such as `max = 3`",
                ),
            },
            "deadline" => match int_literal(&value).and_then(|(lit, unit)| duration_ms(lit, unit)) {
                Some(Ok(ms)) => options.deadline_ms = Some(ms),
                Some(Err(error)) => cx.syn_error(error),
                None => cx.error_spanned_by(
                    value,
                    "`deadline` takes the longest the step may take over all attempts, with its unit: `45s`, `2m`",
                ),
            },
            "cache" => match int_literal(&value).and_then(|(lit, unit)| duration_ms(lit, unit)) {
                Some(Ok(ms)) => options.cache_ms = Some(ms),
                Some(Err(error)) => cx.syn_error(error),
                None => cx.error_spanned_by(
                    value,
                    "`cache` takes how long a result stays reusable, with its unit: `30s`, `10m`, `1h`",
                ),
            },
            "timeout" => match int_literal(&value).and_then(|(lit, unit)| duration_ms(lit, unit)) {
                Some(Ok(ms)) => options.timeout_ms = Some(ms),
                Some(Err(error)) => cx.syn_error(error),
                None => cx.error_spanned_by(
                    value,
                    "`timeout` takes a duration with its unit: `500ms`, `30s`, `2m` or `1h`",
                ),
            },
            _ => {
                let hint = match suggest::option_alias(&label).or_else(|| suggest::closest(&label, OPTIONS)) {
                    Some(near) => format!("did you mean `{near}`? "),
                    None => String::new(),
                };
                cx.error_spanned_by(
                    &name,
                    format!(
                        "unknown step option `{label}`; {hint}the options are {}",
                        suggest::list(OPTIONS)
                    ),
                );
            }
        }
    }
    if let (Some(until), false) = (&until_token, max_given) {
        cx.error_spanned_by(
            until,
            "a loop needs a bound: add `max = N` (the most iterations) next to `until`",
        );
    }
    options
}

/// An integer literal and its suffix (`30` and `s` in `30s`).
fn int_literal(expr: &Expr) -> Option<(&syn::LitInt, &str)> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => Some((lit, lit.suffix())),
        _ => None,
    }
}

/// A duration literal in milliseconds; `None` when `unit` is not a unit.
fn duration_ms(lit: &syn::LitInt, unit: &str) -> Option<syn::Result<u64>> {
    let factor: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    Some(lit.base10_parse::<u64>().and_then(|n| {
        n.checked_mul(factor).filter(|ms| *ms > 0).ok_or_else(|| {
            syn::Error::new(
                lit.span(),
                "a timeout must be positive and fit in 64 bits of milliseconds",
            )
        })
    }))
}
