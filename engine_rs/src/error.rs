//! The engine worker's error type, in a module of its own: the worker and the journal reader it
//! drives both return it, and neither should have to import the other to name it.

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("unexpected reply from redis: {0}")]
    Protocol(String),
    #[error("could not start the runtime: {0}")]
    Runtime(#[from] std::io::Error),
}
