//! The journal's read side for the worker: a connection of its own on which the worker speaks
//! RESP2 directly and parses XREAD replies in place (see [`JournalReader`]).

use crate::error::WorkerError;
use redis::ConnectionInfo;

/// The journal's read side: a connection of its own on which the worker speaks RESP2 directly.
///
/// Turning XREAD replies into redis-rs `Value`s (a generic parser, two allocations per field) cost
/// more than matching them: most of the worker's time (see `docs/benchmarks.md`). Here a reply is
/// read into one buffer and parsed in place; a [`Batch`]'s fields are slices of that buffer. At
/// most one request is in flight; the loop asks for the next batch before it matches the
/// current one, so Redis prepares one while the worker matches the other.
pub(crate) struct JournalReader {
    stream: RawStream,
    /// Received bytes not yet handed out as a reply.
    buf: Vec<u8>,
    /// A consumed reply's allocation, reused for the next.
    spare: Vec<u8>,
    command: Vec<u8>,
}

enum RawStream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl RawStream {
    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt as _;
        match self {
            RawStream::Tcp(stream) => stream.write_all(bytes).await,
            RawStream::Unix(stream) => stream.write_all(bytes).await,
        }
    }

    async fn read_buf(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        use tokio::io::AsyncReadExt as _;
        match self {
            RawStream::Tcp(stream) => stream.read_buf(buf).await,
            RawStream::Unix(stream) => stream.read_buf(buf).await,
        }
    }
}

fn io_error(error: std::io::Error) -> WorkerError {
    WorkerError::Redis(error.into())
}

impl JournalReader {
    /// Connects to the server, user, password and database of `info` (on a cluster, the node
    /// that serves the journal's slot: `connect::Redis::node_of`).
    pub(crate) async fn connect(info: &ConnectionInfo) -> Result<Self, WorkerError> {
        let stream = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await.map_err(io_error)?;
                stream.set_nodelay(true).map_err(io_error)?;
                RawStream::Tcp(stream)
            }
            redis::ConnectionAddr::Unix(path) => {
                RawStream::Unix(tokio::net::UnixStream::connect(path).await.map_err(io_error)?)
            }
            _ => {
                return Err(WorkerError::Config(
                    "the engine worker connects with redis://, redis+unix:// or redis+cluster:// URLs only".into(),
                ))
            }
        };
        let mut reader =
            JournalReader { stream, buf: Vec::with_capacity(1 << 18), spare: Vec::new(), command: Vec::new() };
        let settings = info.redis_settings();
        if let Some(password) = settings.password() {
            match settings.username() {
                Some(user) => reader.call(&[b"AUTH", user.as_bytes(), password.as_bytes()]).await?,
                None => reader.call(&[b"AUTH", password.as_bytes()]).await?,
            }
        }
        if settings.db() != 0 {
            reader.call(&[b"SELECT", settings.db().to_string().as_bytes()]).await?;
        }
        Ok(reader)
    }

    /// Sends a command and checks that Redis did not answer with an error.
    async fn call(&mut self, args: &[&[u8]]) -> Result<(), WorkerError> {
        self.send(args).await?;
        let reply = self.reply().await?;
        let refused = reply.first() == Some(&b'-');
        let result = match refused {
            true => Err(WorkerError::Protocol(format!(
                "redis refused {}: {}",
                String::from_utf8_lossy(args[0]),
                String::from_utf8_lossy(reply[1..].trim_ascii_end())
            ))),
            false => Ok(()),
        };
        self.recycle(reply);
        result
    }

    async fn send(&mut self, args: &[&[u8]]) -> Result<(), WorkerError> {
        self.command.clear();
        encode_resp_command(&mut self.command, args);
        self.stream.write_all(&self.command).await.map_err(io_error)
    }

    /// Asks for up to `count` journal entries after `after`, blocking up to `block_ms` when none.
    pub(crate) async fn request_batch(
        &mut self,
        journal: &str,
        after: &str,
        count: usize,
        block_ms: u64,
    ) -> Result<(), WorkerError> {
        let (count, block_ms) = (count.to_string(), block_ms.to_string());
        self.send(&[
            b"XREAD",
            b"COUNT",
            count.as_bytes(),
            b"BLOCK",
            block_ms.as_bytes(),
            b"STREAMS",
            journal.as_bytes(),
            after.as_bytes(),
        ])
        .await
    }

    /// The next complete reply, raw (give it back with [`JournalReader::recycle`]).
    pub(crate) async fn reply(&mut self) -> Result<Vec<u8>, WorkerError> {
        let mut scanner = RespScanner::default();
        loop {
            if let Some(end) = scanner.scan(&self.buf)? {
                let mut rest = std::mem::take(&mut self.spare);
                rest.extend_from_slice(&self.buf[end..]);
                self.buf.truncate(end);
                return Ok(std::mem::replace(&mut self.buf, rest));
            }
            if self.buf.capacity() - self.buf.len() < (1 << 14) {
                self.buf.reserve(1 << 16);
            }
            if self.stream.read_buf(&mut self.buf).await.map_err(io_error)? == 0 {
                return Err(io_error(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "redis closed the connection",
                )));
            }
        }
    }

    pub(crate) fn recycle(&mut self, mut reply: Vec<u8>) {
        reply.clear();
        if reply.capacity() > self.spare.capacity() {
            self.spare = reply;
        }
    }
}

fn encode_resp_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    use std::io::Write as _;
    let _ = write!(out, "*{}\r\n", args.len());
    for arg in args {
        let _ = write!(out, "${}\r\n", arg.len());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

fn resp_error(detail: &str) -> WorkerError {
    WorkerError::Protocol(format!("unexpected RESP from redis: {detail}"))
}

/// A RESP2 header line: its type byte, the rest of the line, and where the next item starts.
struct RespLine<'a> {
    kind: u8,
    text: &'a [u8],
    next: usize,
}

/// The header line at `pos`; None if it has not been received completely yet.
fn resp_line(buf: &[u8], pos: usize) -> Result<Option<RespLine<'_>>, WorkerError> {
    let rest = &buf[pos..];
    let Some(newline) = rest.iter().position(|&b| b == b'\n') else { return Ok(None) };
    if newline < 2 || rest[newline - 1] != b'\r' {
        return Err(resp_error("a line that does not end in CRLF"));
    }
    Ok(Some(RespLine { kind: rest[0], text: &rest[1..newline - 1], next: pos + newline + 1 }))
}

/// A length or count in a header line (`-1` for nil); parsed by hand: it runs twice per field.
fn resp_int(text: &[u8]) -> Result<i64, WorkerError> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(resp_error("a length that is not a number"));
    }
    let value = digits.iter().fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
    Ok(if negative { -value } else { value })
}

/// Finds where the first complete RESP2 value of a buffer ends, resuming where the previous call
/// stopped, so that a large reply arriving in many reads is scanned once.
#[derive(Default)]
struct RespScanner {
    pos: usize,
    /// Elements still expected by each array being scanned, innermost last.
    open: Vec<i64>,
}

impl RespScanner {
    fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, WorkerError> {
        loop {
            let Some(RespLine { kind, text, next }) = resp_line(buf, self.pos)? else { return Ok(None) };
            let complete = match kind {
                b'+' | b'-' | b':' => {
                    self.pos = next;
                    true
                }
                b'$' => {
                    let len = resp_int(text)?;
                    if len < 0 {
                        self.pos = next;
                    } else {
                        let end = next + len as usize + 2;
                        if buf.len() < end {
                            return Ok(None);
                        }
                        self.pos = end;
                    }
                    true
                }
                b'*' => {
                    let len = resp_int(text)?;
                    self.pos = next;
                    if len > 0 {
                        self.open.push(len);
                    }
                    len <= 0
                }
                _ => return Err(resp_error("an unknown type byte")),
            };
            if complete {
                // The element closes its array if it was the last one, which closes the parent...
                loop {
                    let Some(remaining) = self.open.last_mut() else { return Ok(Some(self.pos)) };
                    *remaining -= 1;
                    if *remaining > 0 {
                        break;
                    }
                    self.open.pop();
                }
            }
        }
    }
}

/// A cursor over one complete RESP2 reply.
struct RespReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> RespReader<'a> {
    fn line(&mut self) -> Result<(u8, &'a [u8]), WorkerError> {
        let line = resp_line(self.buf, self.pos)?.ok_or_else(|| resp_error("a truncated reply"))?;
        self.pos = line.next;
        Ok((line.kind, line.text))
    }

    /// An array's length; None for a nil array. A Redis error reply becomes the error.
    fn array(&mut self) -> Result<Option<usize>, WorkerError> {
        match self.line()? {
            (b'*', text) => Ok(usize::try_from(resp_int(text)?).ok()),
            (b'-', text) => Err(WorkerError::Protocol(format!("redis answered {}", String::from_utf8_lossy(text)))),
            _ => Err(resp_error("not an array")),
        }
    }

    /// A string (a nil one is empty; integers and simple strings are taken as their text).
    fn bulk(&mut self) -> Result<&'a [u8], WorkerError> {
        match self.line()? {
            (b'$', text) => {
                let Ok(len) = usize::try_from(resp_int(text)?) else { return Ok(&[]) };
                let value = self.buf.get(self.pos..self.pos + len).ok_or_else(|| resp_error("a truncated string"))?;
                self.pos += len + 2;
                Ok(value)
            }
            (b':' | b'+', text) => Ok(text),
            _ => Err(resp_error("not a string")),
        }
    }
}

/// A journal entry's field and value.
pub(crate) type Field<'a> = (&'a [u8], &'a [u8]);

/// The journal entries of one XREAD reply, borrowed from the reply's bytes.
#[derive(Default)]
pub(crate) struct Batch<'a> {
    /// Each entry's id and the range of its field/value pairs in `fields`.
    entries: Vec<(&'a str, std::ops::Range<usize>)>,
    fields: Vec<Field<'a>>,
}

impl<'a> Batch<'a> {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn last_id(&self) -> Option<&'a str> {
        self.entries.last().map(|(id, _)| *id)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'a str, &[Field<'a>])> + '_ {
        self.entries.iter().map(|(id, range)| (*id, &self.fields[range.clone()]))
    }
}

/// Parses an XREAD reply (RESP2): `[[stream, [[id, [field, value, ...]], ...]]]`, or nil when
/// the read timed out. A dangling field without a value is ignored.
pub(crate) fn parse_xread(reply: &[u8]) -> Result<Batch<'_>, WorkerError> {
    let mut resp = RespReader { buf: reply, pos: 0 };
    let mut batch = Batch::default();
    let Some(streams) = resp.array()? else { return Ok(batch) };
    for _ in 0..streams {
        if resp.array()? != Some(2) {
            return Err(resp_error("a stream that is not [key, entries]"));
        }
        resp.bulk()?;
        let Some(count) = resp.array()? else { continue };
        batch.entries.reserve(count.min(1 << 16));
        batch.fields.reserve(count.min(1 << 16) * 8);
        for _ in 0..count {
            if resp.array()? != Some(2) {
                return Err(resp_error("a stream entry that is not [id, fields]"));
            }
            let id = std::str::from_utf8(resp.bulk()?).map_err(|_| resp_error("an entry id that is not UTF-8"))?;
            let start = batch.fields.len();
            let values = resp.array()?.unwrap_or(0);
            for _ in 0..values / 2 {
                let key = resp.bulk()?;
                let value = resp.bulk()?;
                batch.fields.push((key, value));
            }
            if values % 2 == 1 {
                resp.bulk()?;
            }
            batch.entries.push((id, start..batch.fields.len()));
        }
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPLY: &[u8] = b"*1\r\n*2\r\n$10\r\nfb:cmd:{X}\r\n*2\r\n\
        *2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nt\r\n$4\r\nhalt\r\n\
        *2\r\n$3\r\n2-0\r\n*5\r\n$1\r\nt\r\n:5\r\n$2\r\npx\r\n$-1\r\n$8\r\ndangling\r\n";

    #[test]
    fn parses_an_xread_reply_in_place_and_tolerates_odd_field_values() {
        let batch = parse_xread(REPLY).unwrap();
        let entries: Vec<_> = batch.iter().collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0], ("1-0", &[(&b"t"[..], &b"halt"[..])][..]));
        assert_eq!(entries[1], ("2-0", &[(&b"t"[..], &b"5"[..]), (&b"px"[..], &b""[..])][..]));
        assert_eq!(batch.last_id(), Some("2-0"));
        assert!(parse_xread(b"*-1\r\n").unwrap().is_empty());
        assert!(parse_xread(b"-WRONGTYPE Operation against a key\r\n").is_err());
        assert!(
            parse_xread(b"*1\r\n*2\r\n$1\r\nk\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nt\r\n$9\r\nhalt\r\n").is_err()
        );
    }

    #[test]
    fn the_scanner_finds_the_end_of_a_reply_received_in_pieces() {
        let mut stream = REPLY.to_vec();
        stream.extend_from_slice(b"+OK\r\n");
        for split in 0..REPLY.len() {
            let mut scanner = RespScanner::default();
            assert_eq!(scanner.scan(&stream[..split]).unwrap(), None, "split at {split}");
            assert_eq!(scanner.scan(&stream).unwrap(), Some(REPLY.len()), "split at {split}");
        }
        for (complete, len) in
            [(&b"*-1\r\n"[..], 5), (b"*0\r\n", 4), (b":12\r\n", 5), (b"$-1\r\n", 5), (b"-ERR x\r\n", 8)]
        {
            assert_eq!(RespScanner::default().scan(complete).unwrap(), Some(len));
        }
        assert!(RespScanner::default().scan(b"?\r\n").is_err());
        assert!(RespScanner::default().scan(b"$x\r\n").is_err());
        assert_eq!(resp_int(b"-1").unwrap(), -1);
        assert_eq!(resp_int(b"1234567").unwrap(), 1_234_567);
        for bad in [&b""[..], b"-", b"1x", b"+1", b"9999999999999999999"] {
            assert!(resp_int(bad).is_err());
        }
    }

    #[test]
    fn commands_are_encoded_as_resp_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode_resp_command(&mut out, &[b"XREAD", b"COUNT", b"10", b""]);
        assert_eq!(out, b"*4\r\n$5\r\nXREAD\r\n$5\r\nCOUNT\r\n$2\r\n10\r\n$0\r\n\r\n");
    }
}
