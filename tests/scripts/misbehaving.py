"""Clients that misbehave, for toycoin-check's tests (issue 37): each
subscribes, then

- crash: ends with status 3 as soon as it has subscribed, most often
  before the checker has looked (it has subscribed all the same);
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
        # The subscription, then the end of what it sends: the relay reads
        # the one before the other.
        s.shutdown(socket.SHUT_WR)
        raise SystemExit(3)
    while True:
        data = s.recv(65536)
        if not data:
            return


if __name__ == "__main__":
    main()
