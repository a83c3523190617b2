//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Owns: the one's-complement arithmetic that NAT needs to change bytes under a checksum
//! without recomputing it. Does not own: where a checksum lives or what it covers (the packet
//! views in [`super`] know that).
//!
//! Updating rather than recomputing is deliberate: a checksum that was wrong stays exactly as
//! wrong, so the receiver still drops a segment the sender corrupted, and one that was right
//! stays right.

/// The checksum field value after the covered bytes `old` were replaced by `new`, given the
/// field's value `old_sum` before (RFC 1624 §3, eqn. 3: `HC' = ~(~HC + ~m + m')`).
///
/// `old` and `new` are read as big-endian 16-bit words and must start at an even offset from
/// the start of the checksummed data. Their lengths may differ (a payload that grows or
/// shrinks); an odd trailing byte counts as a word padded with a zero byte, which is right
/// when the slice ends the checksummed data (RFC 1071 §4.1) or when both slices stop at the
/// same odd offset. A length change of the data is a separate update of the length field
/// (the IPv4 total length, or the TCP pseudo-header length).
///
/// Eqn. 3 never turns a right checksum into the `0xffff` that a recomputation cannot give
/// (RFC 1624 §3 explains why eqn. 2 could): the result equals a recomputation from scratch.
pub fn update(old_sum: u16, old: &[u8], new: &[u8]) -> u16 {
    // ~m summed word by word is ~(sum of m) in one's-complement arithmetic.
    let total = u64::from(!old_sum) + u64::from(!sum(old)) + u64::from(sum(new));
    !fold(total)
}

/// The one's-complement sum of `data` as big-endian 16-bit words, an odd trailing byte padded
/// with zero (RFC 1071 §4.1). Not complemented: the checksum of `data` alone is `!sum(data)`.
pub fn sum(data: &[u8]) -> u16 {
    let mut words = data.chunks_exact(2);
    let mut total: u64 = words
        .by_ref()
        .map(|word| u64::from(u16::from_be_bytes([word[0], word[1]])))
        .sum();
    if let [last] = words.remainder() {
        total += u64::from(u16::from_be_bytes([*last, 0]));
    }
    fold(total)
}

/// Folds the carries of a wide sum back into 16 bits (end-around carry, RFC 1071 §1).
fn fold(mut total: u64) -> u16 {
    while total > 0xffff {
        total = (total & 0xffff) + (total >> 16);
    }
    // NOTE(unwrap): the loop leaves at most 16 bits.
    u16::try_from(total).expect("folded to 16 bits")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 §3's worked example: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    #[test]
    fn rfc1071_example_sum() {
        assert_eq!(
            sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(sum(&[0xff]), 0xff00);
        assert_eq!(sum(&[]), 0);
    }

    /// RFC 1624 §4's example: HC = 0xdd2f, a word 0x5555 becomes 0x3285, HC' = 0x0000.
    #[test]
    fn rfc1624_example_gives_zero_not_minus_zero() {
        assert_eq!(update(0xdd2f, &[0x55, 0x55], &[0x32, 0x85]), 0x0000);
    }

    #[test]
    fn update_matches_recomputation() {
        let mut data = b"\x45\x00\x00\x54 any bytes, odd length!".to_vec();
        let before = !sum(&data);
        let old = data[2..8].to_vec();
        data[2..8].copy_from_slice(&[0xff, 0xff, 0x00, 0x00, 0x12, 0x34]);
        assert_eq!(update(before, &old, &data[2..8]), !sum(&data));
    }

    #[test]
    fn update_with_different_lengths_matches_recomputation() {
        let head = [0x11, 0x22, 0x33, 0x44];
        let whole = |tail: &[u8]| [&head[..], tail].concat();
        for (old, new) in [
            (&b"abc"[..], &b"defgh"[..]),
            (b"abcd", b"x"),
            (b"", b"xyz"),
            (b"q", b""),
        ] {
            let before = !sum(&whole(old));
            assert_eq!(
                update(before, old, new),
                !sum(&whole(new)),
                "{old:?} -> {new:?}"
            );
        }
    }

    #[test]
    fn a_wrong_checksum_stays_as_wrong() {
        let mut data = b"\x00\x06payload".to_vec();
        let wrong = (!sum(&data)).wrapping_add(3);
        data[0] = 0x42;
        assert_eq!(
            update(wrong, &[0x00], &[0x42]),
            (!sum(&data)).wrapping_add(3)
        );
    }

    #[test]
    fn unchanged_bytes_leave_a_right_checksum_alone() {
        let data = b"\x12\x34\x56\x78";
        let right = !sum(data);
        assert_eq!(update(right, &data[..2], &data[..2]), right);
    }
}
