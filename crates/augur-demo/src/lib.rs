//! The listing page `augur demo` serves: a seller fills in a car, the page's server INSERTs it
//! into `car_data`, and the suggested price appears as soon as the pipeline's sink commits it
//! (server-sent events fed by the sink, not polling), next to the latest listings and live
//! pipeline figures.
//!
//! Layout: [`listing`] (validating a submitted car), [`insight`] (range, reasons, comparable
//! listings and the asking-price verdict), [`app`] (the HTTP routes and the event stream),
//! `page.html` (the seller's page) and `operator.html` (the operator's view), no build step.

pub mod app;
pub mod insight;
pub mod listing;
