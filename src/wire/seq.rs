//! TCP sequence numbers with wrap-around arithmetic (RFC 9293 §3.4).

use std::fmt;

/// A 32-bit TCP sequence number. Comparisons are only meaningful between numbers less than
/// 2^31 apart, as in RFC 9293 §3.4; use [`SeqNumber::offset_from`] rather than `<`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// The sequence number `n` bytes after `self`, wrapping modulo 2^32.
    pub const fn add(self, n: u32) -> Self {
        Self(self.0.wrapping_add(n))
    }

    /// The signed distance from `base` to `self`: positive when `self` is after `base`.
    pub const fn offset_from(self, base: Self) -> i32 {
        self.0.wrapping_sub(base.0) as i32
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_wrap_around() {
        let near_end = SeqNumber(u32::MAX - 1);
        let wrapped = near_end.add(5);
        assert_eq!(wrapped, SeqNumber(3));
        assert_eq!(wrapped.offset_from(near_end), 5);
        assert_eq!(near_end.offset_from(wrapped), -5);
    }

    #[test]
    fn half_space_is_the_horizon() {
        let base = SeqNumber(10);
        assert_eq!(base.add(0x7fff_ffff).offset_from(base), i32::MAX);
        assert_eq!(base.add(0x8000_0000).offset_from(base), i32::MIN);
    }
}
