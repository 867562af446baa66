"""Cold init of Lambda binaries: process start -> first GET of the Runtime API's `next`.

    python cold_init.py [--runs N] [--env-file FILE] BINARY...

Serves a minimal Lambda Runtime API on 127.0.0.1 and, for each binary, starts it N times with
AWS_LAMBDA_RUNTIME_API pointing there; the first `next` request marks the end of init, then the
process is stopped. Prints one markdown row per binary: size, median and min init in ms.
"""
import argparse
import http.server
import os
import statistics
import subprocess
import threading
import time


class RuntimeApi(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.first_next = threading.Event()
        self.at = 0.0


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server naming)
        if self.path.endswith("/runtime/invocation/next") and not self.server.first_next.is_set():
            self.server.at = time.perf_counter()
            self.server.first_next.set()
        # Hold the long poll: the measurement is over.
        time.sleep(2)

    def log_message(self, *args):
        pass


def load_env(path):
    env = {}
    if path:
        for line in open(path):
            if "=" in line:
                key, value = line.rstrip("\n").split("=", 1)
                env[key] = value
    return env


def measure(binary, runs, extra_env):
    times = []
    for _ in range(runs):
        server = RuntimeApi()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        env = dict(os.environ, **extra_env)
        env.update({
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
            "AWS_LAMBDA_FUNCTION_NAME": os.path.basename(binary),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
            "AWS_REGION": env.get("AWS_REGION", "us-east-1"),
            "AWS_ACCESS_KEY_ID": env.get("AWS_ACCESS_KEY_ID", "test"),
            "AWS_SECRET_ACCESS_KEY": env.get("AWS_SECRET_ACCESS_KEY", "test"),
        })
        start = time.perf_counter()
        process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ok = server.first_next.wait(10)
        process.kill()
        process.wait()
        server.shutdown()
        if not ok:
            raise SystemExit(f"{binary} never asked for an event (missing environment?)")
        times.append((server.at - start) * 1000)
    return statistics.median(times), min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--env-file")
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()
    env = load_env(args.env_file)
    print("| binary | size KiB | init median ms | init min ms |")
    print("|---|---|---|---|")
    for binary in args.binaries:
        median, fastest = measure(binary, args.runs, env)
        print(f"| {os.path.basename(binary)} | {os.path.getsize(binary) // 1024} | {median:.1f} | {fastest:.1f} |")


main()
