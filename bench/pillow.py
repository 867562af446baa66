"""Pillow's thumbnail() (JPEG draft mode = DCT scaling), single thread, warm.

    python pillow.py OUT_DIR ITERATIONS FILE...   -> {"file": median_ms} on stdout
"""
import io
import json
import os
import statistics
import sys
import time

from PIL import Image


def thumbnail(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as im:
        # The height bound must be reachable, or draft() (DCT scaling) cannot shrink on load.
        height = max(1, -(-im.height * 200 // im.width))
        im.thumbnail((200, height), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        im.convert("RGB").save(out, "JPEG", quality=80)
        return out.getvalue()


def main() -> None:
    out_dir, iterations, *files = sys.argv[1:]
    results = {}
    for path in files:
        data = open(path, "rb").read()
        for _ in range(2):
            thumbnail(data)
        times = []
        for _ in range(int(iterations)):
            start = time.perf_counter()
            out = thumbnail(data)
            times.append((time.perf_counter() - start) * 1000)
        open(os.path.join(out_dir, os.path.basename(path) + ".pillow.jpg"), "wb").write(out)
        results[os.path.basename(path)] = statistics.median(times)
    print(json.dumps(results))


main()
