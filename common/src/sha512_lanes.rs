//! SHA-512's compression function on several blocks at once, one per
//! lane of the processor's vector registers: what lets one mining thread
//! try [`LANES`] nonces in the time the one-stream compression
//! ([`sha2::compress512`]) tries a few.
//!
//! The blocks share everything but their first two words (where a miner's
//! counter digits are, [`crate::pow`]), and the state they start from (the
//! midstate). The code is plain Rust over arrays of [`LANES`] words, which
//! the compiler turns into vector instructions: `multiversion` compiles it
//! for AVX-512 (where a 64-bit rotate is one instruction) and for AVX2, and
//! picks the best the processor has at run time. Where it has neither, the
//! lanes would be slower than one stream, and [`worth_it`] says so: a
//! miner then uses [`sha2::compress512`] alone. The results are the same on
//! every path: a test compares each lane with [`sha2::compress512`].

/// Blocks compressed at once: 8 words of 64 bits fill an AVX-512 register.
pub const LANES: usize = 8;

/// One word of each lane.
pub type Lanes = [u64; LANES];

/// SHA-512's round constants (FIPS 180-4, 4.2.3).
const K: [u64; 80] = [
    0x428a2f98d728ae22,
    0x7137449123ef65cd,
    0xb5c0fbcfec4d3b2f,
    0xe9b5dba58189dbbc,
    0x3956c25bf348b538,
    0x59f111f1b605d019,
    0x923f82a4af194f9b,
    0xab1c5ed5da6d8118,
    0xd807aa98a3030242,
    0x12835b0145706fbe,
    0x243185be4ee4b28c,
    0x550c7dc3d5ffb4e2,
    0x72be5d74f27b896f,
    0x80deb1fe3b1696b1,
    0x9bdc06a725c71235,
    0xc19bf174cf692694,
    0xe49b69c19ef14ad2,
    0xefbe4786384f25e3,
    0x0fc19dc68b8cd5b5,
    0x240ca1cc77ac9c65,
    0x2de92c6f592b0275,
    0x4a7484aa6ea6e483,
    0x5cb0a9dcbd41fbd4,
    0x76f988da831153b5,
    0x983e5152ee66dfab,
    0xa831c66d2db43210,
    0xb00327c898fb213f,
    0xbf597fc7beef0ee4,
    0xc6e00bf33da88fc2,
    0xd5a79147930aa725,
    0x06ca6351e003826f,
    0x142929670a0e6e70,
    0x27b70a8546d22ffc,
    0x2e1b21385c26c926,
    0x4d2c6dfc5ac42aed,
    0x53380d139d95b3df,
    0x650a73548baf63de,
    0x766a0abb3c77b2a8,
    0x81c2c92e47edaee6,
    0x92722c851482353b,
    0xa2bfe8a14cf10364,
    0xa81a664bbc423001,
    0xc24b8b70d0f89791,
    0xc76c51a30654be30,
    0xd192e819d6ef5218,
    0xd69906245565a910,
    0xf40e35855771202a,
    0x106aa07032bbd1b8,
    0x19a4c116b8d2d0c8,
    0x1e376c085141ab53,
    0x2748774cdf8eeb99,
    0x34b0bcb5e19b48a8,
    0x391c0cb3c5c95a63,
    0x4ed8aa4ae3418acb,
    0x5b9cca4f7763e373,
    0x682e6ff3d6b2b8a3,
    0x748f82ee5defb2fc,
    0x78a5636f43172f60,
    0x84c87814a1f0ab72,
    0x8cc702081a6439ec,
    0x90befffa23631e28,
    0xa4506cebde82bde9,
    0xbef9a3f7b2c67915,
    0xc67178f2e372532b,
    0xca273eceea26619c,
    0xd186b8c721c0c207,
    0xeada7dd6cde0eb1e,
    0xf57d4f7fee6ed178,
    0x06f067aa72176fba,
    0x0a637dc5a2c898a6,
    0x113f9804bef90dae,
    0x1b710b35131c471b,
    0x28db77f523047d84,
    0x32caab7b40c72493,
    0x3c9ebe0a15c9bebc,
    0x431d67c49c100d4c,
    0x4cc5d4becb3e42b6,
    0x597f299cfc657e2a,
    0x5fcb6fab3ad6faec,
    0x6c44198c4a475817,
];

/// The state after compressing, in each lane, the block whose words are
/// `first[0][l], first[1][l]` followed by `rest`, starting from `state`
/// (the returned words already have `state` added, as SHA-512's output
/// does). Word `i` of lane `l` is `out[i][l]`.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+avx", "x86_64+avx2+avx"))]
pub fn compress_lanes(state: &[u64; 8], first: &[Lanes; 2], rest: &[u64; 14]) -> [Lanes; 8] {
    compress(state, first, rest)
}

/// Whether [`compress_lanes`] runs faster here, per hash, than one
/// stream: in an optimized build, on a processor with AVX2 or AVX-512. On
/// the 2026-12-06 test machine the miner went 3.85 times as fast with the
/// AVX-512 lanes (`toycoin-bench pow`); a scratch build of the lanes alone
/// for AVX2 only gave 1.2 times one stream, and for plain x86-64 0.7 times.
/// Not in a debug build, where the lanes are not optimized but `sha2` is
/// (the workspace's `profile.dev`).
pub fn worth_it() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        !cfg!(debug_assertions) && std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

// Every step below is a loop over the lanes with no call in it, so that it
// compiles, inlined into each of `compress_lanes`'s versions, to one vector
// instruction per operation.
#[inline(always)]
fn compress(state: &[u64; 8], first: &[Lanes; 2], rest: &[u64; 14]) -> [Lanes; 8] {
    let mut w = [[0u64; LANES]; 16];
    w[0] = first[0];
    w[1] = first[1];
    for i in 0..14 {
        w[i + 2] = [rest[i]; LANES];
    }
    let mut v = [[0u64; LANES]; 8];
    for i in 0..8 {
        v[i] = [state[i]; LANES];
    }
    for round in 0..80 {
        if round >= 16 {
            // The schedule in a ring of 16: w[t] from w[t-2], w[t-7],
            // w[t-15] and w[t-16] (the slot it replaces).
            let w2 = w[(round - 2) % 16];
            let w7 = w[(round - 7) % 16];
            let w15 = w[(round - 15) % 16];
            let slot = &mut w[round % 16];
            for l in 0..LANES {
                let s0 = w15[l].rotate_right(1) ^ w15[l].rotate_right(8) ^ (w15[l] >> 7);
                let s1 = w2[l].rotate_right(19) ^ w2[l].rotate_right(61) ^ (w2[l] >> 6);
                slot[l] = slot[l]
                    .wrapping_add(s0)
                    .wrapping_add(w7[l])
                    .wrapping_add(s1);
            }
        }
        let wt = w[round % 16];
        let k = K[round];
        let [a, b, c, d, e, f, g, h] = v;
        let mut next = [[0u64; LANES]; 8];
        for l in 0..LANES {
            let s1 = e[l].rotate_right(14) ^ e[l].rotate_right(18) ^ e[l].rotate_right(41);
            let ch = (e[l] & f[l]) ^ (!e[l] & g[l]);
            let t1 = h[l]
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(k)
                .wrapping_add(wt[l]);
            let s0 = a[l].rotate_right(28) ^ a[l].rotate_right(34) ^ a[l].rotate_right(39);
            let maj = (a[l] & b[l]) ^ (a[l] & c[l]) ^ (b[l] & c[l]);
            let t2 = s0.wrapping_add(maj);
            next[0][l] = t1.wrapping_add(t2);
            next[1][l] = a[l];
            next[2][l] = b[l];
            next[3][l] = c[l];
            next[4][l] = d[l].wrapping_add(t1);
            next[5][l] = e[l];
            next[6][l] = f[l];
            next[7][l] = g[l];
        }
        v = next;
    }
    for (word, start) in v.iter_mut().zip(state) {
        for lane in word.iter_mut() {
            *lane = lane.wrapping_add(*start);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use sha2::compress512;
    use sha2::digest::generic_array::GenericArray;

    /// The same as [`compress_lanes`], one lane at a time with
    /// [`sha2::compress512`]: the reference the lanes are held to.
    fn compress_each(state: &[u64; 8], first: &[Lanes; 2], rest: &[u64; 14]) -> [Lanes; 8] {
        let mut out = [[0u64; LANES]; 8];
        for l in 0..LANES {
            let mut block = GenericArray::default();
            let words = [first[0][l], first[1][l]]
                .into_iter()
                .chain(rest.iter().copied());
            for (chunk, word) in block.chunks_exact_mut(8).zip(words) {
                chunk.copy_from_slice(&word.to_be_bytes());
            }
            let mut s = *state;
            compress512(&mut s, std::slice::from_ref(&block));
            for (i, word) in s.iter().enumerate() {
                out[i][l] = *word;
            }
        }
        out
    }

    #[test]
    fn every_lane_equals_the_one_stream_compression() {
        let mut rng = rand::thread_rng();
        for _ in 0..200 {
            let state: [u64; 8] = rng.gen();
            let first: [Lanes; 2] = [rng.gen(), rng.gen()];
            let rest: [u64; 14] = rng.gen();
            assert_eq!(
                compress_lanes(&state, &first, &rest),
                compress_each(&state, &first, &rest)
            );
        }
    }
}
