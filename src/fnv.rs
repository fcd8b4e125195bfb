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

    /// Folds in `bytes` as one field: its length follows, so that no two lists of fields
    /// are folded in as the same bytes, whatever bytes the fields hold (read from its end,
    /// the list gives each field's length, then the field). A separator byte did not:
    /// `["a\xff", "b"]` and `["a", "\xffb"]` were the same bytes.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        self.update(bytes);
        self.end_field(bytes.len());
    }

    /// Ends a field of `len` bytes folded in by [`Fnv::update`] (one written as it is
    /// formatted, whose length is known only at its end), as [`Fnv::feed`] ends one.
    pub(crate) fn end_field(&mut self, len: usize) {
        // `usize` is at most 64 bits on every target Rust supports.
        self.update(&(len as u64).to_le_bytes());
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

    /// Fed lists of fields whose bytes put together are alike.
    fn fed(fields: &[&[u8]]) -> u128 {
        let mut h = Fnv::<u128>::new();
        for f in fields {
            h.feed(f);
        }
        h.0
    }

    #[test]
    fn no_bytes_a_field_holds_make_two_lists_of_fields_hash_alike() {
        // With a 0xff after each field these were the same bytes, and so the same hash.
        assert_ne!(fed(&[b"a\xff", b"b"]), fed(&[b"a", b"\xffb"]));
        assert_ne!(fed(&[b"a\xff\xff"]), fed(&[b"a", b""]));
        assert_ne!(fed(&[b""]), fed(&[]));
        // Nor do the bytes of a length: each field is followed by 8 of them.
        let one = 1u64.to_le_bytes();
        let forged = [b"a".as_slice(), &one, b"b"].concat();
        assert_ne!(fed(&[b"a", b"b"]), fed(&[&forged]));
    }

    #[test]
    fn a_field_ended_after_its_bytes_is_one_fed_whole() {
        let mut ended = Fnv::<u128>::new();
        ended.update(b"ab");
        ended.update(b"c");
        ended.end_field(3);
        assert_eq!(ended.0, fed(&[b"abc"]));
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
