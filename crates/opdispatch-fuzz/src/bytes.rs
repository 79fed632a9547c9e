//! A cursor over fuzz input that never fails: past the end it yields zeros.

pub(crate) struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }
    pub(crate) fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    /// One of `n` choices (`n > 0`).
    pub(crate) fn pick(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }
}
