//! Memory sized by what a file claims before anything in it is checked.

/// `len` zeroed values, or `None` when the system refuses that much memory.
///
/// The memory is first asked for without being used (a mapping the system grants or
/// refuses, no page touched) and given back, then allocated zeroed. A length the system will
/// not grant (a damaged or sparse file may claim terabytes) is thus a `None`, not the abort
/// of the process an infallible allocation makes; and a large buffer is fresh pages from the
/// system that nothing here writes to, zeroed by the kernel when whichever thread fills them
/// first touches them.
pub(crate) fn zeroed<T: Clone + Default>(len: usize) -> Option<Vec<T>> {
    Vec::<T>::new().try_reserve_exact(len).ok()?;
    Some(vec![T::default(); len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_length_the_system_grants_is_zeroed_and_one_it_refuses_is_none() {
        let words = zeroed::<u64>(1 << 20).unwrap();
        assert_eq!(words.len(), 1 << 20);
        assert!(words.iter().all(|&w| w == 0));
        // A pebibyte, more than a 47-bit address space holds, and more than a length can
        // say: refused, not aborted.
        assert!(zeroed::<u8>(1 << 50).is_none());
        assert!(zeroed::<u64>(usize::MAX / 4).is_none());
    }
}
