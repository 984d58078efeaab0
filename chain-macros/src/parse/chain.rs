//! A `#[chain] async fn`: its inputs, return type and body, and the
//! fingerprint that ties a checkpoint to the chain that wrote it.

use syn::{FnArg, ItemFn, ReturnType, Type};

use super::body::parse_body;
use super::{check_plain_async_fn, pat_ident};
use crate::ast::{Chain, Input};
use crate::ctxt::Ctxt;

impl Chain {
    /// Reads a chain function, reporting every mistake in its signature and body.
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
        let body = parse_body(cx, &sig.ident, &block.stmts);
        Some(Chain {
            attrs,
            vis,
            name: sig.ident,
            inputs,
            ret,
            steps: body.steps,
            routes: body.routes,
            output: body.output,
            body_end: block.brace_token.span.close(),
            incomplete: incomplete || !body.complete,
            fingerprint,
        })
    }
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
