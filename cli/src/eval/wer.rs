//! Word error counts of one hypothesis against one reference (already
//! normalised words). The alignment — a minimum edit distance with its
//! substitutions, deletions and insertions — is the `rwer` crate's
//! (Wagner–Fischer with a backtrace); this file only adds the counts up.

use serde::{Deserialize, Serialize};

/// Counts that add across files: a corpus WER is Σ errors / Σ reference
/// words, not a mean of per-file rates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub reference_words: usize,
    pub hits: usize,
    pub substitutions: usize,
    pub deletions: usize,
    pub insertions: usize,
}

impl Counts {
    pub fn of(reference: &[String], hypothesis: &[String]) -> Self {
        let ops = rwer::alignment::align(reference, hypothesis);
        let c = rwer::alignment::count_operations(&ops);
        Self {
            reference_words: reference.len(),
            hits: c.hits,
            substitutions: c.substitutions,
            deletions: c.deletions,
            insertions: c.insertions,
        }
    }

    pub fn errors(&self) -> usize {
        self.substitutions + self.deletions + self.insertions
    }

    /// (S + D + I) / N; None for an empty reference (no rate exists: its
    /// insertions still count in a corpus total).
    pub fn wer(&self) -> Option<f64> {
        (self.reference_words > 0).then(|| self.errors() as f64 / self.reference_words as f64)
    }

    pub fn add(&mut self, other: &Counts) {
        self.reference_words += other.reference_words;
        self.hits += other.hits;
        self.substitutions += other.substitutions;
        self.deletions += other.deletions;
        self.insertions += other.insertions;
    }
}

#[cfg(test)]
mod tests {
    use super::Counts;

    fn counts(r: &str, h: &str) -> Counts {
        let w = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        Counts::of(&w(r), &w(h))
    }

    fn c(n: usize, hits: usize, s: usize, d: usize, i: usize) -> Counts {
        Counts {
            reference_words: n,
            hits,
            substitutions: s,
            deletions: d,
            insertions: i,
        }
    }

    // Each case worked by hand: the minimum number of edits, and which.
    #[test]
    fn hand_computed() {
        assert_eq!(counts("a b c d", "a b c d"), c(4, 4, 0, 0, 0));
        // One word replaced: 1/4.
        assert_eq!(
            counts("the cat sat down", "the cat sat up"),
            c(4, 3, 1, 0, 0)
        );
        // "sat" missing: one deletion.
        assert_eq!(counts("the cat sat down", "the cat down"), c(4, 3, 0, 1, 0));
        // "big" added: one insertion.
        assert_eq!(counts("the cat", "the big cat"), c(2, 2, 0, 0, 1));
        // Shifted by one: a deletion at the front and an insertion at the
        // end (2 edits) beat four substitutions.
        assert_eq!(counts("a b c d", "b c d e"), c(4, 3, 0, 1, 1));
        // Completely different, same length: all substitutions.
        assert_eq!(counts("a b", "c d"), c(2, 0, 2, 0, 0));
        assert_eq!(counts("a b", "c d").wer(), Some(1.0));
        assert_eq!(
            counts("the cat sat down", "the cat sat up").wer(),
            Some(0.25)
        );
    }

    #[test]
    fn empty_sides() {
        // Nothing said, nothing heard.
        assert_eq!(counts("", ""), c(0, 0, 0, 0, 0));
        assert_eq!(counts("", "").wer(), None);
        // Empty hypothesis: every reference word deleted, WER 1.
        assert_eq!(counts("a b c", ""), c(3, 0, 0, 3, 0));
        assert_eq!(counts("a b c", "").wer(), Some(1.0));
        // Empty reference: only insertions, no rate of its own.
        assert_eq!(counts("", "x y"), c(0, 0, 0, 0, 2));
        assert_eq!(counts("", "x y").wer(), None);
        // More insertions than reference words: above 100 %.
        assert_eq!(counts("a", "x a y z").wer(), Some(3.0));
    }

    #[test]
    fn totals_add_counts_not_rates() {
        let mut t = counts("a b c d e f g h i j", "a b c d e f g h i x");
        t.add(&counts("k", ""));
        // (1 + 1) / 11, not the mean of 0.1 and 1.0.
        assert_eq!(t.wer(), Some(2.0 / 11.0));
    }
}
