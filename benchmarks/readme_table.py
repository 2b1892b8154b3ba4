"""Rewrite the benchmark table in README.md from benchmarks/results.json (between the bench markers).

python benchmarks/readme_table.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
LABELS = {
    "agentlab_default": "(1) agentlab, default client (aiohttp)",
    "agentlab_same_client": "(2) agentlab, plain `AsyncOpenAI()`",
    "raw_httpx": "(3) raw loop, httpx: the baseline",
    "raw_aiohttp": "(4) raw loop, aiohttp",
    "agents_sdk": "(5) OpenAI Agents SDK",
    "agentlab_serial": "(6) agentlab `run_serial`",
}


def table(report: dict) -> str:  # type: ignore[type-arg]
    m = report["machine"]
    # `agentlab bench` writes {"machine", "sections": {name: result}}; older files held the runners' result alone
    sections = report.get("sections", {"runners": report})
    runners = sections["runners"]
    lines = [
        f"Measured on {m['date']}: {m['cores']} cores, Python {m['python']}, openai {m['openai']}, "
        f"aiohttp {m['aiohttp']}; server in its own process, 2 model turns of {runners['turn_seconds']} s per "
        "conversation. Made by `agentlab bench --out benchmarks` then `python benchmarks/readme_table.py`. "
        "RSS is the growth of the process's peak memory over the warm-up's, divided by N; heap is Python's "
        "own memory at the peak of a second batch of min(N, 100), by `tracemalloc`, divided by its size (see "
        "below the table)."
        + (
            f" Host speed: `sum(range(10**6))` took {m['calibration_ms']:.1f} ms (lower is faster)."
            if "calibration_ms" in m
            else ""
        ),
        "",
        "| N | contender | wall (s) | longest (s) | efficiency | client CPU per model call (ms) "
        "| RSS per conversation (KB) | heap per conversation (KB) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runners["results"]:
        cells = [
            str(r["n"]),
            LABELS[r["contender"]],
            f"{r['wall']:.2f}",
            f"{r['longest']:.2f}",
            f"{r['efficiency']:.0%}",
            f"{r['cpu_ms_per_call']:.2f}",
            f"{r['rss_kb_per_conversation']:.1f}",
            f"{r['heap_kb_per_conversation']:.1f}" if "heap_kb_per_conversation" in r else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Offline server alone: {runners['server_requests_per_second']:,.0f} requests/s."
        + "".join(f" {line}" for line in sections.get("import", {}).get("lines", [])),
        "",
        "| target | measured | target | result |",
        "|---|---:|---:|---|",
    ]
    for t in [t for section in sections.values() for t in section["targets"]]:
        lines.append(f"| {t['figure']} | {t['value']:.2f} | {t['target']} | {'PASS' if t['pass'] else 'MISS'} |")
    return "\n".join(lines)


def main() -> int:
    report = json.loads((HERE / "results.json").read_text())
    text = README.read_text()
    if START not in text or END not in text:
        print(f"README.md has no {START} … {END} block", file=sys.stderr)
        return 1
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    README.write_text(pattern.sub(lambda _: f"{START}\n{table(report)}\n{END}", text))
    print("README.md benchmark table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
