"""Cross-checks with the original's crypto library (Python `cryptography`).

Reads one JSON object on stdin and prints one on stdout:
  {"verify": [{"address", "msg", "sig"} ...]}  -> {"verified": [bool ...]}
  {"sign": "msg"}                                -> {"address", "sig"}
  {"txn_hash": "TXN payload"}                    -> {"hash"}
Bytes travel as base64. Signing and verifying use exactly the original's
padding: PSS, MGF1(SHA-512), maximum salt, SHA-512.
"""

import base64, hashlib, json, sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HASH = hashes.SHA512()
PADDING = padding.PSS(mgf=padding.MGF1(HASH), salt_length=padding.PSS.MAX_LENGTH)
b = lambda s: base64.b64decode(s)
s = lambda bs: base64.b64encode(bs).decode()


def verify(item):
    key = serialization.load_pem_public_key(b(item["address"]))
    try:
        key.verify(b(item["sig"]), b(item["msg"]), PADDING, HASH)
        return True
    except Exception:
        return False


def txn_hash(payload):
    _tokens, txn = json.loads(payload[4:])
    t = json.loads(txn)
    data = (b"".join(b(h) for h in t["previous_hashes"]) + b(t["receiver"])
            + str(t["receiver_value"]).encode() + b(t["receiver_signature"])
            + b(t["sender"]) + str(t["sender_change"]).encode() + b(t["sender_signature"]))
    return hashlib.sha512(data).hexdigest()


req = json.load(sys.stdin)
if "verify" in req:
    print(json.dumps({"verified": [verify(i) for i in req["verify"]]}))
elif "sign" in req:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo)
    print(json.dumps({"address": s(pem), "sig": s(key.sign(b(req["sign"]), PADDING, HASH))}))
elif "txn_hash" in req:
    print(json.dumps({"hash": txn_hash(req["txn_hash"])}))
