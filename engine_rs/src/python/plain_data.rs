//! What the frozen value classes (`Event`, `Command`, `Bbo`, `RestingOrder`, `Exposure`,
//! `QueuePosition`) share:
//! they are kept off the cycle collector's lists, and `Event` and `Command` hash by their
//! engine struct's `Debug` output.

use std::fmt::{self, Write as _};
use std::hash::Hasher;

use pyo3::prelude::*;

/// A `#[pyclass]` whose instances hold no Python references, so they can never be part of a
/// reference cycle.
///
/// # Safety
/// Implement only for classes with no `Py`/`Bound` (or anything holding one) inside.
pub(super) unsafe trait PlainData: pyo3::PyClass + Into<PyClassInitializer<Self>> {}

/// Creates a Python object for a [`PlainData`] class and takes it off the cycle collector's
/// lists. PyO3 gives every class GC support, so each new event would otherwise count towards the
/// next collection and be traversed by it — with a large batch of events alive at once, that is
/// most of the cost. CPython does the same for tuples and dicts of atomic values.
pub(super) fn untracked<T: PlainData>(py: Python<'_>, value: T) -> PyResult<Bound<'_, T>> {
    let object = Bound::new(py, value)?;
    // SAFETY: `object` is alive and of a GC-enabled type; untracking only hides it from the cycle
    // collector, which has nothing to find in it (PlainData). Deallocation untracks again, which
    // CPython allows for an untracked object.
    unsafe { pyo3::ffi::PyObject_GC_UnTrack(object.as_ptr().cast()) };
    Ok(object)
}

/// Converts a [`PlainData`] value with [`untracked`], for `PyList::new` and return values.
pub(super) struct Untracked<T>(pub(super) T);

impl<'py, T: PlainData> IntoPyObject<'py> for Untracked<T> {
    type Target = T;
    type Output = Bound<'py, T>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, T>> {
        untracked(py, self.0)
    }
}

/// Feeds `Debug` output into a hasher without allocating: equal values hash equal, and these plain
/// `Copy` types print every field.
pub(super) fn hash_debug(value: &impl fmt::Debug, state: &mut impl Hasher) {
    struct HashWriter<'a, H: Hasher>(&'a mut H);
    impl<H: Hasher> fmt::Write for HashWriter<'_, H> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0.write(s.as_bytes());
            Ok(())
        }
    }
    let _ = write!(HashWriter(state), "{value:?}");
}
