//! Prices per model, to turn token counts into cost.

use std::collections::HashMap;

use super::Usage;

/// US-dollar prices per million tokens, by model name (as the model reports
/// it in [`LanguageModel::name`](crate::llm::LanguageModel::name)).
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    prices: HashMap<String, Price>,
}

/// The price of one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// Dollars per million input tokens.
    pub input_per_million: f64,
    /// Dollars per million output tokens.
    pub output_per_million: f64,
}

impl PriceTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a model's prices, in dollars per million input and output tokens.
    #[must_use]
    pub fn model(
        mut self,
        name: impl Into<String>,
        input_per_million: f64,
        output_per_million: f64,
    ) -> Self {
        self.prices.insert(
            name.into(),
            Price {
                input_per_million,
                output_per_million,
            },
        );
        self
    }

    /// The cost of `usage` on `model`, if the table knows the model.
    pub fn cost(&self, model: &str, usage: Usage) -> Option<f64> {
        let price = self.prices.get(model)?;
        Some(
            (usage.input_tokens as f64 * price.input_per_million
                + usage.output_tokens as f64 * price.output_per_million)
                / 1_000_000.0,
        )
    }
}

/// Adds two optional costs: known plus unknown is the known part.
pub(crate) fn add_cost(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::Usage;
    use super::{PriceTable, add_cost};

    #[test]
    fn costs_follow_the_table() {
        let table = PriceTable::new().model("m", 0.15, 0.60);
        let usage = Usage {
            input_tokens: 1_000_000,
            output_tokens: 500_000,
        };
        let cost = table.cost("m", usage).expect("priced");
        assert!((cost - 0.45).abs() < 1e-12, "{cost}");
        assert_eq!(table.cost("other", usage), None);
        assert_eq!(add_cost(Some(1.0), None), Some(1.0));
        assert_eq!(add_cost(None, None), None);
    }
}
