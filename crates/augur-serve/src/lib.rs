//! The model server (in progress).
