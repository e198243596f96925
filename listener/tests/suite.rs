//! Every integration test of this crate, one module per file, in one
//! binary.

mod listener;
mod wallets;
mod web;
