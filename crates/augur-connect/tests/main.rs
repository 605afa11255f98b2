//! Integration tests of `augur connect`: each starts the real worker on a free loopback port
//! against a real Tansu broker (and PostgreSQL where connectors need one) and speaks HTTP/1.1
//! to it over TCP.

#![allow(missing_docs, unreachable_pub)]

mod support;

mod cluster;
mod distributed;
mod edits;
mod pipeline;
mod rest;
