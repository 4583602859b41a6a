"""Sums Nsight Compute's per-launch durations by kernel name: which kernels a run spends its GPU time in.
  ncu --clock-control none --metrics gpu__time_duration.sum --csv <program> > launches.csv
  python3 bench/kernel_times.py launches.csv [top]"""
import csv
import sys
from collections import defaultdict

rows = [line for line in open(sys.argv[1], errors="replace") if line.startswith('"')]
total, count = defaultdict(float), defaultdict(int)
for r in csv.DictReader(rows):
    if r.get("Metric Name") != "gpu__time_duration.sum":
        continue
    scale = {"ns": 1e-6, "nsecond": 1e-6, "us": 1e-3, "usecond": 1e-3, "ms": 1.0, "msecond": 1.0}[r["Metric Unit"]]
    name = r["Kernel Name"][:90]
    total[name] += float(r["Metric Value"].replace(",", "")) * scale
    count[name] += 1
grand = sum(total.values())
top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
print(f"{'ms':>9} {'share':>6} {'launches':>8}  kernel   (all kernels: {grand:.1f} ms)")
for name, ms in sorted(total.items(), key=lambda kv: -kv[1])[:top]:
    print(f"{ms:9.2f} {100 * ms / grand:5.1f}% {count[name]:8d}  {name}")
