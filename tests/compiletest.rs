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
}
