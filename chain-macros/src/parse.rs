//! Syntax: from the user's tokens to the model in [`crate::ast`].

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{
    Block, Expr, ExprLit, FnArg, GenericArgument, Ident, ItemFn, Lit, Macro, Pat, Path,
    PathArguments, ReturnType, Signature, Stmt, Token, Type, parenthesized, token,
};

use crate::ast::{ArmDecl, ArmRef, Chain, Input, Param, RouteDecl, StepDecl, StepFn, StepOptions};
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

/// How a step is written, for messages.
const STEP_FORM: &str = "`step!(key = function(input, ...))`";

impl StepFn {
    pub(crate) fn from_syn(cx: &mut Ctxt, item: ItemFn) -> Option<StepFn> {
        let sig = &item.sig;
        check_plain_async_fn(cx, sig, "#[step]");
        let mut inputs = sig.inputs.iter();
        match inputs.next() {
            Some(FnArg::Typed(first)) if is_step_cx_ref(&first.ty) => {}
            Some(other) => cx.error_spanned_by(
                other,
                "a step takes `cx: &StepCx` as its first parameter (use `_cx: &StepCx` if it needs none)",
            ),
            None => cx.error_spanned_by(
                &sig.ident,
                "a step takes `cx: &StepCx` as its first parameter (use `_cx: &StepCx` if it needs none)",
            ),
        }
        let mut params = Vec::new();
        for arg in inputs {
            let FnArg::Typed(typed) = arg else {
                cx.error_spanned_by(arg, "a step is a free function; `self` is not allowed");
                continue;
            };
            let Some(name) = pat_ident(&typed.pat) else {
                cx.error_spanned_by(&typed.pat, "a step parameter is written `name: Type`");
                continue;
            };
            let (ty, by_ref) = match &*typed.ty {
                Type::Reference(reference) if reference.mutability.is_some() => {
                    cx.error_spanned_by(
                        reference,
                        "a step cannot take `&mut`: keys are shared between steps; take `&T` or an owned `T`",
                    );
                    continue;
                }
                Type::Reference(_) => ((*typed.ty).clone(), true),
                Type::ImplTrait(_) => {
                    cx.error_spanned_by(
                        &typed.ty,
                        "a step parameter needs a concrete type, not `impl Trait`",
                    );
                    continue;
                }
                other => (other.clone(), false),
            };
            params.push(Param { name, ty, by_ref });
        }
        let output = match step_output_type(&sig.output) {
            Some(ty) => ty,
            None => {
                let message =
                    "a step returns `StepResult<T>` (or `Result<T, E>`), the value it produces";
                match &sig.output {
                    ReturnType::Default => cx.error_spanned_by(&sig.ident, message),
                    ReturnType::Type(_, ty) => cx.error_spanned_by(ty, message),
                }
                return None;
            }
        };
        Some(StepFn {
            item,
            params,
            output,
        })
    }
}

impl Chain {
    pub(crate) fn from_syn(cx: &mut Ctxt, item: ItemFn) -> Option<Chain> {
        let fingerprint = fingerprint(&item);
        let ItemFn {
            attrs,
            vis,
            sig,
            block,
        } = item;
        check_plain_async_fn(cx, &sig, "#[chain]");
        let mut incomplete = false;
        let mut inputs = Vec::new();
        for arg in &sig.inputs {
            let FnArg::Typed(typed) = arg else {
                cx.error_spanned_by(arg, "a chain is a free function; `self` is not allowed");
                incomplete = true;
                continue;
            };
            let Some(key) = pat_ident(&typed.pat) else {
                cx.error_spanned_by(&typed.pat, "a chain input is written `name: Type`");
                incomplete = true;
                continue;
            };
            if let Type::Reference(reference) = &*typed.ty {
                cx.error_spanned_by(
                    reference,
                    "a chain input is an owned value (runs are logged and checkpointed); take `String` rather than `&str`, `T` rather than `&T`",
                );
                incomplete = true;
                continue;
            }
            inputs.push(Input {
                key,
                ty: (*typed.ty).clone(),
            });
        }
        let ret = match &sig.output {
            ReturnType::Type(_, ty) => (**ty).clone(),
            ReturnType::Default => {
                cx.error_spanned_by(
                    &sig.ident,
                    format!(
                        "chain `{}` needs a return type: the type of the key it returns (`-> Review`)",
                        sig.ident
                    ),
                );
                return None;
            }
        };
        let mut body = BodyParser {
            cx,
            chain: &sig.ident,
            steps: Vec::new(),
            routes: Vec::new(),
            complete: true,
        };
        let output = body.statements(&block.stmts, None);
        let BodyParser {
            steps,
            routes,
            complete: body_complete,
            ..
        } = body;
        Some(Chain {
            attrs,
            vis,
            name: sig.ident,
            inputs,
            ret,
            steps,
            routes,
            output,
            body_end: block.brace_token.span.close(),
            incomplete: incomplete || !body_complete,
            fingerprint,
        })
    }
}

fn check_plain_async_fn(cx: &mut Ctxt, sig: &Signature, attr: &str) {
    if sig.asyncness.is_none() {
        cx.error_spanned_by(sig.fn_token, format!("`{attr}` goes on an `async fn`"));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        cx.error_spanned_by(
            &sig.generics,
            format!("`{attr}` functions cannot be generic"),
        );
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, format!("`{attr}` functions cannot be variadic"));
    }
}

fn pat_ident(pat: &Pat) -> Option<Ident> {
    match pat {
        Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => Some(pat.ident.clone()),
        _ => None,
    }
}

fn is_step_cx_ref(ty: &Type) -> bool {
    let Type::Reference(reference) = ty else {
        return false;
    };
    if reference.mutability.is_some() {
        return false;
    }
    matches!(&*reference.elem, Type::Path(path)
        if path.qself.is_none()
            && path.path.segments.last().is_some_and(|s| s.ident == "StepCx"))
}

/// `T` from `StepResult<T>` or `Result<T, E>`.
fn step_output_type(output: &ReturnType) -> Option<Type> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    let Type::Path(path) = &**ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != "StepResult" && last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(ty) => Some(ty.clone()),
        _ => None,
    }
}

/// Collects the steps and routes of a chain body, recursively through route arms.
struct BodyParser<'a> {
    cx: &'a mut Ctxt,
    chain: &'a Ident,
    steps: Vec<StepDecl>,
    routes: Vec<RouteDecl>,
    /// False when some statement could not be understood (and was reported).
    complete: bool,
}

impl BodyParser<'_> {
    /// Parses statements in `scope`; at the top, the last one may be the
    /// returned key, which is returned.
    fn statements(&mut self, stmts: &[Stmt], scope: Option<ArmRef>) -> Option<Ident> {
        let mut output = None;
        let count = stmts.len();
        for (i, stmt) in stmts.iter().enumerate() {
            let is_last = i + 1 == count;
            let mac = match stmt {
                Stmt::Macro(stmt) => Some(&stmt.mac),
                Stmt::Expr(Expr::Macro(expr), _) => Some(&expr.mac),
                _ => None,
            };
            if let Some(mac) = mac {
                if is_macro(mac, "step") {
                    self.step(mac, scope);
                    continue;
                }
                if is_macro(mac, "route") {
                    self.route(mac, scope);
                    continue;
                }
            }
            match stmt {
                Stmt::Expr(Expr::Path(path), None)
                    if is_last
                        && scope.is_none()
                        && path.qself.is_none()
                        && path.path.get_ident().is_some() =>
                {
                    output = path.path.get_ident().cloned();
                }
                Stmt::Expr(expr, None) if is_last && scope.is_none() => {
                    self.complete = false;
                    self.cx.error_spanned_by(
                        expr,
                        format!(
                            "chain `{}` ends with the key it returns, a plain name such as `final_review`",
                            self.chain
                        ),
                    );
                }
                other => {
                    self.complete = false;
                    let place = if scope.is_none() {
                        "a chain body"
                    } else {
                        "a route arm"
                    };
                    self.cx.error_spanned_by(
                        other,
                        format!(
                            "{place} holds only {STEP_FORM} and `route!(key {{ Pattern => ... }})` statements{}; move other code into a step",
                            if scope.is_none() { ", then the key it returns" } else { "" }
                        ),
                    );
                }
            }
        }
        output
    }

    fn step(&mut self, mac: &Macro, scope: Option<ArmRef>) {
        match parse_step(self.cx, mac, scope) {
            Some(step) => {
                if let Some(arm) = scope {
                    self.routes[arm.route].arms[arm.arm]
                        .steps
                        .push(self.steps.len());
                }
                self.steps.push(step);
            }
            None => self.complete = false,
        }
    }

    fn route(&mut self, mac: &Macro, scope: Option<ArmRef>) {
        let raw: RawRoute = match mac.parse_body() {
            Ok(raw) => raw,
            Err(error) => {
                self.cx.syn_error(error);
                self.complete = false;
                return;
            }
        };
        let index = self.routes.len();
        if let Some(arm) = scope {
            self.routes[arm.route].arms[arm.arm].routes.push(index);
        }
        self.routes.push(RouteDecl {
            key: raw.key,
            arms: Vec::new(),
            scope,
        });
        for (arm, (pat, body, end)) in raw.arms.into_iter().enumerate() {
            let label = quote::ToTokens::to_token_stream(&pat)
                .to_string()
                .replace(" :: ", "::")
                .replace(" (", "(")
                .replace("( ", "(")
                .replace(" )", ")");
            self.routes[index].arms.push(ArmDecl {
                pat,
                label,
                end,
                steps: Vec::new(),
                routes: Vec::new(),
            });
            self.statements(&body, Some(ArmRef { route: index, arm }));
        }
    }
}

/// `route!` as written.
struct RawRoute {
    key: Ident,
    arms: Vec<(Pat, Vec<Stmt>, proc_macro2::Span)>,
}

const ROUTE_FORM: &str = "`route!(key { Enum::Variant => step!(...), ... })`";

impl Parse for RawRoute {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key: Ident = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("expected the key to route on: {ROUTE_FORM}"),
            )
        })?;
        if !input.peek(token::Brace) {
            return Err(syn::Error::new(
                input.span(),
                format!("expected `{{` and the arms after `{key}`: {ROUTE_FORM}"),
            ));
        }
        let content;
        syn::braced!(content in input);
        if !input.is_empty() {
            return Err(input.error(format!("unexpected tokens after the arms: {ROUTE_FORM}")));
        }
        let mut arms = Vec::new();
        while !content.is_empty() {
            let pat = Pat::parse_multi_with_leading_vert(&content)?;
            if content.peek(Token![if]) {
                return Err(content.error(
                    "route arms take no guards; route on a key whose value already says which arm to take",
                ));
            }
            content.parse::<Token![=>]>().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    format!("expected `=>` after the pattern: {ROUTE_FORM}"),
                )
            })?;
            let (body, end) = if content.peek(token::Brace) {
                let block;
                let brace = syn::braced!(block in content);
                let stmts = Block::parse_within(&block)?;
                if content.peek(Token![,]) {
                    content.parse::<Token![,]>()?;
                }
                (stmts, brace.span.close())
            } else {
                let expr: Expr = content.parse()?;
                let end = match &expr {
                    Expr::Macro(mac) => mac.mac.delimiter.span().close(),
                    other => syn::spanned::Spanned::span(other),
                };
                if !content.is_empty() {
                    content
                        .parse::<Token![,]>()
                        .map_err(|e| syn::Error::new(e.span(), "expected `,` after the arm"))?;
                }
                (vec![Stmt::Expr(expr, None)], end)
            };
            arms.push((pat, body, end));
        }
        if arms.is_empty() {
            return Err(syn::Error::new(
                key.span(),
                format!("a route needs arms: {ROUTE_FORM}"),
            ));
        }
        Ok(RawRoute { key, arms })
    }
}

fn is_macro(mac: &Macro, name: &str) -> bool {
    mac.path.segments.last().is_some_and(|s| s.ident == name)
}

/// `step!` as written, before its options are interpreted.
struct RawStep {
    key: Ident,
    ty: Option<Type>,
    callee: Path,
    args: Punctuated<Expr, Token![,]>,
    options: Vec<(Ident, Expr)>,
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

fn parse_step(cx: &mut Ctxt, mac: &Macro, scope: Option<ArmRef>) -> Option<StepDecl> {
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
    for arg in &raw.args {
        match arg {
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
    Some(StepDecl {
        key: raw.key,
        ty: raw.ty,
        callee: raw.callee,
        args,
        options,
        scope,
    })
}

fn parse_options(cx: &mut Ctxt, raw: Vec<(Ident, Expr)>) -> StepOptions {
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

fn int_literal(expr: &Expr) -> Option<(&syn::LitInt, &str)> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => Some((lit, lit.suffix())),
        _ => None,
    }
}

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

/// FNV-1a of the chain's signature and body as tokens (comments and
/// formatting do not count; doc attributes are left out).
fn fingerprint(item: &ItemFn) -> u64 {
    let sig = &item.sig;
    let block = &item.block;
    let text = quote::quote!(#sig #block).to_string();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
