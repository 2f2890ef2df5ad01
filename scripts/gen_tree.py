#!/usr/bin/env python3
"""Generate a sample tree of small files for the demo and the benchmark.

usage: gen_tree.py DIR COUNT [--min BYTES] [--max BYTES] [--seed N] [--per-dir N]

Files are spread over subdirectories (PER_DIR files each), with random bytes
of a size drawn uniformly from MIN..MAX. A few unicode names and empty files
are included so the demo shows them off.
"""
import argparse
import os
import random


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("count", type=int)
    ap.add_argument("--min", type=int, default=512)
    ap.add_argument("--max", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--per-dir", type=int, default=1000)
    ap.add_argument("--extras", action="store_true", help="add unicode names and empty files")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    os.makedirs(args.dir, exist_ok=True)
    blob = os.urandom(args.max * 64)
    for i in range(args.count):
        d = os.path.join(args.dir, f"d{i // args.per_dir:04d}")
        if i % args.per_dir == 0:
            os.makedirs(d, exist_ok=True)
        size = rng.randint(args.min, args.max)
        start = rng.randint(0, len(blob) - size)
        with open(os.path.join(d, f"f{i:07d}.bin"), "wb") as f:
            f.write(blob[start:start + size])
    if args.extras:
        extra = os.path.join(args.dir, "extras", "ünïcödé")
        os.makedirs(extra, exist_ok=True)
        with open(os.path.join(extra, "grüße.txt"), "w", encoding="utf-8") as f:
            f.write("Grüße aus DES\n")
        with open(os.path.join(args.dir, "extras", "empty.txt"), "wb"):
            pass
        with open(os.path.join(args.dir, "extras", "hello.txt"), "w") as f:
            f.write("hello from DES\n")


if __name__ == "__main__":
    main()
