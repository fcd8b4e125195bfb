//! FNV-1a, the one hash prun stores: its values must never change from one build or Rust
//! release to the next (`std`'s hashers promise no such thing), since they end up in the
//! task DB (fingerprints) and in directory names (the state directory of a script).

/// An FNV-1a state of 64 or 128 bits.
pub(crate) trait Width: Copy {
    /// The offset basis: the hash of nothing.
    const OFFSET: Self;
    /// Folds in one byte.
    fn step(self, byte: u8) -> Self;
}

impl Width for u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    fn step(self, byte: u8) -> u64 {
        (self ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    }
}

impl Width for u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    fn step(self, byte: u8) -> u128 {
        (self ^ u128::from(byte)).wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b)
    }
}

/// A running FNV-1a hash.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv<W: Width>(pub W);

impl<W: Width> Fnv<W> {
    /// The hash of nothing yet.
    pub(crate) fn new() -> Fnv<W> {
        Fnv(W::OFFSET)
    }

    /// Folds in `bytes` as they are.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.0 = bytes.iter().fold(self.0, |h, &b| h.step(b));
    }

    /// Folds in `bytes` as one field: a separator follows, so that ("ab", "c") and
    /// ("a", "bc") differ.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        self.update(bytes);
        self.0 = self.0.step(0xff);
    }
}

/// Folds in what is written, as [`Fnv::update`] does (`std::io::copy` a file into it).
impl<W: Width> std::io::Write for Fnv<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The 64-bit FNV-1a hash of `bytes`.
pub(crate) fn hash64(bytes: &[u8]) -> u64 {
    let mut h = Fnv::<u64>::new();
    h.update(bytes);
    h.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_those_of_fnv_1a() {
        // Published test vectors of FNV-1a.
        assert_eq!(hash64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash64(b"a"), 0xaf63_dc4c_8601_ec8c);
        let mut h = Fnv::<u128>::new();
        h.update(b"a");
        assert_eq!(h.0, 0xd228_cb69_6f1a_8caf_7891_2b70_4e4a_8964);
        let (mut ab_c, mut a_bc) = (Fnv::<u128>::new(), Fnv::<u128>::new());
        ab_c.feed(b"ab");
        ab_c.feed(b"c");
        a_bc.feed(b"a");
        a_bc.feed(b"bc");
        assert_ne!(ab_c.0, a_bc.0);
    }

    #[test]
    fn what_is_written_is_folded_in_as_by_update() {
        use std::io::Write;
        let mut written = Fnv::<u128>::new();
        written.write_all(b"ab").unwrap();
        written.write_all(b"c").unwrap();
        let mut updated = Fnv::<u128>::new();
        updated.update(b"abc");
        assert_eq!(written.0, updated.0);
    }
}
