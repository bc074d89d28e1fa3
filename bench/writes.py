#!/usr/bin/env python3
"""Registers N models one after the other through the API and reports how
long each `POST /api/v1/models` took, whether each new model was found by
the lookup of the same server as soon as the call returned, how long a
second server on the same database took to find a sample of them, and the
first server's RSS before and after.

Usage: writes.py URL PEER_URL TOKEN N SERVER_PID
"""
import http.client
import json
import sys
import time
from urllib.parse import urlsplit

TAC_BASE = 90_000_000
PEER_SAMPLE = 50  # every this-many-th write is timed on the peer
PEER_PATIENCE = 10.0  # seconds


class Client:
    def __init__(self, url: str, token: str):
        parts = urlsplit(url)
        self.address = (parts.hostname, parts.port)
        self.conn = http.client.HTTPConnection(*self.address)
        self.token = token

    def call(self, method: str, path: str, body=None):
        headers = {"Authorization": f"Bearer {self.token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            if method != "GET":
                raise
            # The server closed an idle keep-alive connection: open another.
            self.conn = http.client.HTTPConnection(*self.address)
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        return response.status, json.loads(response.read() or b"null")

    def finds(self, tac: int, model_id: str) -> bool:
        status, answer = self.call("GET", f"/api/v1/lookup?tac={tac}")
        return status == 200 and [m["model"]["id"] for m in answer["matches"]] == [model_id]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def rss_parts(pid: int) -> str:
    """The RSS's heap and its mapped files (the binary's code, read the first time it runs)."""
    return f"heap {rss_mb(pid, 'RssAnon'):.0f} MB, files {rss_mb(pid, 'RssFile'):.0f} MB"


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    url, peer_url, token, count, pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    server, peer = Client(url, token), Client(peer_url, token)
    _, makers = server.call("GET", "/api/v1/manufacturers?limit=1")
    maker = makers["items"][0]["id"]
    rss_start, parts_start = rss_mb(pid), rss_parts(pid)
    rss_along = []
    latencies, not_found_at_once, peer_delays, created = [], 0, [], []
    for i in range(count):
        if i % max(1, count // 10) == 0:
            rss_along.append(f"{i}: {rss_mb(pid):.0f}")
        tac = TAC_BASE + i
        body = {"manufacturer_id": maker, "name": f"Bench write {i:06d}", "category": "phone",
                "model_numbers": [f"BW-{i:06d}"], "aliases": [], "tacs": [str(tac)]}
        started = time.perf_counter()
        status, model = server.call("POST", "/api/v1/models", body)
        latencies.append(time.perf_counter() - started)
        if status != 201:
            raise SystemExit(f"write {i}: {status} {model}")
        created.append((tac, model["id"]))
        if not server.finds(tac, model["id"]):
            not_found_at_once += 1
        if i % PEER_SAMPLE == 0:
            waited = time.perf_counter()
            while not peer.finds(tac, model["id"]):
                if time.perf_counter() - waited > PEER_PATIENCE:
                    raise SystemExit(f"write {i}: the peer never found it")
                time.sleep(0.005)
            peer_delays.append(time.perf_counter() - waited)
    rss_end = rss_mb(pid)
    time.sleep(2)
    rss_settled, parts_settled = rss_mb(pid), rss_parts(pid)
    peer_missing = sum(1 for tac, model_id in created if not peer.finds(tac, model_id))
    ms = lambda s: f"{s * 1000:.1f} ms"
    print(f"writes: {count}, p50 {ms(percentile(latencies, 0.5))}, p90 {ms(percentile(latencies, 0.9))}, "
          f"p99 {ms(percentile(latencies, 0.99))}, max {ms(max(latencies))}")
    tenth = max(1, count // 10)
    print("  p50 of each tenth of the writes: " + ", ".join(
        ms(percentile(latencies[at:at + tenth], 0.5)) for at in range(0, count, tenth)))
    print(f"  not found by the same server when the call returned: {not_found_at_once}")
    print(f"  found by the second server after (sample of {len(peer_delays)}): "
          f"p50 {ms(percentile(peer_delays, 0.5))}, max {ms(max(peer_delays))}; "
          f"missing there at the end: {peer_missing}")
    print(f"  RSS before {rss_start:.0f} MB, after {rss_end:.0f} MB, 2 s later {rss_settled:.0f} MB "
          f"({(rss_settled - rss_start) / rss_start * 100:+.1f} %); along the way (write: MB) "
          + ", ".join(rss_along))
    print(f"  RSS before: {parts_start}; 2 s after: {parts_settled}")


if __name__ == "__main__":
    main()
