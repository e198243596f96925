"""Clients that misbehave, for toycoin-check's tests (issue 37): each
subscribes, then

- crash: ends with status 3 half a second later (or at its first frame);
- hang:  reads every frame and never says a word;
- flood: sends 64 KiB frames as fast as the socket takes them.

    python3 misbehaving.py crash|hang|flood --host HOST --port PORT
"""

import argparse, socket, struct

TOPIC = b"/topic/main"


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["crash", "hang", "flood"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=25000)
    args = parser.parse_args()
    s = socket.create_connection((args.host, args.port))
    s.sendall(frame(TOPIC))
    if args.mode == "flood":
        junk = frame(TOPIC) + frame(b"TXN " + b"x" * 65536)
        while True:
            s.sendall(junk)
    if args.mode == "crash":
        s.settimeout(0.5)
    while True:
        try:
            data = s.recv(65536)
        except socket.timeout:
            raise SystemExit(3)
        if not data:
            return
        if args.mode == "crash":
            raise SystemExit(3)


if __name__ == "__main__":
    main()
