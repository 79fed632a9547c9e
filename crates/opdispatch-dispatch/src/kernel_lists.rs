//! An operator's registered kernels: per dispatch key, a list with the newest first (only the
//! front one is active; the others come back when it is deregistered).
//!
//! One flat array sorted by key, with each key's kernels adjacent and newest first, kept
//! inline for a handful of kernels. A map of lists cost four allocations per operator with
//! three kernels, which is most of what a bulk registration allocates.

use opdispatch_keys::DispatchKey;
use smallvec::SmallVec;

use crate::operator::AnnotatedKernel;

/// Kernels held inline: most operators have one kernel per backend plus a composite one.
const INLINE: usize = 4;

#[derive(Default)]
pub(crate) struct KernelLists {
    entries: SmallVec<[(DispatchKey, AnnotatedKernel); INLINE]>,
}

impl KernelLists {
    /// Where `k`'s kernels start (or would start).
    #[inline]
    fn start(&self, k: DispatchKey) -> usize {
        self.entries.partition_point(|(e, _)| *e < k)
    }

    /// `k`'s kernels, newest (active) first.
    pub(crate) fn list(&self, k: DispatchKey) -> impl Iterator<Item = &AnnotatedKernel> {
        self.entries[self.start(k)..]
            .iter()
            .take_while(move |(e, _)| *e == k)
            .map(|(_, a)| a)
    }

    /// The active kernel for `k`.
    #[inline]
    pub(crate) fn front(&self, k: DispatchKey) -> Option<&AnnotatedKernel> {
        match self.entries.get(self.start(k)) {
            Some((e, a)) if *e == k => Some(a),
            _ => None,
        }
    }

    pub(crate) fn contains(&self, k: DispatchKey) -> bool {
        self.front(k).is_some()
    }

    /// Makes `a` the active kernel for `k`, in front of any earlier ones.
    pub(crate) fn push_front(&mut self, k: DispatchKey, a: AnnotatedKernel) {
        let i = self.start(k);
        self.entries.insert(i, (k, a));
    }

    /// Removes the registration `id` of key `k`; the flag says whether `k` has no kernel left.
    pub(crate) fn remove(&mut self, k: DispatchKey, id: u64) -> Option<(AnnotatedKernel, bool)> {
        let i = self.start(k);
        let n = self.entries[i..]
            .iter()
            .take_while(|(e, _)| *e == k)
            .count();
        let pos = self.entries[i..i + n]
            .iter()
            .position(|(_, a)| a.id == id)?;
        let (_, a) = self.entries.remove(i + pos);
        Some((a, n == 1))
    }

    /// The keys with kernels, ascending, once each.
    pub(crate) fn keys(&self) -> impl Iterator<Item = DispatchKey> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter(|(i, (k, _))| *i == 0 || self.entries[i - 1].0 != *k)
            .map(|(_, (k, _))| *k)
    }

    /// Every kernel with its key and whether it is active (first of its key), keys ascending.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (DispatchKey, &AnnotatedKernel, bool)> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, (k, a))| (*k, a, i == 0 || self.entries[i - 1].0 != *k))
    }

    /// Removes and returns every kernel.
    pub(crate) fn take_all(&mut self) -> impl Iterator<Item = AnnotatedKernel> {
        std::mem::take(&mut self.entries)
            .into_iter()
            .map(|(_, a)| a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KernelFunction;
    use std::sync::Arc;

    fn ak(id: u64) -> AnnotatedKernel {
        AnnotatedKernel {
            kernel: KernelFunction::fallthrough(),
            inferred_schema: None,
            debug: Arc::from(format!("k{id}")),
            id,
        }
    }

    fn ids(l: &KernelLists, k: DispatchKey) -> Vec<u64> {
        l.list(k).map(|a| a.id).collect()
    }

    #[test]
    fn lists_stay_grouped_by_key_and_newest_first() {
        use DispatchKey as K;
        let mut l = KernelLists::default();
        for (k, id) in [
            (K::CUDA, 1),
            (K::CPU, 2),
            (K::CompositeExplicitAutograd, 3),
            (K::CPU, 4),
            (K::Meta, 5),
            (K::CPU, 6),
        ] {
            l.push_front(k, ak(id));
        }
        assert_eq!(ids(&l, K::CPU), [6, 4, 2]);
        assert_eq!(ids(&l, K::CUDA), [1]);
        assert_eq!(l.front(K::CPU).map(|a| a.id), Some(6));
        assert!(l.front(K::AutogradCPU).is_none());
        let mut keys: Vec<_> = l.keys().collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        keys.sort();
        assert_eq!(keys.len(), 4);
        let active: Vec<u64> = l.iter().filter(|e| e.2).map(|e| e.1.id).collect();
        assert_eq!(active.len(), 4);
        assert!(active.contains(&6) && !active.contains(&4));

        // Removing the active one re-activates the previous; emptiness is reported.
        assert_eq!(
            l.remove(K::CPU, 6).map(|(a, e)| (a.id, e)),
            Some((6, false))
        );
        assert_eq!(l.front(K::CPU).map(|a| a.id), Some(4));
        assert_eq!(
            l.remove(K::CPU, 2).map(|(a, e)| (a.id, e)),
            Some((2, false))
        );
        assert!(l.remove(K::CPU, 2).is_none(), "already gone");
        assert!(l.remove(K::CUDA, 4).is_none(), "id of another key");
        assert_eq!(l.remove(K::CPU, 4).map(|(a, e)| (a.id, e)), Some((4, true)));
        assert!(!l.contains(K::CPU));
        assert_eq!(l.take_all().count(), 3);
        assert_eq!(l.keys().count(), 0);
    }
}
