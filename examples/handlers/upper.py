#!/usr/bin/env python3
"""A goinetd handler in Python: upper-cases what the client sends.

The connection is stdin and stdout (binary-safe through .buffer); the
client's address is in TCPREMOTEIP. Flush after each line, since stdout
on a socket is not line-buffered.
"""
import os
import sys

peer = os.environ.get("TCPREMOTEIP", "unknown")
sys.stdout.write(f"upper: ready for {peer}\n")
sys.stdout.flush()
for line in sys.stdin.buffer:
    sys.stdout.buffer.write(line.upper())
    sys.stdout.flush()
print(f"upper.py: served {peer}", file=sys.stderr)
