//! End-to-end acknowledgements: the watermark below which every batch is durable downstream.
//!
//! The source registers each batch it sends and gets an [`AckToken`]; the stage that makes the
//! batch durable (a Kafka delivery report, a sink `COMMIT`) resolves it. Tokens may resolve out
//! of order; the watermark only moves over a contiguous prefix of resolved batches, so the
//! replication slot is never confirmed past a change that is not yet durable. A token dropped
//! without being resolved poisons the tracker: the pipeline must stop and replay from the last
//! durable position.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::lsn::Lsn;

/// The durable watermark, as published by an [`AckTracker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Durable {
    /// The highest position carried by a batch in the durable prefix, if any carried one.
    pub position: Option<Lsn>,
    /// How many batches, counted from the first, are durable.
    pub batches: u64,
    /// Set once a token was dropped unresolved: nothing after it can become durable.
    pub poisoned: bool,
}

#[derive(Debug)]
struct Slot {
    position: Option<Lsn>,
    done: bool,
}

#[derive(Debug)]
struct State {
    /// Sequence number of `slots[0]`.
    base: u64,
    slots: VecDeque<Slot>,
    durable: Durable,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    tx: watch::Sender<Durable>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state half-updated in a way that
        // matters: every update is a single field write or a pop, so recover the guard.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn resolve(&self, seq: u64) {
        let mut st = self.lock();
        let idx = (seq - st.base) as usize;
        if let Some(slot) = st.slots.get_mut(idx) {
            slot.done = true;
        }
        let mut advanced = false;
        while st.slots.front().is_some_and(|s| s.done) {
            let slot = st.slots.pop_front().expect("front exists");
            st.base += 1;
            st.durable.batches += 1;
            if let Some(p) = slot.position {
                st.durable.position = Some(st.durable.position.map_or(p, |d| d.max(p)));
            }
            advanced = true;
        }
        if advanced && !st.durable.poisoned {
            let d = st.durable;
            drop(st);
            self.tx.send_replace(d);
        }
    }

    fn poison(&self) {
        let mut st = self.lock();
        st.durable.poisoned = true;
        let d = st.durable;
        drop(st);
        self.tx.send_replace(d);
    }
}

/// Tracks which batches are durable and publishes the contiguous watermark.
#[derive(Debug, Clone)]
pub struct AckTracker {
    shared: Arc<Shared>,
}

impl Default for AckTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl AckTracker {
    /// A tracker with nothing registered.
    pub fn new() -> Self {
        let durable = Durable::default();
        let (tx, _) = watch::channel(durable);
        AckTracker {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    base: 0,
                    slots: VecDeque::new(),
                    durable,
                }),
                tx,
            }),
        }
    }

    /// Registers the next batch. `position` is what the watermark may advance to once this
    /// batch and every batch registered before it are durable (for a batch that ends a
    /// transaction: its commit end LSN; otherwise `None`).
    pub fn register(&self, position: Option<Lsn>) -> AckToken {
        let mut st = self.shared.lock();
        let seq = st.base + st.slots.len() as u64;
        st.slots.push_back(Slot {
            position,
            done: false,
        });
        drop(st);
        AckToken {
            shared: Some(self.shared.clone()),
            seq,
        }
    }

    /// The sequence number the next registered batch will get.
    pub fn next_seq(&self) -> u64 {
        let st = self.shared.lock();
        st.base + st.slots.len() as u64
    }

    /// The current watermark.
    pub fn durable(&self) -> Durable {
        self.shared.lock().durable
    }

    /// A receiver that sees every watermark change.
    pub fn subscribe(&self) -> watch::Receiver<Durable> {
        self.shared.tx.subscribe()
    }

    /// How many registered batches are not yet durable.
    pub fn in_flight(&self) -> usize {
        self.shared.lock().slots.len()
    }
}

/// The obligation to report one batch as durable. Resolve it with [`AckToken::ack`]; dropping it
/// unresolved poisons the tracker.
#[derive(Debug)]
pub struct AckToken {
    shared: Option<Arc<Shared>>,
    seq: u64,
}

impl AckToken {
    /// The batch's sequence number (registration order, from 0).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Reports the batch as durable.
    pub fn ack(mut self) {
        if let Some(shared) = self.shared.take() {
            shared.resolve(self.seq);
        }
    }

    /// A token tied to no tracker, for stages run without acknowledgements (tests, one-shot
    /// tools). Resolving or dropping it does nothing.
    pub fn detached() -> Self {
        AckToken {
            shared: None,
            seq: 0,
        }
    }
}

impl Drop for AckToken {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.poison();
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn watermark_moves_only_over_a_contiguous_prefix() {
        let t = AckTracker::new();
        let a = t.register(Some(Lsn(10)));
        let b = t.register(None);
        let c = t.register(Some(Lsn(30)));
        c.ack();
        assert_eq!(
            t.durable().position,
            None,
            "c is durable but a and b are not"
        );
        a.ack();
        assert_eq!(t.durable().position, Some(Lsn(10)));
        assert_eq!(t.durable().batches, 1);
        b.ack();
        assert_eq!(t.durable().position, Some(Lsn(30)));
        assert_eq!(t.durable().batches, 3);
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn a_dropped_token_poisons_and_freezes_the_watermark() {
        let t = AckTracker::new();
        let a = t.register(Some(Lsn(10)));
        let b = t.register(Some(Lsn(20)));
        drop(a);
        b.ack();
        let d = t.durable();
        assert!(d.poisoned);
        assert_eq!(d.position, None);
    }

    /// One step of a random workload against the tracker.
    #[derive(Debug, Clone)]
    enum Step {
        /// Register a batch, carrying a position or not.
        Register { positioned: bool, gap: u8 },
        /// Resolve the `pick`-th open token.
        Ack { pick: usize },
        /// Drop the `pick`-th open token unresolved.
        Drop { pick: usize },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (any::<bool>(), 1u8..5).prop_map(|(positioned, gap)| Step::Register { positioned, gap }),
            4 => any::<usize>().prop_map(|pick| Step::Ack { pick }),
            1 => any::<usize>().prop_map(|pick| Step::Drop { pick }),
        ]
    }

    proptest! {
        /// A model check: whatever the order of registrations, acks and drops, the watermark is
        /// the contiguous resolved prefix (its highest position), never passes an unresolved
        /// batch, and never passes a batch whose token was dropped.
        #[test]
        fn the_watermark_is_the_resolved_prefix(steps in proptest::collection::vec(step(), 1..300)) {
            let t = AckTracker::new();
            let mut open: Vec<(usize, AckToken)> = Vec::new();
            // Per registered batch: its position and whether it was resolved.
            let mut model: Vec<(Option<u64>, bool)> = Vec::new();
            let mut last = 0u64;
            // The first batch whose token was dropped unresolved.
            let mut dropped: Option<u64> = None;
            for s in steps {
                match s {
                    Step::Register { positioned, gap } => {
                        last += u64::from(gap);
                        let p = positioned.then_some(last);
                        open.push((model.len(), t.register(p.map(Lsn))));
                        model.push((p, false));
                    }
                    Step::Ack { pick } if !open.is_empty() => {
                        let (i, tok) = open.swap_remove(pick % open.len());
                        tok.ack();
                        model[i].1 = true;
                    }
                    Step::Drop { pick } if !open.is_empty() => {
                        let (i, tok) = open.swap_remove(pick % open.len());
                        drop(tok);
                        dropped = Some(dropped.map_or(i as u64, |d| d.min(i as u64)));
                    }
                    _ => {}
                }
                let d = t.durable();
                let prefix = model.iter().take_while(|m| m.1).count() as u64;
                let highest = |n: u64| model[..n as usize].iter().filter_map(|m| m.0).max().map(Lsn);
                prop_assert!(d.batches <= prefix, "{d:?} passes an unresolved batch");
                prop_assert_eq!(d.position, highest(d.batches));
                prop_assert_eq!(d.poisoned, dropped.is_some());
                // Every resolved batch before the first dropped one becomes durable.
                prop_assert_eq!(d.batches, dropped.map_or(prefix, |at| at.min(prefix)));
            }
        }
    }
}
