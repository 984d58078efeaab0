//! A `#[step] async fn`: its parameters after the `&StepCx` and the type it
//! produces.

use syn::{FnArg, GenericArgument, ItemFn, PathArguments, ReturnType, Type};

use super::{check_plain_async_fn, pat_ident};
use crate::ast::{Param, StepFn};
use crate::ctxt::Ctxt;

/// What kind of function an attribute reads: a step or a tool. Both are
/// `async fn(cx: &Context, params...) -> StepResult<T>`.
pub(crate) struct FnKind {
    /// The attribute, for messages.
    attr: &'static str,
    /// What it is called in messages.
    noun: &'static str,
    /// The context type of its first parameter.
    cx: &'static str,
    /// Why it cannot take `&mut`.
    no_mut: &'static str,
}

/// `#[step]`.
pub(crate) const STEP: FnKind = FnKind {
    attr: "#[step]",
    noun: "step",
    cx: "StepCx",
    no_mut: "keys are shared between steps",
};

/// `#[tool]`.
pub(crate) const TOOL: FnKind = FnKind {
    attr: "#[tool]",
    noun: "tool",
    cx: "ToolCx",
    no_mut: "its arguments come from the model",
};

impl StepFn {
    /// Reads a step function, reporting every mistake in its signature.
    pub(crate) fn from_syn(cx: &mut Ctxt, item: ItemFn) -> Option<StepFn> {
        Self::from_syn_as(cx, item, &STEP)
    }

    /// Reads a function of `kind`, reporting every mistake in its signature.
    pub(crate) fn from_syn_as(cx: &mut Ctxt, item: ItemFn, kind: &FnKind) -> Option<StepFn> {
        let FnKind {
            attr,
            noun,
            cx: cx_type,
            no_mut,
        } = *kind;
        let sig = &item.sig;
        check_plain_async_fn(cx, sig, attr);
        let first_param = format!(
            "a {noun} takes `cx: &{cx_type}` as its first parameter (use `_cx: &{cx_type}` if it needs none)"
        );
        let mut inputs = sig.inputs.iter().peekable();
        match inputs.peek() {
            Some(FnArg::Typed(first)) if is_cx_ref(&first.ty, cx_type) => {
                inputs.next();
            }
            Some(FnArg::Receiver(receiver)) => {
                cx.error_spanned_by(
                    receiver,
                    format!("methods cannot be {noun}s: a {noun} is a free `async fn(cx: &{cx_type}, ...)`; move it out of the `impl` block (it can call the method)"),
                );
                inputs.next();
            }
            // The other parameters are still read, so the step's interface
            // exists and code using it reports no more errors.
            Some(other) => cx.error_spanned_by(other, &first_param),
            None => cx.error_spanned_by(&sig.ident, &first_param),
        }
        let mut params = Vec::new();
        for arg in inputs {
            let FnArg::Typed(typed) = arg else {
                cx.error_spanned_by(
                    arg,
                    format!("a {noun} is a free function; `self` is not allowed"),
                );
                continue;
            };
            let Some(name) = pat_ident(&typed.pat) else {
                cx.error_spanned_by(
                    &typed.pat,
                    format!("a {noun} parameter is written `name: Type`"),
                );
                continue;
            };
            let (ty, by_ref) = match &*typed.ty {
                Type::Reference(reference) if reference.mutability.is_some() => {
                    cx.error_spanned_by(
                        reference,
                        format!("a {noun} cannot take `&mut`: {no_mut}; take `&T` or an owned `T`"),
                    );
                    continue;
                }
                Type::Reference(_) => ((*typed.ty).clone(), true),
                Type::ImplTrait(_) => {
                    cx.error_spanned_by(
                        &typed.ty,
                        format!("a {noun} parameter needs a concrete type, not `impl Trait`"),
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
                let message = format!(
                    "a {noun} returns `StepResult<T>` (or `Result<T, E>`), the value it produces"
                );
                // The interface emitted beside the error produces what was
                // written (`-> String` stands for `StepResult<String>`).
                match &sig.output {
                    ReturnType::Default => {
                        cx.error_spanned_by(&sig.ident, message);
                        syn::parse_quote!(())
                    }
                    ReturnType::Type(_, ty) => {
                        cx.error_spanned_by(ty, message);
                        (**ty).clone()
                    }
                }
            }
        };
        Some(StepFn {
            item,
            params,
            output,
        })
    }
}

/// Whether `ty` is `&StepCx` (`&ToolCx`, …: `name`), by its last path
/// segment, however imported.
fn is_cx_ref(ty: &Type, name: &str) -> bool {
    let Type::Reference(reference) = ty else {
        return false;
    };
    if reference.mutability.is_some() {
        return false;
    }
    matches!(&*reference.elem, Type::Path(path)
        if path.qself.is_none()
            && path.path.segments.last().is_some_and(|s| s.ident == name))
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
