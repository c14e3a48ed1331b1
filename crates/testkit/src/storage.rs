//! Conformance suite for the storage seam.
