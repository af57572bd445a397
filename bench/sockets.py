#!/usr/bin/env python3
"""Restarts and crashes of the chat server under load, through nginx, with and without sockets
held by svcd (issue 13).

For each setup (the shipped units/chat.toml: `listen` and `restart.overlap`; the same without
them), svcd runs the chat server (node) behind nginx (units/proxy.toml), and a load of
GET /health requests at RATE per second goes to nginx while:

  - nothing happens (the baseline p99);
  - `svc restart chat` runs COUNT times back to back;
  - the chat server gets `kill -9` COUNT times, each once its next run is up and has served
    for a second (`restart.delay = "0s"` in both setups).

nginx's `worker_connections` is raised to 8192 in the bench's copy, so that requests waiting
for the upstream are not cut by nginx's own limit.

Printed per phase: requests, failed ones (no answer, or not 200: nginx answers 502 when the
upstream refused), p50/p99 latency, and p99 added over the baseline.

    cargo build --release --bins && sudo python3 bench/sockets.py [--rate 500] [--count 20]

Needs node and nginx; loopback only; root is not needed.
"""

import argparse
import collections
import concurrent.futures
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
TARGET = REPO / "target" / "x86_64-unknown-linux-gnu" / "release"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def units(dir, held, chat_port, proxy_port):
    """The shipped units with this run's ports; without `listen`/`overlap` unless `held`."""
    chat = (REPO / "units/chat.toml").read_text()
    if not held:
        chat = re.sub(r"(?m)^listen = .*\n", "", chat)
        chat = re.sub(r"(?m)^overlap = .*\n", "", chat)
    chat = re.sub(r'(?m)^delay = .*$', 'delay = "0s"', chat, count=1)
    # No start limit: the bench crashes it on purpose.
    chat = re.sub(r"(?m)^(burst|interval) = .*\n", "", chat)
    conf = (REPO / "contrib/nginx/nginx.conf").read_text()
    proxy = (REPO / "units/proxy.toml").read_text()
    for old, new in (
        ("127.0.0.1:3000", f"127.0.0.1:{chat_port}"),
        ("127.0.0.1:8080", f"127.0.0.1:{proxy_port}"),
        # Room for the requests that wait while chat is down: the bench measures svcd, not
        # nginx's connection limit.
        ("worker_connections 512;", "worker_connections 8192;"),
        ('PORT = "3000"', f'PORT = "{chat_port}"'),
        ('workdir = ".."', f'workdir = "{REPO}"'),
        ('"target/proxy"', f'"{dir}/nginx"'),
        ('"contrib/nginx/nginx.conf"', f'"{dir}/nginx.conf"'),
    ):
        chat, conf, proxy = (t.replace(old, new) for t in (chat, conf, proxy))
    (dir / "units").mkdir()
    (dir / "units/chat.toml").write_text(chat)
    (dir / "units/proxy.toml").write_text(proxy)
    (dir / "nginx.conf").write_text(conf)


class Load:
    """GET /health at `rate` per second, open loop (a slow answer does not delay the next)."""

    def __init__(self, port, rate):
        self.port, self.rate = port, rate
        self.results = []  # (start, latency or None, ok)
        self.kinds = collections.Counter()  # what the failures were
        self.stop = threading.Event()
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=256)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def one(self, started):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                s.sendall(b"GET /health HTTP/1.0\r\nHost: bench\r\n\r\n")
                answer = b""
                while chunk := s.recv(4096):
                    answer += chunk
            ok = answer.startswith(b"HTTP/1.1 200") or answer.startswith(b"HTTP/1.0 200")
            if not ok:
                self.kinds[answer[:12].decode(errors="replace")] += 1
            self.results.append((started, time.monotonic() - started, ok))
        except OSError as e:
            self.kinds[type(e).__name__] += 1
            self.results.append((started, None, False))

    def run(self):
        gap = 1.0 / self.rate
        next_at = time.monotonic()
        while not self.stop.is_set():
            self.pool.submit(self.one, time.monotonic())
            next_at += gap
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def window(self, start, end):
        return [r for r in list(self.results) if start <= r[0] < end]

    def close(self):
        self.stop.set()
        self.thread.join()
        self.pool.shutdown(wait=True)


def summary(results, baseline_p99=None):
    latencies = sorted(r[1] for r in results if r[1] is not None and r[2])
    failed = sum(1 for r in results if not r[2])

    def pct(p):
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0

    added = "" if baseline_p99 is None else f"{pct(0.99) - baseline_p99:+.1f}"
    return len(results), failed, pct(0.5), pct(0.99), added


def svc(socket_path, *args):
    return subprocess.run(
        [str(TARGET / "svc"), "--socket", socket_path, *args],
        capture_output=True, text=True,
    )


def chat_pid(socket_path):
    out = svc(socket_path, "status", "chat", "--json").stdout
    unit = json.loads(out)[0]
    return unit["pid"] if unit["state"] == "running" else None


def bench(held, rate, count):
    dir = pathlib.Path(tempfile.mkdtemp(prefix="svc-bench-sockets-"))
    chat_port, proxy_port = free_port(), free_port()
    units(dir, held, chat_port, proxy_port)
    sock = str(dir / "state/svcd.sock")
    svcd = subprocess.Popen(
        [str(TARGET / "svcd"), "--units", str(dir / "units"), "--state-dir", str(dir / "state"),
         "--config", "/dev/null"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    rows = []
    try:
        deadline = time.monotonic() + 20
        while svc(sock, "wait", "chat", "proxy", "--for", "ready", "--timeout", "1s").returncode:
            if time.monotonic() > deadline:
                sys.exit("svcd did not bring chat and proxy up within 20s")
        load = Load(proxy_port, rate)
        time.sleep(3)
        t0 = time.monotonic()
        time.sleep(3)
        t1 = time.monotonic()
        base = summary(load.window(t0, t1))
        rows.append(("baseline, 3 s",) + base)
        for _ in range(count):
            out = svc(sock, "restart", "chat")
            if out.returncode:
                print(f"svc restart chat: {out.stderr.strip()}", file=sys.stderr)
        t2 = time.monotonic()
        time.sleep(1)
        rows.append((f"{count} x svc restart chat",) + summary(load.window(t1, t2 + 1), base[3]))
        t3 = time.monotonic()
        for _ in range(count):
            pid = None
            while pid is None:
                pid = chat_pid(sock)
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while chat_pid(sock) in (None, pid) and time.monotonic() < deadline:
                time.sleep(0.005)
            # Up again (ready: it accepts); let it serve a while before the next crash.
            time.sleep(1)
        t4 = time.monotonic()
        time.sleep(1)
        rows.append((f"{count} x kill -9 chat",) + summary(load.window(t3, t4 + 1), base[3]))
        load.close()
        if load.kinds:
            print(f"failures: {dict(load.kinds)}", file=sys.stderr)
    finally:
        svcd.send_signal(signal.SIGTERM)
        svcd.wait(timeout=30)
        shutil.rmtree(dir, ignore_errors=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--held-only", dest="setups", action="store_const", const=(True,),
                        default=(True, False), help="only the setup with held sockets")
    parser.add_argument("--plain-only", dest="setups", action="store_const", const=(False,),
                        help="only the setup without held sockets")
    args = parser.parse_args()
    for tool in ("node", "nginx"):
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin"):
            sys.exit(f"{tool} is not installed")
    print(f"GET /health through nginx at {args.rate}/s\n")
    print(f"| setup | phase | requests | failed | p50 ms | p99 ms | p99 added ms |")
    print(f"| --- | --- | --- | --- | --- | --- | --- |")
    for held in args.setups:
        setup = "listen + restart.overlap" if held else "plain (no held sockets)"
        for phase, n, failed, p50, p99, added in bench(held, args.rate, args.count):
            print(f"| {setup} | {phase} | {n} | {failed} | {p50:.1f} | {p99:.1f} | {added} |")


if __name__ == "__main__":
    main()
