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
