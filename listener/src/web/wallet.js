// The students' wallet page's own checks and keys (toycoin-rs, issue 36).
//
// Everything a wallet must not take on trust is done here, in the page:
// SHA-512, RSA-2048 keys and RSA-PSS signatures (SHA-512, MGF1(SHA-512),
// the 190-byte salt of the original's `cryptography`), the key file as
// the PKCS#8 PEM `toycoin-wallet` reads, every header checked for its
// hash, link, difficulty and timestamp, and every transaction by its
// Merkle path, as `common/src/spv.rs` does. Plain JavaScript and BigInt:
// WebCrypto (`crypto.subtle`) exists only on https or localhost, and a
// class reaches the teacher's laptop at a plain http LAN address.
"use strict";

const Toy = (() => {
  const text = new TextEncoder();
  const utf8 = (s) => text.encode(s);

  function concat(parts) {
    let n = 0;
    for (const p of parts) n += p.length;
    const out = new Uint8Array(n);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  function equal(a, b) {
    if (a.length !== b.length) return false;
    let d = 0;
    for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
    return d === 0;
  }

  const HEX = "0123456789abcdef";
  function hex(bytes) {
    let s = "";
    for (const b of bytes) s += HEX[b >> 4] + HEX[b & 15];
    return s;
  }

  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const B64_INDEX = new Int16Array(128).fill(-1);
  for (let i = 0; i < 64; i++) B64_INDEX[B64.charCodeAt(i)] = i;

  function b64(bytes) {
    let s = "";
    let i = 0;
    for (; i + 2 < bytes.length; i += 3) {
      const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
      s += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
    }
    const left = bytes.length - i;
    if (left === 1) {
      const n = bytes[i] << 16;
      s += B64[n >> 18] + B64[(n >> 12) & 63] + "==";
    } else if (left === 2) {
      const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
      s += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + "=";
    }
    return s;
  }

  // Strict standard base64, padded (as the programs write it).
  function unb64(s, what) {
    if (typeof s !== "string" || s.length % 4 !== 0) throw new Error(`${what}: not base64`);
    const pad = s.endsWith("==") ? 2 : s.endsWith("=") ? 1 : 0;
    const out = new Uint8Array((s.length / 4) * 3 - pad);
    let o = 0;
    for (let i = 0; i < s.length; i += 4) {
      let n = 0;
      for (let j = 0; j < 4; j++) {
        const c = s.charCodeAt(i + j);
        let v;
        if (c === 61 && i + j >= s.length - pad) v = 0;
        else v = c < 128 ? B64_INDEX[c] : -1;
        if (v < 0) throw new Error(`${what}: not base64`);
        n = (n << 6) | v;
      }
      if (o < out.length) out[o++] = (n >> 16) & 255;
      if (o < out.length) out[o++] = (n >> 8) & 255;
      if (o < out.length) out[o++] = n & 255;
    }
    return out;
  }

  // ---------------------------------------------------------------- SHA-512
  // FIPS 180-4, each 64-bit word as two 32-bit halves (hi, lo).
const K = new Uint32Array([
    0x428a2f98, 0xd728ae22, 0x71374491, 0x23ef65cd, 0xb5c0fbcf, 0xec4d3b2f, 0xe9b5dba5, 0x8189dbbc,
    0x3956c25b, 0xf348b538, 0x59f111f1, 0xb605d019, 0x923f82a4, 0xaf194f9b, 0xab1c5ed5, 0xda6d8118,
    0xd807aa98, 0xa3030242, 0x12835b01, 0x45706fbe, 0x243185be, 0x4ee4b28c, 0x550c7dc3, 0xd5ffb4e2,
    0x72be5d74, 0xf27b896f, 0x80deb1fe, 0x3b1696b1, 0x9bdc06a7, 0x25c71235, 0xc19bf174, 0xcf692694,
    0xe49b69c1, 0x9ef14ad2, 0xefbe4786, 0x384f25e3, 0x0fc19dc6, 0x8b8cd5b5, 0x240ca1cc, 0x77ac9c65,
    0x2de92c6f, 0x592b0275, 0x4a7484aa, 0x6ea6e483, 0x5cb0a9dc, 0xbd41fbd4, 0x76f988da, 0x831153b5,
    0x983e5152, 0xee66dfab, 0xa831c66d, 0x2db43210, 0xb00327c8, 0x98fb213f, 0xbf597fc7, 0xbeef0ee4,
    0xc6e00bf3, 0x3da88fc2, 0xd5a79147, 0x930aa725, 0x06ca6351, 0xe003826f, 0x14292967, 0x0a0e6e70,
    0x27b70a85, 0x46d22ffc, 0x2e1b2138, 0x5c26c926, 0x4d2c6dfc, 0x5ac42aed, 0x53380d13, 0x9d95b3df,
    0x650a7354, 0x8baf63de, 0x766a0abb, 0x3c77b2a8, 0x81c2c92e, 0x47edaee6, 0x92722c85, 0x1482353b,
    0xa2bfe8a1, 0x4cf10364, 0xa81a664b, 0xbc423001, 0xc24b8b70, 0xd0f89791, 0xc76c51a3, 0x0654be30,
    0xd192e819, 0xd6ef5218, 0xd6990624, 0x5565a910, 0xf40e3585, 0x5771202a, 0x106aa070, 0x32bbd1b8,
    0x19a4c116, 0xb8d2d0c8, 0x1e376c08, 0x5141ab53, 0x2748774c, 0xdf8eeb99, 0x34b0bcb5, 0xe19b48a8,
    0x391c0cb3, 0xc5c95a63, 0x4ed8aa4a, 0xe3418acb, 0x5b9cca4f, 0x7763e373, 0x682e6ff3, 0xd6b2b8a3,
    0x748f82ee, 0x5defb2fc, 0x78a5636f, 0x43172f60, 0x84c87814, 0xa1f0ab72, 0x8cc70208, 0x1a6439ec,
    0x90befffa, 0x23631e28, 0xa4506ceb, 0xde82bde9, 0xbef9a3f7, 0xb2c67915, 0xc67178f2, 0xe372532b,
    0xca273ece, 0xea26619c, 0xd186b8c7, 0x21c0c207, 0xeada7dd6, 0xcde0eb1e, 0xf57d4f7f, 0xee6ed178,
    0x06f067aa, 0x72176fba, 0x0a637dc5, 0xa2c898a6, 0x113f9804, 0xbef90dae, 0x1b710b35, 0x131c471b,
    0x28db77f5, 0x23047d84, 0x32caab7b, 0x40c72493, 0x3c9ebe0a, 0x15c9bebc, 0x431d67c4, 0x9c100d4c,
    0x4cc5d4be, 0xcb3e42b6, 0x597f299c, 0xfc657e2a, 0x5fcb6fab, 0x3ad6faec, 0x6c44198c, 0x4a475817,
]);
const H0 = new Uint32Array([
    0x6a09e667, 0xf3bcc908, 0xbb67ae85, 0x84caa73b, 0x3c6ef372, 0xfe94f82b, 0xa54ff53a, 0x5f1d36f1,
    0x510e527f, 0xade682d1, 0x9b05688c, 0x2b3e6c1f, 0x1f83d9ab, 0xfb41bd6b, 0x5be0cd19, 0x137e2179,
]);

  const W = new Int32Array(160);

  function sha512(msg) {
    const len = msg.length;
    const total = Math.ceil((len + 17) / 128) * 128;
    const buf = new Uint8Array(total);
    buf.set(msg);
    buf[len] = 0x80;
    const view = new DataView(buf.buffer);
    view.setUint32(total - 8, Math.floor(len / 0x20000000));
    view.setUint32(total - 4, (len * 8) >>> 0);
    const H = new Int32Array(H0);
    for (let off = 0; off < total; off += 128) {
      for (let i = 0; i < 32; i++) W[i] = view.getInt32(off + 4 * i);
      for (let i = 32; i < 160; i += 2) {
        // s0 of w[t-15], s1 of w[t-2]
        let h = W[i - 30], l = W[i - 29];
        const s0h = ((h >>> 1) | (l << 31)) ^ ((h >>> 8) | (l << 24)) ^ (h >>> 7);
        const s0l = ((l >>> 1) | (h << 31)) ^ ((l >>> 8) | (h << 24)) ^ ((l >>> 7) | (h << 25));
        h = W[i - 4];
        l = W[i - 3];
        const s1h = ((h >>> 19) | (l << 13)) ^ ((l >>> 29) | (h << 3)) ^ (h >>> 6);
        const s1l = ((l >>> 19) | (h << 13)) ^ ((h >>> 29) | (l << 3)) ^ ((l >>> 6) | (h << 26));
        const lo = (s0l >>> 0) + (s1l >>> 0) + (W[i - 13] >>> 0) + (W[i - 31] >>> 0);
        W[i + 1] = lo;
        W[i] = s0h + s1h + W[i - 14] + W[i - 32] + Math.floor(lo / 0x100000000);
      }
      let ah = H[0], al = H[1], bh = H[2], bl = H[3], ch = H[4], cl = H[5], dh = H[6], dl = H[7];
      let eh = H[8], el = H[9], fh = H[10], fl = H[11], gh = H[12], gl = H[13], hh = H[14], hl = H[15];
      for (let i = 0; i < 160; i += 2) {
        const S1h = ((eh >>> 14) | (el << 18)) ^ ((eh >>> 18) | (el << 14)) ^ ((el >>> 9) | (eh << 23));
        const S1l = ((el >>> 14) | (eh << 18)) ^ ((el >>> 18) | (eh << 14)) ^ ((eh >>> 9) | (el << 23));
        const chh = (eh & fh) ^ (~eh & gh);
        const chl = (el & fl) ^ (~el & gl);
        const t1l = (hl >>> 0) + (S1l >>> 0) + (chl >>> 0) + K[i + 1] + (W[i + 1] >>> 0);
        const t1h = hh + S1h + chh + K[i] + W[i] + Math.floor(t1l / 0x100000000);
        const S0h = ((ah >>> 28) | (al << 4)) ^ ((al >>> 2) | (ah << 30)) ^ ((al >>> 7) | (ah << 25));
        const S0l = ((al >>> 28) | (ah << 4)) ^ ((ah >>> 2) | (al << 30)) ^ ((ah >>> 7) | (al << 25));
        const mjh = (ah & bh) ^ (ah & ch) ^ (bh & ch);
        const mjl = (al & bl) ^ (al & cl) ^ (bl & cl);
        const t2l = (S0l >>> 0) + (mjl >>> 0);
        const t2h = S0h + mjh + Math.floor(t2l / 0x100000000);
        hh = gh; hl = gl; gh = fh; gl = fl; fh = eh; fl = el;
        const el2 = (dl >>> 0) + (t1l >>> 0);
        eh = (dh + t1h + Math.floor(el2 / 0x100000000)) | 0;
        el = el2 | 0;
        dh = ch; dl = cl; ch = bh; cl = bl; bh = ah; bl = al;
        const al2 = (t1l >>> 0) + (t2l >>> 0);
        ah = (t1h + t2h + Math.floor(al2 / 0x100000000)) | 0;
        al = al2 | 0;
      }
      const add = (k, h, l) => {
        const lo = (H[k + 1] >>> 0) + (l >>> 0);
        H[k] = H[k] + h + Math.floor(lo / 0x100000000);
        H[k + 1] = lo;
      };
      add(0, ah, al); add(2, bh, bl); add(4, ch, cl); add(6, dh, dl);
      add(8, eh, el); add(10, fh, fl); add(12, gh, gl); add(14, hh, hl);
    }
    const out = new Uint8Array(64);
    const ov = new DataView(out.buffer);
    for (let i = 0; i < 16; i++) ov.setInt32(4 * i, H[i]);
    return out;
  }

  const sha512Parts = (parts) => sha512(concat(parts));

  function leadingZeroBits(bytes) {
    let n = 0;
    for (const b of bytes) {
      if (b === 0) {
        n += 8;
        continue;
      }
      return n + Math.clz32(b) - 24;
    }
    return n;
  }

  // ------------------------------------------------------------- big numbers
  function toBig(bytes) {
    return bytes.length ? BigInt("0x" + hex(bytes)) : 0n;
  }

  function toBytes(x, len) {
    let h = x.toString(16);
    if (h.length % 2) h = "0" + h;
    const raw = new Uint8Array(h.length / 2);
    for (let i = 0; i < raw.length; i++) raw[i] = parseInt(h.substr(2 * i, 2), 16);
    if (len === undefined) return raw;
    if (raw.length > len) throw new Error("number too large");
    const out = new Uint8Array(len);
    out.set(raw, len - raw.length);
    return out;
  }

  // b^e mod m, four bits of the exponent at a time.
  function modPow(b, e, m) {
    b %= m;
    const table = [1n, b];
    for (let i = 2; i < 16; i++) table.push((table[i - 1] * b) % m);
    let r = 1n;
    for (const digit of e.toString(16)) {
      r = (r * r) % m;
      r = (r * r) % m;
      r = (r * r) % m;
      r = (r * r) % m;
      const d = parseInt(digit, 16);
      if (d) r = (r * table[d]) % m;
    }
    return r;
  }

  function modInverse(a, m) {
    let [r0, r1] = [m, ((a % m) + m) % m];
    let [t0, t1] = [0n, 1n];
    while (r1 !== 0n) {
      const q = r0 / r1;
      [r0, r1] = [r1, r0 - q * r1];
      [t0, t1] = [t1, t0 - q * t1];
    }
    if (r0 !== 1n) throw new Error("not invertible");
    return ((t0 % m) + m) % m;
  }

  function randomBytes(n) {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
    return out;
  }

  const SMALL_PRIMES = (() => {
    const limit = 4096;
    const sieve = new Uint8Array(limit);
    const out = [];
    for (let i = 3; i < limit; i += 2) {
      if (sieve[i]) continue;
      out.push(i);
      for (let j = i * i; j < limit; j += 2 * i) sieve[j] = 1;
    }
    return out;
  })();

  function millerRabin(n, rounds) {
    const n1 = n - 1n;
    let d = n1;
    let s = 0;
    while ((d & 1n) === 0n) {
      d >>= 1n;
      s++;
    }
    const bytes = Math.ceil(n.toString(16).length / 2);
    for (let round = 0; round < rounds; round++) {
      const a = round === 0 ? 2n : (toBig(randomBytes(bytes)) % (n - 3n)) + 2n;
      let x = modPow(a, d, n);
      if (x === 1n || x === n1) continue;
      let composite = true;
      for (let i = 1; i < s; i++) {
        x = (x * x) % n;
        if (x === n1) {
          composite = false;
          break;
        }
      }
      if (composite) return false;
    }
    return true;
  }

  const E = 65537n;

  // A random prime of `bits` bits, its top two bits set (so that two make
  // a modulus of exactly twice the bits), p - 1 prime to E: candidates
  // stepped by 2 from a random odd start, sieved by small primes first.
  function randomPrime(bits) {
    for (;;) {
      const raw = randomBytes(bits / 8);
      raw[0] |= 0xc0;
      raw[raw.length - 1] |= 1;
      const base = toBig(raw);
      const residues = SMALL_PRIMES.map((p) => Number(base % BigInt(p)));
      for (let delta = 0; delta < 1 << 20; delta += 2) {
        let smooth = false;
        for (let i = 0; i < SMALL_PRIMES.length; i++) {
          if ((residues[i] + delta) % SMALL_PRIMES[i] === 0) {
            smooth = true;
            break;
          }
        }
        if (smooth) continue;
        const p = base + BigInt(delta);
        if ((p - 1n) % E === 0n) continue;
        if (millerRabin(p, 1) && millerRabin(p, 8)) return p;
      }
    }
  }

  // -------------------------------------------------------------- RSA-PSS
  const HASH_LEN = 64;
  const KEY_BYTES = 256;
  const SALT_LEN = KEY_BYTES - HASH_LEN - 2; // 190: PSS.MAX_LENGTH for 2048 bits

  function mgf1(seed, length) {
    const out = new Uint8Array(length);
    for (let counter = 0, at = 0; at < length; counter++, at += HASH_LEN) {
      const c = new Uint8Array([counter >>> 24, (counter >>> 16) & 255, (counter >>> 8) & 255, counter & 255]);
      out.set(sha512Parts([seed, c]).subarray(0, Math.min(HASH_LEN, length - at)), at);
    }
    return out;
  }

  // EMSA-PSS for a 2047-bit encoded message in 256 bytes (RFC 8017 9.1).
  function pssEncode(message, salt) {
    const mHash = sha512(message);
    const h = sha512Parts([new Uint8Array(8), mHash, salt]);
    const db = new Uint8Array(KEY_BYTES - HASH_LEN - 1);
    db[db.length - salt.length - 1] = 1;
    db.set(salt, db.length - salt.length);
    const mask = mgf1(h, db.length);
    for (let i = 0; i < db.length; i++) db[i] ^= mask[i];
    db[0] &= 0x7f;
    return concat([db, h, new Uint8Array([0xbc])]);
  }

  function pssVerify(message, em) {
    if (em.length !== KEY_BYTES || em[KEY_BYTES - 1] !== 0xbc || em[0] & 0x80) return false;
    const masked = em.subarray(0, KEY_BYTES - HASH_LEN - 1);
    const h = em.subarray(KEY_BYTES - HASH_LEN - 1, KEY_BYTES - 1);
    const db = mgf1(h, masked.length);
    for (let i = 0; i < db.length; i++) db[i] ^= masked[i];
    db[0] &= 0x7f;
    const start = db.length - SALT_LEN - 1;
    for (let i = 0; i < start; i++) if (db[i] !== 0) return false;
    if (db[start] !== 1) return false;
    const salt = db.subarray(start + 1);
    return equal(sha512Parts([new Uint8Array(8), sha512(message), salt]), h);
  }

  // ------------------------------------------------------------ DER and PEM
  function derLength(n) {
    if (n < 128) return new Uint8Array([n]);
    const bytes = toBytes(BigInt(n));
    return concat([new Uint8Array([0x80 | bytes.length]), bytes]);
  }
  const der = (tag, body) => concat([new Uint8Array([tag]), derLength(body.length), body]);
  const seq = (items) => der(0x30, concat(items));
  function derInt(x) {
    let bytes = x === 0n ? new Uint8Array([0]) : toBytes(x);
    if (bytes[0] & 0x80) bytes = concat([new Uint8Array([0]), bytes]);
    return der(0x02, bytes);
  }
  const RSA_ALGORITHM = new Uint8Array([
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
  ]);

  // Reads one DER element at `at`: its tag, and where its body is.
  function derRead(bytes, at) {
    if (at + 2 > bytes.length) throw new Error("the key file is cut short");
    const tag = bytes[at];
    let len = bytes[at + 1];
    let start = at + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 3) throw new Error("the key file is not DER");
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + bytes[start + i];
      start += n;
    }
    if (start + len > bytes.length) throw new Error("the key file is cut short");
    return { tag, start, end: start + len };
  }

  function derChildren(bytes, el) {
    const out = [];
    for (let at = el.start; at < el.end; ) {
      const child = derRead(bytes, at);
      out.push(child);
      at = child.end;
    }
    return out;
  }

  function pem(label, bytes) {
    const body = b64(bytes).replace(/.{64}/g, "$&\n").replace(/\n$/, "");
    return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
  }

  function unpem(text) {
    const m = /-----BEGIN ([A-Z ]+)-----([\s\S]*?)-----END \1-----/.exec(text);
    if (!m) throw new Error("not a PEM file");
    return { label: m[1], bytes: unb64(m[2].replace(/\s+/g, ""), "the key file") };
  }

  // ------------------------------------------------------------------ keys
  // The canonical address (common/src/address.rs): SubjectPublicKeyInfo
  // DER up to the modulus, the modulus, the exponent 65537.
  const SPKI_PREFIX = new Uint8Array([
    0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
    0x01, 0x05, 0x00, 0x03, 0x82, 0x01, 0x0f, 0x00, 0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01,
    0x00,
  ]);
  const SPKI_EXPONENT = new Uint8Array([0x02, 0x03, 0x01, 0x00, 0x01]);

  function addressOf(n) {
    return utf8(pem("PUBLIC KEY", concat([SPKI_PREFIX, toBytes(n, KEY_BYTES), SPKI_EXPONENT])));
  }

  // The modulus of a canonical address (an RSA-2048 key, exponent 65537).
  function modulusOf(address) {
    const { label, bytes } = unpem(new TextDecoder().decode(address));
    if (label !== "PUBLIC KEY" || bytes.length !== SPKI_PREFIX.length + KEY_BYTES + 5) {
      throw new Error("not an RSA-2048 address");
    }
    if (!equal(bytes.subarray(0, SPKI_PREFIX.length), SPKI_PREFIX) || !equal(bytes.subarray(-5), SPKI_EXPONENT)) {
      throw new Error("not an RSA-2048 address with exponent 65537");
    }
    return toBig(bytes.subarray(SPKI_PREFIX.length, SPKI_PREFIX.length + KEY_BYTES));
  }

  class Key {
    constructor(n, d, p, q) {
      if (n.toString(2).length !== 2048) throw new Error("the key is not RSA-2048");
      if (p * q !== n) throw new Error("the key's primes do not make its modulus");
      this.n = n;
      this.d = d;
      this.p = p;
      this.q = q;
      this.dp = d % (p - 1n);
      this.dq = d % (q - 1n);
      this.qinv = modInverse(q, p);
      this.address = addressOf(n);
      this.fingerprint = fingerprint(this.address);
    }

    static generate() {
      for (;;) {
        const p = randomPrime(1024);
        const q = randomPrime(1024);
        if (p === q) continue;
        const d = modInverse(E, (p - 1n) * (q - 1n));
        return new Key(p * q, d, p, q);
      }
    }

    // PKCS#8, as `toycoin-wallet` writes and reads its key file.
    toPem() {
      const { n, d, p, q, dp, dq, qinv } = this;
      const rsa = seq([derInt(0n), derInt(n), derInt(E), derInt(d), derInt(p), derInt(q), derInt(dp), derInt(dq), derInt(qinv)]);
      return pem("PRIVATE KEY", seq([derInt(0n), RSA_ALGORITHM, der(0x04, rsa)]));
    }

    // A PKCS#8 ("PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY") PEM file.
    static fromPem(textOfFile) {
      const { label, bytes } = unpem(textOfFile);
      let rsa = bytes;
      if (label === "PRIVATE KEY") {
        const top = derChildren(bytes, derRead(bytes, 0));
        if (top.length < 3 || top[2].tag !== 0x04 || !equal(bytes.subarray(top[1].start - 2, top[1].end), RSA_ALGORITHM)) {
          throw new Error("not an RSA private key");
        }
        rsa = bytes.subarray(top[2].start, top[2].end);
      } else if (label !== "RSA PRIVATE KEY") {
        throw new Error(`a ${label}, not a private key`);
      }
      const ints = derChildren(rsa, derRead(rsa, 0)).map((el) => {
        if (el.tag !== 0x02) throw new Error("not an RSA private key");
        return toBig(rsa.subarray(el.start, el.end));
      });
      if (ints.length < 9) throw new Error("not an RSA private key");
      const [, n, e, d, p, q] = ints;
      if (e !== E) throw new Error("the key's public exponent is not 65537");
      return new Key(n, d, p, q);
    }

    sign(message) {
      const em = toBig(pssEncode(message, randomBytes(SALT_LEN)));
      const m1 = modPow(em, this.dp, this.p);
      const m2 = modPow(em, this.dq, this.q);
      const h = (this.qinv * (((m1 - m2) % this.p) + this.p)) % this.p;
      const s = m2 + h * this.q;
      // A fault in the arithmetic must not give out a bad signature.
      if (modPow(s, E, this.n) !== em) throw new Error("signing failed");
      return toBytes(s, KEY_BYTES);
    }
  }

  function verify(address, message, signature) {
    if (signature.length !== KEY_BYTES) return false;
    const n = modulusOf(address);
    const s = toBig(signature);
    if (s >= n) return false;
    return pssVerify(message, toBytes(modPow(s, E, n), KEY_BYTES));
  }

  // The short name every program shows: 4 bytes of the address's SHA-512;
  // the page shows 8 (16 hex digits), what `toycoin-wallet send --to` takes.
  function fingerprint(address) {
    return hex(sha512(address).subarray(0, 8));
  }

  // ---------------------------------------------------------- transactions
  const AMOUNTS_DOMAIN = utf8("toycoin steady transfer v2\0");

  function u32(n) {
    return new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
  }
  function i64(v) {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigInt64(0, BigInt(v));
    return out;
  }

  // A transaction from the JSON text a proof carries; amounts kept as
  // BigInt from the text itself (a double would round large ones).
  function txnFromJson(json) {
    const w = JSON.parse(json);
    const amount = (field) => {
      const m = new RegExp(`"${field}"\\s*:\\s*(-?\\d+)`).exec(json);
      if (!m) throw new Error(`transaction: no ${field}`);
      return BigInt(m[1]);
    };
    if (!Array.isArray(w.previous_hashes)) throw new Error("transaction: no previous_hashes");
    return {
      previous_hashes: w.previous_hashes.map((h) => unb64(h, "previous hash")),
      receiver: unb64(w.receiver, "receiver"),
      receiver_value: amount("receiver_value"),
      receiver_signature: unb64(w.receiver_signature, "receiver signature"),
      sender: unb64(w.sender, "sender"),
      sender_change: amount("sender_change"),
      sender_signature: unb64(w.sender_signature, "sender signature"),
    };
  }

  function txnToWire(t) {
    return {
      previous_hashes: t.previous_hashes.map(b64),
      receiver: b64(t.receiver),
      receiver_value: Number(t.receiver_value),
      receiver_signature: b64(t.receiver_signature),
      sender: b64(t.sender),
      sender_change: Number(t.sender_change),
      sender_signature: b64(t.sender_signature),
    };
  }

  // SHA-512 over previous hashes, receiver, dec(value), receiver
  // signature, sender, dec(change), sender signature (transaction.rs).
  function txid(t) {
    return sha512Parts([
      ...t.previous_hashes,
      t.receiver,
      utf8(t.receiver_value.toString()),
      t.receiver_signature,
      t.sender,
      utf8(t.sender_change.toString()),
      t.sender_signature,
    ]);
  }

  // What a signature covers (Transaction::signed_message).
  function signedMessage(t, amounts, role) {
    if (!amounts) return concat([...t.previous_hashes, role === "R" ? t.receiver : t.sender]);
    return concat([
      AMOUNTS_DOMAIN,
      utf8(role),
      u32(t.previous_hashes.length),
      ...t.previous_hashes,
      u32(t.receiver.length),
      t.receiver,
      i64(t.receiver_value),
      u32(t.sender.length),
      t.sender,
      i64(t.sender_change),
    ]);
  }

  // --------------------------------------------------------------- headers
  const ONE_BIT = 65536n;
  const MIN_BITS = 12, MAX_BITS = 96, START_BITS = 18;
  const MEDIAN_SPAN = 11, MAX_FUTURE_SECS = 600, YOUNG_BLOCKS = 32;

  const firstSchedule = () => ({ recent: [], level: BigInt(START_BITS) * ONE_BIT, height: 0 });

  function median(recent) {
    if (!recent.length) return null;
    const sorted = [...recent].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
  }
  function medianPosition(height) {
    const span = Math.min(height, MEDIAN_SPAN);
    return height - span + Math.floor(span / 2);
  }
  const clampBig = (x, lo, hi) => (x < lo ? lo : x > hi ? hi : x);

  // difficulty.rs's next_level, in BigInt as it is in i128.
  function nextLevel(level, height, before, now, blocks, targetMs) {
    const target = BigInt(Math.max(targetMs, 1));
    const halfLife = height < YOUNG_BLOCKS ? 4n : 32n;
    const most = target * (halfLife < 32n ? halfLife : 32n);
    const counted = clampBig((BigInt(now) - BigInt(before)) * 1000n, -most, most);
    const step = ((target * BigInt(blocks) - counted) * ONE_BIT) / (target * halfLife);
    return clampBig(level + step, BigInt(MIN_BITS) * ONE_BIT, BigInt(MAX_BITS) * ONE_BIT);
  }

  class Network {
    constructor(json) {
      Object.assign(this, json);
      this.genesisBytes = unb64(json.genesis, "genesis");
    }

    requiredBits(s) {
      if (!this.rules.level) return 8 * (s.height < 1 ? 1 : 32 - Math.clz32(s.height));
      const rounded = Number((s.level + ONE_BIT / 2n) / ONE_BIT);
      return Math.min(MAX_BITS, Math.max(MIN_BITS, rounded));
    }

    work(bits) {
      return this.rules.work_per_bit ? 1n << BigInt(Math.min(bits, MAX_BITS)) : 1n;
    }

    advance(s, timestamp) {
      const next = { recent: s.recent, level: s.level, height: s.height + 1 };
      if (timestamp === null || !this.rules.timestamps) return next;
      next.recent = [...s.recent, timestamp].slice(-MEDIAN_SPAN);
      const before = median(s.recent);
      const after = median(next.recent);
      if (before !== null && after !== null) {
        const blocks = medianPosition(next.height) - medianPosition(s.height);
        next.level = nextLevel(s.level, s.height, before, after, blocks, this.target_ms);
      }
      return next;
    }
  }

  function headerFromWire(w) {
    const h = {
      timestamp: unb64(w.timestamp, "timestamp"),
      previous_hash: unb64(w.previous_hash, "previous_hash"),
      nonce: unb64(w.nonce, "nonce"),
      merkle_root: unb64(w.merkle_root, "merkle_root"),
      this_hash: unb64(w.this_hash, "this_hash"),
    };
    if (h.previous_hash.length !== 64 || h.this_hash.length !== 64) throw new Error("a hash is not 64 bytes");
    if (h.merkle_root.length !== 65) throw new Error("merkle_root: wrong length");
    return h;
  }

  // chain.rs's check_header: the link, the hash, the work, the timestamp.
  function checkHeader(net, previous, schedule, h, now) {
    if (!equal(h.previous_hash, previous)) throw new Error("it does not follow the header before it");
    if (!equal(sha512Parts([h.timestamp, h.previous_hash, h.nonce, h.merkle_root]), h.this_hash)) {
      throw new Error("its hash is not the hash of its fields");
    }
    const required = net.requiredBits(schedule);
    const got = leadingZeroBits(h.this_hash);
    if (got < required) throw new Error(`proof of work too weak: ${got} zero bits, ${required} required`);
    let timestamp = null;
    if (net.rules.timestamps) {
      const digits = new TextDecoder().decode(h.timestamp);
      if (!/^(0|[1-9][0-9]{0,15})$/.test(digits)) throw new Error("its timestamp is not a decimal number");
      timestamp = Number(digits);
      const m = median(schedule.recent);
      if (m !== null && timestamp < Math.max(0, m - MAX_FUTURE_SECS)) {
        throw new Error(`its timestamp ${timestamp} is more than ${MAX_FUTURE_SECS} s before the median ${m}`);
      }
      if (timestamp > now + MAX_FUTURE_SECS) throw new Error(`its timestamp ${timestamp} is in the future`);
    }
    return { required, timestamp };
  }

  // A light client's chain of headers (spv.rs's HeaderChain): the one with
  // the most work, each header checked from the one it follows.
  class Headers {
    constructor(net) {
      this.net = net;
      this.entries = []; // { header, work, schedule }
    }
    get length() {
      return this.entries.length;
    }
    tipHash() {
      return this.entries.length ? this.entries[this.entries.length - 1].header.this_hash : this.net.genesisBytes;
    }
    totalWork() {
      return this.entries.length ? this.entries[this.entries.length - 1].work : 0n;
    }
    heightOf(hash) {
      for (let i = this.entries.length - 1; i >= 0; i--) if (equal(this.entries[i].header.this_hash, hash)) return i;
      return -1;
    }
    locator() {
      const out = [];
      let step = 1;
      let i = this.entries.length;
      while (i > 0 && out.length < 63) {
        out.push(b64(this.entries[i - 1].header.this_hash));
        if (out.length >= 10) step *= 2;
        i = Math.max(0, i - step);
      }
      const first = this.entries.length ? b64(this.entries[0].header.this_hash) : null;
      if (first && out[out.length - 1] !== first) out.push(first);
      return out;
    }

    // "adopted", "known", "ignored" (no more work than ours) or "orphan";
    // throws with the failing header's index and why.
    receive(headers, now) {
      if (!headers.length) return "known";
      let start;
      if (equal(headers[0].previous_hash, this.net.genesisBytes)) start = 0;
      else {
        const at = this.heightOf(headers[0].previous_hash);
        if (at < 0) return "orphan";
        start = at + 1;
      }
      let skip = 0;
      while (skip < headers.length && start + skip < this.entries.length &&
             equal(headers[skip].this_hash, this.entries[start + skip].header.this_hash)) skip++;
      if (skip === headers.length) return "known";
      const fork = start + skip;
      const before = fork > 0 ? this.entries[fork - 1] : null;
      let work = before ? before.work : 0n;
      let previous = before ? before.header.this_hash : this.net.genesisBytes;
      let schedule = before ? before.schedule : firstSchedule();
      const branch = [];
      for (let i = skip; i < headers.length; i++) {
        let info;
        try {
          info = checkHeader(this.net, previous, schedule, headers[i], now);
        } catch (e) {
          throw new Error(`header ${i}: ${e.message}`);
        }
        work += this.net.work(info.required);
        schedule = this.net.advance(schedule, info.timestamp);
        previous = headers[i].this_hash;
        branch.push({ header: headers[i], work, schedule });
      }
      if (work <= this.totalWork()) return "ignored";
      this.entries.length = fork;
      this.entries.push(...branch);
      return "adopted";
    }

    // A node's proof (spv.rs's verify): the block is our header at that
    // height, and the Merkle path leads from the transaction to its root.
    verify(item) {
      const txn = txnFromJson(item.txn);
      const block = unb64(item.block, "block");
      const height = item.height;
      const entry = this.entries[height];
      if (!entry) {
        const e = new Error(`block ${height} is beyond our ${this.length} headers (or not on the chain with the most work)`);
        e.later = Number.isSafeInteger(height) && height >= 0;
        throw e;
      }
      if (!equal(entry.header.this_hash, block)) {
        throw new Error(`block ${hex(block.subarray(0, 6))} is not our block ${height}: not on the chain with the most work`);
      }
      const id = txid(txn);
      let label = concat([new Uint8Array([0]), id]);
      const inner = (l, r) => concat([new Uint8Array([1]), sha512Parts(r ? [l, r] : [l])]);
      for (const step of item.path) {
        const sibling = step.sibling === null || step.sibling === undefined ? null : unb64(step.sibling, "path");
        if (sibling && sibling.length !== 65) throw new Error("path: wrong length");
        if (!sibling && step.right) throw new Error(`the Merkle path does not lead from transaction ${hex(id.subarray(0, 6))} to block ${height}'s root`);
        label = step.right ? inner(sibling, label) : inner(label, sibling);
      }
      if (!equal(label, entry.header.merkle_root)) {
        throw new Error(`the Merkle path does not lead from transaction ${hex(id.subarray(0, 6))} to block ${height}'s root`);
      }
      return { txn, txid: id, height, block, pathLen: item.path.length };
    }
  }

  // ---------------------------------------------------------------- wallet
  // A light wallet through the web view's gateway, as LightWallet
  // (wallet/src/lib.rs) through the relay: it asks, and believes only what
  // it checked.
  class Wallet {
    constructor(net, key, post) {
      this.net = net;
      this.key = key;
      this.post = post; // (path, body) => Promise<Response>
      this.headers = new Headers(net);
      this.proved = new Map(); // hex txid -> proved
      this.refused = []; // why answers were refused, newest last
      this.asked = 0;
    }

    refuse(why) {
      this.refused.push(why);
      if (this.refused.length > 50) this.refused.shift();
    }

    nextId() {
      this.asked += 1;
      return `p${this.asked}-${hex(randomBytes(3))}`;
    }

    // A request through the gateway, asked again (twice at most) when no
    // node answered: a node answers each asker a few times a second.
    async ask(request) {
      for (let attempt = 0; ; attempt++) {
        const response = await this.post("/api/wallet/ask", JSON.stringify(request));
        if (!response.ok && response.status !== 429) throw new Error(await response.text());
        const answers = response.ok ? await response.json() : [];
        // The gateway's id ends with ours: an answer to another page is not ours.
        const ours = answers.filter((a) => typeof a.id === "string" && a.id.endsWith(`-${request.id}`));
        if (ours.length || attempt >= 2) return ours;
        await new Promise((r) => setTimeout(r, 800));
        request = { ...request, id: this.nextId() };
      }
    }

    // Headers after ours until no answer adds any: from the web view (it
    // follows the best chain; checked like any node's), and with `nodes`
    // from the nodes too, so that a view that lagged or hid a branch
    // cannot keep this page on a chain with less work.
    async sync(nodes) {
      const take = (a) => {
        if (!a || a.kind !== "headers" || !Array.isArray(a.headers)) return false;
        try {
          const taken = this.headers.receive(a.headers.map(headerFromWire), Math.floor(Date.now() / 1000));
          if (taken === "ignored") this.refuse(`${a.headers.length} headers ignored: no more work than the chain we have`);
          return taken === "adopted";
        } catch (e) {
          this.refuse(`headers refused: ${e.message}`);
          return false;
        }
      };
      for (let round = 0; round < 50; round++) {
        const response = await this.post("/api/wallet/headers", JSON.stringify({ locator: this.headers.locator() }));
        if (!response.ok || !take(await response.json())) break;
      }
      if (!nodes) return;
      for (let round = 0; round < 50; round++) {
        const answers = await this.ask({ kind: "get-headers", id: this.nextId(), locator: this.headers.locator() });
        let grew = false;
        for (const a of answers) if (take(a)) grew = true;
        if (!grew) return;
      }
    }

    // This wallet's transactions, each kept only with a proof that holds.
    async prove() {
      const me = b64(this.key.address);
      const answers = await this.ask({ kind: "get-proofs", id: this.nextId(), address: me });
      for (const [id, p] of this.proved) {
        const e = this.headers.entries[p.height];
        if (!e || !equal(e.header.this_hash, p.block)) this.proved.delete(id);
      }
      // A proof in a block newer than our headers (it came between our
      // questions) is checked again once we have its header; one that
      // stays beyond every header we can get is refused.
      let later = [];
      const take = (item, last) => {
        try {
          const p = this.headers.verify(item);
          if (!this.mine(p.txn.receiver) && !this.mine(p.txn.sender)) {
            this.refuse(`transaction ${hex(p.txid.subarray(0, 6))}: not this wallet's`);
            return;
          }
          this.proved.set(hex(p.txid), p);
        } catch (e) {
          if (e.later && !last) later.push(item);
          else this.refuse(`proof refused: ${e.message}`);
        }
      };
      for (const a of answers) {
        if (a.kind !== "proofs" || !Array.isArray(a.items)) continue;
        for (const item of a.items.slice(0, 500)) take(item, false);
      }
      if (later.length) {
        await this.sync(true);
        const again = later;
        later = [];
        for (const item of again) take(item, true);
      }
    }

    mine(address) {
      return equal(address, this.key.address);
    }

    history() {
      return [...this.proved.values()].sort((a, b) => a.height - b.height);
    }

    // Outputs this wallet owns that no proved transaction of its spends.
    unspent() {
      const spent = new Set();
      for (const p of this.proved.values()) {
        if (this.mine(p.txn.sender)) for (const h of p.txn.previous_hashes) spent.add(hex(h));
      }
      const out = [];
      for (const p of this.history()) {
        if (spent.has(hex(p.txid))) continue;
        const t = p.txn;
        if (this.mine(t.receiver) && t.receiver_value > 0n) {
          out.push({ txn_hash: p.txid, owner: t.receiver, value: t.receiver_value, signature: t.receiver_signature });
        }
        if (this.mine(t.sender) && t.sender_change > 0n && t.previous_hashes.length) {
          out.push({ txn_hash: p.txid, owner: t.sender, value: t.sender_change, signature: t.sender_signature });
        }
      }
      return out;
    }

    balance() {
      return this.unspent().reduce((sum, t) => sum + t.value, 0n);
    }

    confirmations(p) {
      return Math.max(0, this.headers.length - p.height);
    }

    // A classmate's address: a whole PEM address, or a fingerprint of 16
    // hex digits or more asked of the nodes and checked against it.
    async findAddress(wanted) {
      wanted = wanted.trim();
      if (wanted.startsWith("-----BEGIN PUBLIC KEY-----")) {
        const address = utf8(wanted.replace(/\r\n/g, "\n").trimEnd() + "\n");
        modulusOf(address);
        return address;
      }
      wanted = wanted.toLowerCase();
      if (!/^[0-9a-f]+$/.test(wanted)) throw new Error("give a fingerprint (hex digits) or a whole address");
      if (wanted.length < 16) throw new Error("a fingerprint of 8 hex digits can be ground by a classmate in hours: give at least 16");
      const answers = await this.ask({ kind: "get-address", id: this.nextId(), fingerprint: wanted });
      for (const a of answers) {
        if (a.kind !== "address") continue;
        try {
          const address = unb64(a.address, "address");
          if (hex(sha512(address)).startsWith(wanted)) return address;
          this.refuse(`an address for ${wanted} that has another fingerprint`);
        } catch (e) {
          this.refuse(`address refused: ${e.message}`);
        }
      }
      throw new Error(`no node knows wallet ${wanted} (it must have been paid once): give its whole address`);
    }

    // Pays with proved coins, oldest first, as many as needed; the rest
    // comes back as change.
    async pay(to, amount) {
      amount = BigInt(amount);
      if (amount <= 0n) throw new Error("pay a positive amount");
      const tokens = [];
      let sum = 0n;
      for (const t of this.unspent()) {
        if (sum >= amount) break;
        tokens.push(t);
        sum += t.value;
      }
      if (sum < amount) throw new Error(`this wallet has ${sum} proved coins, fewer than ${amount}`);
      const t = {
        previous_hashes: tokens.map((k) => k.txn_hash),
        receiver: to,
        receiver_value: amount,
        receiver_signature: new Uint8Array(0),
        sender: this.key.address,
        sender_change: sum - amount,
        sender_signature: new Uint8Array(0),
      };
      const amounts = this.net.rules.amounts_signed;
      t.receiver_signature = this.key.sign(signedMessage(t, amounts, "R"));
      t.sender_signature = this.key.sign(signedMessage(t, amounts, "S"));
      const wireTokens = tokens.map((k) =>
        JSON.stringify({ txn_hash: b64(k.txn_hash), owner: b64(k.owner), value: Number(k.value), signature: b64(k.signature) }));
      const body = JSON.stringify([wireTokens, JSON.stringify(txnToWire(t))]);
      const response = await this.post("/api/wallet/send", body);
      if (!response.ok) throw new Error(await response.text());
      return { txid: txid(t), txn: t };
    }

    // The faucet's answer, believed only when the network's mint signed it.
    async faucet() {
      const answers = await this.ask({ kind: "faucet", id: this.nextId(), address: b64(this.key.address) });
      let ignored = 0;
      for (const a of answers) {
        if (a.kind !== "granted") continue;
        if (this.net.mint) {
          const why = checkGranted(a, this.net.mint);
          if (why) {
            ignored++;
            this.refuse(`a faucet answer ${why}`);
            continue;
          }
        }
        if (a.txn) return { txn: a.txn, value: a.value };
        throw new Error(`the faucet said no: ${a.refused}`);
      }
      if (ignored) throw new Error(`${ignored} answer(s) ignored: not signed by the mint (a classmate's forgery?)`);
      throw new Error("no faucet answered (the teacher starts one: toycoin-oracle --faucet N)");
    }
  }

  // spv.rs's check_granted: why a `granted` answer is not the mint's, or null.
  function checkGranted(a, mintHex) {
    if (!a.mint || !a.sig) return "is not signed by the mint";
    let address;
    try {
      address = unb64(a.mint, "mint");
    } catch (e) {
      return "is not signed by the mint";
    }
    if (hex(sha512(address)) !== mintHex) return "is signed by another key than the mint's";
    const claim = utf8(`toycoin-granted\0${a.id}\0${a.value}\0${a.txn || ""}\0${a.refused || ""}\0`);
    try {
      if (verify(address, claim, unb64(a.sig, "signature"))) return null;
    } catch (e) {
      // falls through
    }
    return "has a signature that does not verify";
  }

  return {
    b64, unb64, hex, sha512, leadingZeroBits, modPow, Key, verify, fingerprint, txid, txnFromJson,
    signedMessage, Network, Headers, headerFromWire, Wallet, checkGranted, SMALL_PRIMES,
  };
})();

if (typeof module !== "undefined") module.exports = Toy;
