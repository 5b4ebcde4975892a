#!/usr/bin/env python3
"""Writes the small mixed-type CSV files of tests/data (deterministic: a fixed seed).

customers.csv: a subscription service's customers (UTF-8 BOM, CRLF line ends): an id, a signup
date (ISO and Y/M/D forms, some with a time), a plan and a region in text (regions quoted, some
with a comma), a monthly spend, support calls, autopay as yes/no, a free-text note (quoted, some
with commas, doubled quotes or a line break) and the target `churned` (yes/no). Churn depends on
the plan, the region, autopay, calls and spend, so a model has something real to learn.

new_customers.csv: 20 more customers without the churned column, their columns in another order
and a column the model never saw (campaign): what `pstrain predict` scores.

rentals.csv: apartment rents (regression): city and heating in text, a listing date, a balcony
flag (true/false), floor area and rooms, the rent as target; a few missing cells.
"""
import math
import random
import sys

rng = random.Random(20261207)
out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/data"

plans = [("basic", 0.9), ("standard", 0.1), ("premium", -0.8), ("family", -0.3)]
regions = [("North, East", 0.2), ("North, West", -0.1), ("South", 0.4), ("Central", -0.3),
           ("Islands", 0.6)]
notes = ["", "", "", "asked about \"pro\" discounts", "moved, new address", "called twice\nabout billing",
         "happy", "wants invoices by mail, not e-mail", "n/a"]

def date_text(i):
    y, m, d = 2019 + rng.randrange(5), 1 + rng.randrange(12), 1 + rng.randrange(28)
    form = rng.randrange(4)
    if form == 0:
        return f"{y:04d}-{m:02d}-{d:02d}"
    if form == 1:
        return f"{y:04d}/{m:02d}/{d:02d}"
    if form == 2:
        return f"{y:04d}-{m:02d}-{d:02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00"
    return f"{y:04d}-{m:02d}-{d:02d} {rng.randrange(24):02d}:{rng.randrange(60):02d}"

def quote(s):
    if any(c in s for c in ",\"\n"):
        return '"' + s.replace('"', '""') + '"'
    return s

rows = ["customer_id,signup_date,plan,region,monthly_spend,support_calls,autopay,note,churned"]
for i in range(400):
    plan, p_eff = rng.choice(plans)
    region, r_eff = rng.choice(regions)
    spend = round(rng.lognormvariate(3.4, 0.4), 2)
    calls = min(12, int(rng.expovariate(0.6)))
    autopay = rng.random() < 0.55
    z = p_eff + r_eff + 0.35 * calls - (1.1 if autopay else 0) - 0.015 * (spend - 30) - 0.4
    churn = rng.random() < 1 / (1 + math.exp(-2 * z))
    spend_text = "" if rng.random() < 0.03 else f"{spend}"
    plan_text = "" if rng.random() < 0.02 else plan
    rows.append(",".join([f"C{10000 + i}", date_text(i), plan_text, quote(region), spend_text,
                          str(calls), "yes" if autopay else "no", quote(rng.choice(notes)),
                          "yes" if churn else "no"]))
with open(f"{out_dir}/customers.csv", "w", encoding="utf-8-sig", newline="") as f:
    f.write("\r\n".join(rows) + "\r\n")

cities = [("Lyon", 14.0), ("Paris", 27.0), ("Lille", 12.5), ("Nantes", 13.0), ("Marseille", 13.5),
          ("Bordeaux", 15.0)]
heating = [("gas", 0.0), ("electric", -0.6), ("district", 0.4), ("heat pump", 0.8)]
rows = ["listing,city,heating,listed_on,balcony,area_m2,rooms,rent"]
for i in range(300):
    city, per_m2 = rng.choice(cities)
    heat, h_eff = rng.choice(heating)
    area = round(rng.uniform(18, 120), 1)
    rooms = max(1, min(6, int(area / 22 + rng.random())))
    balcony = rng.random() < 0.4
    rent = per_m2 * area + 35 * rooms + (60 if balcony else 0) + 25 * h_eff * rooms + rng.gauss(0, 40)
    y, m, d = 2022 + rng.randrange(3), 1 + rng.randrange(12), 1 + rng.randrange(28)
    heat_text = "NA" if rng.random() < 0.03 else heat
    rows.append(",".join([f"L{i:04d}", city, heat_text, f"{y}-{m:02d}-{d:02d}",
                          "true" if balcony else "false", f"{area}", str(rooms), f"{rent:.0f}"]))
with open(f"{out_dir}/rentals.csv", "w", encoding="utf-8", newline="") as f:
    f.write("\n".join(rows) + "\n")

rows = ["region,autopay,customer_id,campaign,support_calls,plan,monthly_spend,signup_date"]
for i in range(20):
    rows.append(",".join([quote(rng.choice(regions)[0]), rng.choice(["yes", "no"]), f"C{20000 + i}",
                          rng.choice(["spring", "referral", ""]), str(min(12, int(rng.expovariate(0.6)))),
                          rng.choice(plans)[0], f"{round(rng.lognormvariate(3.4, 0.4), 2)}",
                          date_text(i)]))
with open(f"{out_dir}/new_customers.csv", "w", encoding="utf-8", newline="") as f:
    f.write("\n".join(rows) + "\n")
