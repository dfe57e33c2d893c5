//! [`Vector`]: an artifact's floats, owned or shared with the buffer they were read from.

use std::fmt;
use std::ops::Deref;

use arrow_buffer::ScalarBuffer;

/// The floats of an artifact: read as a `&[f64]` (it dereferences to one), cloned in O(1).
///
/// A vector is either owned (made from a `Vec<f64>`, without copying it) or a view into a
/// larger shared buffer: the vectors of an artifact loaded from an arrow snapshot are views
/// into the one buffer the file was read into, so that a load copies no float. A view keeps
/// its whole buffer alive; [`Vector::into_vec`] and [`Vector::compact`] give a vector its
/// own floats. Vectors are immutable: to change one, build a new one
/// (`Vector::from(v.to_vec())`).
///
/// Equality is that of `[f64]`: element by element, so a vector holding a NaN is not equal
/// to itself.
///
/// ```
/// use penin_artifacts::Vector;
///
/// let v = Vector::from(vec![0.5, -1.0, 2.0]);
/// assert_eq!(v.len(), 3);
/// assert_eq!(v[1], -1.0);
/// assert_eq!(v.iter().sum::<f64>(), 1.5);
/// let shared = v.clone(); // no copy: both read the same floats
/// assert_eq!(shared, [0.5, -1.0, 2.0]);
/// assert_eq!(shared.into_vec(), vec![0.5, -1.0, 2.0]);
/// ```
#[derive(Clone)]
pub struct Vector(ScalarBuffer<f64>);

impl Vector {
    /// An empty vector.
    #[must_use]
    pub fn new() -> Self {
        Vector(ScalarBuffer::from(Vec::new()))
    }

    /// A view of `len` floats at `offset` (counted in floats) of a shared buffer, without
    /// copying them; `None` when they do not lie within it.
    #[must_use]
    pub fn view(buffer: &ScalarBuffer<f64>, offset: usize, len: usize) -> Option<Self> {
        let end = offset.checked_add(len)?;
        (end <= buffer.len()).then(|| Vector(buffer.slice(offset, len)))
    }

    /// The floats.
    #[must_use]
    pub fn as_slice(&self) -> &[f64] {
        &self.0
    }

    /// The floats as a `Vec`: without a copy when this vector owns them alone, else copied.
    #[must_use]
    pub fn into_vec(self) -> Vec<f64> {
        match self.0.into_inner().into_vec::<f64>() {
            Ok(vec) => vec,
            Err(shared) => shared.typed_data::<f64>().to_vec(),
        }
    }

    /// Whether this vector is a view that shares its buffer with others (or is a part of a
    /// larger one), so that it keeps more memory alive than its own floats.
    #[must_use]
    pub fn is_shared(&self) -> bool {
        self.0.inner().strong_count() > 1 || self.0.inner().capacity() > self.0.inner().len()
    }

    /// Gives this vector its own floats if it is a view, so that it no longer keeps a shared
    /// buffer alive.
    pub fn compact(&mut self) {
        if self.is_shared() {
            *self = Vector::from(self.as_slice().to_vec());
        }
    }
}

impl Default for Vector {
    fn default() -> Self {
        Vector::new()
    }
}

impl Deref for Vector {
    type Target = [f64];

    fn deref(&self) -> &[f64] {
        &self.0
    }
}

impl AsRef<[f64]> for Vector {
    fn as_ref(&self) -> &[f64] {
        &self.0
    }
}

impl From<Vec<f64>> for Vector {
    /// Takes the `Vec`'s allocation over: no copy.
    fn from(vec: Vec<f64>) -> Self {
        Vector(ScalarBuffer::from(vec))
    }
}

impl From<&[f64]> for Vector {
    fn from(floats: &[f64]) -> Self {
        Vector::from(floats.to_vec())
    }
}

impl<const N: usize> From<[f64; N]> for Vector {
    fn from(floats: [f64; N]) -> Self {
        Vector::from(floats.to_vec())
    }
}

impl From<ScalarBuffer<f64>> for Vector {
    /// A view of every float of `buffer`, without a copy.
    fn from(buffer: ScalarBuffer<f64>) -> Self {
        Vector(buffer)
    }
}

impl From<Vector> for Vec<f64> {
    fn from(vector: Vector) -> Self {
        vector.into_vec()
    }
}

impl FromIterator<f64> for Vector {
    fn from_iter<I: IntoIterator<Item = f64>>(iter: I) -> Self {
        Vector::from(iter.into_iter().collect::<Vec<f64>>())
    }
}

impl<'a> IntoIterator for &'a Vector {
    type Item = &'a f64;
    type IntoIter = std::slice::Iter<'a, f64>;

    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl fmt::Debug for Vector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl PartialEq for Vector {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<[f64]> for Vector {
    fn eq(&self, other: &[f64]) -> bool {
        self.as_slice() == other
    }
}

impl<const N: usize> PartialEq<[f64; N]> for Vector {
    fn eq(&self, other: &[f64; N]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<Vec<f64>> for Vector {
    fn eq(&self, other: &Vec<f64>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_reads_its_part_of_the_buffer_and_owns_nothing() {
        let buffer = ScalarBuffer::from(vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        let v = Vector::view(&buffer, 1, 3).unwrap();
        assert_eq!(v, [2.0, 3.0, 4.0]);
        assert!(v.is_shared());
        assert!(Vector::view(&buffer, 3, 3).is_none());
        assert!(Vector::view(&buffer, usize::MAX, 2).is_none());
        assert_eq!(Vector::view(&buffer, 5, 0).unwrap(), [0.0; 0]);
        drop(buffer);
        // The last view of a part still copies: the buffer holds more than its floats.
        assert!(v.is_shared());
        let mut compacted = v.clone();
        compacted.compact();
        assert!(!compacted.is_shared());
        assert_eq!(compacted, v);
        assert_eq!(v.into_vec(), vec![2.0, 3.0, 4.0]);
    }

    #[test]
    fn an_owned_vector_gives_its_floats_back() {
        let v = Vector::from(vec![0.25, f64::NAN]);
        assert!(!v.is_shared());
        let clone = v.clone();
        assert!(v.is_shared());
        drop(clone);
        let back = v.into_vec();
        assert_eq!(back.len(), 2);
        assert!(back[1].is_nan());
        // NaN is not equal to itself, as in a slice.
        let nan = Vector::from(vec![f64::NAN]);
        assert_ne!(nan, nan.clone());
        assert_eq!(format!("{:?}", Vector::from([1.0, -0.0])), "[1.0, -0.0]");
        assert_eq!(Vector::default(), Vector::new());
        assert_eq!((0..3).map(f64::from).collect::<Vector>(), [0.0, 1.0, 2.0]);
    }
}
