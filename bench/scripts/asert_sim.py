#!/usr/bin/env python3
"""The steady v3 difficulty (common/src/difficulty.rs) simulated: a level in
bits moved after every block by (expected - counted) / half-life, where
counted is the step of the median time past, clamped to +-MAX_COUNTED
targets; honest miners stamp their own clock.

A network of 1 MH/s on a 5 s target; a miner of 4 MH/s joins for 40 s at
t = 600 s, stamping its blocks 590 s ahead (issue 32's timewarp). For each
(half-life, clamp) it prints how far the rounded bits rose above those at
the attack's start within 200 s, over 50 runs, the noise of an honest run,
and how many blocks a cold start needs to come within a bit of its level.

    python3 bench/scripts/asert_sim.py
"""
import math
import random

T = 5.0


def median_position(height):
    span = min(height, 11)
    return height - span + span // 2


def run(half_life, clamp, honest=1e6, extra=4e6, start=600, secs=40, ahead=590,
        seed=0, end=1500, young=32, young_half_life=4):
    rnd = random.Random(seed)
    level, now, height, out, recent = 18.0, 0.0, 0, [], []
    while now < end:
        bits = max(12, min(96, math.floor(level + 0.5)))
        attacking = start <= now < start + secs
        rate = honest + (extra if attacking else 0)
        took = -(2 ** bits / rate) * math.log(1 - rnd.random())
        now += took
        theirs = attacking and rnd.random() < extra / rate
        before = sorted(recent)[len(recent) // 2] if recent else None
        earliest = before - 600 if before is not None else 0
        stamp = int(now) + ahead if theirs else max(int(now), earliest)
        recent = (recent + [stamp])[-11:]
        after = sorted(recent)[len(recent) // 2]
        if before is not None:
            h = young_half_life if height < young else half_life
            most = min(clamp, h) * T
            counted = max(-most, min(most, after - before))
            expected = T * (median_position(height + 1) - median_position(height))
            level += (expected - counted) / (T * h)
        height += 1
        out.append((bits, took, now))
    return out


def main():
    for h, c in [(16, 16), (32, 32), (48, 48)]:
        rises, noise = [], []
        for seed in range(50):
            r = run(h, c, seed=seed)
            i = next(k for k, b in enumerate(r) if b[2] >= 600)
            window = [b[0] for b in r[i:] if b[2] < 800]
            rises.append(max(window) - r[i][0])
            q = run(h, c, extra=0, seed=seed)
            j = next(k for k, b in enumerate(q) if b[2] >= 600)
            quiet = [b[0] for b in q[j:] if b[2] < 800]
            noise.append(max(quiet) - q[j][0])
        cold = run(h, c, extra=0, end=600)
        settled = round(sum(b[0] for b in cold[-40:]) / 40)
        first = next(k for k, b in enumerate(cold) if b[0] >= settled - 1)
        print(f"half-life {h} targets, clamp {c}: rise under attack max {max(rises)}, "
              f"runs rising 2+: {sum(x > 1 for x in rises)}/50; honest noise max {max(noise)}, "
              f"runs 2+: {sum(x > 1 for x in noise)}/50; cold start within a bit after {first} blocks")


if __name__ == "__main__":
    main()
