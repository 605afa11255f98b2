//! The original pipeline's pieces, shared with the augur binary's tests through the testkit.

pub use augur_testkit::cars::*;
