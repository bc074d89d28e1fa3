#!/usr/bin/env python3
"""Fills a migrated Clearance SQLite database with N models for benchmarks.

Usage: seed.py DB_PATH N

Writes straight into the tables (far faster than N API calls): one
manufacturer per 1,000 models, each model with an alias, a model number and
a TAC 10000000 + i.
"""
import sqlite3
import sys
import uuid
from datetime import datetime, timezone


def main() -> None:
    path, count = sys.argv[1], int(sys.argv[2])
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    db = sqlite3.connect(path)
    makers = []
    for m in range(max(1, count // 1000)):
        maker_id = str(uuid.uuid4())
        name = f"Maker {m:04d}"
        makers.append(maker_id)
        db.execute(
            "INSERT INTO manufacturers (id, name, name_key, country, version, created_at, updated_at)"
            " VALUES (?, ?, ?, 'CN', 1, ?, ?)",
            (maker_id, name, name.lower(), now, now),
        )
    models, names, tacs = [], [], []
    for i in range(count):
        model_id = str(uuid.uuid4())
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
        "INSERT INTO model_names (model_id, kind, position, value, value_key) VALUES (?, ?, ?, ?, ?)", names
    )
    db.executemany("INSERT INTO model_tacs (tac, model_id, position) VALUES (?, ?, ?)", tacs)
    db.execute("UPDATE registry_generation SET generation = generation + 1")
    db.commit()


if __name__ == "__main__":
    main()
