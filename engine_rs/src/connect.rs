//! Where the worker's Redis is — one server, or a Redis Cluster — and its connections to it.
//!
//! `REDIS_URL` names a cluster with its own scheme, `redis+cluster://`, followed by seed nodes:
//! `redis+cluster://[user:password@]host:port[,host:port...]` (`docs/deploy.md`). The worker asks
//! the seeds for the cluster's layout and then speaks to whichever primary serves a key's slot.
//! Every other URL is one server, exactly as before.
//!
//! On a cluster nothing is retried by the client library: a pipeline retried after the node died
//! half-way through it could append the same events to the event stream twice. A refused or lost
//! request fails the session instead, and the session recovers from what Redis holds — the path
//! every other Redis error already takes (`worker.rs`).

use crate::error::WorkerError;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisFuture, Value};

/// The scheme that names a Redis Cluster.
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// What a Redis URL names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// One server: the URL as given.
    Single(String),
    /// A Redis Cluster: one `redis://` URL per seed node, each with the URL's credentials.
    Cluster { seeds: Vec<String>, userinfo: String },
}

/// Reads a Redis URL: `redis+cluster://` names a cluster, anything else one server (redis-rs
/// checks those when it opens them).
pub fn parse_target(url: &str) -> Result<Target, WorkerError> {
    let Some(rest) = url.strip_prefix(CLUSTER_SCHEME) else {
        return Ok(Target::Single(url.to_owned()));
    };
    let bad = |why: &str| WorkerError::Config(format!("{why} in the cluster URL {}", redacted(url)));
    // A cluster has one database (0), so a path can only say that; no query options are known.
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !(path.is_empty() || path == "0") {
        return Err(bad("a database other than 0 (a Redis Cluster has only database 0)"));
    }
    if authority.contains('?') || authority.contains('#') {
        return Err(bad("options (none are known)"));
    }
    // The credentials end at the last '@': a password may contain one (percent-encoded or not).
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let mut seeds = Vec::new();
    for node in hosts.split(',') {
        let valid = match node.rsplit_once(':') {
            Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
            None => false,
        };
        if !valid {
            return Err(bad(&format!("a seed node {node:?} that is not host:port")));
        }
        seeds.push(format!("redis://{userinfo}{node}"));
    }
    Ok(Target::Cluster { seeds, userinfo: userinfo.to_owned() })
}

/// A URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}***{}", &url[..scheme + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

/// The worker's handle on its Redis, cloned into every symbol's task.
#[derive(Clone)]
pub(crate) enum Redis {
    Single(Client),
    // Boxed: the cluster client is large, and the handle is cloned into every symbol's task.
    Cluster { client: Box<ClusterClient>, userinfo: String },
}

impl Redis {
    pub(crate) fn open(url: &str) -> Result<Self, WorkerError> {
        Ok(match parse_target(url)? {
            Target::Single(url) => Redis::Single(Client::open(url.as_str())?),
            Target::Cluster { seeds, userinfo } => {
                // No retries (see the module's comment); the seeds' credentials apply to every node.
                let client = ClusterClientBuilder::new(seeds).retries(0).build()?;
                Redis::Cluster { client: Box::new(client), userinfo }
            }
        })
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Redis::Cluster { .. })
    }

    /// A connection with the client library's default response timeout (the registry's looks).
    pub(crate) async fn connect(&self) -> Result<Connection, WorkerError> {
        Ok(match self {
            Redis::Single(client) => Connection::Single(client.get_multiplexed_async_connection().await?),
            Redis::Cluster { client, .. } => Connection::Cluster(client.get_async_connection().await?),
        })
    }

    /// A connection without a response timeout: a large snapshot write must not time out
    /// client-side. (A cluster connection has none unless one is set.)
    pub(crate) async fn connect_patient(&self) -> Result<Connection, WorkerError> {
        Ok(match self {
            Redis::Single(client) => {
                let config = AsyncConnectionConfig::new().set_response_timeout(None);
                Connection::Single(client.get_multiplexed_async_connection_with_config(&config).await?)
            }
            Redis::Cluster { client, .. } => Connection::Cluster(client.get_async_connection().await?),
        })
    }

    /// The server to read `key` from with a connection of one's own (the journal reader): the
    /// server itself, or on a cluster the primary that serves the key's slot now, as a node of the
    /// cluster (asked through `connection`) sees it. A node that has not yet heard of a failover
    /// may name a primary that is gone or no longer serves the slot; reading from it then fails
    /// (refused, or `MOVED`), and the session tries again.
    pub(crate) async fn node_of(&self, connection: &mut Connection, key: &str) -> Result<ConnectionInfo, WorkerError> {
        match self {
            Redis::Single(client) => Ok(client.get_connection_info().clone()),
            Redis::Cluster { userinfo, .. } => {
                let slot = key_slot(key.as_bytes());
                let slots: Value = redis::cmd("CLUSTER").arg("SLOTS").query_async(connection).await?;
                let (host, port) = primary_of_slot(&slots, slot)?;
                let host = if host.contains(':') { format!("[{host}]") } else { host };
                Ok(format!("redis://{userinfo}{host}:{port}").into_connection_info()?)
            }
        }
    }
}

/// The host and port of the primary serving `slot` in a `CLUSTER SLOTS` reply:
/// `[[start, end, [host, port, id, ...], replica...], ...]`.
fn primary_of_slot(reply: &Value, slot: u16) -> Result<(String, u16), WorkerError> {
    let protocol = |detail: &str| WorkerError::Protocol(format!("CLUSTER SLOTS: {detail}"));
    let Value::Array(ranges) = reply else {
        return Err(protocol("not an array"));
    };
    let int = |value: &Value| match value {
        Value::Int(number) => Some(*number),
        _ => None,
    };
    let text = |value: &Value| match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    };
    for range in ranges {
        let Value::Array(parts) = range else { continue };
        let (Some(start), Some(end)) = (parts.first().and_then(int), parts.get(1).and_then(int)) else { continue };
        if !(start..=end).contains(&i64::from(slot)) {
            continue;
        }
        let Some(Value::Array(primary)) = parts.get(2) else {
            return Err(protocol("a slot range without a primary"));
        };
        let host = primary.first().and_then(text).filter(|host| !host.is_empty() && host != "?");
        let port = primary.get(1).and_then(int).and_then(|port| u16::try_from(port).ok());
        return match (host, port) {
            (Some(host), Some(port)) => Ok((host, port)),
            _ => Err(protocol(&format!("the primary of slot {slot} has no usable address"))),
        };
    }
    Err(protocol(&format!("no node serves slot {slot}")))
}

/// A connection to the one server or to the cluster; commands and pipelines go through
/// redis-rs either way (on a cluster, to the node of their keys' slot).
pub(crate) enum Connection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(connection) => connection.req_packed_command(cmd),
            Connection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(connection) => connection.get_db(),
            Connection::Cluster(connection) => connection.get_db(),
        }
    }
}

const KEY_SLOT: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);

/// A key's Redis Cluster slot: the CRC-16 of its hash tag (the text between the first `{` and the
/// first `}` after it, if not empty) or else of the whole key, modulo 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let close = key[open + 1..].iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &key[open + 1..open + 1 + close])
    });
    KEY_SLOT.checksum(tagged.unwrap_or(key)) % 16_384
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_url_names_its_seeds_with_the_credentials() {
        assert_eq!(
            parse_target("redis+cluster://127.0.0.1:7000,127.0.0.1:7001").unwrap(),
            Target::Cluster {
                seeds: vec!["redis://127.0.0.1:7000".into(), "redis://127.0.0.1:7001".into()],
                userinfo: String::new()
            }
        );
        assert_eq!(
            parse_target("redis+cluster://u:p@ss@h:1/0").unwrap(),
            Target::Cluster { seeds: vec!["redis://u:p@ss@h:1".into()], userinfo: "u:p@ss@".into() }
        );
        assert_eq!(parse_target("redis://h:6379/2").unwrap(), Target::Single("redis://h:6379/2".into()));
        for bad in [
            "redis+cluster://",
            "redis+cluster://h",
            "redis+cluster://h:0",
            "redis+cluster://h:1,",
            "redis+cluster://:1",
            "redis+cluster://h:1/3",
            "redis+cluster://h:1?x=1",
        ] {
            assert!(matches!(parse_target(bad), Err(WorkerError::Config(_))), "{bad}");
        }
        let Err(error) = parse_target("redis+cluster://u:secret@h:1/3") else { panic!() };
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    #[test]
    fn key_slots_follow_hash_tags() {
        // Redis's documented examples (`CLUSTER KEYSLOT`): the whole key, or its hash tag.
        assert_eq!(key_slot(b"foo"), 12_182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"fb:cmd:{ACME}"), crate::feed::shard_of("ACME", 16_384) as u16);
        assert_eq!(key_slot(b"fb:reply:{ACME}:7f-1.5"), key_slot(b"fb:evt:{ACME}"));
        // An empty tag is no tag; only the first `{` counts.
        assert_eq!(key_slot(b"foo{}{bar}"), KEY_SLOT.checksum(b"foo{}{bar}") % 16_384);
        assert_eq!(key_slot(b"foo{{bar}}zap"), KEY_SLOT.checksum(b"{bar") % 16_384);
        assert_eq!(key_slot(b"{"), KEY_SLOT.checksum(b"{") % 16_384);
    }

    #[test]
    fn the_primary_of_a_slot_comes_from_cluster_slots() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![Value::BulkString(host.into()), Value::Int(port), Value::BulkString(b"id".to_vec())])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![Value::Int(0), Value::Int(5460), node("127.0.0.1", 7000), node("127.0.0.1", 7004)]),
            Value::Array(vec![Value::Int(5461), Value::Int(16383), node("::1", 7001)]),
        ]);
        assert_eq!(primary_of_slot(&reply, 0).unwrap(), ("127.0.0.1".into(), 7000));
        assert_eq!(primary_of_slot(&reply, 5461).unwrap(), ("::1".into(), 7001));
        let partial = Value::Array(vec![Value::Array(vec![Value::Int(0), Value::Int(10), node("?", 7000)])]);
        assert!(primary_of_slot(&partial, 5).is_err());
        assert!(primary_of_slot(&partial, 11).is_err());
        assert!(primary_of_slot(&Value::Nil, 0).is_err());
    }
}
