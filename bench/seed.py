#!/usr/bin/env python3
"""Fills a migrated Clearance SQLite database with N models for benchmarks.

Usage: seed.py DB_PATH N

Writes straight into the tables (far faster than N API calls): one
manufacturer per 1,000 models, each model with an alias, a model number and
a TAC 10000000 + i. Ids are UUIDv7 in registration order, as the service
makes them. Like any change made behind the service's back, it bumps
the register's generation and marks the change log as pruned up to it, so
that a server already running rebuilds its lookup index whole.
"""
import random
import sqlite3
import sys
import time
import uuid
from datetime import datetime, timezone

BATCH = 50_000


def uuid7(millis: int) -> str:
    """A version 7 UUID of this Unix time in milliseconds (RFC 9562)."""
    value = (millis << 80) | (0x7 << 76) | (random.getrandbits(12) << 64) | (0b10 << 62) | random.getrandbits(62)
    return str(uuid.UUID(int=value))


def main() -> None:
    path, count = sys.argv[1], int(sys.argv[2])
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    # One millisecond apart each, ending now: ids sort in registration order.
    first_ms = int(time.time() * 1000) - count - 10_000
    makers = []
    for m in range(max(1, count // 1000)):
        maker_id = uuid7(first_ms + m)
        name = f"Maker {m:04d}"
        makers.append(maker_id)
        db.execute(
            "INSERT INTO manufacturers (id, name, name_key, country, version, created_at, updated_at)"
            " VALUES (?, ?, ?, 'CN', 1, ?, ?)",
            (maker_id, name, name.lower(), now, now),
        )
    for start in range(0, count, BATCH):
        models, names, tacs = [], [], []
        for i in range(start, min(count, start + BATCH)):
            model_id = uuid7(first_ms + 10_000 + i)
            name = f"Phone {i:06d}"
            models.append((model_id, makers[i % len(makers)], name, name.lower(), now, now))
            names.append((model_id, "alias", 0, f"Handset {i}", f"handset {i}"))
            names.append((model_id, "model_number", 0, f"PX-{i:06d}", f"px-{i:06d}"))
            tacs.append((f"{10000000 + i}", model_id, 0))
        db.executemany(
            "INSERT INTO models (id, manufacturer_id, name, name_key, category, clearance_status, version,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, 'phone', 'unassessed', 1, ?, ?)",
            models,
        )
        db.executemany(
            "INSERT INTO model_names (model_id, kind, position, value, value_key) VALUES (?, ?, ?, ?, ?)",
            names,
        )
        db.executemany("INSERT INTO model_tacs (tac, model_id, position) VALUES (?, ?, ?)", tacs)
    columns = {row[1] for row in db.execute("PRAGMA table_info(registry_generation)")}
    if "pruned_through" in columns:
        db.execute(
            "UPDATE registry_generation SET generation = generation + 1, pruned_through = generation + 1"
        )
    else:  # a database of a build from before the change log
        db.execute("UPDATE registry_generation SET generation = generation + 1")
    db.commit()


if __name__ == "__main__":
    main()
