//! Maps and sets whose keys come from the network: addresses (451 bytes of
//! PEM), output points, transaction ids. The standard library's SipHash
//! over an address cost about a fifth of accepting a block of transactions
//! already seen (issue 39); aHash is several times faster and, keyed at
//! random per process as SipHash is, still leaves a student nothing to
//! aim a flood of colliding keys at.

/// A hash map with a keyed, fast hasher (`Map::default()`).
pub type Map<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

/// A hash set with a keyed, fast hasher (`Set::default()`).
pub type Set<T> = std::collections::HashSet<T, ahash::RandomState>;
