//! The knowledge base: markdown articles shipped with the example, ranked
//! against a query with BM25 (the ranking function of Lucene and
//! Elasticsearch), title and tags weighted above the body.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::Path;

/// One article: `# Title`, a `tags:` line, a body, and `## Steps`.
#[derive(Debug, Clone)]
pub(crate) struct Article {
    /// The file name without `.md`.
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) steps: Vec<String>,
}

/// The articles and their BM25 index.
#[derive(Debug)]
pub(crate) struct KnowledgeBase {
    articles: Vec<Article>,
    /// Term frequencies per article.
    terms: Vec<HashMap<String, f64>>,
    lengths: Vec<f64>,
    average_length: f64,
    /// In how many articles each term appears.
    document_frequency: HashMap<String, f64>,
}

/// BM25's term-frequency saturation and length normalisation, at the usual values.
const K1: f64 = 1.2;
const B: f64 = 0.75;
/// How many times title and tag words count, relative to body words.
const FIELD_WEIGHT: usize = 3;

impl KnowledgeBase {
    /// Loads every `*.md` article in `dir`.
    pub(crate) fn load(dir: &Path) -> io::Result<Self> {
        let mut paths: Vec<_> = fs::read_dir(dir)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
            .collect();
        paths.sort();
        let mut articles = Vec::new();
        let mut texts = Vec::new();
        for path in paths {
            let id = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let source = fs::read_to_string(&path)?;
            let (article, text) = parse_article(id, &source).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} has no `# Title` line", path.display()),
                )
            })?;
            articles.push(article);
            texts.push(text);
        }
        Ok(Self::index(articles, &texts))
    }

    fn index(articles: Vec<Article>, texts: &[String]) -> Self {
        let mut terms = Vec::with_capacity(texts.len());
        let mut lengths = Vec::with_capacity(texts.len());
        let mut document_frequency: HashMap<String, f64> = HashMap::new();
        for text in texts {
            let tokens = tokenize(text);
            let mut counts: HashMap<String, f64> = HashMap::new();
            for token in &tokens {
                *counts.entry(token.clone()).or_default() += 1.0;
            }
            for term in counts.keys() {
                *document_frequency.entry(term.clone()).or_default() += 1.0;
            }
            lengths.push(tokens.len() as f64);
            terms.push(counts);
        }
        let average_length = lengths.iter().sum::<f64>() / lengths.len().max(1) as f64;
        Self {
            articles,
            terms,
            lengths,
            average_length,
            document_frequency,
        }
    }

    /// The number of articles.
    pub(crate) fn len(&self) -> usize {
        self.articles.len()
    }

    /// Articles ranked by BM25 score for `query`, best first, with how many
    /// distinct query terms each one matched; articles matching nothing are left out.
    pub(crate) fn search(&self, query: &str) -> Vec<Hit<'_>> {
        let mut query_terms = tokenize(query);
        query_terms.sort();
        query_terms.dedup();
        let n = self.articles.len() as f64;
        let mut hits: Vec<Hit<'_>> = self
            .articles
            .iter()
            .enumerate()
            .filter_map(|(i, article)| {
                let mut score = 0.0;
                let mut matched = 0;
                for term in &query_terms {
                    let Some(&tf) = self.terms[i].get(term) else {
                        continue;
                    };
                    let df = self.document_frequency.get(term).copied().unwrap_or(0.0);
                    let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                    let norm = 1.0 - B + B * self.lengths[i] / self.average_length;
                    score += idf * tf * (K1 + 1.0) / (tf + K1 * norm);
                    matched += 1;
                }
                (matched > 0).then_some(Hit {
                    article,
                    score,
                    matched,
                })
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits
    }
}

/// One ranked article.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit<'a> {
    pub(crate) article: &'a Article,
    pub(crate) score: f64,
    /// Distinct query terms found in the article.
    pub(crate) matched: usize,
}

fn parse_article(id: String, source: &str) -> Option<(Article, String)> {
    let mut lines = source.lines();
    let title = lines.next()?.strip_prefix("# ")?.trim().to_owned();
    let mut tags = String::new();
    let mut body = String::new();
    let mut steps = Vec::new();
    let mut in_steps = false;
    for line in lines {
        if let Some(rest) = line.strip_prefix("tags:") {
            tags = rest.replace(',', " ");
        } else if line.starts_with("## Steps") {
            in_steps = true;
        } else if in_steps {
            if let Some((number, step)) = line.split_once(". ")
                && number.chars().all(|c| c.is_ascii_digit())
            {
                steps.push(step.trim().to_owned());
            }
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    let weighted = format!("{title} {tags} ").repeat(FIELD_WEIGHT);
    let text = format!("{weighted}{body} {}", steps.join(" "));
    Some((Article { id, title, steps }, text))
}

/// Words that carry no meaning for search.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "do", "does", "for", "from",
    "has", "have", "how", "i", "in", "is", "it", "its", "my", "no", "not", "of", "on", "or", "our",
    "since", "so", "that", "the", "their", "there", "this", "to", "too", "was", "we", "when",
    "where", "which", "with", "you", "your", "me", "us", "after", "every", "even", "one", "all",
    "any", "get", "been", "into", "than", "then", "them", "they", "what", "will",
];

/// Lowercase words (codes like `e-1042` stay whole), stopwords dropped,
/// plurals folded to their singular.
pub(crate) fn tokenize(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .map(|word| word.trim_matches('-').to_lowercase())
        .filter(|word| !word.is_empty() && !STOPWORDS.contains(&word.as_str()))
        .map(|word| singular(&word))
        .collect()
}

fn singular(word: &str) -> String {
    if word.len() > 4 && word.ends_with("ies") {
        format!("{}y", &word[..word.len() - 3])
    } else if word.len() > 4
        && (word.ends_with("ches")
            || word.ends_with("shes")
            || word.ends_with("sses")
            || word.ends_with("xes"))
    {
        word[..word.len() - 2].to_owned()
    } else if word.len() > 3
        && word.ends_with('s')
        && !word.ends_with("ss")
        && !word.ends_with("us")
    {
        word[..word.len() - 1].to_owned()
    } else {
        word.to_owned()
    }
}
