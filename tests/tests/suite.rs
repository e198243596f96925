//! Every integration test of this crate, one module per file, in one
//! binary.

mod attacks;
mod book;
mod browser_wallet;
mod check;
mod demo_tmux;
mod end_to_end;
mod flags;
mod floods;
mod frames_tcp;
mod lessons;
mod network;
mod oracle;
mod python_interop;
mod replay;
mod vectors;
mod wallet;
