use prompt_chain::prompt;

fn main() {
    let template = "Analyze {diff}";
    let prompt = prompt!(template);
    println!("{prompt}");
}
