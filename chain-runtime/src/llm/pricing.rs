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
#[non_exhaustive]
pub struct Price {
    /// Dollars per million input tokens (those not read from or written to
    /// the prompt cache).
    pub input_per_million: f64,
    /// Dollars per million output tokens.
    pub output_per_million: f64,
    /// Dollars per million input tokens read from the prompt cache; `None`:
    /// the input price.
    pub cache_read_per_million: Option<f64>,
    /// Dollars per million input tokens written to the prompt cache; `None`:
    /// the input price.
    pub cache_write_per_million: Option<f64>,
}

impl Price {
    /// The cost of `usage` at this price, in dollars.
    pub fn cost(&self, usage: Usage) -> f64 {
        let read = self
            .cache_read_per_million
            .unwrap_or(self.input_per_million);
        let write = self
            .cache_write_per_million
            .unwrap_or(self.input_per_million);
        (usage.uncached_input_tokens() as f64 * self.input_per_million
            + usage.cache_read_tokens as f64 * read
            + usage.cache_write_tokens as f64 * write
            + usage.output_tokens as f64 * self.output_per_million)
            / 1_000_000.0
    }
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
                cache_read_per_million: None,
                cache_write_per_million: None,
            },
        );
        self
    }

    /// Sets a model's prompt-cache prices, in dollars per million input
    /// tokens read from and written to the cache (for example OpenAI: read
    /// at half the input price, no write price; Anthropic: read at a tenth,
    /// write at 1.25 times). Without them, cached tokens cost the input
    /// price. Call after [`PriceTable::model`]; a model not in the table is
    /// left unpriced.
    #[must_use]
    pub fn cache_prices(
        mut self,
        name: &str,
        read_per_million: f64,
        write_per_million: Option<f64>,
    ) -> Self {
        if let Some(price) = self.prices.get_mut(name) {
            price.cache_read_per_million = Some(read_per_million);
            price.cache_write_per_million = write_per_million;
        }
        self
    }

    /// A model's price, if the table knows the model.
    pub fn price(&self, model: &str) -> Option<&Price> {
        self.prices.get(model)
    }

    /// The cost of `usage` on `model`, if the table knows the model.
    pub fn cost(&self, model: &str, usage: Usage) -> Option<f64> {
        Some(self.prices.get(model)?.cost(usage))
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
        let usage = Usage::new(1_000_000, 500_000);
        let cost = table.cost("m", usage).expect("priced");
        assert!((cost - 0.45).abs() < 1e-12, "{cost}");
        assert_eq!(table.cost("other", usage), None);
        // Cached tokens cost the input price until the cache is priced.
        let cached = Usage::new(1_000_000, 0).with_cache(600_000, 200_000);
        let cost = table.cost("m", cached).expect("priced");
        assert!((cost - 0.15).abs() < 1e-12, "{cost}");
        // Anthropic-like: reads at a tenth, writes at 1.25 times the input price.
        let table = table.cache_prices("m", 0.015, Some(0.1875));
        let cost = table.cost("m", cached).expect("priced");
        let expected = (200_000.0 * 0.15 + 600_000.0 * 0.015 + 200_000.0 * 0.1875) / 1e6;
        assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
        assert_eq!(
            Usage::new(10, 0).with_cache(8, 8).uncached_input_tokens(),
            0
        );
        assert_eq!(add_cost(Some(1.0), None), Some(1.0));
        assert_eq!(add_cost(None, None), None);
    }
}
