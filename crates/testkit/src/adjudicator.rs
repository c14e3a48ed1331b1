//! Conformance suite for the adjudicator seam.
