#!/usr/bin/env python3
"""mixmaker's L2 book against its Python peers, in one run, on the same bytes.

Workloads
  recording  Binance USD-M BTCUSDT depth@0ms, 2024-08-08 (hftbacktest sample): the REST snapshot,
             then the 6,547 diffs that apply after it (443,262 level updates, ~5k levels/side).
  synthetic  a seeded 1,000,000-level-update diff stream in the same wire format (~30% deletes,
             prices clustered near a random-walking mid, never crossed after a message).

Contenders: mixmaker (BookSync raw bytes, update(str), update_raw, update_many per message and
in one batch), ccxt's OrderBookSide, bmoscon order-book (C), NautilusTrader OrderBook (L2_MBP),
sortedcontainers.SortedDict (pure-Python floor) and orjson.loads alone.

Each number is the best of --repeat rounds (time.perf_counter_ns, GC disabled inside the timed
region, fresh book with the snapshot loaded before every run, setup never timed). A round runs
every contender once, so runs of different contenders are interleaved. The table header says
how much CPU other processes took meanwhile (the box has 2 cores; a busy box inflates numbers).

    python benches/peers.py            # full run (about 2.5 minutes on 2 idle cores)
    python benches/peers.py --quick    # smaller run
    python benches/peers.py --json     # machine-readable output instead of the table
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata as md
import json
import math
import os
import platform
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peers_workloads as W  # noqa: E402
from cpu_meter import CpuMeter  # noqa: E402

TARGETS = {"a": 1.0, "b": 5.0, "c": 1.0, "d": 10.0}


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- availability
def load_contenders(only: set[str] | None):
    """-> (contenders, skipped {lib: reason}, versions {name: version})."""
    from peers_contenders import (bmoscon_contenders, ccxt_contenders, mixmaker_contenders,
                                  nautilus_contenders, orjson_contenders, sortedcontainers_contenders)

    contenders, skipped, versions = [], {}, {}

    def dist_version(dist):
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None

    versions["python"] = platform.python_version()
    versions["orjson"] = dist_version("orjson")
    versions["numpy"] = dist_version("numpy")
    contenders += orjson_contenders()

    try:
        import mixmaker.book as mb
        contenders += mixmaker_contenders(mb)
        versions["mixmaker"] = dist_version("mixmaker") or getattr(__import__("mixmaker"), "__version__", "?")
        versions["mixmaker_path"] = os.path.dirname(mb.__file__)
    except Exception as e:  # noqa: BLE001
        skipped["mixmaker"] = f"import mixmaker.book failed: {type(e).__name__}: {e}"

    for lib, dist, factory in (
        ("ccxt", "ccxt", ccxt_contenders),
        ("bmoscon", "order-book", bmoscon_contenders),
        ("nautilus", "nautilus_trader", nautilus_contenders),
        ("sortedcontainers", "sortedcontainers", sortedcontainers_contenders),
    ):
        try:
            contenders += factory()
            versions[dist] = dist_version(dist)
        except Exception as e:  # noqa: BLE001
            skipped[lib] = f"{type(e).__name__}: {e}"
    if only:
        contenders = [c for c in contenders if c.key in only or c.lib in only]
    return contenders, skipped, versions


# ------------------------------------------------------------------------------------ timing
def time_once(c, w, bbo: bool = False):
    state = c.setup(w)
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        c.run(state, w, bbo)
        t1 = time.perf_counter_ns()
    finally:
        gc.enable()
    return t1 - t0, state


def verify(c, state, w) -> str:
    if c.check is None:
        return "-"
    exp = w.expected_lines if c.units == "lines" else w.expected
    got = c.check(state)
    pd, sd = 10 ** W.PRICE_DP, 10 ** W.SIZE_DP
    have = (round(float(got[0]) * pd), round(float(got[1]) * sd), round(float(got[2]) * pd),
            round(float(got[3]) * sd), int(got[4]), int(got[5]))
    want = (exp["bid"][0], exp["bid"][1], exp["ask"][0], exp["ask"][1], exp["bid_levels"], exp["ask_levels"])
    errs = []
    if have != want:
        errs.append(f"got {have} want {want}")
    if c.extra_check is not None:
        e = c.extra_check(state, w)
        if e:
            errs.append(e)
    return "ok" if not errs else "MISMATCH: " + "; ".join(errs)


def run_workload(w, contenders, repeat: int, with_bbo: bool):
    """Best of `repeat` rounds; each round runs every contender once (interleaved, so a burst of
    background load does not land on all runs of one contender)."""
    cs = [c for c in contenders if not (c.recording_only and w.all_lines is None)]
    rows = {c.key: {"key": c.key, "label": c.label, "lib": c.lib, "mode": c.mode, "units": c.units} for c in cs}
    meter = CpuMeter()
    for rnd in range(repeat):
        for c in cs:
            row = rows[c.key]
            if "error" in row:
                continue
            t_start = time.time()
            try:
                ns, state = time_once(c, w)
                row["ns"] = min(ns, row.get("ns", ns))
                if rnd == 0:
                    row["check"] = verify(c, state, w)
                del state
                if with_bbo and c.supports_bbo:
                    ns_b, state = time_once(c, w, bbo=True)
                    row["ns_bbo"] = min(ns_b, row.get("ns_bbo", ns_b))
                    if rnd == 0:
                        chk = verify(c, state, w)
                        if chk not in ("ok", "-"):
                            row["check"] += f" (bbo run: {chk})"
                    del state
            except Exception as e:  # noqa: BLE001
                row["error"] = f"{type(e).__name__}: {e}"
                row.pop("ns", None)
                log(traceback.format_exc())
            log(f"  [{w.name} {rnd + 1}/{repeat}] {c.key:16s} {row.get('ns', 0) / 1e6:10.1f} ms"
                f"{'  bbo ' + format(row['ns_bbo'] / 1e6, '.1f') + ' ms' if 'ns_bbo' in row else ''}"
                f"  {row.get('check', row.get('error'))}  ({time.time() - t_start:.1f}s wall)")
    for c in cs:
        if hasattr(c, "cleanup"):
            c.cleanup()
        row = rows[c.key]
        n_msgs = len(w.all_lines) if c.units == "lines" else len(w.msgs)
        if "ns" in row:
            row["msgs"] = n_msgs
            row["levels"] = w.n_levels
            row["msgs_per_s"] = n_msgs / (row["ns"] / 1e9)
            row["ns_per_level"] = row["ns"] / w.n_levels
    other = meter.other_cores()
    w.drop_caches()
    gc.collect()
    return list(rows.values()), other


# ------------------------------------------------------------------------------------ targets
def by_key(rows):
    return {r["key"]: r for r in rows if "ns" in r}


def compute_targets(results: dict) -> dict:
    out = {}
    rec = by_key(results.get("recording", []))
    syn = by_key(results.get("synthetic", []))

    def verdict(ok):
        return "PASS" if ok else "FAIL"

    # (a) mixmaker raw bytes vs orjson.loads alone, same messages (recording)
    if "mm_raw" in rec and "orjson" in rec:
        r = rec["mm_raw"]["ns"] / rec["orjson"]["ns"]
        extra = {}
        if "mm_raw" in syn and "orjson" in syn:
            extra["synthetic"] = syn["mm_raw"]["ns"] / syn["orjson"]["ns"]
        out["a"] = {"what": "mixmaker raw-bytes time / orjson.loads-alone time (recording)", "value": r,
                    "target": "< 1.0", "verdict": verdict(r < TARGETS["a"]), **extra}
    else:
        out["a"] = {"verdict": "n/a", "why": "mixmaker or orjson row missing"}

    # (b) speedup over the fastest peer parse+apply path (recording)
    peers_b = [r for r in rec.values() if r["mode"] == "bytes" and r["lib"] not in ("mixmaker", "orjson")
               and r["units"] == "diffs"]
    if "mm_raw" in rec and peers_b:
        fastest = min(peers_b, key=lambda r: r["ns"])
        s = fastest["ns"] / rec["mm_raw"]["ns"]
        extra = {}
        peers_s = [r for r in syn.values() if r["mode"] == "bytes" and r["lib"] not in ("mixmaker", "orjson")]
        if "mm_raw" in syn and peers_s:
            fs = min(peers_s, key=lambda r: r["ns"])
            extra["synthetic"] = fs["ns"] / syn["mm_raw"]["ns"]
            extra["synthetic_fastest_peer"] = fs["label"]
        out["b"] = {"what": "speedup of mixmaker raw bytes over the fastest peer parse+apply (recording)",
                    "fastest_peer": fastest["label"], "value": s, "target": ">= 5x",
                    "verdict": verdict(s >= TARGETS["b"]), **extra}
    else:
        out["b"] = {"verdict": "n/a", "why": "mixmaker or all peers missing"}

    # (c) update_raw ns/call vs bmoscon item assignment ns/op (apply-only, both workloads)
    vals = {}
    for name, rows in (("recording", rec), ("synthetic", syn)):
        if "mm_update_raw" in rows and "bmoscon" in rows:
            vals[name] = (rows["mm_update_raw"]["ns_per_level"], rows["bmoscon"]["ns_per_level"])
    if vals:
        ok = all(a <= b * TARGETS["c"] for a, b in vals.values())
        out["c"] = {"what": "update_raw ns/call vs bmoscon side[p]=s ns/op (apply-only, per level)",
                    "values": {k: {"update_raw_ns": a, "bmoscon_ns": b, "ratio": a / b} for k, (a, b) in vals.items()},
                    "target": "update_raw <= bmoscon on every workload", "verdict": verdict(ok)}
    else:
        out["c"] = {"verdict": "n/a", "why": "mixmaker or bmoscon row missing"}

    # (d) update_many ns/level vs update_raw ns/level (>= 10x faster), one large batch; per message shown too
    vals = {}
    for name, rows in (("recording", rec), ("synthetic", syn)):
        if "mm_many_batch" in rows and "mm_update_raw" in rows:
            v = {"update_raw_ns": rows["mm_update_raw"]["ns_per_level"],
                 "batch_ns": rows["mm_many_batch"]["ns_per_level"]}
            v["speedup_batch"] = v["update_raw_ns"] / v["batch_ns"]
            if "mm_many_msg" in rows:
                v["per_msg_ns"] = rows["mm_many_msg"]["ns_per_level"]
                v["speedup_per_msg"] = v["update_raw_ns"] / v["per_msg_ns"]
            vals[name] = v
    if vals:
        ok = all(v["speedup_batch"] >= TARGETS["d"] for v in vals.values())
        out["d"] = {"what": "update_many (one large batch) ns/level vs update_raw ns/level", "values": vals,
                    "target": ">= 10x faster on every workload (verdict on the one-batch path)",
                    "verdict": verdict(ok)}
    else:
        out["d"] = {"verdict": "n/a", "why": "mixmaker rows missing"}

    # correctness: every contender's final BBO and level counts equal the reference replay
    bad = [(wn, r["key"], r.get("check", r.get("error"))) for wn, rows in results.items() for r in rows
           if r.get("check", "ok") not in ("ok", "-") or "error" in r]
    out["correctness"] = {"what": "final BBO + level counts equal the reference replay, every contender",
                          "verdict": "PASS" if not bad else "FAIL", "failures": bad}
    return out


# ------------------------------------------------------------------------------------ printing
def fmt_int(x):
    return f"{x:,.0f}"


def print_table(meta, results, targets, skipped, versions):
    p = print
    p(f"mixmaker book vs peers  |  {meta['cpu']}, {meta['ncpu']} cores, CPython {versions.get('python')}  |  "
      f"best of {meta['repeat']}{'  |  QUICK' if meta['quick'] else ''}  |  load avg (1 min) "
      f"{meta['loadavg_start'][0]:.2f} at start, {meta['loadavg_end'][0]:.2f} at end")
    for wn, rows in results.items():
        wi = meta["workloads"][wn]
        p()
        p(f"== {wn}: {wi['desc']}")
        oc = wi.get("other_cpu_cores")
        if oc is not None:
            p(f"   other processes used {oc:.2f} of {meta['ncpu']} cores on average during this workload"
              + ("  ** WARNING: machine busy, timings inflated and noisy **" if oc > 0.15 else ""))
        p(f"   {fmt_int(wi['msgs'])} diff messages, {fmt_int(wi['levels'])} level updates "
          f"({wi['delete_pct']:.1f}% deletes), {wi['mb']:.1f} MB of JSON; final book "
          f"{fmt_int(wi['bid_levels'])}/{fmt_int(wi['ask_levels'])} levels")
        base = next((r for r in rows if r["key"] == "mm_raw" and "ns" in r), None)
        hdr = (f"   {'contender':44s} {'path':11s} {'ms':>9s} {'msgs/s':>11s} {'ns/level':>9s} "
               f"{'x mm-raw':>9s} {'+BBO/msg ms':>12s}  check")
        p(hdr)
        p("   " + "-" * (len(hdr) - 3))
        for r in rows:
            path = {"parse": "parse only", "bytes": "bytes->book", "apply": "apply-only"}[r["mode"]]
            if "ns" not in r:
                p(f"   {r['label']:44s} {path:11s} ERROR {r.get('error')}")
                continue
            unit_note = " *" if r["units"] == "lines" else ""
            ratio = f"{r['ns'] / base['ns']:8.2f}x" if base and r["units"] == "diffs" else f"{'-':>9s}"
            nsl = f"{r['ns_per_level']:9.1f}" if r["units"] == "diffs" else f"{'-':>9s}"
            bbo = f"{r['ns_bbo'] / 1e6:12.1f}" if "ns_bbo" in r else f"{'-':>12s}"
            p(f"   {r['label'] + unit_note:44s} {path:11s} {r['ns'] / 1e6:9.1f} {fmt_int(r['msgs_per_s']):>11s} "
              f"{nsl} {ratio} {bbo}  {r['check']}")
        if any(r["units"] == "lines" for r in rows):
            p(f"   * over all {fmt_int(wi.get('lines', 0))} lines of the file (depth + bookTicker + trade + snapshot);"
              " msgs/s counts every line")
        p("   x mm-raw = time / mixmaker raw-bytes time (higher = slower than mixmaker)."
          " +BBO/msg = same bytes->book run, also reading best bid+ask after every message.")
    for lib, reason in skipped.items():
        p(f"skipped: {lib}: {reason}")

    p()
    p("== targets")
    t = targets
    if t["a"].get("verdict") != "n/a":
        s = f" (synthetic: {t['a']['synthetic']:.3f})" if "synthetic" in t["a"] else ""
        p(f"(a) mixmaker raw bytes / orjson.loads alone, same messages: {t['a']['value']:.3f}{s}"
          f"   target < 1.0 (verdict on the recording)   {t['a']['verdict']}")
    else:
        p(f"(a) n/a: {t['a']['why']}")
    if t["b"].get("verdict") != "n/a":
        s = (f" (synthetic: {t['b']['synthetic']:.1f}x vs {t['b']['synthetic_fastest_peer']})"
             if "synthetic" in t["b"] else "")
        p(f"(b) mixmaker raw bytes vs fastest peer parse+apply [{t['b']['fastest_peer']}]: "
          f"{t['b']['value']:.1f}x faster{s}   target >= 5x (verdict on the recording)   {t['b']['verdict']}"
          + (f"  [peers skipped: {', '.join(k for k in skipped if k != 'mixmaker')}]"
             if any(k != 'mixmaker' for k in skipped) else ""))
    else:
        p(f"(b) n/a: {t['b']['why']}")
    if t["c"].get("verdict") != "n/a":
        parts = [f"{k}: {v['update_raw_ns']:.1f} vs {v['bmoscon_ns']:.1f} ns ({v['ratio']:.2f}x)"
                 for k, v in t["c"]["values"].items()]
        p(f"(c) update_raw ns/call vs bmoscon side[p]=s ns/op (apply-only): {'; '.join(parts)}"
          f"   target update_raw <= bmoscon on both   {t['c']['verdict']}")
    else:
        p(f"(c) n/a: {t['c']['why']}")
    if t["d"].get("verdict") != "n/a":
        parts = []
        for k, v in t["d"]["values"].items():
            s = (f"; per message {v['per_msg_ns']:.1f} ns = {v['speedup_per_msg']:.1f}x" if "per_msg_ns" in v else "")
            parts.append(f"{k}: one batch {v['batch_ns']:.1f} vs update_raw {v['update_raw_ns']:.1f} ns/level"
                         f" = {v['speedup_batch']:.1f}x{s}")
        p(f"(d) update_many vs update_raw: {' | '.join(parts)}   target >= 10x (one batch)   {t['d']['verdict']}")
    else:
        p(f"(d) n/a: {t['d']['why']}")
    c = t["correctness"]
    p(f"correctness: final BBO and level counts equal the reference replay for every contender: {c['verdict']}"
      + ("" if not c["failures"] else f" {c['failures']}"))
    p()
    p("versions: " + ", ".join(f"{k}=={v}" for k, v in versions.items()))


# ------------------------------------------------------------------------------------ main
def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=None, help="best of N runs (default 3; 1 with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="smaller run: first 2,000 recording diffs, 100k synthetic updates, best of 1")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--synthetic-updates", type=int, default=None, help="default 1,000,000 (100,000 with --quick)")
    ap.add_argument("--seed", type=int, default=20240808)
    ap.add_argument("--only", default=None, help="comma list of contender keys or libs (debugging)")
    ap.add_argument("--no-bbo", action="store_true", help="skip the +BBO/msg column")
    args = ap.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    n_syn = args.synthetic_updates or (100_000 if args.quick else 1_000_000)
    only = set(args.only.split(",")) if args.only else None
    t_all = time.time()

    load_start = os.getloadavg()
    contenders, skipped, versions = load_contenders(only)
    log(f"contenders: {len(contenders)}; skipped: {skipped or 'none'}")

    results, meta_w = {}, {}
    log("loading recording ...")
    rec = W.load_recording(max_msgs=2000 if args.quick else None)
    if not args.quick:
        exp, rd = rec.expected, W.USDM_README
        assert rec.n_levels == rd["level_updates"] and len(rec.msgs) == rd["applied"], "recording != README"
        assert (exp["bid_levels"], exp["ask_levels"]) == (rd["bid_levels"], rd["ask_levels"]), exp
        assert exp["bid"] == (int(rd["bid"][0] * 100), int(rd["bid"][1] * 1000)), exp
        assert exp["ask"] == (int(rd["ask"][0] * 100), int(rd["ask"][1] * 1000)), exp
    log("generating synthetic ...")
    syn = W.make_synthetic(n_syn, args.seed)
    for w, desc in (
        (rec, "Binance USD-M BTCUSDT depth@0ms 2024-08-08 (hftbacktest), REST snapshot then every diff that applies"
              + (" (first 2,000 only)" if args.quick else "")),
        (syn, f"synthetic seeded stream (seed {args.seed}), same wire format, snapshot 1,000 levels/side"),
    ):
        meta_w[w.name] = {"desc": desc, "msgs": len(w.msgs), "levels": w.n_levels,
                          "delete_pct": 100 * w.n_deletes / w.n_levels, "mb": sum(map(len, w.msgs)) / 1e6,
                          "bid_levels": w.expected["bid_levels"], "ask_levels": w.expected["ask_levels"],
                          "expected_bbo": w.expected}
        if w.all_lines is not None:
            meta_w[w.name]["lines"] = len(w.all_lines)
        log(f"running {w.name} ...")
        results[w.name], meta_w[w.name]["other_cpu_cores"] = run_workload(
            w, contenders, repeat, with_bbo=(w is rec and not args.no_bbo))

    targets = compute_targets(results)
    meta = {"cpu": cpu_name(), "ncpu": os.cpu_count(), "repeat": repeat, "quick": args.quick,
            "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
            "workloads": meta_w, "wall_s": time.time() - t_all, "argv": sys.argv[1:]}
    if args.json:
        json.dump({"meta": meta, "versions": versions, "skipped": skipped, "results": results, "targets": targets},
                  sys.stdout, indent=2, default=str)
        print()
    else:
        print_table(meta, results, targets, skipped, versions)
        print(f"wall time {meta['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
