#!/usr/bin/python3
"""argv-sampler.py SECRET PATTERN: while stdin stays open, read every process's argv and
environment from /proc as fast as possible. Prints "seen N" (samples of processes whose
argv contains PATTERN) and "leaks N" (processes whose argv or environment holds SECRET,
with their argv on stderr). Only processes whose argv contains PATTERN are
inspected, and programs named tend, mariadb or mysql, so the harness's own environment
does not count."""
import os, select, sys

secret, pattern = sys.argv[1].encode(), sys.argv[2].encode()
seen, leaks = 0, set()
while not select.select([sys.stdin], [], [], 0)[0]:
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read()
            prog = os.path.basename(argv.split(b"\0", 1)[0])
            if pattern not in argv and prog not in (b"tend", b"mariadb", b"mysql"):
                continue
            seen += pattern in argv
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if secret in argv or secret in env:
            leaks.add(argv.replace(b"\0", b" ").decode(errors="replace"))
for argv in leaks:
    print("leak in:", argv, file=sys.stderr)
print("seen", seen)
print("leaks", len(leaks))
