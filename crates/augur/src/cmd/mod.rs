//! One module per group of subcommands; each turns parsed arguments into a run of a library.

pub(crate) mod model;
