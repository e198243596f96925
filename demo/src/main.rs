//! `toycoin-demo`: the whole network with one command ([`toycoin_demo::run`]).

use clap::Parser;

#[tokio::main]
async fn main() {
    toycoin_common::signal::end_quietly_on_broken_pipe();
    let args = toycoin_demo::Args::parse();
    std::process::exit(toycoin_demo::run(args).await);
}
