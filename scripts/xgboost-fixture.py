#!/usr/bin/env python3
"""Make the XGBoost import-fidelity fixture: crates/augur-model/tests/fixtures/xgboost/.

Trains the original pipeline's model in Python XGBoost on the Ford data and writes what a user
bringing their own model would have, plus xgboost's own predictions to compare against:

  model.json       booster.save_model() output (100 rounds of XGBoost's defaults, i.e. the
                   original's XGBRegressor(n_estimators=100)), on the original features: standard-scaled year, log1p(mileage),
                   log1p(tax), mpg, engineSize; one-hot transmission and fuelType (fuel types
                   seen fewer than 50 times, e.g. Electric and Hybrid, folded into an ignored
                   category); the car model frequency-encoded (seen fewer than 5 times or
                   unseen -> "Other").
  features.json    the same feature pipeline as an augur feature spec (`PipelineSpec`), so
                   `augur models import --xgboost model.json --features features.json` rebuilds
                   the exact input columns.
  rows.jsonl       the first 200 held-out rows as raw JSON objects with xgboost's prediction.
  test-split.csv   every held-out row: its CSV line number and xgboost's prediction (the Rust
                   test uses it when data/ford.csv is present).
  contribs.csv     every held-out row: its line and xgboost's `pred_contribs` (one SHAP value
                   per feature column, then the bias), for model.json.
  model-log.json   the same rounds trained on ln(price) (an `"output": "exp"` model), with
  features-log.json  its feature spec and
  contribs-log.csv   its `pred_contribs` (log space) and margin per held-out row.

Rows with missing/unparseable fields or impossible values are dropped first, with augur's rules.
Split: rows shuffled with random.Random(42), 80 % train / 20 % test.

Usage (from the repository root):
  pip install --target target/pydeps xgboost numpy
  PYTHONPATH=target/pydeps OMP_WAIT_POLICY=PASSIVE python3 scripts/xgboost-fixture.py \
      [--data data/ford.csv] [--out crates/augur-model/tests/fixtures/xgboost]
"""

import argparse
import csv
import datetime
import json
import math
import os
import random

import numpy as np
import xgboost as xgb

NUMERIC = [("year", False), ("mileage", True), ("tax", True), ("mpg", False), ("engineSize", False)]
ONE_HOT = [("transmission", 50), ("fuelType", 50)]
FREQUENCY = [("model", 5)]


def load(path):
    """Reads the CSV and applies augur's data checks; returns (line, row) pairs."""
    last_year = datetime.date.today().year + 1
    rows = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        for line, row in enumerate(reader, start=2):
            try:
                num = {k: float(row[k]) for k in ["year", "price", "mileage", "tax", "mpg", "engineSize"]}
            except (TypeError, ValueError):
                continue
            if any(not (row.get(k) or "").strip() for k in ["model", "transmission", "fuelType"]):
                continue
            if num["price"] <= 0 or num["year"] < 1900 or num["year"] > last_year:
                continue
            if num["mileage"] < 0 or num["tax"] < 0 or num["mpg"] <= 0:
                continue
            if num["engineSize"] <= 0 and row["fuelType"].strip() != "Electric":
                continue
            rows.append((line, row))
    return rows


def fit(train):
    """Learns the pipeline on the training rows; returns augur `Column`s."""
    n = len(train)
    columns = []
    for field, log in NUMERIC:
        xs = [float(r[field]) for r in train]
        xs = [math.log1p(x) if log else x for x in xs]
        mean = sum(xs) / n
        std = math.sqrt(sum((x - mean) ** 2 for x in xs) / n) or 1.0
        columns.append({"kind": "numeric", "field": field, "log1p": log, "center": mean, "scale": std})
    for field, min_count in ONE_HOT:
        counts = {}
        for r in train:
            counts[r[field].strip()] = counts.get(r[field].strip(), 0) + 1
        for cat in sorted(c for c, k in counts.items() if k >= min_count and c != "Other"):
            columns.append({"kind": "indicator", "field": field, "category": cat})
    for field, min_count in FREQUENCY:
        counts = {}
        for r in train:
            counts[r[field].strip()] = counts.get(r[field].strip(), 0) + 1
        table = {c: k / n for c, k in sorted(counts.items()) if k >= min_count and c != "Other"}
        other = sum(k for c, k in counts.items() if c not in table) / n
        columns.append({"kind": "lookup", "field": field, "encoding": "frequency", "table": table, "other": other})
    return columns


def transform(columns, rows):
    """The feature matrix, computed in float64 and stored as float32 like augur does."""
    x = np.zeros((len(rows), len(columns)), dtype=np.float32)
    for i, r in enumerate(rows):
        for j, c in enumerate(columns):
            if c["kind"] == "numeric":
                v = float(r[c["field"]])
                v = math.log1p(v) if c["log1p"] else v
                x[i, j] = np.float32((v - c["center"]) / c["scale"])
            elif c["kind"] == "indicator":
                x[i, j] = 1.0 if r[c["field"]].strip() == c["category"] else 0.0
            else:
                x[i, j] = np.float32(c["table"].get(r[c["field"]].strip(), c["other"]))
    return x


def name(c):
    """augur's readable column name."""
    if c["kind"] == "numeric":
        return f"log1p({c['field']})" if c["log1p"] else c["field"]
    if c["kind"] == "indicator":
        return f"{c['field']}={c['category']}"
    return f"{c['field']}:{c['encoding']}"


def write_contribs(path, booster, x, rows):
    """Per row: its line, xgboost's SHAP values per column and bias, and the margin."""
    d = xgb.DMatrix(x, feature_names=booster.feature_names)
    contribs = booster.predict(d, pred_contribs=True)
    margin = booster.predict(d, output_margin=True)
    with open(path, "w") as f:
        f.write("line," + ",".join(booster.feature_names) + ",bias,margin\n")
        for (line, _), c, m in zip(rows, contribs, margin):
            f.write(f"{line}," + ",".join(repr(float(v)) for v in c) + f",{float(m)!r}\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/ford.csv")
    ap.add_argument("--out", default="crates/augur-model/tests/fixtures/xgboost")
    ap.add_argument("--rows", type=int, default=200)
    args = ap.parse_args()

    rows = load(args.data)
    random.Random(42).shuffle(rows)
    cut = int(len(rows) * 0.8)
    train, test = rows[:cut], rows[cut:]
    columns = fit([r for _, r in train])
    x_train = transform(columns, [r for _, r in train])
    y_train = np.array([float(r["price"]) for _, r in train])
    x_test = transform(columns, [r for _, r in test])

    # What XGBRegressor(n_estimators=100) does, without needing scikit-learn.
    params = {"objective": "reg:squarederror", "tree_method": "hist", "seed": 214, "nthread": 1}
    booster = xgb.train(params, xgb.QuantileDMatrix(x_train, y_train), num_boost_round=100)
    booster.feature_names = [name(c) for c in columns]
    pred = booster.inplace_predict(x_test)

    os.makedirs(args.out, exist_ok=True)
    booster.save_model(os.path.join(args.out, "model.json"))
    with open(os.path.join(args.out, "features.json"), "w") as f:
        json.dump({"columns": columns, "output": "identity"}, f, indent=1)
        f.write("\n")
    fields = ["model", "year", "transmission", "mileage", "fuelType", "tax", "mpg", "engineSize"]
    with open(os.path.join(args.out, "rows.jsonl"), "w") as f:
        for (line, r), p in list(zip(test, pred))[: args.rows]:
            obj = {k: (r[k] if k in ("model", "transmission", "fuelType") else float(r[k])) for k in fields}
            obj["line"] = line
            obj["xgboost"] = float(p)
            f.write(json.dumps(obj) + "\n")
    with open(os.path.join(args.out, "test-split.csv"), "w") as f:
        f.write("line,xgboost\n")
        for (line, _), p in zip(test, pred):
            f.write(f"{line},{float(p)!r}\n")
    write_contribs(os.path.join(args.out, "contribs.csv"), booster, x_test, test)

    log_booster = xgb.train(params, xgb.QuantileDMatrix(x_train, np.log(y_train)), num_boost_round=100)
    log_booster.feature_names = booster.feature_names
    log_booster.save_model(os.path.join(args.out, "model-log.json"))
    with open(os.path.join(args.out, "features-log.json"), "w") as f:
        json.dump({"columns": columns, "output": "exp"}, f, indent=1)
        f.write("\n")
    write_contribs(os.path.join(args.out, "contribs-log.csv"), log_booster, x_test, test)
    mae = float(np.mean(np.abs(pred - np.array([float(r["price"]) for _, r in test]))))
    print(f"xgboost {xgb.__version__}: {len(train)} train rows, {len(test)} test rows, test MAE {mae:.1f}")


if __name__ == "__main__":
    main()
