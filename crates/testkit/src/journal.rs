//! Conformance suite for the journal seam.
