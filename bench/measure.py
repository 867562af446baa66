"""Runs a command once and prints {"ms": wall time, "max_rss_kb": its peak RSS} as JSON.

A fresh Python process per measurement, so RUSAGE_CHILDREN holds only this command.
"""
import json
import resource
import subprocess
import sys
import time

start = time.perf_counter()
subprocess.run(sys.argv[1:], check=True)
elapsed = (time.perf_counter() - start) * 1000
print(json.dumps({"ms": elapsed, "max_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
