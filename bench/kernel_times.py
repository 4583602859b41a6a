"""Sums Nsight Compute's per-launch durations by kernel name: which kernels a run spends its GPU time in.
  ncu --clock-control none --metrics gpu__time_duration.sum[,dram__bytes_read.sum,dram__bytes_write.sum] \\
      --csv <program> > launches.csv
  python3 bench/kernel_times.py launches.csv [top]
  python3 bench/kernel_times.py launches.csv --parts RUNS
The CSV may be gzipped. With the DRAM byte counts it also prints each kernel's traffic and its rate: whether
a memory-bound kernel runs near the card's bandwidth (about 4.8 TB/s on an H200). With --parts it sums the
kernels by the part of a generation they serve (products, attention, norms, ..., decoder), divided by RUNS,
the generations the profiled program ran: where one generation's GPU time goes, each kernel running alone."""
import argparse
import csv
import gzip
import sys
from collections import defaultdict

TIME_UNITS = {"ns": 1e-6, "nsecond": 1e-6, "us": 1e-3, "usecond": 1e-3, "ms": 1.0, "msecond": 1.0}
BYTE_UNITS = {"byte": 1.0, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9, "Tbyte": 1e12}
# A kernel's part by its name, first match first. The transformer's products (and the conditioning's, a small
# share) all carry a bias epilogue; cuBLASLt's products without one are the decoder's (its 1x1 convolutions and
# its attention) and the phi convolution's (under 0.3 ms a d30 generation, counted with the decoder).
PARTS = (("products", ("bias_T", "splitKreduce")), ("attention", ("attention",)),
         ("norms", ("layer_norm", "gated_residual")), ("qk_norm_split", ("qk_norm",)),
         ("sampling", ("sample_kernel", "cfg_blend")),
         ("latents", ("accumulate_kernel", "bicubic_kernel", "area_kernel", "im2col8_kernel<float")),
         ("decoder", ("nvjet", "conv", "position_major", "group_norm", "im2col", "bias_planes", "to_unit",
                      "softmax_rows", "nearest2x")))


def part_of(kernel):
    for part, keys in PARTS:
        if any(k in kernel for k in keys):
            return part
    return "other"


parser = argparse.ArgumentParser(description="Nsight Compute's per-launch durations summed by kernel or by part.")
parser.add_argument("csv", help="ncu --csv output, optionally gzipped")
parser.add_argument("top", nargs="?", type=int, default=25, help="kernels to list (default 25)")
parser.add_argument("--parts", type=int, metavar="RUNS",
                    help="sum by part instead, divided by RUNS, the generations the program ran")
args = parser.parse_args()
if args.parts is not None and args.parts < 1:
    parser.error("--parts takes the number of generations, at least 1")

path = args.csv
with (gzip.open(path, "rt", errors="replace") if path.endswith(".gz") else open(path, errors="replace")) as f:
    rows = [line for line in f if line.startswith('"')]
total, count, traffic = defaultdict(float), defaultdict(int), defaultdict(float)
for r in csv.DictReader(rows):
    metric, name = r.get("Metric Name"), r["Kernel Name"][:90]
    value = float(r["Metric Value"].replace(",", ""))
    if metric == "gpu__time_duration.sum":
        total[name] += value * TIME_UNITS[r["Metric Unit"]]
        count[name] += 1
    elif metric in ("dram__bytes_read.sum", "dram__bytes_write.sum"):
        traffic[name] += value * BYTE_UNITS[r["Metric Unit"]]
grand = sum(total.values())
bytes_columns = f" {'DRAM GB':>8} {'TB/s':>5}" if traffic else ""

if args.parts is not None:
    runs = args.parts
    parts, part_bytes = defaultdict(float), defaultdict(float)
    for name, ms in total.items():
        part = part_of(name)
        parts[part] += ms / runs
        part_bytes[part] += traffic[name] / runs
    print(f"{'ms/run':>9} {'share':>6}{bytes_columns}  part   (all kernels: {grand / runs:.1f} ms per run)")
    for part, ms in sorted(parts.items(), key=lambda kv: -kv[1]):
        extra = f" {part_bytes[part] / 1e9:8.2f} {part_bytes[part] / 1e9 / ms:5.2f}" if traffic else ""
        print(f"{ms:9.1f} {100 * ms / (grand / runs):5.1f}%{extra}  {part}")
    sys.exit(0)

print(f"{'ms':>9} {'share':>6} {'launches':>8}{bytes_columns}  kernel   (all kernels: {grand:.1f} ms)")
for name, ms in sorted(total.items(), key=lambda kv: -kv[1])[:args.top]:
    extra = f" {traffic[name] / 1e9:8.2f} {traffic[name] / 1e9 / ms:5.2f}" if traffic else ""
    print(f"{ms:9.2f} {100 * ms / grand:5.1f}% {count[name]:8d}{extra}  {name}")
