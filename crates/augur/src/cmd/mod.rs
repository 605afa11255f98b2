//! One module per group of subcommands; each turns parsed arguments into a run of a library.

pub(crate) mod capture;
pub(crate) mod connect;
pub(crate) mod demo;
pub(crate) mod doctor;
pub(crate) mod model;
pub(crate) mod run;
pub(crate) mod runtime;
pub(crate) mod serve;
pub(crate) mod stages;
