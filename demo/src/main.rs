//! `toycoin-demo`: the whole network with one command ([`toycoin_demo::run`]).

use clap::Parser;

fn main() {
    // A reader that goes away (`toycoin-demo | head`) ends the demo
    // quietly: while the class runs, it stops every program as on Ctrl-C;
    // elsewhere the panic unwinds, and the programs started so far are
    // killed as they are dropped (`kill_on_drop`), not left running.
    toycoin_common::signal::unwind_quietly_on_broken_pipe();
    let args = toycoin_demo::Args::parse();
    let code = match std::panic::catch_unwind(move || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map(|runtime| runtime.block_on(toycoin_demo::run(args)))
    }) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("toycoin-demo: cannot start the runtime: {e}");
            1
        }
        Err(payload) if toycoin_common::signal::is_broken_pipe(&*payload) => 0,
        Err(payload) => std::panic::resume_unwind(payload),
    };
    std::process::exit(code);
}
