//! A small deterministic generator for test and benchmark data.

/// Xorshift64 (Marsaglia): the same seed gives the same sequence on every machine, so that a
/// test's random data, and what it asserts of them, never change between runs. Not for
/// anything but test data.
#[derive(Clone, Debug)]
pub struct Xorshift(u64);

impl Xorshift {
    /// A generator starting from `seed` (0 is replaced by a fixed non-zero seed: xorshift
    /// would give only zeros).
    pub fn new(seed: u64) -> Self {
        Xorshift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// The next float, uniform in [-1, 1): the top 53 bits of [`Xorshift::next_u64`].
    pub fn next_symmetric(&mut self) -> f64 {
        #[allow(clippy::cast_precision_loss)] // 53 bits: exact
        let unit = (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64;
        unit * 2.0 - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_xorshift64() {
        let mut rng = Xorshift::new(1);
        // 1 ^ 1 << 13 = 0x2001; ^ >> 7 = 0x2041; ^ << 17 = 0x4082_2041.
        assert_eq!(rng.next_u64(), 0x4082_2041);
        let mut a = Xorshift::new(0x2545_F491_4F6C_DD1D);
        let mut b = a.clone();
        for _ in 0..1000 {
            let x = a.next_symmetric();
            assert!((-1.0..1.0).contains(&x));
            assert_eq!(x.to_bits(), b.next_symmetric().to_bits());
        }
        assert_ne!(Xorshift::new(0).next_u64(), 0);
    }
}
