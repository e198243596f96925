"""Clients that misbehave, for toycoin-check's tests (issue 37): each
subscribes, then

- crash: ends with status 3 two seconds after it subscribes, whatever it
  hears meanwhile (ending at its first frame could come before the
  checker saw it subscribe, on a loaded machine);
- hang:  reads every frame and never says a word;
- flood: sends 64 KiB frames as fast as the socket takes them.

    python3 misbehaving.py crash|hang|flood --host HOST --port PORT
"""

import argparse, socket, struct, time

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
        deadline = time.monotonic() + 2.0
    while True:
        if args.mode == "crash":
            left = deadline - time.monotonic()
            if left <= 0:
                raise SystemExit(3)
            s.settimeout(left)
        try:
            data = s.recv(65536)
        except socket.timeout:
            raise SystemExit(3)
        if not data:
            return


if __name__ == "__main__":
    main()
