//! A `#[step] async fn`: its parameters after the `&StepCx` and the type it
//! produces.

use syn::{FnArg, GenericArgument, ItemFn, PathArguments, ReturnType, Type};

use super::{check_plain_async_fn, pat_ident};
use crate::ast::{Param, StepFn};
use crate::ctxt::Ctxt;

impl StepFn {
    /// Reads a step function, reporting every mistake in its signature.
    pub(crate) fn from_syn(cx: &mut Ctxt, item: ItemFn) -> Option<StepFn> {
        let sig = &item.sig;
        check_plain_async_fn(cx, sig, "#[step]");
        let mut inputs = sig.inputs.iter().peekable();
        match inputs.peek() {
            Some(FnArg::Typed(first)) if is_step_cx_ref(&first.ty) => {
                inputs.next();
            }
            Some(FnArg::Receiver(receiver)) => {
                cx.error_spanned_by(
                    receiver,
                    "methods cannot be steps: a step is a free `async fn(cx: &StepCx, ...)`; move it out of the `impl` block (it can call the method)",
                );
                inputs.next();
            }
            // The other parameters are still read, so the step's interface
            // exists and code using it reports no more errors.
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

/// Whether `ty` is `&StepCx` (by its last path segment, however imported).
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
