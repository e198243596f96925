//! Ten goroutines and a `sync.WaitGroup`, in Rust.
//!
//! Go: `for i := 0; i < 10; i++ { wg.Add(1); go func(i int) { defer
//! wg.Done(); fmt.Println(i) }(i) }; wg.Wait()`. Without the `Wait`, main
//! returns before any goroutine runs and nothing is printed.
//!
//! What differs: a tokio task is a goroutine (cheap, scheduled by the
//! runtime on a few threads), and a `JoinSet` is the WaitGroup: it owns
//! the tasks, so there is no `Add`/`Done` to get wrong, and waiting on it
//! also hands back each task's result (or its panic). Tasks still left in
//! a set when it is dropped are cancelled, which is what "main returned
//! first" means here too. The order of the numbers changes from run to
//! run, as in Go.

use tokio::runtime::Builder;
use tokio::task::JoinSet;

fn main() {
    // Without waiting, as when Go's main returns first: on a one-thread
    // runtime the spawned tasks only run when main's task waits, and it
    // never does; they are dropped with the runtime, unprinted.
    let runtime = Builder::new_current_thread().build().expect("a runtime");
    runtime.block_on(async {
        for i in 0..10 {
            tokio::spawn(async move { println!("never printed: {i}") });
        }
    });
    drop(runtime);
    println!("without waiting: nothing printed");

    let runtime = Builder::new_multi_thread().build().expect("a runtime");
    runtime.block_on(wait_for_all());
}

async fn wait_for_all() {
    let mut tasks = JoinSet::new();
    for i in 0..10 {
        tasks.spawn(async move {
            println!("{i}");
        });
    }
    // wg.Wait()
    while let Some(done) = tasks.join_next().await {
        done.expect("the task did not panic");
    }
    println!("all 10 done");
}
