//! One `step!(key = function(args...), options...)` as written, then as a
//! [`StepDecl`].

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Macro, Path, Token, Type, parenthesized, token};

use super::options::parse_options;
use crate::ast::{ArmRef, StepDecl};
use crate::ctxt::Ctxt;

/// How a step is written, for messages.
pub(super) const STEP_FORM: &str = "`step!(key = function(input, ...))`";

/// `step!` as written, before its options are interpreted.
struct RawStep {
    key: Ident,
    ty: Option<Type>,
    callee: Path,
    args: Punctuated<RawArg, Token![,]>,
    options: Vec<(Ident, Expr)>,
}

/// One argument as written: a key, `each key` (a map step), or a mistake.
struct RawArg {
    each: Option<Ident>,
    expr: Expr,
}

impl Parse for RawArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let each = if input.peek(Ident) && input.peek2(Ident) {
            let fork = input.fork();
            let word: Ident = fork.parse()?;
            if word == "each" {
                input.parse::<Ident>()?;
                Some(word)
            } else {
                None
            }
        } else {
            None
        };
        Ok(RawArg {
            each,
            expr: input.parse()?,
        })
    }
}

impl Parse for RawStep {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key: Ident = input.parse().map_err(|e| {
            syn::Error::new(e.span(), format!("expected the output key: {STEP_FORM}"))
        })?;
        let ty = if input.peek(Token![:]) {
            input.parse::<Token![:]>()?;
            Some(input.parse::<Type>()?)
        } else {
            None
        };
        input.parse::<Token![=]>().map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("expected `=` after the key `{key}`: {STEP_FORM}"),
            )
        })?;
        let callee = Path::parse_mod_style(input).map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("expected the step function to call: {STEP_FORM}"),
            )
        })?;
        if !input.peek(token::Paren) {
            return Err(syn::Error::new(
                input.span(),
                format!(
                    "expected `(` after `{}`: a step calls its function with keys, {STEP_FORM}",
                    quote::ToTokens::to_token_stream(&callee)
                        .to_string()
                        .replace(' ', "")
                ),
            ));
        }
        let content;
        parenthesized!(content in input);
        let args = Punctuated::parse_terminated(&content)?;
        if input.peek(Token![.]) && input.peek2(Token![await]) {
            let dot: Token![.] = input.parse()?;
            let awaited: Token![await] = input.parse()?;
            return Err(syn::Error::new_spanned(
                quote::quote!(#dot #awaited),
                "no `.await` in `step!`: the chain awaits each step itself, as soon as its inputs are ready; write `step!(key = f(x))`",
            ));
        }
        let mut options = Vec::new();
        while !input.is_empty() {
            input.parse::<Token![,]>().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected `,` before the next option: `step!(key = f(x), retry = 3)`",
                )
            })?;
            if input.is_empty() {
                break;
            }
            let name: Ident = input.parse().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected an option: `validate = path`, `retry = N` or `timeout = 30s`",
                )
            })?;
            input.parse::<Token![=]>().map_err(|e| {
                syn::Error::new(e.span(), format!("expected `=` after the option `{name}`"))
            })?;
            let value: Expr = input.parse()?;
            options.push((name, value));
        }
        Ok(RawStep {
            key,
            ty,
            callee,
            args,
            options,
        })
    }
}

/// Reads one `step!` in `scope`; `None` (with the error recorded) when it
/// cannot be understood.
pub(super) fn parse_step(cx: &mut Ctxt, mac: &Macro, scope: Option<ArmRef>) -> Option<StepDecl> {
    if mac.tokens.is_empty() {
        cx.error_spanned_by(mac, format!("an empty step: write {STEP_FORM}"));
        return None;
    }
    let raw: RawStep = match mac.parse_body() {
        Ok(raw) => raw,
        Err(error) => {
            cx.syn_error(error);
            return None;
        }
    };
    let mut args = Vec::new();
    let mut each: Option<(usize, Ident)> = None;
    for (position, raw_arg) in raw.args.iter().enumerate() {
        if let Some(word) = &raw_arg.each {
            match &each {
                None => each = Some((position, word.clone())),
                Some(_) => cx.error_spanned_by(
                    word,
                    format!(
                        "step `{}` maps over two inputs: a map step runs once per element of one list (`each`); zip the lists into one in a step first",
                        raw.key
                    ),
                ),
            }
        }
        match &raw_arg.expr {
            Expr::Path(path) if path.qself.is_none() && path.path.get_ident().is_some() => {
                args.extend(path.path.get_ident().cloned());
            }
            Expr::Reference(reference) if matches!(&*reference.expr, Expr::Path(_)) => cx.error_spanned_by(
                reference,
                "a step's inputs are passed by name, without `&`: whether the step borrows or clones a key is decided by its parameter's type (`&T` borrows, `T` clones)",
            ),
            other => cx.error_spanned_by(
                other,
                "a step's inputs are keys (a chain input or another step's output), not expressions; compute the value in a step",
            ),
        }
    }
    let options = parse_options(cx, raw.options);
    if options.max.is_some() && args.is_empty() && raw.args.is_empty() {
        cx.error_spanned_by(
            &raw.key,
            "a loop step feeds each output back in as its first input, so it needs at least one input",
        );
    }
    if let Some(path) = &options.on_error
        && !(path.is_ident("collect") || path.is_ident("stop"))
    {
        cx.error_spanned_by(
            path,
            "`on_error` takes `stop` (the first failed element stops the map) or `collect` (the key holds a `Result` per element)",
        );
    }
    let human = raw.callee.is_ident("human");
    if human {
        human_step(cx, &raw.key, raw.ty.is_some(), each.as_ref(), &options);
    } else {
        for (given, option) in [
            (options.wait_ms.is_some(), "wait"),
            (options.prompt.is_some(), "prompt"),
        ] {
            if given {
                cx.error_spanned_by(
                    &raw.key,
                    format!(
                        "`{option}` is for human steps (`{key}: T = human(inputs)`), whose value comes from a person; step `{key}` runs a function",
                        key = raw.key
                    ),
                );
            }
        }
    }
    if let Some((_, word)) = &each {
        map_options(cx, &raw.key, word, &options);
    } else if let Some(path) = &options.on_error {
        cx.error_spanned_by(
            path,
            format!(
                "`on_error` says what a map step does when an element fails, but step `{}` maps over nothing: write `f(each list)` to run it once per element",
                raw.key
            ),
        );
    } else if let Some((_, name)) = &options.concurrency {
        cx.error_spanned_by(
            name,
            format!(
                "`concurrency` bounds the items of a map step in flight, but step `{}` maps over nothing: write `f(each list)` to run it once per element",
                raw.key
            ),
        );
    }
    Some(StepDecl {
        key: raw.key,
        ty: raw.ty,
        callee: raw.callee,
        args,
        each,
        options,
        scope,
    })
}

/// Reports the options a map step cannot take (a loop's), on its `each`.
fn map_options(cx: &mut Ctxt, key: &Ident, each: &Ident, options: &crate::ast::StepOptions) {
    let given = [
        (options.max.is_some(), "`max`"),
        (options.until.is_some(), "`until`"),
    ];
    if let Some(refused) = refused(&given, " or ") {
        cx.error_spanned_by(
            each,
            format!(
                "map step `{key}` cannot take {refused}: a map step runs each element once, it cannot also be a loop; to repeat work per element, map a sub-chain whose step loops"
            ),
        );
    }
}

/// Checks a human step (`key: T = human(inputs)`): it needs its answer's
/// type, maps over nothing, and takes only `wait`, `prompt` and `fallback`.
fn human_step(
    cx: &mut Ctxt,
    key: &Ident,
    typed: bool,
    each: Option<&(usize, Ident)>,
    options: &crate::ast::StepOptions,
) {
    if !typed {
        cx.error_spanned_by(
            key,
            format!(
                "human step `{key}` needs the type of its answer: write `{key}: Approval = human(...)`, and the compiler checks every answer against it"
            ),
        );
    }
    if let Some((_, word)) = each {
        cx.error_spanned_by(
            word,
            format!("human step `{key}` cannot map over a list: a run asks each question once"),
        );
    }
    let given = [
        (options.validate.is_some(), "`validate`"),
        (options.retry.is_some(), "`retry`"),
        (options.reask.is_some(), "`reask`"),
        (options.timeout_ms.is_some(), "`timeout`"),
        (options.deadline_ms.is_some(), "`deadline`"),
        (options.cache_ms.is_some(), "`cache`"),
        (options.fallback_model.is_some(), "`fallback_model`"),
        (options.max.is_some(), "`max`"),
        (options.until.is_some(), "`until`"),
        (options.max_tokens.is_some(), "`max_tokens`"),
        (options.concurrency.is_some(), "`concurrency`"),
        (options.on_error.is_some(), "`on_error`"),
    ];
    if let Some(refused) = refused(&given, ", ") {
        cx.error_spanned_by(
            key,
            format!(
                "human step `{key}` cannot take {refused}: its value comes from a person, so it takes only `wait = 48h` (how long to wait), `prompt = \"...\"` (what to ask) and `fallback = f` (the answer when the wait runs out)"
            ),
        );
    }
}

/// The options of `given` that were written, joined by `separator`; `None`
/// when none was.
fn refused(given: &[(bool, &str)], separator: &str) -> Option<String> {
    let written: Vec<&str> = given
        .iter()
        .filter(|(written, _)| *written)
        .map(|(_, option)| *option)
        .collect();
    (!written.is_empty()).then(|| written.join(separator))
}
