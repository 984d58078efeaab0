//! Hygiene: user types, patterns and paths as seen from inside the generated
//! child module, the visibility its items get, and the type stored under each
//! key. Every generated module does `use super::*`, so names it defines itself
//! must not capture the user's.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Ident, Pat, Path, PathArguments, PathSegment, Type, Visibility};

use crate::ast::StepDecl;

/// Names the generated modules define; user paths starting with one of them
/// are pointed at the parent module so they keep their meaning.
const GENERATED_NAMES: [&str; 6] = ["Input", "Output", "Return", "Step", "Args", "Tool"];

/// Functions the generated modules define; a step function with one of these
/// names is called through `super::` so the module's own item does not shadow it.
const GENERATED_FNS: [&str; 17] = [
    "run",
    "stub",
    "sweep",
    "answer",
    "reply",
    "answer_within",
    "execute",
    "execute_with_events",
    "resume",
    "execute_as",
    "definition",
    "graph",
    "call",
    "__execute",
    "__run_as_step",
    "__chain_return",
    "__chain_unused_keys",
];

/// The type of a step's key: as annotated, or the output of the step's
/// generated `Step` implementation.
pub(super) fn slot_type(step: &StepDecl) -> TokenStream {
    match &step.ty {
        Some(ty) => {
            let ty = child_type(ty);
            quote!(#ty)
        }
        None => {
            let mut callee = step.callee.clone();
            ChildPaths { callee: false }.visit_path_mut(&mut callee);
            let output = quote_spanned!(step.callee.span()=> <#callee::Step as ::prompt_chain::Step>::Output);
            if step.options.max.is_some() {
                quote!(::prompt_chain::Loop<#output>)
            } else if step.each.is_some() && step.collects() {
                quote!(::std::vec::Vec<::core::result::Result<#output, ::prompt_chain::ItemError>>)
            } else if step.each.is_some() {
                quote!(::std::vec::Vec<#output>)
            } else {
                output
            }
        }
    }
}

/// The owned field type that feeds a parameter: `String` for `&str`,
/// `Vec<T>` for `&[T]`, `PathBuf` for `&Path`, `T` for `&T` and for `T`.
pub(super) fn owned_type(ty: &Type) -> Type {
    let Type::Reference(reference) = ty else {
        return ty.clone();
    };
    match &*reference.elem {
        Type::Path(path) if path.qself.is_none() && path.path.is_ident("str") => {
            syn::parse_quote!(::std::string::String)
        }
        Type::Path(path) if path.qself.is_none() && path.path.is_ident("Path") => {
            syn::parse_quote!(::std::path::PathBuf)
        }
        Type::Slice(slice) => {
            let elem = &slice.elem;
            syn::parse_quote!(::std::vec::Vec<#elem>)
        }
        elem => elem.clone(),
    }
}

/// `ty` as seen from the generated child module, which imports the parent with
/// `use super::*`: `self::`/`super::` paths move one level up, and paths that
/// start with a name the module defines itself point at the parent's item.
pub(super) fn child_type(ty: &Type) -> Type {
    let mut ty = ty.clone();
    ChildPaths { callee: false }.visit_type_mut(&mut ty);
    ty
}

/// A route pattern as seen from the child module (see [`child_type`]).
pub(super) fn child_pat(pat: &Pat) -> Pat {
    let mut pat = pat.clone();
    ChildPaths { callee: false }.visit_pat_mut(&mut pat);
    pat
}

/// A function path as seen from the child module: like [`child_type`], and a
/// bare name that collides with a generated function is taken from the parent.
pub(super) fn child_path(path: &Path) -> Path {
    let mut path = path.clone();
    ChildPaths { callee: true }.visit_path_mut(&mut path);
    path
}

/// A step's path as a type path from the child module (its `Step` type).
pub(super) fn step_path(path: &Path) -> Path {
    let mut path = path.clone();
    ChildPaths { callee: false }.visit_path_mut(&mut path);
    path
}

/// Rewrites paths for the child module; see [`child_type`] and [`child_path`].
struct ChildPaths {
    /// Whether the path visited is a called function (a step or a hook).
    callee: bool,
}

impl VisitMut for ChildPaths {
    fn visit_path_mut(&mut self, path: &mut Path) {
        let top_callee = std::mem::replace(&mut self.callee, false);
        let single = path.segments.len() == 1;
        if let (None, Some(first)) = (path.leading_colon, path.segments.first_mut()) {
            let name = first.ident.to_string();
            if name == "self" {
                first.ident = Ident::new("super", first.ident.span());
            } else if name == "super"
                || GENERATED_NAMES.contains(&name.as_str())
                || (top_callee && single && GENERATED_FNS.contains(&name.as_str()))
            {
                let span = first.ident.span();
                path.segments.insert(
                    0,
                    PathSegment {
                        ident: Ident::new("super", span),
                        arguments: PathArguments::None,
                    },
                );
            }
        }
        visit_mut::visit_path_mut(self, path);
    }
}

/// The visibility, inside the generated child module, that matches `vis` on
/// the function: items are exactly as visible as the function they describe
/// (a private function's `Input` is visible in the function's own module).
pub(super) fn child_vis(vis: &Visibility) -> TokenStream {
    match vis {
        Visibility::Public(_) => quote!(pub),
        Visibility::Inherited => quote!(pub(super)),
        Visibility::Restricted(restricted) => {
            let path = &restricted.path;
            let first = path.segments.first().map(|s| s.ident.to_string());
            match first.as_deref() {
                Some("crate") => quote!(pub(in #path)),
                Some("self") if path.segments.len() == 1 => quote!(pub(super)),
                _ => {
                    let mut path = (**path).clone();
                    ChildPaths { callee: false }.visit_path_mut(&mut path);
                    quote!(pub(in #path))
                }
            }
        }
    }
}
