//! The wire formats from Python: event lines to `Event`s, a `Command` to its journal fields, and
//! a journal entry's fields (str or bytes) to the bytes the engine decodes.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use super::command::PyCommand;
use super::event::PyEvent;
use super::plain_data::Untracked;

fn bytes_of(value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(text.to_str()?.as_bytes().to_vec());
    }
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return Ok(bytes.as_bytes().to_vec());
    }
    Err(PyTypeError::new_err(format!(
        "journal field keys and values must be str or bytes, not {}",
        value.get_type().name()?
    )))
}

/// A journal entry's fields from a mapping or an iterable of `(key, value)` pairs.
pub(super) fn entry_fields(fields: &Bound<'_, PyAny>) -> PyResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let items = match fields.cast::<PyDict>() {
        Ok(dict) => dict.items().into_any(),
        Err(_) => fields.clone(),
    };
    let mut owned = Vec::new();
    for item in items.try_iter()? {
        let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
        owned.push((bytes_of(&key)?, bytes_of(&value)?));
    }
    Ok(owned)
}

/// Parses event lines as the worker writes them (an event stream entry's `e` field, a reply, the
/// event lines of a market-data message) into `Event` objects.
#[pyfunction]
pub(super) fn decode_events<'py>(py: Python<'py>, text: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    let raw = bytes_of(text)?;
    let text = std::str::from_utf8(&raw).map_err(|_| PyValueError::new_err("event lines are not UTF-8"))?;
    let events = crate::codec::decode_events(text).map_err(PyValueError::new_err)?;
    PyList::new(py, events.into_iter().map(|inner| Untracked(PyEvent { inner })))
}

/// The journal stream fields of a command, as `(field, value)` string pairs ready for `XADD`.
#[pyfunction]
pub(super) fn command_fields(command: &Bound<'_, PyCommand>) -> Vec<(&'static str, String)> {
    crate::codec::encode_command(&command.get().inner)
}
