//! `toycoin-listener`: print every frame on a relay topic until Ctrl-C
//! ([`toycoin_listener::listen::run`]).

use clap::Parser;

#[tokio::main]
async fn main() {
    toycoin_common::signal::end_quietly_on_broken_pipe();
    toycoin_allocator::tune();
    let args = toycoin_listener::listen::Args::parse();
    let code = toycoin_listener::listen::run(args).await;
    if code != 0 {
        std::process::exit(code);
    }
}
