//! The iteration order of PyTorch's per-operator kernel map.
//!
//! PyTorch keeps `kernels_` in a `ska::flat_hash_map<DispatchKey, ...>` (robin-hood hashing,
//! Fibonacci hash policy, power-of-two tables, max load factor 0.5) and walks it when a new
//! def is checked against existing kernels, so which mismatching kernel an error names
//! depends on that map's slot order. This replays the same insert/erase/grow rules on the
//! key values alone, so errors name the same kernel PyTorch does.

const FIB: u64 = 11_400_714_819_323_198_485;

/// An operator's kernel-map order, kept as the history of key insertions and removals and
/// replayed only when asked for: a def checking existing kernels is the only reader, and most
/// operators are defined before they get kernels, so they never pay for the hash-map
/// emulation. A history that
/// fills its inline room is replayed into the map, which takes over.
#[derive(Debug, Clone)]
pub(crate) enum KernelKeyOrder {
    /// Keys inserted, and removed (`| ERASED`), oldest first.
    History(smallvec::SmallVec<[u16; HISTORY]>),
    /// Boxed: few operators get here, and every operator carries this value.
    Map(Box<KeyOrder>),
}

const HISTORY: usize = 8;
/// Marks a removal in the history (dispatch keys are far below it).
const ERASED: u16 = 0x8000;

impl Default for KernelKeyOrder {
    fn default() -> Self {
        Self::History(smallvec::SmallVec::new())
    }
}

impl KernelKeyOrder {
    pub(crate) fn insert(&mut self, key: u16) {
        self.record(key, false);
    }

    pub(crate) fn erase(&mut self, key: u16) {
        self.record(key, true);
    }

    fn record(&mut self, key: u16, erase: bool) {
        debug_assert!(key < ERASED);
        match self {
            Self::History(h) if h.len() < HISTORY => h.push(if erase { key | ERASED } else { key }),
            Self::History(_) => {
                let mut m = self.replay();
                if erase {
                    m.erase(key);
                } else {
                    m.insert(key);
                }
                *self = Self::Map(Box::new(m));
            }
            Self::Map(m) if erase => m.erase(key),
            Self::Map(m) => m.insert(key),
        }
    }

    fn replay(&self) -> KeyOrder {
        match self {
            Self::History(h) => {
                let mut m = KeyOrder::default();
                for &e in h {
                    if e & ERASED != 0 {
                        m.erase(e & !ERASED);
                    } else {
                        m.insert(e);
                    }
                }
                m
            }
            Self::Map(m) => KeyOrder::clone(m),
        }
    }

    /// The keys in the map's iteration order.
    pub(crate) fn keys(&self) -> smallvec::SmallVec<[u16; 16]> {
        match self {
            Self::History(h) if h.is_empty() => smallvec::SmallVec::new(),
            Self::History(_) => self.replay().iter().collect(),
            Self::Map(m) => m.iter().collect(),
        }
    }
}

type Slots = smallvec::SmallVec<[(i8, u16); 16]>;
const MIN_LOOKUPS: i8 = 4;

#[derive(Debug, Clone)]
pub(crate) struct KeyOrder {
    /// `(distance_from_desired, key)`; distance -1 means empty. Inline up to 16 slots (an
    /// operator with a handful of kernels), so registering one allocates nothing here.
    slots: Slots,
    num_slots_minus_one: usize,
    shift: u32,
    max_lookups: i8,
    num_elements: usize,
}

impl Default for KeyOrder {
    fn default() -> Self {
        Self {
            slots: smallvec::smallvec![(-1, 0); MIN_LOOKUPS as usize - 1],
            num_slots_minus_one: 0,
            shift: 63,
            max_lookups: MIN_LOOKUPS - 1,
            num_elements: 0,
        }
    }
}

fn log2(x: usize) -> u32 {
    usize::BITS - 1 - x.leading_zeros()
}

impl KeyOrder {
    fn index_for(&self, key: u16) -> usize {
        (FIB.wrapping_mul(u64::from(key)) >> self.shift) as usize
    }

    fn bucket_count(&self) -> usize {
        if self.num_slots_minus_one == 0 {
            0
        } else {
            self.num_slots_minus_one + 1
        }
    }

    /// Inserts `key` if absent.
    pub(crate) fn insert(&mut self, key: u16) {
        let mut i = self.index_for(key);
        let mut dist: i8 = 0;
        while i < self.slots.len() && self.slots[i].0 >= dist {
            if self.slots[i].1 == key {
                return;
            }
            i += 1;
            dist += 1;
        }
        self.insert_new(dist, i, key);
    }

    fn insert_new(&mut self, mut dist: i8, mut i: usize, key: u16) {
        if self.num_slots_minus_one == 0
            || dist == self.max_lookups
            || (self.num_elements + 1) as f64 > (self.num_slots_minus_one + 1) as f64 * 0.5
        {
            self.grow();
            self.insert(key);
            return;
        }
        if self.slots[i].0 < 0 {
            self.slots[i] = (dist, key);
            self.num_elements += 1;
            return;
        }
        let result = i;
        let mut to_insert = key;
        std::mem::swap(&mut dist, &mut self.slots[i].0);
        std::mem::swap(&mut to_insert, &mut self.slots[i].1);
        dist += 1;
        i += 1;
        loop {
            if self.slots[i].0 < 0 {
                self.slots[i] = (dist, to_insert);
                self.num_elements += 1;
                return;
            } else if self.slots[i].0 < dist {
                std::mem::swap(&mut dist, &mut self.slots[i].0);
                std::mem::swap(&mut to_insert, &mut self.slots[i].1);
                dist += 1;
            } else {
                dist += 1;
                if dist == self.max_lookups {
                    std::mem::swap(&mut to_insert, &mut self.slots[result].1);
                    self.grow();
                    self.insert(to_insert);
                    return;
                }
            }
            i += 1;
        }
    }

    fn grow(&mut self) {
        self.rehash(std::cmp::max(4, 2 * self.bucket_count()));
    }

    fn rehash(&mut self, num_buckets: usize) {
        let num_buckets = std::cmp::max(
            num_buckets,
            (self.num_elements as f64 / 0.5).ceil() as usize,
        );
        let num_buckets = std::cmp::max(2, num_buckets.next_power_of_two());
        if num_buckets == self.bucket_count() {
            return;
        }
        let new_max_lookups = std::cmp::max(MIN_LOOKUPS, log2(num_buckets) as i8);
        // The last slot of ska's allocation is an end sentinel that never holds a value.
        let old = std::mem::replace(
            &mut self.slots,
            smallvec::smallvec![(-1, 0); num_buckets + new_max_lookups as usize - 1],
        );
        self.num_slots_minus_one = num_buckets - 1;
        self.shift = 64 - log2(num_buckets);
        self.max_lookups = new_max_lookups;
        self.num_elements = 0;
        for (d, k) in old {
            if d >= 0 {
                self.insert(k);
            }
        }
    }

    /// Removes `key` (backward-shift deletion, as ska does).
    pub(crate) fn erase(&mut self, key: u16) {
        let Some(mut i) = self.slots.iter().position(|&(d, k)| d >= 0 && k == key) else {
            return;
        };
        self.slots[i] = (-1, 0);
        self.num_elements -= 1;
        while i + 1 < self.slots.len() && self.slots[i + 1].0 > 0 {
            self.slots[i] = (self.slots[i + 1].0 - 1, self.slots[i + 1].1);
            self.slots[i + 1] = (-1, 0);
            i += 1;
        }
    }

    /// Keys in slot order (the map's iteration order).
    pub(crate) fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.slots.iter().filter(|(d, _)| *d >= 0).map(|&(_, k)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::KeyOrder;

    fn order(keys: &[u16]) -> Vec<u16> {
        let mut m = KeyOrder::default();
        for &k in keys {
            m.insert(k);
        }
        m.iter().collect()
    }

    #[test]
    fn matches_recorded_pytorch_orders() {
        // Pairs (insertion order) whose first-iterated key PyTorch 2.15 reported.
        assert_eq!(order(&[146, 61])[0], 146);
        assert_eq!(order(&[151, 154, 155])[0], 154);
        assert_eq!(order(&[154, 137])[0], 154);
        assert_eq!(order(&[20, 151])[0], 20);
    }

    #[test]
    fn history_replays_to_the_same_order_as_the_map() {
        use super::KernelKeyOrder;
        // Inserts and removals, some repeated, past the history's inline room.
        let ops: Vec<(u16, bool)> = (0..40u16)
            .map(|i| ((i * 37) % 23 + 1, i % 5 == 3))
            .collect();
        for n in 0..ops.len() {
            let mut lazy = KernelKeyOrder::default();
            let mut map = KeyOrder::default();
            for &(k, erase) in &ops[..n] {
                if erase {
                    lazy.erase(k);
                    map.erase(k);
                } else {
                    lazy.insert(k);
                    map.insert(k);
                }
            }
            assert_eq!(
                lazy.keys().to_vec(),
                map.iter().collect::<Vec<_>>(),
                "after {n}"
            );
        }
    }

    #[test]
    fn insert_erase_keeps_every_key_once() {
        let mut m = KeyOrder::default();
        for k in 0..200u16 {
            m.insert(k);
            m.insert(k);
        }
        for k in (0..200u16).step_by(2) {
            m.erase(k);
        }
        let mut got: Vec<u16> = m.iter().collect();
        got.sort_unstable();
        assert_eq!(got, (1..200u16).step_by(2).collect::<Vec<_>>());
    }
}
