//! `prompt-chain`: the runs tool over a SQLite store, with no chains of its
//! own — list, show, export, gc, vacuum and size. Resuming, forking, drawing
//! and timelines need the chains: call `prompt_chain::cli::Cli` from a
//! binary of yours that registers them (`Cli::new().chain(my_chain::entry())`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("prompt-chain: could not start: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(prompt_chain::cli::Cli::new().main())
}
