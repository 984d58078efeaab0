//! The options of a `step!`: `retry = 3`, `timeout = 30s`, `validate = path`...
//!
//! Each option is one row of [`OPTIONS`]: its name, the kind of value it
//! takes with where that value goes in [`StepOptions`], and the message when
//! the value is of another kind. Adding an option is adding a row.

use syn::{Expr, ExprLit, Ident, Lit, Path};

use crate::ast::StepOptions;
use crate::ctxt::Ctxt;
use crate::suggest;

/// One option `step!` accepts.
struct OptionDef {
    name: &'static str,
    kind: Kind,
    /// What the option takes, reported on a value of another kind.
    takes: &'static str,
}

/// The kind of value an option takes, with the setter that stores it.
#[derive(Clone, Copy)]
enum Kind {
    /// An integer without suffix: `retry = 3`. `zero` is the message when 0
    /// means nothing for this option, `None` when 0 is accepted.
    Count {
        set: fn(&mut StepOptions, u32),
        zero: Option<&'static str>,
    },
    /// An integer with its unit (`500ms`, `30s`, `2m`, `1h`), stored in
    /// milliseconds.
    Duration(fn(&mut StepOptions, u64)),
    /// The path of a function: `validate = has_files`.
    Path(fn(&mut StepOptions, Path)),
    /// A string literal: `fallback_model = "fast"`.
    Str(fn(&mut StepOptions, String)),
}

/// The options `step!` accepts, in the order messages list them.
static OPTIONS: [OptionDef; 15] = [
    OptionDef {
        name: "validate",
        kind: Kind::Path(|options, path| options.validate = Some(path)),
        takes: "`validate` takes the path of a function `fn(&T) -> Result<(), E>`, such as `validate = has_files`",
    },
    OptionDef {
        name: "retry",
        kind: Kind::Count {
            set: |options, n| options.retry = Some(n),
            zero: None,
        },
        takes: "`retry` takes the number of retries after a failed attempt, such as `retry = 3`",
    },
    OptionDef {
        name: "reask",
        kind: Kind::Count {
            set: |options, n| options.reask = Some(n),
            zero: None,
        },
        takes: "`reask` takes how many times a rejected output is asked for again, such as `reask = 2`",
    },
    OptionDef {
        name: "timeout",
        kind: Kind::Duration(|options, ms| options.timeout_ms = Some(ms)),
        takes: "`timeout` takes a duration with its unit: `500ms`, `30s`, `2m` or `1h`",
    },
    OptionDef {
        name: "deadline",
        kind: Kind::Duration(|options, ms| options.deadline_ms = Some(ms)),
        takes: "`deadline` takes the longest the step may take over all attempts, with its unit: `45s`, `2m`",
    },
    OptionDef {
        name: "fallback",
        kind: Kind::Path(|options, path| options.fallback = Some(path)),
        takes: "`fallback` takes the path of a function `fn() -> T` giving the step's output when every attempt failed",
    },
    OptionDef {
        name: "fallback_model",
        kind: Kind::Str(|options, name| options.fallback_model = Some(name)),
        takes: "`fallback_model` takes the name of a model added with `named_model`, such as `fallback_model = \"fast\"`",
    },
    OptionDef {
        name: "until",
        kind: Kind::Path(|options, path| options.until = Some(path)),
        takes: "`until` takes the path of a function `fn(&T) -> bool` that says when the loop is done, such as `until = approved`",
    },
    OptionDef {
        name: "max",
        kind: Kind::Count {
            set: |options, n| options.max = Some(n),
            zero: Some("`max` is the most iterations a loop runs: at least 1"),
        },
        takes: "`max` takes the most iterations the loop runs, such as `max = 3`",
    },
    OptionDef {
        name: "max_tokens",
        kind: Kind::Count {
            set: |options, n| options.max_tokens = Some(n),
            zero: Some(
                "`max_tokens` is the most tokens a model call of the step generates: at least 1",
            ),
        },
        takes: "`max_tokens` takes the most tokens a model call of the step may generate, such as `max_tokens = 300`",
    },
    OptionDef {
        name: "concurrency",
        kind: Kind::Count {
            set: |options, n| {
                options.concurrency =
                    Some((n, Ident::new("concurrency", proc_macro2::Span::call_site())))
            },
            zero: Some("`concurrency` is the most items of a map step in flight: at least 1"),
        },
        takes: "`concurrency` takes the most items of a map step in flight, such as `concurrency = 8`",
    },
    OptionDef {
        name: "on_error",
        kind: Kind::Path(|options, path| options.on_error = Some(path)),
        takes: "`on_error` takes `stop` (the first failed element stops the map) or `collect` (the key holds a `Result` per element)",
    },
    OptionDef {
        name: "cache",
        kind: Kind::Duration(|options, ms| options.cache_ms = Some(ms)),
        takes: "`cache` takes how long a result stays reusable, with its unit: `30s`, `10m`, `1h`",
    },
    OptionDef {
        name: "wait",
        kind: Kind::Duration(|options, ms| options.wait_ms = Some(ms)),
        takes: "`wait` takes how long a human step waits for its answer, with its unit: `30m`, `48h`",
    },
    OptionDef {
        name: "prompt",
        kind: Kind::Str(|options, text| options.prompt = Some(text)),
        takes: "`prompt` takes what a human step asks, as a string literal: `prompt = \"Approve this refund?\"`",
    },
];

/// Reads the options of one step, reporting each one that is unknown,
/// repeated or of the wrong kind.
pub(super) fn parse_options(cx: &mut Ctxt, raw: Vec<(Ident, Expr)>) -> StepOptions {
    // Reported after the options' own errors, as the user reads them.
    let unbounded = unbounded_until(&raw).cloned();
    let mut options = StepOptions::default();
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in raw {
        let label = name.to_string();
        if seen.contains(&label) {
            cx.error_spanned_by(&name, format!("option `{label}` is given twice"));
            continue;
        }
        match OPTIONS.iter().find(|option| option.name == label) {
            Some(option) => option.read(cx, &mut options, value),
            None => unknown_option(cx, &name, &label),
        }
        // Messages about the option point at its name.
        if let Some((n, _)) = options.concurrency.take() {
            options.concurrency = Some((n, name.clone()));
        }
        seen.push(label);
    }
    if let Some(until) = unbounded {
        cx.error_spanned_by(
            until,
            "a loop needs a bound: add `max = N` (the most iterations) next to `until`",
        );
    }
    options
}

impl OptionDef {
    /// Stores `value` in `options`, or reports why it is not of this option's kind.
    fn read(&self, cx: &mut Ctxt, options: &mut StepOptions, value: Expr) {
        match self.kind {
            Kind::Count { set, zero } => match int_literal(&value) {
                Some((lit, "")) => match (lit.base10_parse::<u32>(), zero) {
                    (Ok(0), Some(zero)) => cx.error_spanned_by(lit, zero),
                    (Ok(n), _) => set(options, n),
                    (Err(error), _) => cx.syn_error(error),
                },
                _ => cx.error_spanned_by(&value, self.takes),
            },
            Kind::Duration(set) => {
                match int_literal(&value).and_then(|(lit, unit)| duration_ms(lit, unit)) {
                    Some(Ok(ms)) => set(options, ms),
                    Some(Err(error)) => cx.syn_error(error),
                    None => cx.error_spanned_by(&value, self.takes),
                }
            }
            Kind::Path(set) => match value {
                Expr::Path(path) if path.qself.is_none() => set(options, path.path),
                other => cx.error_spanned_by(other, self.takes),
            },
            Kind::Str(set) => match value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(text),
                    ..
                }) => set(options, text.value()),
                other => cx.error_spanned_by(other, self.takes),
            },
        }
    }
}

/// Reports an option that is not in [`OPTIONS`], with the one probably meant.
fn unknown_option(cx: &mut Ctxt, name: &Ident, label: &str) {
    let names = || OPTIONS.iter().map(|option| option.name);
    let hint = match suggest::option_alias(label).or_else(|| suggest::closest(label, names())) {
        Some(near) => format!("did you mean `{near}`? "),
        None => String::new(),
    };
    cx.error_spanned_by(
        name,
        format!(
            "unknown step option `{label}`; {hint}the options are {}",
            suggest::list(names())
        ),
    );
}

/// The `until` of a loop without a bound: the first `until` is a path (so it
/// was accepted) and the first `max` is absent or not an integer. A `max`
/// that is an integer but wrong (`0`, `3s`) has its own error instead.
fn unbounded_until(raw: &[(Ident, Expr)]) -> Option<&Ident> {
    let first = |option: &str| raw.iter().find(|(name, _)| name == option);
    let (until, _) = first("until")
        .filter(|(_, value)| matches!(value, Expr::Path(path) if path.qself.is_none()))?;
    let bounded = first("max").is_some_and(|(_, value)| int_literal(value).is_some());
    (!bounded).then_some(until)
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

#[cfg(test)]
mod tests {
    use proc_macro2::Span;
    use quote::ToTokens;
    use syn::{Expr, Ident, parse_quote};

    use super::{OPTIONS, parse_options};
    use crate::ast::StepOptions;
    use crate::ctxt::Ctxt;

    /// `name = value`, as `step!` hands it over.
    fn option(name: &str, value: Expr) -> (Ident, Expr) {
        (Ident::new(name, Span::call_site()), value)
    }

    /// The options read from `raw`, and the messages reported.
    fn read(raw: Vec<(Ident, Expr)>) -> (StepOptions, Vec<String>) {
        let mut cx = Ctxt::default();
        let options = parse_options(&mut cx, raw);
        (options, cx.messages())
    }

    fn path(path: Option<&syn::Path>) -> Option<String> {
        path.map(|path| path.to_token_stream().to_string().replace(' ', ""))
    }

    #[test]
    fn every_option_is_read_into_its_field() {
        let (options, errors) = read(vec![
            option("validate", parse_quote!(checks::short)),
            option("retry", parse_quote!(3)),
            option("reask", parse_quote!(2)),
            option("timeout", parse_quote!(500ms)),
            option("deadline", parse_quote!(2m)),
            option("fallback", parse_quote!(default_text)),
            option("fallback_model", parse_quote!("fast")),
            option("until", parse_quote!(approved)),
            option("max", parse_quote!(4)),
            option("max_tokens", parse_quote!(300)),
            option("cache", parse_quote!(1h)),
        ]);
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(
            path(options.validate.as_ref()).as_deref(),
            Some("checks::short")
        );
        assert_eq!(options.retry, Some(3));
        assert_eq!(options.reask, Some(2));
        assert_eq!(options.timeout_ms, Some(500));
        assert_eq!(options.deadline_ms, Some(120_000));
        assert_eq!(
            path(options.fallback.as_ref()).as_deref(),
            Some("default_text")
        );
        assert_eq!(options.fallback_model.as_deref(), Some("fast"));
        assert_eq!(path(options.until.as_ref()).as_deref(), Some("approved"));
        assert_eq!(options.max, Some(4));
        assert_eq!(options.cache_ms, Some(3_600_000));
        assert_eq!(options.max_tokens, Some(300));
    }

    #[test]
    fn table_names_are_unique() {
        for (i, a) in OPTIONS.iter().enumerate() {
            assert!(
                OPTIONS[i + 1..].iter().all(|b| b.name != a.name),
                "`{}` is in the table twice",
                a.name
            );
        }
    }

    #[test]
    fn durations_take_every_unit_and_reject_others() {
        for (value, ms) in [
            (parse_quote!(250ms), 250),
            (parse_quote!(30s), 30_000),
            (parse_quote!(2m), 120_000),
            (parse_quote!(2min), 120_000),
            (parse_quote!(1h), 3_600_000),
        ] {
            let (options, errors) = read(vec![option("timeout", value)]);
            assert_eq!((options.timeout_ms, errors), (Some(ms), Vec::new()));
        }
        let (options, errors) = read(vec![option("timeout", parse_quote!(30))]);
        assert_eq!(options.timeout_ms, None);
        assert_eq!(
            errors,
            ["`timeout` takes a duration with its unit: `500ms`, `30s`, `2m` or `1h`"]
        );
        let (_, errors) = read(vec![option("cache", parse_quote!(0s))]);
        assert_eq!(
            errors,
            ["a timeout must be positive and fit in 64 bits of milliseconds"]
        );
    }

    #[test]
    fn a_value_of_another_kind_says_what_the_option_takes() {
        let (options, errors) = read(vec![
            option("retry", parse_quote!(3s)),
            option("validate", parse_quote!("not_a_path")),
            option("fallback_model", parse_quote!(fast)),
        ]);
        assert!(options.retry.is_none() && options.validate.is_none());
        assert!(options.fallback_model.is_none());
        assert_eq!(
            errors,
            [
                "`retry` takes the number of retries after a failed attempt, such as `retry = 3`",
                "`validate` takes the path of a function `fn(&T) -> Result<(), E>`, such as `validate = has_files`",
                "`fallback_model` takes the name of a model added with `named_model`, such as `fallback_model = \"fast\"`",
            ]
        );
    }

    #[test]
    fn unknown_option_is_rejected_with_a_suggestion() {
        let (_, errors) = read(vec![
            option("retries", parse_quote!(3)),
            option("colour", parse_quote!(3)),
        ]);
        let list = "the options are `validate`, `retry`, `reask`, `timeout`, `deadline`, \
                    `fallback`, `fallback_model`, `until`, `max`, `max_tokens`, `concurrency`, `on_error`, \
                    `cache`, `wait` and `prompt`";
        assert_eq!(
            errors,
            [
                format!("unknown step option `retries`; did you mean `retry`? {list}"),
                format!("unknown step option `colour`; {list}"),
            ]
        );
    }

    #[test]
    fn repeated_option_is_rejected_and_the_first_kept() {
        let (options, errors) = read(vec![
            option("retry", parse_quote!(2)),
            option("retry", parse_quote!(3)),
        ]);
        assert_eq!(options.retry, Some(2));
        assert_eq!(errors, ["option `retry` is given twice"]);
    }

    #[test]
    fn a_loop_needs_a_positive_bound() {
        let (_, errors) = read(vec![option("until", parse_quote!(done))]);
        assert_eq!(
            errors,
            ["a loop needs a bound: add `max = N` (the most iterations) next to `until`"]
        );
        // A bound written as an integer but wrong gets its own error only.
        let (options, errors) = read(vec![
            option("until", parse_quote!(done)),
            option("max", parse_quote!(0)),
        ]);
        assert_eq!(options.max, None);
        assert_eq!(
            errors,
            ["`max` is the most iterations a loop runs: at least 1"]
        );
        // Zero is a valid count where the table does not forbid it.
        let (options, errors) = read(vec![option("retry", parse_quote!(0))]);
        assert_eq!((options.retry, errors), (Some(0), Vec::new()));
    }
}
