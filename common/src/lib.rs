//! toycoin-common: everything the toycoin programs share.
//!
//! The wire format (frames and payloads), the data model and its hashes,
//! the Merkle tree, proof of work, the two network profiles, the ledger and
//! chain rules, and wallets. The binaries (relay, node, oracle, listener)
//! only wire these to sockets and terminals.
//!
//! | concept | module |
//! |---|---|
//! | the class network as data: rules, target, mint, genesis, id, join code | [`network`] |
//! | canonical addresses (steady) | [`address`] |
//! | length-prefixed frames, connections | [`frame`] |
//! | relay client connection | [`relay`] |
//! | the relay's own frames: names, `$to:`, teacher's controls | [`control`] |
//! | `TXN `/`BLOC` payloads (JSON) | [`message`] |
//! | SHA-512; `Txid` and `BlockHash`, one type per role; GENESIS, COINBASE | [`hash`] |
//! | tokens, transactions | [`transaction`] |
//! | headers, blocks | [`block`] |
//! | Merkle tree and proofs | [`merkle`] |
//! | the profile: the rule switches and parameters a network compiles to | [`profile`] |
//! | difficulty and timestamps: the level, median time past, the clamp | [`difficulty`] |
//! | fork choice: most work, first seen | [`fork_choice`] |
//! | rewards and the mint: where coins come from | [`mint`] |
//! | signatures: checking them, the cache of those seen, their thread pool | [`signatures`] |
//! | maps keyed by what the network sends: fast, keyed hashing | [`maps`] |
//! | byte limits: transactions, blocks, payloads | [`limits`] |
//! | proof-of-work search | [`pow`] |
//! | outputs, transaction rules, the canonical encoding (`check_shape`) | [`ledger`] |
//! | mempool: pending transactions waiting for a block | [`mempool`] |
//! | chain validation | [`chain`] |
//! | old blocks out of memory: the window kept, the rest on disk | [`block_store`] |
//! | SHA-512 on 8 nonces at once (the miner's vector lanes) | [`sha512_lanes`] |
//! | side branches, reorganisations, catch-up locators | [`tree`] |
//! | relay session: connect, reconnect, own frames, follow the chain | [`session`] |
//! | catch-up: asking for and answering missed blocks | [`catchup`] |
//! | keys and signatures | [`wallet`] |
//! | light clients: headers only, Merkle proofs, the `SPV ` frames | [`spv`] |
//! | pBFT: replicas, signed votes, view change | [`pbft`] |
//! | flags shared by the binaries (relay, profile) | [`cli`] |
//! | logging: one path, `--quiet` and `-v` | [`log`] |
//! | Ctrl-C / SIGTERM for the binaries | [`signal`] |
//! | `--ready-file`: "I am up, at this address" for programs | [`ready`] |

pub mod address;
pub mod announce;
pub mod block;
pub mod block_store;
pub mod catchup;
pub mod chain;
pub mod cli;
pub mod control;
pub mod difficulty;
pub mod fork_choice;
pub mod frame;
pub mod hash;
pub mod journal;
pub mod ledger;
pub mod limits;
pub mod log;
pub mod log_limit;
pub mod maps;
pub mod mempool;
pub mod merkle;
pub mod message;
pub mod mint;
pub mod network;
pub mod pbft;
pub mod per_address;
pub mod pow;
pub mod profile;
pub mod ready;
pub mod refused_frames;
pub mod relay;
pub mod session;
pub mod sha512_lanes;
pub mod signal;
pub mod signatures;
pub mod spv;
pub mod timeline;
pub mod transaction;
pub mod tree;
pub mod wallet;
