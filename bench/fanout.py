#!/usr/bin/env python3
"""Fan-out benchmark: publish one advisory to N personnel and time it.

Publishing inserts one outbox row per recipient in the publishing
transaction (set-based INSERT ... SELECT), so the publish call's latency is
the enqueue time. Usage: bench/fanout.py BASE_URL ADMIN_TOKEN APPROVER_TOKEN N
"""
import json
import sys
import time
import urllib.request

base, admin, approver, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def call(method, path, token, body=None, content_type="application/json"):
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", "Bearer " + token)
    if data is not None:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read() or b"null")


rows = "".join(f"p{i:06}@example.org,Officer {i},Unit {i % 50}\n" for i in range(count))
started = time.monotonic()
call("POST", "/api/v1/personnel/import", admin, ("email,name,unit\n" + rows).encode(), "text/csv")
print(f"imported {count} personnel in {time.monotonic() - started:.2f} s")

maker = call("POST", "/api/v1/manufacturers", admin, {"name": "Xiaomi", "country": "CN", "aliases": []})
model = call("POST", "/api/v1/models", admin,
             {"manufacturer_id": maker["id"], "name": "Redmi 1S", "category": "phone", "tacs": []})
evidence = call("POST", "/api/v1/evidence", admin, {
    "model_ids": [model["id"]], "title": "Lab test", "source": "Lab", "kind": "lab_test",
    "observed_at": "2014-07-30T00:00:00Z", "summary": "Sends data abroad.", "severity": "high",
    "findings": [], "references": []})
advisory = call("POST", "/api/v1/advisories", admin, {
    "title": "Do not use the Redmi 1S", "summary": "Prohibited.", "severity": "high", "tlp": "clear",
    "decisions": [{"model_id": model["id"], "decision": "prohibited"}],
    "evidence_ids": [evidence["id"]]})
path = "/api/v1/advisories/" + advisory["id"]
call("POST", path + "/submit", admin, {})
call("POST", path + "/approve", approver, {})
started = time.monotonic()
call("POST", path + "/publish", approver, {})
elapsed = time.monotonic() - started
queued = call("GET", path + "/deliveries?limit=1", admin)["summary"]["queued"]
print(f"published to {queued} recipients in {elapsed:.2f} s (one transaction, outbox rows included)")
