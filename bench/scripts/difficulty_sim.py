#!/usr/bin/env python3
"""Simulates the steady profile's difficulty rule (common/src/profile.rs,
`Profile::advance`) against miners of fixed power, to choose its constants.

    python3 bench/scripts/difficulty_sim.py

For each rule it prints, over 60 runs with hash rates drawn from 2, 4, 6 and
12 MH/s and a 5 s target: after how many blocks the median (over runs) of
the 8-block mean interval stays within +-50% of the target, from a cold
start and after the hash power doubles or halves at block 120; and, later
on, the share of 8-block windows within +-50% and of blocks over 30 s.
"""
import math
import random
import statistics

TARGET = 5.0
MEDIAN_SPAN = 11


def step(expected, actual, most):
    if actual <= 0:
        return most
    return max(-most, min(most, round(math.log2(expected / actual))))


def median_position(height):
    span = min(height, MEDIAN_SPAN)
    return height - span + span // 2


def run(rate, rule, blocks, seed):
    epoch, most, lag, early = rule
    rng = random.Random(seed)
    bits, t, stamps, intervals, medians, start = 18, 0.0, [], [], {}, None
    for i in range(blocks):
        dt = rng.expovariate(rate(i) / 2**bits)
        t += dt
        stamps.append(int(t))
        intervals.append(dt)
        h = len(stamps)
        recent = sorted(stamps[-MEDIAN_SPAN:])
        medians[h] = recent[len(recent) // 2]
        if start is None:
            start = h
            continue
        k = h - start
        if k >= epoch:
            s = step((median_position(h) - median_position(start)) * TARGET,
                     medians[h] - medians[start], most)
            bits, start = max(12, bits + s), h
        elif early and k >= lag + early:
            s = step((median_position(h) - median_position(start + lag)) * TARGET,
                     medians[h] - medians[start + lag], most)
            if s >= most:
                bits, start = max(12, bits + s), h
    return intervals


def settles(rule, rate, start, n=60, runs=60, offset=0):
    rows = []
    for seed in range(runs):
        h = random.Random(seed).choice([2e6, 4e6, 6e6, 12e6])
        iv = run(lambda i: rate(h, i), rule, start + n + 8, seed + offset)
        rows.append([statistics.mean(iv[start + j:start + j + 8]) for j in range(n)])
    med = [statistics.median(r[j] for r in rows) for j in range(n)]
    ok = lambda x: TARGET / 2 <= x <= TARGET * 1.5
    return next((j for j in range(n) if all(ok(x) for x in med[j:])), None)


def evaluate(name, rule):
    cold = settles(rule, lambda h, i: h, 0, n=100)
    double = settles(rule, lambda h, i: h if i < 120 else 2 * h, 120, offset=1000)
    half = settles(rule, lambda h, i: h if i < 120 else h / 2, 120, offset=2000)
    windows, slow = [], []
    for seed in range(40):
        h = random.Random(seed).choice([2e6, 4e6, 6e6, 12e6])
        tail = run(lambda i: h, rule, 400, seed + 5000)[80:]
        w = [statistics.mean(tail[j:j + 8]) for j in range(0, len(tail) - 8, 8)]
        windows.append(sum(TARGET / 2 <= x <= TARGET * 1.5 for x in w) / len(w))
        slow.append(sum(x > 30 for x in tail) / len(tail))
    print(f"{name:32} settles after: cold {cold}, doubled {double}, halved {half} blocks"
          f" | windows within +-50% {statistics.mean(windows):.2f}"
          f" | blocks over 30 s {100 * statistics.mean(slow):.1f}%")


if __name__ == "__main__":
    evaluate("16-block epochs", (16, 3, 6, 0))
    evaluate("16-block epochs, early ends up", (16, 3, 6, 4))
