//! Every integration test of this crate, one module per file, in one
//! binary.

mod decode_fuzz;
mod rules;
mod tree;
