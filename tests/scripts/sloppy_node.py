"""A deliberately sloppy toycoin node, for toycoin-check's tests (issue 37).

It speaks the original's protocol (docs/toycoin-wire-format.md) with the
standard library alone, and mines as the original does (two or more
pending transactions, whole chain announced), but:

- it takes any transaction it can decode: no signature is verified and
  nothing is checked against the chain (so a forged signature, an
  overspend, a double spend and a mint all go into its blocks);
- it never reorganises: it takes a chain only when it extends its own.

Everything else it does right, frames it cannot read included (it says
why and carries on). toycoin-check must fail it on exactly what it breaks.

With --late it plays a fast miner on a slow laptop instead: the first
BLOC that extends its chain after it has mined a block waits until it has
mined one more of its own (so that BLOC no longer extends it), and it
does reorganise, to any longer chain whose new blocks are valid; it
mines only its first four blocks.

    python3 sloppy_node.py [--late] --host HOST --port PORT
"""

import argparse, asyncio, base64, hashlib, json, struct, time

GENESIS = hashlib.sha512(b"genesis").digest()
TOPIC = b"/topic/main"
MAX_FRAME = 16 * 1024 * 1024
b64d = base64.b64decode
b64e = lambda bs: base64.b64encode(bs).decode()
sha512 = lambda bs: hashlib.sha512(bs).digest()


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


async def read_frame(reader):
    (n,) = struct.unpack(">I", await reader.readexactly(4))
    if n > MAX_FRAME:
        raise ValueError(f"a frame of {n} bytes")
    return await reader.readexactly(n)


def txn_hash(t):
    return sha512(b"".join(b64d(h) for h in t["previous_hashes"]) + b64d(t["receiver"])
                  + str(t["receiver_value"]).encode() + b64d(t["receiver_signature"])
                  + b64d(t["sender"]) + str(t["sender_change"]).encode()
                  + b64d(t["sender_signature"]))


class Node:
    def __init__(self, label, size, left=None, right=None):
        self.label, self.size, self.left, self.right = label, size, left, right


def start(leaf):
    node = Node(b"", 0, Node(b"\x00" + leaf, 1))
    relabel(node)
    return node


def relabel(node):
    right = node.right.label if node.right else b""
    node.label = b"\x01" + sha512(node.left.label + right)
    node.size = 1 + node.left.size + (node.right.size if node.right else 0)


def insert(node, leaf):
    if node.right is None:
        node.right = Node(b"\x00" + leaf, 1)
    elif node.left.size == node.right.size:
        node.left = Node(node.label, node.size, node.left, node.right)
        node.right = start(leaf)
    else:
        insert(node.right, leaf)
    relabel(node)


def merkle_root(hashes):
    root = start(hashes[0])
    for h in hashes[1:]:
        insert(root, h)
    return root.label


def zero_bytes(index):
    return 1 if index < 1 else 1 + (index.bit_length() - 1)


def block_ok(block, index, previous):
    h = block["header"]
    this = sha512(b64d(h["timestamp"]) + b64d(h["previous_hash"]) + b64d(h["nonce"])
                  + b64d(h["merkle_root"]))
    txns = [json.loads(t) for t in block["txns"]]
    return (b64d(h["previous_hash"]) == previous and this == b64d(h["this_hash"])
            and this[:zero_bytes(index)] == bytes(zero_bytes(index))
            and txns and merkle_root([txn_hash(t) for t in txns]) == b64d(h["merkle_root"]))


def mine(chain, txn_strings):
    index = len(chain)
    previous = b64d(json.loads(chain[-1])["header"]["this_hash"]) if chain else GENESIS
    root = merkle_root([txn_hash(json.loads(t)) for t in txn_strings])
    stamp = str(int(time.time())).encode()
    need = bytes(zero_bytes(index))
    nonce = 0
    while True:
        n = str(nonce).encode()
        this = sha512(stamp + previous + n + root)
        if this[:len(need)] == need:
            header = {"timestamp": b64e(stamp), "previous_hash": b64e(previous), "nonce": b64e(n),
                      "merkle_root": b64e(root), "this_hash": b64e(this)}
            return json.dumps({"header": header, "txns": txn_strings})
        nonce += 1


def take(data, chain, pending, reorg=False):
    """One frame into (chain, pending)."""
    tag, body = data[:4], data[4:]
    if tag == b"TXN ":
        _tokens, txn = json.loads(body)
        txn_hash(json.loads(txn))  # decodes, or raises
        if txn not in pending:
            pending.append(txn)
    elif tag == b"BLOC":
        blocks = json.loads(body)
        fork = fork_of(blocks, chain)
        # Never reorganises (unless `reorg`): only a chain that extends ours.
        if len(blocks) > len(chain) and (fork == len(chain) or reorg):
            previous = b64d(json.loads(blocks[fork - 1])["header"]["this_hash"]) if fork else GENESIS
            for i in range(fork, len(blocks)):
                block = json.loads(blocks[i])
                if not block_ok(block, i, previous):
                    return chain, pending
                previous = b64d(block["header"]["this_hash"])
            taken = {t for b in blocks for t in json.loads(b)["txns"]}
            return blocks, [t for t in pending if t not in taken]
    else:
        print(f"ignored a frame of {len(data)} bytes: no TXN or BLOC tag", flush=True)
    return chain, pending


def fork_of(blocks, chain):
    """How many first blocks `blocks` and `chain` share."""
    fork = 0
    while fork < min(len(blocks), len(chain)) and blocks[fork] == chain[fork]:
        fork += 1
    return fork


def extends(data, chain):
    """Whether frame `data` is a BLOC of a longer chain that extends `chain`."""
    if data[:4] != b"BLOC":
        return False
    blocks = json.loads(data[4:])
    return len(blocks) > len(chain) and fork_of(blocks, chain) == len(chain)


async def main(args):
    reader, writer = await asyncio.open_connection(args.host, args.port)
    writer.write(frame(TOPIC))
    await writer.drain()
    chain, pending = [], []
    loop = asyncio.get_running_loop()
    reading = asyncio.ensure_future(read_frame(reader))
    mining, base, batch = None, None, None
    mined, held, late = 0, None, args.late
    while True:
        # With --late it mines cheap heights only (below 4: 16 zero bits
        # at most), so that its checks cost a test no CPU to speak of.
        if mining is None and len(pending) >= 2 and not (args.late and len(chain) >= 4):
            batch, base = pending[:10], list(chain)
            mining = loop.run_in_executor(None, mine, base, batch)
        waits = {reading} | ({mining} if mining else set())
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if reading in done:
            data = reading.result()
            reading = asyncio.ensure_future(read_frame(reader))
            try:
                if late and mined >= 1 and extends(data, chain):
                    held, late = data, False
                    print("held a BLOC back until our next block", flush=True)
                else:
                    chain, pending = take(data, chain, pending, args.late)
            except Exception as e:
                print(f"ignored a frame of {len(data)} bytes: {e}", flush=True)
        if mining is not None and mining.done():
            block = mining.result()
            mining = None
            if chain == base:
                chain = chain + [block]
                pending = [t for t in pending if t not in batch]
                writer.write(frame(TOPIC) + frame(b"BLOC" + json.dumps(chain).encode()))
                await writer.drain()
                print(f"mined block {len(chain) - 1}", flush=True)
                mined += 1
                if held is not None:
                    chain, pending = take(held, chain, pending, True)
                    held = None


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=25000)
    parser.add_argument("--late", action="store_true")
    asyncio.run(main(parser.parse_args()))
