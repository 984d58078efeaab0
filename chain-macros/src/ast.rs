//! The plain model of a step function and of a chain, with the user's spans.

use proc_macro2::Span;
use syn::{Attribute, Ident, Pat, Path, Type, Visibility};

/// A `#[step] async fn`.
pub(crate) struct StepFn {
    /// The function, untouched: it is emitted as written.
    pub(crate) item: syn::ItemFn,
    /// Its parameters after the `&StepCx`.
    pub(crate) params: Vec<Param>,
    /// `T` in `-> StepResult<T>`.
    pub(crate) output: Type,
}

/// One parameter of a step function.
#[derive(Clone)]
pub(crate) struct Param {
    pub(crate) name: Ident,
    /// The type as written (`&str`, `Changes`).
    pub(crate) ty: Type,
    /// Whether it is a shared reference, fed from an owned input field.
    pub(crate) by_ref: bool,
}

/// A `#[chain] async fn`.
pub(crate) struct Chain {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) name: Ident,
    /// The chain's inputs: its parameters.
    pub(crate) inputs: Vec<Input>,
    /// The return type.
    pub(crate) ret: Type,
    /// Every step, in declaration order, including those inside route arms;
    /// a step's index here is its index at run time.
    pub(crate) steps: Vec<StepDecl>,
    /// Every `route!`, in declaration order.
    pub(crate) routes: Vec<RouteDecl>,
    /// The trailing key: what the chain returns.
    pub(crate) output: Option<Ident>,
    /// Span of the body's closing brace, where a missing output is reported.
    pub(crate) body_end: Span,
    /// Some input or statement could not be understood (and was reported), so
    /// keys may be missing from the model: checks that a key exists are skipped
    /// rather than reporting the same mistake twice.
    pub(crate) incomplete: bool,
    /// A hash of the chain's signature and body: resuming needs the same one.
    pub(crate) fingerprint: u64,
}

/// One chain input.
pub(crate) struct Input {
    pub(crate) key: Ident,
    pub(crate) ty: Type,
}

/// One `step!(key = function(args...), options...)`.
pub(crate) struct StepDecl {
    /// The key the output is stored under.
    pub(crate) key: Ident,
    /// `key: Type`, required for functions without `#[step]`.
    pub(crate) ty: Option<Type>,
    /// The function called.
    pub(crate) callee: Path,
    /// The keys passed, in order.
    pub(crate) args: Vec<Ident>,
    /// `f(each list)`: the position of the mapped argument, and the `each`
    /// token (for messages).
    pub(crate) each: Option<(usize, Ident)>,
    pub(crate) options: StepOptions,
    /// The route arm it sits in, `None` at the top of the chain.
    pub(crate) scope: Option<ArmRef>,
}

/// One `route!(key { Pattern => arm, ... })`.
pub(crate) struct RouteDecl {
    /// The key whose value picks the arm.
    pub(crate) key: Ident,
    pub(crate) arms: Vec<ArmDecl>,
    /// The route arm it sits in, `None` at the top of the chain.
    pub(crate) scope: Option<ArmRef>,
}

/// One arm of a route: a pattern and the steps (and routes) it runs.
pub(crate) struct ArmDecl {
    pub(crate) pat: Pat,
    /// The pattern as written, for messages and reports (`Category::Billing`).
    pub(crate) label: String,
    /// The span of the arm's last token.
    pub(crate) end: Span,
    /// Steps directly in this arm.
    pub(crate) steps: Vec<usize>,
    /// Routes directly in this arm.
    pub(crate) routes: Vec<usize>,
}

/// Arm `arm` of route `route`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct ArmRef {
    pub(crate) route: usize,
    pub(crate) arm: usize,
}

/// The options of one step, as written.
#[derive(Default)]
pub(crate) struct StepOptions {
    /// `validate = path`.
    pub(crate) validate: Option<Path>,
    /// `retry = N`.
    pub(crate) retry: Option<u32>,
    /// `timeout = 30s`, in milliseconds.
    pub(crate) timeout_ms: Option<u64>,
    /// `until = path`: the loop's stop condition.
    pub(crate) until: Option<Path>,
    /// `max = N`: the step is a loop of at most `N` iterations.
    pub(crate) max: Option<u32>,
    /// `cache = 1h`, in milliseconds.
    pub(crate) cache_ms: Option<u64>,
    /// `reask = N`.
    pub(crate) reask: Option<u32>,
    /// `fallback = path`: a function returning a default output.
    pub(crate) fallback: Option<Path>,
    /// `fallback_model = "name"`.
    pub(crate) fallback_model: Option<String>,
    /// `deadline = 2m`, in milliseconds.
    pub(crate) deadline_ms: Option<u64>,
    /// `max_tokens = N`: the most tokens a model call of the step generates.
    pub(crate) max_tokens: Option<u32>,
    /// `concurrency = N`: a map step's most items in flight, and its token.
    pub(crate) concurrency: Option<(u32, Ident)>,
    /// `on_error = collect | stop`: what a map step does when an element fails.
    pub(crate) on_error: Option<Path>,
    /// `wait = 48h`: how long a human step waits, in milliseconds.
    pub(crate) wait_ms: Option<u64>,
    /// `prompt = "..."`: what a human step asks.
    pub(crate) prompt: Option<String>,
}

impl StepDecl {
    /// Whether this is a human step (`key: T = human(inputs)`): its value
    /// comes from outside the run.
    pub(crate) fn is_human(&self) -> bool {
        self.callee.is_ident("human")
    }

    /// Whether a map step keeps going past failed elements (`on_error = collect`).
    pub(crate) fn collects(&self) -> bool {
        self.options
            .on_error
            .as_ref()
            .is_some_and(|path| path.is_ident("collect"))
    }
}

impl RouteDecl {
    /// How messages name the route.
    pub(crate) fn describe(&self) -> String {
        format!("the route on `{}`", self.key)
    }
}

impl StepDecl {
    /// The step's name: its function's last path segment.
    pub(crate) fn name(&self) -> String {
        self.callee
            .segments
            .last()
            .map(|segment| segment.ident.to_string())
            .unwrap_or_default()
    }
}
