//! A chain's body: its `step!` and `route!` statements, recursively through
//! route arms, and the key it returns.

use syn::{Expr, Ident, Macro, Stmt};

use super::route_macro::RawRoute;
use super::step_macro::{STEP_FORM, parse_step};
use crate::ast::{ArmDecl, ArmRef, RouteDecl, StepDecl};
use crate::ctxt::Ctxt;

/// The steps and routes of a chain body, and the key it returns.
pub(super) struct Body {
    /// Every step, in declaration order, route arms included.
    pub(super) steps: Vec<StepDecl>,
    /// Every route, in declaration order.
    pub(super) routes: Vec<RouteDecl>,
    /// The trailing key, if the body ends with one.
    pub(super) output: Option<Ident>,
    /// False when some statement could not be understood (and was reported).
    pub(super) complete: bool,
}

/// Reads the statements of chain `chain`'s body.
pub(super) fn parse_body(cx: &mut Ctxt, chain: &Ident, stmts: &[Stmt]) -> Body {
    let mut parser = BodyParser {
        cx,
        chain,
        steps: Vec::new(),
        routes: Vec::new(),
        complete: true,
    };
    let output = parser.statements(stmts, None);
    Body {
        steps: parser.steps,
        routes: parser.routes,
        output,
        complete: parser.complete,
    }
}

/// Collects the steps and routes of a chain body, recursively through route arms.
struct BodyParser<'a> {
    cx: &'a mut Ctxt,
    /// The chain's name, for messages.
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

    /// Records one `step!` in `scope`.
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

    /// Records one `route!` in `scope`, then the statements of each arm.
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

/// Whether `mac` is the macro `name`, however it is imported.
fn is_macro(mac: &Macro, name: &str) -> bool {
    mac.path.segments.last().is_some_and(|s| s.ident == name)
}
