//! Loss and duplicate detection. Each receiver remembers which sequence
//! numbers it saw from each sender; the scenario knows how many copies of
//! each message should arrive, and the totals say what was lost.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// A growable set of sequence numbers (one bit each).
#[derive(Debug, Default, Clone)]
pub struct SeqSet {
    words: Vec<u64>,
    len: u64,
}

/// Sequence numbers above this are treated as garbage rather than grown
/// into (64 Mi messages from one sender is far beyond any run here).
const MAX_SEQ: u64 = 1 << 26;

impl SeqSet {
    /// Adds `seq`; `Some(true)` if it is new, `Some(false)` if it was
    /// already there, `None` if it is out of range.
    pub fn insert(&mut self, seq: u64) -> Option<bool> {
        if seq >= MAX_SEQ {
            return None;
        }
        let word = usize::try_from(seq / 64).ok()?;
        let bit = 1u64 << (seq % 64);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let w = self.words.get_mut(word)?;
        if *w & bit != 0 {
            return Some(false);
        }
        *w |= bit;
        self.len += 1;
        Some(true)
    }

    /// How many distinct numbers are in the set.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// What one receiver got.
#[derive(Debug, Default, Clone)]
pub struct Receipts {
    per_sender: HashMap<u32, SeqSet>,
    /// Distinct messages received from expected senders.
    pub unique: u64,
    /// Second and later copies of a message.
    pub duplicates: u64,
    /// Messages from a sender this receiver should not hear from (another
    /// room, another pair) or with an impossible sequence number.
    pub misrouted: u64,
}

/// How a receipt was classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// First copy: counts as a delivery.
    New,
    /// Already seen.
    Duplicate,
    /// Not for this receiver.
    Misrouted,
}

impl Receipts {
    /// Records a message; `expected_sender` says whether this receiver
    /// should hear from `sender` at all.
    pub fn record(&mut self, sender: u32, seq: u64, expected_sender: bool) -> Receipt {
        if !expected_sender {
            self.misrouted += 1;
            return Receipt::Misrouted;
        }
        match self.per_sender.entry(sender).or_default().insert(seq) {
            Some(true) => {
                self.unique += 1;
                Receipt::New
            }
            Some(false) => {
                self.duplicates += 1;
                Receipt::Duplicate
            }
            None => {
                self.misrouted += 1;
                Receipt::Misrouted
            }
        }
    }

    /// This receiver's counts; `expected` is left at 0 for the scenario,
    /// which knows how many copies should have arrived, to fill in.
    pub fn totals(&self) -> Counts {
        Counts {
            expected: 0,
            delivered: self.unique,
            duplicates: self.duplicates,
            misrouted: self.misrouted,
        }
    }
}

/// Delivery totals for a run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Deliveries that should have happened (messages sent times the
    /// number of recipients of each).
    pub expected: u64,
    /// Distinct deliveries that happened.
    pub delivered: u64,
    /// Extra copies received.
    pub duplicates: u64,
    /// Deliveries to the wrong recipient.
    pub misrouted: u64,
}

impl Counts {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: Counts) {
        self.expected += other.expected;
        self.delivered += other.delivered;
        self.duplicates += other.duplicates;
        self.misrouted += other.misrouted;
    }

    /// Expected deliveries that never arrived.
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.delivered)
    }

    /// True when every expected delivery arrived exactly once, nowhere else.
    pub fn clean(&self) -> bool {
        self.lost() == 0 && self.duplicates == 0 && self.misrouted == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqset_detects_repeats_across_words() {
        let mut s = SeqSet::default();
        assert_eq!(s.insert(0), Some(true));
        assert_eq!(s.insert(63), Some(true));
        assert_eq!(s.insert(64), Some(true));
        assert_eq!(s.insert(1000), Some(true));
        assert_eq!(s.insert(64), Some(false));
        assert_eq!(s.insert(MAX_SEQ), None);
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn receipts_classify_and_count() {
        let mut r = Receipts::default();
        assert_eq!(r.record(1, 0, true), Receipt::New);
        assert_eq!(r.record(2, 0, true), Receipt::New);
        assert_eq!(r.record(1, 0, true), Receipt::Duplicate);
        assert_eq!(r.record(9, 0, false), Receipt::Misrouted);
        let mut c = r.totals();
        c.expected = 3;
        assert_eq!(c.delivered, 2);
        assert_eq!(c.duplicates, 1);
        assert_eq!(c.misrouted, 1);
        assert_eq!(c.lost(), 1);
        assert!(!c.clean());
    }

    #[test]
    fn clean_only_without_loss_duplicates_or_misrouting() {
        let c = Counts {
            expected: 10,
            delivered: 10,
            duplicates: 0,
            misrouted: 0,
        };
        assert!(c.clean());
        let mut sum = Counts::default();
        sum.add(c);
        sum.add(Counts {
            expected: 5,
            delivered: 4,
            ..Counts::default()
        });
        assert_eq!(sum.lost(), 1);
        assert!(!sum.clean());
    }
}
