// prompt! reads variables in scope and strips the code's indentation.
use prompt_chain::prompt;

fn main() {
    let diff = "+ fn x()";
    let focus = "safety";
    let text = prompt!(
        "
        Analyze this diff:
            {diff}

        Focus on {focus}; braces stay: {{json}}.
        "
    );
    assert_eq!(text, "Analyze this diff:\n    + fn x()\n\nFocus on safety; braces stay: {json}.");
    assert_eq!(prompt!("one line about {focus:?}"), "one line about \"safety\"");
}
