//! One `route!(key { Pattern => arm, ... })` as written.

use syn::parse::{Parse, ParseStream};
use syn::{Block, Expr, Ident, Pat, Stmt, Token, token};

/// `route!` as written.
pub(super) struct RawRoute {
    /// The key whose value picks the arm.
    pub(super) key: Ident,
    /// Each arm: its pattern, its statements and the span of its last token.
    pub(super) arms: Vec<(Pat, Vec<Stmt>, proc_macro2::Span)>,
}

/// How a route is written, for messages.
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
