use prompt_chain::prompt;

fn main() {
    let diff = "+ fn x()";
    let prompt = prompt!("Analyze {} please");
    println!("{prompt}{diff}");
}
