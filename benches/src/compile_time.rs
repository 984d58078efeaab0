//! Compile time of generated chains: crates holding a 10-, 50- and 100-step
//! chain, built against prompt-chain, compared with an empty crate.

use std::fmt::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn chain_source(steps: usize) -> String {
    let mut source = String::from(
        "use prompt_chain::prelude::*;\n\n#[step]\npub async fn inc(_cx: &StepCx, n: &u64) -> StepResult<u64> {\n    Ok(n + 1)\n}\n\n",
    );
    if steps == 0 {
        return "pub fn nothing() {}\n".to_owned();
    }
    let _ = writeln!(
        source,
        "#[chain]\npub async fn generated(n0: u64) -> u64 {{"
    );
    for i in 1..=steps {
        // Every fifth step also takes the input, so the graph is not just a line.
        if i % 5 == 0 {
            let _ = writeln!(source, "    step!(n{i} = add(n{}, n0));", i - 1);
        } else {
            let _ = writeln!(source, "    step!(n{i} = inc(n{}));", i - 1);
        }
    }
    let _ = writeln!(source, "    n{steps}\n}}\n");
    source.push_str("#[step]\npub async fn add(_cx: &StepCx, a: &u64, b: &u64) -> StepResult<u64> {\n    Ok(a + b)\n}\n");
    source
}

fn write_crate(root: &Path, name: &str, steps: usize, prompt_chain: &Path) -> std::io::Result<()> {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n[dependencies]\nprompt-chain = {{ path = \"{}\" }}\n",
            prompt_chain.display()
        ),
    )?;
    std::fs::write(dir.join("src/lib.rs"), chain_source(steps))
}

fn build(root: &Path, name: &str) -> Duration {
    let start = Instant::now();
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", name])
        .current_dir(root)
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!("building {name} failed: {status:?}");
    }
    start.elapsed()
}

/// Generates the crates in a temporary workspace and times their builds (debug
/// profile, dependencies built first so only the crate itself is timed).
pub(crate) fn run() {
    println!("## 5. Compile time (debug build of one crate, dependencies already built)\n");
    let prompt_chain = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let root =
        std::env::temp_dir().join(format!("prompt-chain-compile-time-{}", std::process::id()));
    let sizes = [
        ("empty", 0),
        ("steps10", 10),
        ("steps50", 50),
        ("steps100", 100),
    ];
    let mut members = String::new();
    for (name, steps) in sizes {
        if let Err(error) = write_crate(&root, name, steps, &prompt_chain) {
            eprintln!("cannot write {name}: {error}");
            return;
        }
        let _ = write!(members, "\"{name}\", ");
    }
    let _ = std::fs::write(
        root.join("Cargo.toml"),
        format!("[workspace]\nmembers = [{members}]\nresolver = \"3\"\n"),
    );
    // Warm up: build the dependencies (and the empty crate) once.
    let _ = build(&root, "empty");
    let mut results = Vec::new();
    for (name, steps) in sizes {
        let lib = root.join(name).join("src/lib.rs");
        let mut samples: Vec<Duration> = (0..3)
            .map(|_| {
                // Touch the source so only this crate rebuilds.
                let _ = std::fs::write(&lib, chain_source(steps));
                build(&root, name)
            })
            .collect();
        samples.sort();
        results.push((name, steps, samples[1]));
    }
    let empty = results[0].2;
    println!("| crate | build time | over the empty crate |");
    println!("|---|---|---|");
    for (name, steps, time) in results {
        println!(
            "| {} | {:.2} s | {:+.2} s |",
            if steps == 0 {
                "empty".to_owned()
            } else {
                format!("{steps}-step chain ({name})")
            },
            time.as_secs_f64(),
            time.as_secs_f64() - empty.as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(&root);
    println!();
}
