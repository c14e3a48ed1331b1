//! Conformance suites: one per seam, each a set of async checks that every implementation of
//! the seam must pass (in-process, loopback, later network). A component's tests call the
//! suite once per implementation, so the contract is written down exactly once.
//!
//! Each suite takes a factory that opens an implementation on a given directory, so the suite
//! can also check what survives a restart.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

pub mod adjudicator;
pub mod journal;
pub mod storage;
