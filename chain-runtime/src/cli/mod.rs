//! The runs command-line tool over a SQLite store (feature `cli`): list runs,
//! show or export one, resume it, fork it from an edited unit, draw a chain,
//! write a run's HTML timeline, and keep the file tidy (retention, vacuum,
//! size).
//!
//! Reading a store needs no chain: `prompt-chain --store runs.db list` works
//! from the `prompt-chain` binary (`cargo install prompt-chain --features
//! cli`). Resuming, forking, drawing or writing a timeline runs the user's
//! own chains with their models, which only the user's code can name, so
//! those commands live in a binary of the user's that registers its chains:
//!
//! ```no_run
//! # use prompt_chain_runtime as prompt_chain;
//! use prompt_chain::{Runtime, cli::Cli};
//! # mod support_router { pub fn entry() -> prompt_chain_runtime::definition::ChainEntry { unimplemented!() } }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> std::process::ExitCode {
//!     Cli::new()
//!         .chain(support_router::entry())
//!         .runtime(|store| Runtime::builder().checkpoints(store).build())
//!         .main()
//!         .await
//! }
//! ```

mod commands;
mod render;

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::definition::ChainEntry;
use crate::runtime::Runtime;
use crate::store::SqliteStore;

/// Builds the runtime that resumes runs, from the store the command opened.
type RuntimeFn = Arc<dyn Fn(SqliteStore) -> Runtime + Send + Sync>;

/// The runs tool: the chains it can resume and how to build their runtime.
#[derive(Clone)]
pub struct Cli {
    chains: Vec<ChainEntry>,
    runtime: RuntimeFn,
    name: String,
}

impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cli")
            .field("chains", &self.chains)
            .finish_non_exhaustive()
    }
}

impl Default for Cli {
    fn default() -> Self {
        Self::new()
    }
}

/// What went wrong with a command: its message, and the exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    message: String,
    code: u8,
}

impl CliError {
    /// A failed command (exit code 1).
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 1,
        }
    }

    /// The process exit code it maps to (1: the command failed, 2: usage).
    pub fn exit_code(&self) -> u8 {
        self.code
    }
}

impl From<crate::store::StoreError> for CliError {
    fn from(error: crate::store::StoreError) -> Self {
        Self::failed(error.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        Self::failed(error.to_string())
    }
}

impl Cli {
    /// A tool with no chains registered (reading stores only); runs are
    /// resumed in a runtime with the store and nothing else until
    /// [`runtime`](Cli::runtime) says otherwise.
    pub fn new() -> Self {
        Self {
            chains: Vec::new(),
            runtime: Arc::new(|store| Runtime::builder().checkpoints(store).build()),
            name: "prompt-chain".to_owned(),
        }
    }

    /// Registers a chain (`<chain>::entry()`): its runs can be resumed and
    /// forked, and its graph drawn.
    #[must_use]
    pub fn chain(mut self, entry: ChainEntry) -> Self {
        self.chains.push(entry);
        self
    }

    /// How to build the runtime that resumes runs (models, dependencies,
    /// policies) around the store the command opened.
    #[must_use]
    pub fn runtime(
        mut self,
        build: impl Fn(SqliteStore) -> Runtime + Send + Sync + 'static,
    ) -> Self {
        self.runtime = Arc::new(build);
        self
    }

    /// The program's name in help and usage (default `prompt-chain`).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Runs the command in the process's arguments, printing to stdout (in
    /// colour where a terminal is attached and `NO_COLOR` is unset) and
    /// errors to stderr.
    pub async fn main(self) -> ExitCode {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let mut out = std::io::stdout().lock();
        match self.run_with(std::env::args_os(), &mut out, colour).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                let _ = out.flush();
                eprintln!("{}: {error}", self.name);
                ExitCode::from(error.exit_code())
            }
        }
    }

    /// Runs the command in `args` (the program's name first), writing to
    /// `out`; `colour` adds ANSI colours.
    pub async fn run_with<I, T>(
        &self,
        args: I,
        out: &mut dyn Write,
        colour: bool,
    ) -> Result<(), CliError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = match self.command().try_get_matches_from(args) {
            Ok(matches) => matches,
            Err(error) => {
                use clap::error::ErrorKind;
                if matches!(
                    error.kind(),
                    ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
                ) {
                    write!(out, "{error}")?;
                    return Ok(());
                }
                return Err(CliError {
                    message: error
                        .to_string()
                        .trim_start_matches("error: ")
                        .trim_end()
                        .to_owned(),
                    code: 2,
                });
            }
        };
        let style = render::Style { colour };
        commands::dispatch(self, &matches, out, style).await
    }

    /// The chain registered under `name`.
    pub(crate) fn entry(&self, name: &str) -> Result<&ChainEntry, CliError> {
        self.chains
            .iter()
            .find(|entry| entry.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.chains.iter().map(ChainEntry::name).collect();
                CliError::failed(if known.is_empty() {
                    format!(
                        "this tool knows no chains, so it cannot run `{name}`: register it in your own binary with `Cli::new().chain({name}::entry())`"
                    )
                } else {
                    format!(
                        "no chain `{name}` is registered (known: {})",
                        known.join(", ")
                    )
                })
            })
    }

    /// The runtime for resuming runs in `store`.
    pub(crate) fn runtime_for(&self, store: SqliteStore) -> Runtime {
        (self.runtime)(store)
    }

    fn command(&self) -> Command {
        let run = || {
            Arg::new("run")
                .value_name("RUN")
                .required(true)
                .help("the run's id")
        };
        let output = || {
            Arg::new("output")
                .short('o')
                .long("output")
                .value_name("FILE")
                .help("write to FILE instead of stdout")
        };
        Command::new("prompt-chain")
            .bin_name(self.name.clone())
            .about("Runs of prompt chains in a checkpoint store: list, show, export, resume, fork, tidy")
            .subcommand_required(true)
            .arg(
                Arg::new("store")
                    .long("store")
                    .short('s')
                    .value_name("FILE")
                    .env("PROMPT_CHAIN_STORE")
                    .global(true)
                    .help("the SQLite store (or PROMPT_CHAIN_STORE)"),
            )
            .subcommand(
                Command::new("list")
                    .about("list runs, newest first")
                    .arg(Arg::new("status").long("status").value_name("STATUS").help(
                        "only runs in STATUS: running, completed, failed, cancelled, suspended",
                    ))
                    .arg(Arg::new("chain").long("chain").value_name("CHAIN").help("only runs of CHAIN"))
                    .arg(
                        Arg::new("limit")
                            .long("limit")
                            .value_name("N")
                            .default_value("50")
                            .value_parser(clap::value_parser!(usize))
                            .help("at most N runs"),
                    )
                    .arg(
                        Arg::new("sub-runs")
                            .long("sub-runs")
                            .action(ArgAction::SetTrue)
                            .help("include sub-chains' runs"),
                    ),
            )
            .subcommand(Command::new("show").about("show one run: its units and sub-runs").arg(run()))
            .subcommand(
                Command::new("export")
                    .about("export one run (and its sub-runs) as JSON")
                    .arg(run())
                    .arg(output()),
            )
            .subcommand(
                Command::new("resume")
                    .about("resume a run: restore what it recorded, run the rest")
                    .arg(run())
                    .arg(Arg::new("html").long("html").value_name("FILE").help("write the resumed run's HTML timeline to FILE")),
            )
            .subcommand(
                Command::new("fork")
                    .about("start a new run from a run, with one unit's value edited; what read it runs again")
                    .arg(run())
                    .arg(Arg::new("unit").long("unit").value_name("KEY[#ITEM]").required(true).help("the step key to edit (KEY#3: element 3 of a map, iteration 3 of a loop)"))
                    .arg(Arg::new("value").long("value").value_name("JSON").required(true).help("its new value, as JSON"))
                    .arg(Arg::new("no-resume").long("no-resume").action(ArgAction::SetTrue).help("record the fork without running it")),
            )
            .subcommand(
                Command::new("html")
                    .about("write a completed run's HTML timeline (restored from the store, nothing re-run)")
                    .arg(run())
                    .arg(output()),
            )
            .subcommand(
                Command::new("graph")
                    .about("draw a registered chain (Mermaid, or DOT with --dot)")
                    .arg(Arg::new("chain").value_name("CHAIN").required(true))
                    .arg(Arg::new("dot").long("dot").action(ArgAction::SetTrue).help("Graphviz DOT instead of Mermaid")),
            )
            .subcommand(
                Command::new("gc")
                    .about("delete finished runs older than an age (running and suspended runs stay)")
                    .arg(
                        Arg::new("older-than")
                            .long("older-than")
                            .value_name("AGE")
                            .required(true)
                            .help("30d, 12h, 45m, 10s"),
                    ),
            )
            .subcommand(Command::new("vacuum").about("give the space of deleted runs back to the file system"))
            .subcommand(Command::new("size").about("the store's size and what it holds"))
    }
}

/// The store the command names.
pub(crate) fn open_store(matches: &ArgMatches) -> Result<SqliteStore, CliError> {
    let Some(path) = matches.get_one::<String>("store") else {
        return Err(CliError {
            message: "no store given: pass --store FILE or set PROMPT_CHAIN_STORE".to_owned(),
            code: 2,
        });
    };
    if !std::path::Path::new(path).exists() {
        return Err(CliError::failed(format!("no store at {path}")));
    }
    Ok(SqliteStore::open(path)?)
}
