//! The worker's log lines. The worker emits `tracing` events; [`install`] writes them to stderr as
//! one JSON object per line, in the shape every Flashbook process logs in (`flashbook_site/logs.py`,
//! `docs/deploy.md`):
//!
//! ```text
//! {"ts":1764690000.123,"level":"info","component":"engine","symbol":"ACME","msg":"recovered","snapshot_seq":"0"}
//! ```
//!
//! `ts` is seconds since the epoch (to the millisecond), `level` lower case as the Python
//! processes' lines name it (`info`, `warning`, `error`: `flashbook_site/logs.py`), `symbol` the
//! event's `symbol` field ("" for an event without one), `msg` its message, then the other fields
//! as top-level keys in the order the event names them. Field values are JSON strings whatever
//! their Rust type, as the worker's lines have always carried them, so nothing that reads them
//! (the worker tests, `bench/bench_worker.py`, a log collector) has to change.
//!
//! tracing-subscriber's own JSON format has another shape (`timestamp`, `INFO`, `message`, ...),
//! hence a formatter of our own. None of this is on the matching path: the worker logs when it
//! starts, stops or recovers, and for the rare journal entry or reply that goes wrong.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Sends the worker's log lines to stderr from now on. A process has one global subscriber: if one
/// is installed already (by an earlier `run_worker` in this process, or by a host of its own), it
/// stays and the lines go to it.
pub(crate) fn install() {
    let _ = tracing::subscriber::set_global_default(subscriber(std::io::stderr));
}

/// The subscriber the worker logs through, writing to `writer`: stderr, or a buffer in the tests.
/// The fmt layer formats a whole line before it writes, so a line reaches the unbuffered stderr in
/// one write and lines from the runtime's threads do not interleave.
fn subscriber<W>(writer: W) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt().with_max_level(Level::INFO).with_writer(writer).event_format(JsonLine).finish()
}

/// Formats one event as one line of JSON (see the module docs).
struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let ts = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |since| since.as_secs_f64());
        let mut fields = Fields::default();
        event.record(&mut fields);
        write!(writer, "{{\"ts\":{ts:.3},\"level\":")?;
        json_string(&mut writer, level_name(*event.metadata().level()))?;
        writer.write_str(",\"component\":\"engine\",\"symbol\":")?;
        json_string(&mut writer, &fields.symbol)?;
        writer.write_str(",\"msg\":")?;
        json_string(&mut writer, &fields.message)?;
        for (name, value) in &fields.extra {
            writer.write_char(',')?;
            json_string(&mut writer, name)?;
            writer.write_char(':')?;
            json_string(&mut writer, value)?;
        }
        writer.write_str("}\n")
    }
}

/// Lower case, and the names Python's logging gives them, so that one filter on `level` reads the
/// engine's lines and the Python processes' alike.
fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// `text` as a JSON string literal: quoted, with quotes, backslashes and control characters escaped.
fn json_string(writer: &mut Writer<'_>, text: &str) -> fmt::Result {
    writer.write_str(&serde_json::to_string(text).map_err(|_| fmt::Error)?)
}

/// An event's fields as a line writes them: the symbol and the message apart, the others in order.
#[derive(Default)]
struct Fields {
    symbol: String,
    message: String,
    extra: Vec<(&'static str, String)>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            "symbol" => self.symbol = value,
            name => self.extra.push((name, value)),
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }

    /// Everything but `&str` ends up here (numbers, booleans, errors, `%` and `?` values), written
    /// with its `Debug` — which for numbers and for `%` values is their plain `Display` text.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::io;
    use std::sync::{Arc, Mutex};

    /// A writer into a buffer the test reads afterwards.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The raw lines that `log` writes through the worker's subscriber.
    fn lines_of(log: impl FnOnce()) -> Vec<String> {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing::subscriber::with_default(subscriber(move || writer.clone()), log);
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap().lines().map(str::to_owned).collect()
    }

    fn parse(line: &str) -> serde_json::Map<String, Value> {
        match serde_json::from_str(line) {
            Ok(Value::Object(object)) => object,
            other => panic!("not a JSON object ({other:?}): {line}"),
        }
    }

    #[test]
    fn a_line_is_a_json_object_with_the_expected_keys() {
        let lines = lines_of(|| {
            tracing::info!(symbol = "ACME", snapshot_seq = 42_u64, journal_from = "0-0", "recovered");
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = parse(&lines[0]);
        let mut keys: Vec<&str> = line.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["component", "journal_from", "level", "msg", "snapshot_seq", "symbol", "ts"]);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        let ts = line["ts"].as_f64().expect("ts is a number");
        assert!((now - ts).abs() < 60.0, "ts {ts} is not seconds since the epoch");
        assert_eq!(line["level"], "info");
        assert_eq!(line["component"], "engine");
        assert_eq!(line["symbol"], "ACME");
        assert_eq!(line["msg"], "recovered");
        // Values are strings, numbers included, as the worker's lines have always had them.
        assert_eq!(line["snapshot_seq"], "42");
        assert_eq!(line["journal_from"], "0-0");
        // The fixed keys first, then the event's fields in the order it names them.
        let at = |key: &str| lines[0].find(&format!("\"{key}\":")).unwrap();
        let order = ["ts", "level", "component", "symbol", "msg", "snapshot_seq", "journal_from"].map(at);
        assert!(order.windows(2).all(|pair| pair[0] < pair[1]), "{}", lines[0]);
    }

    #[test]
    fn levels_are_lower_case_and_debug_is_not_written() {
        let lines = lines_of(|| {
            tracing::warn!(symbol = "ACME", "could not push a reply");
            tracing::error!("could not install signal handlers");
            tracing::debug!(symbol = "ACME", "not written");
        });
        let lines: Vec<_> = lines.iter().map(|line| parse(line)).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!((&lines[0]["level"], &lines[1]["level"]), (&Value::from("warning"), &Value::from("error")));
        // An event without a symbol still has the key, empty.
        assert_eq!(lines[1]["symbol"], "");
    }

    #[test]
    fn text_is_escaped_and_a_line_stays_one_line() {
        let detail = "bad \"side\" \\ here\nnext line\u{1} caf\u{e9}";
        let error = std::io::Error::other("refused: \"WRONGTYPE\"");
        let lines = lines_of(|| {
            tracing::warn!(symbol = "ACME", id = "1-0", detail, error = %error, "malformed journal entry");
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = parse(&lines[0]);
        assert_eq!(line["detail"], detail);
        assert_eq!(line["error"], "refused: \"WRONGTYPE\"");
        assert_eq!(line["id"], "1-0");
    }
}
