//! Compile-time checks: every mistake the macros catch has a case in
//! `tests/ui/<topic>/`, with the exact error a user sees in its `.stderr`.
//! Accepted forms live in `tests/ui/pass/` and are compiled and run.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/wiring/*.rs");
    cases.compile_fail("tests/ui/syntax/*.rs");
    cases.compile_fail("tests/ui/step/*.rs");
    cases.compile_fail("tests/ui/routes/*.rs");
    cases.compile_fail("tests/ui/loops/*.rs");
    cases.compile_fail("tests/ui/prompt/*.rs");
    cases.compile_fail("tests/ui/map/*.rs");
    cases.compile_fail("tests/ui/human/*.rs");
    cases.compile_fail("tests/ui/tools/*.rs");
}

/// One mistake, one error: every compile-fail case yields exactly one
/// `error`, except the cases listed here, each with why.
#[test]
fn one_mistake_gives_one_error() {
    const MORE_THAN_ONE: &[(&str, &str)] = &[
        (
            "wiring/multiple_errors",
            "three independent mistakes in one chain",
        ),
        // Still two errors today (issue: the first site should be a note).
        (
            "wiring/duplicate_key",
            "the duplicate and its first definition",
        ),
        (
            "routes/duplicate_key_across_routes",
            "the duplicate and its first definition",
        ),
        // Still two errors today: `Serialize` and `Deserialize` each missing.
        (
            "step/output_not_serializable",
            "one error per missing serde trait",
        ),
        // Still several errors today: serde's derive reports each place it
        // deserializes the field, then schemars reports the schema.
        (
            "tools/argument_not_described",
            "one error per use of the missing `Deserialize`, one for `JsonSchema`",
        ),
    ];
    let mut offenders = Vec::new();
    for topic in std::fs::read_dir("tests/ui").expect("tests/ui") {
        let topic = topic.expect("an entry").path();
        let Ok(cases) = std::fs::read_dir(&topic) else {
            continue;
        };
        for case in cases {
            let path = case.expect("an entry").path();
            if path.extension().is_none_or(|ext| ext != "stderr") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a .stderr");
            let errors = text.lines().filter(|l| l.starts_with("error")).count();
            let name = format!(
                "{}/{}",
                topic.file_name().and_then(|n| n.to_str()).unwrap_or(""),
                path.file_stem().and_then(|n| n.to_str()).unwrap_or("")
            );
            let allowed = MORE_THAN_ONE.iter().any(|(case, _)| *case == name);
            if errors != 1 && !allowed {
                offenders.push(format!("{name}: {errors} errors"));
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}
