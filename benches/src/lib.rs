//! The chains the benchmarks run, and the same work written by hand.
//!
//! The 50-step chain and the fan-out below were written out by a script; they
//! are plain `step!` lines, as a user would write them.

use std::hint::black_box;
use std::pin::Pin;
use std::time::Duration;

use prompt_chain::llm::{
    BoxFuture, ChatRequest, Completion, FinishReason, LanguageModel, LlmError, Usage,
};
use prompt_chain::prelude::*;

/// A zero-latency step: the executor's overhead is all there is to measure.
#[step]
pub async fn inc(_cx: &StepCx, n: &u64) -> StepResult<u64> {
    Ok(black_box(*n) + 1)
}

/// The same work as a plain async function.
pub async fn inc_plain(n: &u64) -> Result<u64, std::io::Error> {
    Ok(black_box(*n) + 1)
}

/// Five steps in a row.
#[chain]
pub async fn seq5(n0: u64) -> u64 {
    step!(n1 = inc(n0));
    step!(n2 = inc(n1));
    step!(n3 = inc(n2));
    step!(n4 = inc(n3));
    step!(n5 = inc(n4));
    n5
}

/// `seq5` by hand: five awaited calls.
pub async fn hand5(n0: u64) -> Result<u64, std::io::Error> {
    let n1 = inc_plain(&n0).await?;
    let n2 = inc_plain(&n1).await?;
    let n3 = inc_plain(&n2).await?;
    let n4 = inc_plain(&n3).await?;
    inc_plain(&n4).await
}

/// Fifty steps in a row.
#[chain]
pub async fn seq50(n0: u64) -> u64 {
    step!(n1 = inc(n0));
    step!(n2 = inc(n1));
    step!(n3 = inc(n2));
    step!(n4 = inc(n3));
    step!(n5 = inc(n4));
    step!(n6 = inc(n5));
    step!(n7 = inc(n6));
    step!(n8 = inc(n7));
    step!(n9 = inc(n8));
    step!(n10 = inc(n9));
    step!(n11 = inc(n10));
    step!(n12 = inc(n11));
    step!(n13 = inc(n12));
    step!(n14 = inc(n13));
    step!(n15 = inc(n14));
    step!(n16 = inc(n15));
    step!(n17 = inc(n16));
    step!(n18 = inc(n17));
    step!(n19 = inc(n18));
    step!(n20 = inc(n19));
    step!(n21 = inc(n20));
    step!(n22 = inc(n21));
    step!(n23 = inc(n22));
    step!(n24 = inc(n23));
    step!(n25 = inc(n24));
    step!(n26 = inc(n25));
    step!(n27 = inc(n26));
    step!(n28 = inc(n27));
    step!(n29 = inc(n28));
    step!(n30 = inc(n29));
    step!(n31 = inc(n30));
    step!(n32 = inc(n31));
    step!(n33 = inc(n32));
    step!(n34 = inc(n33));
    step!(n35 = inc(n34));
    step!(n36 = inc(n35));
    step!(n37 = inc(n36));
    step!(n38 = inc(n37));
    step!(n39 = inc(n38));
    step!(n40 = inc(n39));
    step!(n41 = inc(n40));
    step!(n42 = inc(n41));
    step!(n43 = inc(n42));
    step!(n44 = inc(n43));
    step!(n45 = inc(n44));
    step!(n46 = inc(n45));
    step!(n47 = inc(n46));
    step!(n48 = inc(n47));
    step!(n49 = inc(n48));
    step!(n50 = inc(n49));
    n50
}

/// `seq50` by hand: fifty awaited calls.
pub async fn hand50(n0: u64) -> Result<u64, std::io::Error> {
    let n1 = inc_plain(&n0).await?;
    let n2 = inc_plain(&n1).await?;
    let n3 = inc_plain(&n2).await?;
    let n4 = inc_plain(&n3).await?;
    let n5 = inc_plain(&n4).await?;
    let n6 = inc_plain(&n5).await?;
    let n7 = inc_plain(&n6).await?;
    let n8 = inc_plain(&n7).await?;
    let n9 = inc_plain(&n8).await?;
    let n10 = inc_plain(&n9).await?;
    let n11 = inc_plain(&n10).await?;
    let n12 = inc_plain(&n11).await?;
    let n13 = inc_plain(&n12).await?;
    let n14 = inc_plain(&n13).await?;
    let n15 = inc_plain(&n14).await?;
    let n16 = inc_plain(&n15).await?;
    let n17 = inc_plain(&n16).await?;
    let n18 = inc_plain(&n17).await?;
    let n19 = inc_plain(&n18).await?;
    let n20 = inc_plain(&n19).await?;
    let n21 = inc_plain(&n20).await?;
    let n22 = inc_plain(&n21).await?;
    let n23 = inc_plain(&n22).await?;
    let n24 = inc_plain(&n23).await?;
    let n25 = inc_plain(&n24).await?;
    let n26 = inc_plain(&n25).await?;
    let n27 = inc_plain(&n26).await?;
    let n28 = inc_plain(&n27).await?;
    let n29 = inc_plain(&n28).await?;
    let n30 = inc_plain(&n29).await?;
    let n31 = inc_plain(&n30).await?;
    let n32 = inc_plain(&n31).await?;
    let n33 = inc_plain(&n32).await?;
    let n34 = inc_plain(&n33).await?;
    let n35 = inc_plain(&n34).await?;
    let n36 = inc_plain(&n35).await?;
    let n37 = inc_plain(&n36).await?;
    let n38 = inc_plain(&n37).await?;
    let n39 = inc_plain(&n38).await?;
    let n40 = inc_plain(&n39).await?;
    let n41 = inc_plain(&n40).await?;
    let n42 = inc_plain(&n41).await?;
    let n43 = inc_plain(&n42).await?;
    let n44 = inc_plain(&n43).await?;
    let n45 = inc_plain(&n44).await?;
    let n46 = inc_plain(&n45).await?;
    let n47 = inc_plain(&n46).await?;
    let n48 = inc_plain(&n47).await?;
    let n49 = inc_plain(&n48).await?;
    inc_plain(&n49).await
}

/// Sleeps `ms` milliseconds of real time, then passes the value on: a model
/// call's latency, without a model.
pub async fn pause(ms: u64, value: u64) -> StepResult<u64> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(value + 1)
}

/// `diamond_root`: 50 ms of simulated latency.
#[step]
pub async fn diamond_root(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(50, *v0).await
}

/// `diamond_left`: 100 ms of simulated latency.
#[step]
pub async fn diamond_left(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(100, *v0).await
}

/// `diamond_right`: 70 ms of simulated latency.
#[step]
pub async fn diamond_right(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(70, *v0).await
}

/// `diamond_join`: 30 ms of simulated latency.
#[step]
pub async fn diamond_join(_cx: &StepCx, v0: &u64, v1: &u64) -> StepResult<u64> {
    pause(30, *v0 + *v1).await
}

/// A diamond: critical path 50 + 100 + 30 = 180 ms.
#[chain]
pub async fn diamond(x: u64) -> u64 {
    step!(root = diamond_root(x));
    step!(left = diamond_left(root));
    step!(right = diamond_right(root));
    step!(joined = diamond_join(left, right));
    joined
}

/// `review_extract`: 60 ms of simulated latency.
#[step]
pub async fn review_extract(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(60, *v0).await
}

/// `review_correctness`: 120 ms of simulated latency.
#[step]
pub async fn review_correctness(_cx: &StepCx, v0: &u64, v1: &u64) -> StepResult<u64> {
    pause(120, *v0 + *v1).await
}

/// `review_performance`: 80 ms of simulated latency.
#[step]
pub async fn review_performance(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(80, *v0).await
}

/// `review_security`: 100 ms of simulated latency.
#[step]
pub async fn review_security(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(100, *v0).await
}

/// `review_summary`: 50 ms of simulated latency.
#[step]
pub async fn review_summary(
    _cx: &StepCx,
    v0: &u64,
    v1: &u64,
    v2: &u64,
    v3: &u64,
) -> StepResult<u64> {
    pause(50, *v0 + *v1 + *v2 + *v3).await
}

/// The code-review shape: critical path max(60 + 120, 80, 100) + 50 = 230 ms.
#[chain]
pub async fn review_shape(diff: u64) -> u64 {
    step!(changes = review_extract(diff));
    step!(correct = review_correctness(changes, diff));
    step!(perf = review_performance(diff));
    step!(sec = review_security(diff));
    step!(summary = review_summary(changes, correct, perf, sec));
    summary
}

/// `branch1`: 10 ms of simulated latency.
#[step]
pub async fn branch1(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(10, *v0).await
}

/// `follow1`: 160 ms of simulated latency.
#[step]
pub async fn follow1(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(160, *v0).await
}

/// `branch2`: 20 ms of simulated latency.
#[step]
pub async fn branch2(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(20, *v0).await
}

/// `follow2`: 150 ms of simulated latency.
#[step]
pub async fn follow2(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(150, *v0).await
}

/// `branch3`: 30 ms of simulated latency.
#[step]
pub async fn branch3(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(30, *v0).await
}

/// `follow3`: 140 ms of simulated latency.
#[step]
pub async fn follow3(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(140, *v0).await
}

/// `branch4`: 40 ms of simulated latency.
#[step]
pub async fn branch4(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(40, *v0).await
}

/// `follow4`: 130 ms of simulated latency.
#[step]
pub async fn follow4(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(130, *v0).await
}

/// `branch5`: 50 ms of simulated latency.
#[step]
pub async fn branch5(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(50, *v0).await
}

/// `follow5`: 120 ms of simulated latency.
#[step]
pub async fn follow5(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(120, *v0).await
}

/// `branch6`: 60 ms of simulated latency.
#[step]
pub async fn branch6(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(60, *v0).await
}

/// `follow6`: 110 ms of simulated latency.
#[step]
pub async fn follow6(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(110, *v0).await
}

/// `branch7`: 70 ms of simulated latency.
#[step]
pub async fn branch7(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(70, *v0).await
}

/// `follow7`: 100 ms of simulated latency.
#[step]
pub async fn follow7(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(100, *v0).await
}

/// `branch8`: 80 ms of simulated latency.
#[step]
pub async fn branch8(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(80, *v0).await
}

/// `follow8`: 90 ms of simulated latency.
#[step]
pub async fn follow8(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(90, *v0).await
}

/// `branch9`: 90 ms of simulated latency.
#[step]
pub async fn branch9(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(90, *v0).await
}

/// `follow9`: 80 ms of simulated latency.
#[step]
pub async fn follow9(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(80, *v0).await
}

/// `branch10`: 100 ms of simulated latency.
#[step]
pub async fn branch10(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(100, *v0).await
}

/// `follow10`: 70 ms of simulated latency.
#[step]
pub async fn follow10(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(70, *v0).await
}

/// `branch11`: 110 ms of simulated latency.
#[step]
pub async fn branch11(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(110, *v0).await
}

/// `follow11`: 60 ms of simulated latency.
#[step]
pub async fn follow11(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(60, *v0).await
}

/// `branch12`: 120 ms of simulated latency.
#[step]
pub async fn branch12(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(120, *v0).await
}

/// `follow12`: 50 ms of simulated latency.
#[step]
pub async fn follow12(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(50, *v0).await
}

/// `branch13`: 130 ms of simulated latency.
#[step]
pub async fn branch13(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(130, *v0).await
}

/// `follow13`: 40 ms of simulated latency.
#[step]
pub async fn follow13(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(40, *v0).await
}

/// `branch14`: 140 ms of simulated latency.
#[step]
pub async fn branch14(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(140, *v0).await
}

/// `follow14`: 30 ms of simulated latency.
#[step]
pub async fn follow14(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(30, *v0).await
}

/// `branch15`: 150 ms of simulated latency.
#[step]
pub async fn branch15(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(150, *v0).await
}

/// `follow15`: 20 ms of simulated latency.
#[step]
pub async fn follow15(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(20, *v0).await
}

/// `branch16`: 160 ms of simulated latency.
#[step]
pub async fn branch16(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(160, *v0).await
}

/// `follow16`: 10 ms of simulated latency.
#[step]
pub async fn follow16(_cx: &StepCx, v0: &u64) -> StepResult<u64> {
    pause(10, *v0).await
}

/// Sums the sixteen follow-ups.
#[step]
pub async fn gather(
    _cx: &StepCx,
    f1: &u64,
    f2: &u64,
    f3: &u64,
    f4: &u64,
    f5: &u64,
    f6: &u64,
    f7: &u64,
    f8: &u64,
    f9: &u64,
    f10: &u64,
    f11: &u64,
    f12: &u64,
    f13: &u64,
    f14: &u64,
    f15: &u64,
    f16: &u64,
) -> StepResult<u64> {
    Ok(*f1
        + *f2
        + *f3
        + *f4
        + *f5
        + *f6
        + *f7
        + *f8
        + *f9
        + *f10
        + *f11
        + *f12
        + *f13
        + *f14
        + *f15
        + *f16)
}

/// Sixteen uneven branches, each followed by a step that makes every path
/// 170 ms long: dataflow takes 170 ms; a level-by-level scheduler waits for
/// the slowest branch (160 ms) and then the slowest follow-up (160 ms).
#[chain]
pub async fn fan_out(x: u64) -> u64 {
    step!(b1 = branch1(x));
    step!(f1 = follow1(b1));
    step!(b2 = branch2(x));
    step!(f2 = follow2(b2));
    step!(b3 = branch3(x));
    step!(f3 = follow3(b3));
    step!(b4 = branch4(x));
    step!(f4 = follow4(b4));
    step!(b5 = branch5(x));
    step!(f5 = follow5(b5));
    step!(b6 = branch6(x));
    step!(f6 = follow6(b6));
    step!(b7 = branch7(x));
    step!(f7 = follow7(b7));
    step!(b8 = branch8(x));
    step!(f8 = follow8(b8));
    step!(b9 = branch9(x));
    step!(f9 = follow9(b9));
    step!(b10 = branch10(x));
    step!(f10 = follow10(b10));
    step!(b11 = branch11(x));
    step!(f11 = follow11(b11));
    step!(b12 = branch12(x));
    step!(f12 = follow12(b12));
    step!(b13 = branch13(x));
    step!(f13 = follow13(b13));
    step!(b14 = branch14(x));
    step!(f14 = follow14(b14));
    step!(b15 = branch15(x));
    step!(f15 = follow15(b15));
    step!(b16 = branch16(x));
    step!(f16 = follow16(b16));
    step!(
        all = gather(
            f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16
        )
    );
    all
}

/// A model that answers after a fixed latency and keeps no log: the scale
/// benchmark's stand-in for a provider.
#[derive(Debug, Clone, Copy)]
pub struct SleepModel {
    /// How long each call takes.
    pub latency: Duration,
}

impl LanguageModel for SleepModel {
    fn name(&self) -> &str {
        "sleep"
    }

    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, LlmError>> {
        let latency = self.latency;
        let fut: Pin<Box<dyn std::future::Future<Output = _> + Send + 'a>> = Box::pin(async move {
            // Zero latency answers at once (a zero sleep still waits for
            // the timer's next tick).
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            Ok(Completion {
                tool_calls: Vec::new(),
                text: format!("ok {}", request.prompt().len()),
                finish_reason: FinishReason::Stop,
                usage: Usage::new(10, 2),
            })
        });
        fut
    }
}

/// One model call.
#[step]
pub async fn ask(cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(cx.llm().text(text.to_owned()).await?)
}

/// One model call on two keys.
#[step]
pub async fn ask2(cx: &StepCx, a: &str, b: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("{a}{b}")).await?)
}

/// One model call on four keys.
#[step]
pub async fn ask4(cx: &StepCx, a: &str, b: &str, c: &str, d: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("{a}{b}{c}{d}")).await?)
}

/// The code-review chain with model calls (three levels deep: 3 × latency).
#[chain]
pub async fn review_llm(diff: String) -> String {
    step!(changes = ask(diff));
    step!(correct = ask2(changes, diff));
    step!(perf = ask(diff));
    step!(sec = ask(diff));
    step!(summary = ask4(changes, correct, perf, sec));
    summary
}

/// The diamond by hand, with `tokio::join!`: the best any executor can do on
/// this timer.
pub async fn diamond_by_hand(x: u64) -> u64 {
    let root = pause(50, x).await.unwrap_or(0);
    let (left, right) = tokio::join!(pause(100, root), pause(70, root));
    pause(30, left.unwrap_or(0) + right.unwrap_or(0))
        .await
        .unwrap_or(0)
}

/// The code-review shape by hand.
pub async fn review_shape_by_hand(diff: u64) -> u64 {
    let branch = async {
        let changes = pause(60, diff).await.unwrap_or(0);
        let correct = pause(120, changes + diff).await.unwrap_or(0);
        (changes, correct)
    };
    let ((changes, correct), perf, sec) = tokio::join!(branch, pause(80, diff), pause(100, diff));
    pause(50, changes + correct + perf.unwrap_or(0) + sec.unwrap_or(0))
        .await
        .unwrap_or(0)
}

/// The fan-out by hand: sixteen branch-then-follow-up tasks, then the sum.
pub async fn fan_out_by_hand(x: u64) -> u64 {
    let mut set = tokio::task::JoinSet::new();
    for i in 1..=16u64 {
        set.spawn(async move {
            let b = pause(10 * i, x).await.unwrap_or(0);
            pause(170 - 10 * i, b).await.unwrap_or(0)
        });
    }
    let mut sum = 0;
    while let Some(done) = set.join_next().await {
        sum += done.unwrap_or(0);
    }
    sum
}

/// A map step over a list of texts: one model call per element.
#[chain]
pub async fn map_asks(texts: Vec<String>) -> Vec<String> {
    step!(answers = ask(each texts), concurrency = 64);
    answers
}

/// The same calls by hand: `futures::stream::iter(..).buffer_unordered(64)`
/// of the same model, in input order afterwards.
pub async fn map_by_hand(model: &dyn LanguageModel, texts: &[String]) -> Vec<String> {
    use futures::StreamExt;
    let mut answers: Vec<(usize, String)> = futures::stream::iter(texts.iter().enumerate())
        .map(|(i, text)| async move {
            let request = ChatRequest::user(text.clone());
            let text = model
                .complete(&request)
                .await
                .map(|c| c.text)
                .unwrap_or_default();
            (i, text)
        })
        .buffer_unordered(64)
        .collect()
        .await;
    answers.sort_unstable_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, text)| text).collect()
}
