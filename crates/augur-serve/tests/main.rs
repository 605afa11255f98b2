//! Integration tests of the model server: each starts the real server on a free loopback port
//! and speaks HTTP/1.1 to it over TCP.

#![allow(missing_docs, unreachable_pub)]

mod support;

mod batching;
mod endpoints;
mod errors;
mod explain;
mod fast_path;
mod promotion;
mod shutdown;
