//! What every seam shares: boxed futures and the wire encoding that loopback implementations
//! push every message through.
//!
//! A seam trait's methods each take one request message and resolve to one response message
//! (or an [`Error`]), so the same trait can be served in process, through a loopback that
//! serialises both ways, or over the network.

use std::future::Future;
use std::pin::Pin;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Error, Result};

/// A boxed, sendable future: what seam methods return, so the traits stay object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Encodes a message the way it would travel between processes.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(message).map_err(|e| Error::Internal(format!("encoding message: {e}")))
}

/// Decodes a message encoded by [`encode`]. Malformed bytes are an error, never a panic.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::InvalidInput(format!("decoding message: {e}")))
}

/// Sends a message through the wire encoding and back: what a loopback seam does to every
/// request and response.
pub fn round_trip<T: Serialize + DeserializeOwned>(message: &T) -> Result<T> {
    decode(&encode(message)?)
}

/// Sends a response (or an error) through the wire encoding and back.
pub fn round_trip_result<T: Serialize + DeserializeOwned>(result: Result<T>) -> Result<T> {
    round_trip(&result)?
}
