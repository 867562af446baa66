"""Cold start, memory and size per function (`make bench-cold`).

    python3 bench/cold_start.py --hello BINARY --events DIR [--env-file FILE] [--runs N]
                                [--arm64-dir DIR] BINARY...

For each binary, against a minimal Lambda Runtime API on 127.0.0.1:
- size and zipped size (the binary as `bootstrap`, deflate level 9, as a deployment package);
  with --arm64-dir (SAM's .aws-sam/build) the deployed arm64 artifacts are measured too;
- init: process start -> its first `next` request, N runs, median and min, and the ratio to the
  hello-world lambda_runtime binary measured in the same run, interleaved;
- peak RSS (VmHWM) after serving one realistic event: the first fixture of events/<name>/, with
  the functions' environment from --env-file (the emulator's resources).
Prints a markdown table.
"""
import argparse
import http.server
import io
import json
import os
import statistics
import subprocess
import threading
import time
import zipfile


class RuntimeApi(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, event=None):
        super().__init__(("127.0.0.1", 0), Handler)
        self.event = event
        self.first_next = threading.Event()
        self.answered = threading.Event()
        self.at = 0.0
        self.outcome = None


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server naming)
        server = self.server
        if not self.path.endswith("/runtime/invocation/next"):
            return
        if not server.first_next.is_set():
            server.at = time.perf_counter()
            server.first_next.set()
            if server.event is not None:
                body = server.event
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-1")
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
        # Hold the long poll: the measurement is over.
        time.sleep(5)

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.outcome = "error" if self.path.endswith("/error") else "ok"
        self.send_response(202)
        self.end_headers()
        self.server.answered.set()

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


def lambda_env(binary, server, extra):
    env = dict(extra)
    env.update({
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": os.path.basename(binary),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_REGION": extra.get("AWS_REGION", "us-east-1"),
        "AWS_ACCESS_KEY_ID": extra.get("AWS_ACCESS_KEY_ID", "test"),
        "AWS_SECRET_ACCESS_KEY": extra.get("AWS_SECRET_ACCESS_KEY", "test"),
    })
    return env


def init_once(binary, extra):
    server = RuntimeApi()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    start = time.perf_counter()
    process = subprocess.Popen([binary], env=lambda_env(binary, server, extra),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ok = server.first_next.wait(10)
    process.kill()
    process.wait()
    server.shutdown()
    if not ok:
        raise SystemExit(f"{binary} never asked for an event (missing environment?)")
    return (server.at - start) * 1000


def peak_rss_serving(binary, event, extra):
    """VmHWM in KiB after the function answered `event`, and whether it answered without error."""
    server = RuntimeApi(event)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    process = subprocess.Popen([binary], env=lambda_env(binary, server, extra),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    answered = server.answered.wait(30)
    rss = None
    with open(f"/proc/{process.pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1])
    process.kill()
    process.wait()
    server.shutdown()
    return rss, server.outcome if answered else "no answer"


def zipped_size(path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.write(path, "bootstrap")
    return len(buffer.getvalue())


def first_event(events_dir, name):
    folder = os.path.join(events_dir, name)
    if not os.path.isdir(folder):
        return None
    for file in sorted(os.listdir(folder)):
        if file.endswith(".json") and "invalid" not in file:
            with open(os.path.join(folder, file), "rb") as handle:
                return json.dumps(json.load(handle)).encode()
    return None


def arm64_artifact(arm64_dir, name):
    """The arm64 bootstrap `make build` (sam build) produced for binary `name`, if any."""
    if not arm64_dir:
        return None
    template = os.path.join(arm64_dir, "template.yaml")
    if not os.path.exists(template):
        return None
    text = open(template).read()
    # The function whose Metadata.BuildProperties.Binary is `name`: its build dir is its logical id.
    current = None
    for line in text.splitlines():
        if line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(":"):
            current = line.strip()[:-1]
        if line.strip() == f"Binary: {name}" and current:
            path = os.path.join(arm64_dir, current, "bootstrap")
            return path if os.path.exists(path) else None
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--env-file")
    parser.add_argument("--events", required=True)
    parser.add_argument("--hello", required=True)
    parser.add_argument("--arm64-dir")
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()
    env = load_env(args.env_file)

    # Interleaved: every round measures the hello-world and every function once, so machine load
    # affects all alike.
    samples = {b: [] for b in [args.hello] + args.binaries}
    for _ in range(args.runs):
        for binary in samples:
            samples[binary].append(init_once(binary, env))
    hello = statistics.median(samples[args.hello])

    print(f"Host binaries (x86_64, release profile), init median of {args.runs} runs; hello-world "
          f"{os.path.basename(args.hello)}: {hello:.1f} ms, {os.path.getsize(args.hello) / 1e6:.2f} MB.\n")
    print("| function | binary MB | zip MB | arm64 binary MB | arm64 zip MB | init median ms | init min ms | init / hello | peak RSS MB (one event) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for binary in args.binaries:
        name = os.path.basename(binary)
        times = samples[binary]
        median = statistics.median(times)
        event = first_event(args.events, name)
        rss, outcome = peak_rss_serving(binary, event, env) if event else (None, "no fixture")
        arm64 = arm64_artifact(args.arm64_dir, name)
        arm64_cols = (f"{os.path.getsize(arm64) / 1e6:.2f} | {zipped_size(arm64) / 1e6:.2f}"
                      if arm64 else "- | -")
        rss_col = f"{rss / 1024:.1f} ({outcome})" if rss else outcome
        print(f"| {name} | {os.path.getsize(binary) / 1e6:.2f} | {zipped_size(binary) / 1e6:.2f} | "
              f"{arm64_cols} | {median:.1f} | {min(times):.1f} | {median / hello:.2f}x | {rss_col} |")


main()
