"""The demo's report folder: ``report.md``, ``report.html`` and the batch pictures."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

__all__ = ["write_report"]


def _pictures(out: Path, kept_pt: list, kept_ms: list) -> list[tuple[int, Path, Path, Path, Path, int]]:
    """PNG per shown batch: each side's mosaic, the difference map, and all three side by side."""
    import cv2

    from porting.cli._yolo_plots import diff_heatmap, plot_batch, side_by_side

    made = []
    for k, ((img_pt, lab_pt), (img_ms, lab_ms)) in enumerate(zip(kept_pt, kept_ms)):
        pt = plot_batch(img_pt, lab_pt, title=f"yolov5_pt batch {k}")
        ms = plot_batch(img_ms, lab_ms, title=f"yolov5_ms batch {k}")
        if img_pt.shape == img_ms.shape:
            diff, differing = diff_heatmap(img_ms, img_pt)
        else:  # no per-pixel map between different shapes: say so in the picture itself
            diff = plot_batch(img_pt[:1] * 0, lab_pt[:0], title=f"shapes differ: {img_ms.shape} vs {img_pt.shape}")
            differing = -1
        paths = [out / f"batch{k}_{name}.png" for name in ("yolov5_pt", "yolov5_ms", "diff", "side_by_side")]
        for path, picture in zip(paths, (pt, ms, diff, side_by_side(pt, ms, diff))):
            if not cv2.imwrite(str(path), picture):
                raise OSError(f"could not write {path}")
        made.append((k, *paths, differing))
    return made


def _rows(args: Any, described: str, hyp: dict, comparisons: list, speeds: tuple, unreadable: list,
          upstream_note: str | None, ok: bool) -> tuple[list, list]:  # fmt: skip
    from torch2ms_base._environment import environment_report

    pt_speed, ms_speed = speeds
    summary = []
    for c in comparisons:
        r = c.report
        worst = "none (all equal)" if r.worst_abs_location is None else f"{r.worst_abs_diff} at {r.worst_abs_location}"
        summary.append((c.title, r.verdict, r.batches, r.tensors, r.bytes, len(r.mismatches), worst))
    env = environment_report()
    settings = [
        ("result", "bit-identical" if ok else "MISMATCH"),
        ("data", described + (f"; {len(unreadable)} corrupt image(s) skipped (unreadable or bad label): "
                              + ", ".join(Path(u).name for u in unreadable) if unreadable else "")),
        ("seed", args.seed), ("epochs", args.epochs), ("batch size", args.batch), ("image size", args.imgsz),
        ("workers", args.workers), ("hyp", f"{args.hyp}: " + ", ".join(f"{k}={v}" for k, v in hyp.items())),
        ("images/s yolov5_pt (torch DataLoader)", f"{pt_speed:.1f}"),
        ("images/s yolov5_ms (MindSpore)", f"{ms_speed:.1f}"),
        ("ratio yolov5_ms / yolov5_pt", f"{ms_speed / pt_speed:.2f}"),
        ("versions", ", ".join(f"{k} {v}" for k, v in vars(env).items() if v)),
    ]  # fmt: skip
    if upstream_note:
        settings.append(("upstream", upstream_note))
    return summary, settings


_HEAD = ("comparison", "verdict", "batches", "tensors", "bytes", "mismatches", "worst absolute difference")


def write_report(out: Path, *, args: Any, described: str, hyp: dict, comparisons: list, kept_pt: list,
                 kept_ms: list, speeds: tuple, unreadable: list, upstream_note: str | None, ok: bool) -> list[Path]:  # fmt: skip
    """Write ``report.md``, ``report.html`` and the pictures into ``out``; return their paths (md, html, pngs)."""
    summary, settings = _rows(args, described, hyp, comparisons, speeds, unreadable, upstream_note, ok)
    pictures = _pictures(out, kept_pt, kept_ms)

    def cell(v: Any) -> str:
        return str(v).replace("|", "/")

    md = ["# YOLOv5 v7.0 data pipeline: yolov5_ms (MindSpore) vs yolov5_pt (PyTorch)", "",
          f"**Result: {'bit-identical' if ok else 'MISMATCH'}** — every batch of every epoch compared element by "
          "element, exactly (rtol = atol = 0, dtypes and shapes checked).", "",
          "| " + " | ".join(_HEAD) + " |", "|" + "---|" * len(_HEAD)]  # fmt: skip
    md += ["| " + " | ".join(cell(v) for v in row) + " |" for row in summary]
    md += ["", "## Settings", "", "| | |", "|---|---|"] + [f"| {k} | {cell(v)} |" for k, v in settings]
    for c in comparisons:
        if not c.report.ok:
            md += ["", f"## Mismatches: {c.title}", "", "```", c.report.failure_text(max_shown=5), "```"]
    md += ["", "## First batches", ""]
    for k, pt, ms, diff, both, differing in pictures:
        note = ("no pixel differs" if differing == 0 else "shapes differ" if differing < 0
                else f"{differing} pixel(s) differ")  # fmt: skip
        md += [f"### Batch {k}: {note}", "", f"![batch {k}: yolov5_pt | yolov5_ms | difference]({both.name})", ""]
    md_path = out / "report.md"
    md_path.write_text("\n".join(md) + "\n")

    e = html.escape
    table = "<tr>" + "".join(f"<th>{e(h)}</th>" for h in _HEAD) + "</tr>" + "".join(
        "<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>" for row in summary)
    config = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in settings)
    figures = "".join(
        f"<h3>Batch {k}</h3><p>{'no pixel differs' if d == 0 else 'shapes differ' if d < 0 else f'{d} pixel(s) differ'}"
        f"</p><img src=\"{e(both.name)}\" alt=\"batch {k}: yolov5_pt, yolov5_ms, difference\" style=\"max-width:100%\">"
        for k, _, _, _, both, d in pictures
    )
    mismatches = "".join(f"<h2>Mismatches: {e(c.title)}</h2><pre>{e(c.report.failure_text(max_shown=5))}</pre>"
                         for c in comparisons if not c.report.ok)  # fmt: skip
    page = (
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>torch2ms YOLOv5 report</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style></head><body>"
        "<h1>YOLOv5 v7.0 data pipeline: yolov5_ms (MindSpore) vs yolov5_pt (PyTorch)</h1>"
        f"<p><b>Result: {'bit-identical' if ok else 'MISMATCH'}</b> &mdash; every batch of every epoch compared "
        "element by element, exactly (rtol = atol = 0, dtypes and shapes checked).</p>"
        f"<table>{table}</table><h2>Settings</h2><table>{config}</table>{mismatches}<h2>First batches</h2>{figures}"
        "</body></html>\n"
    )
    html_path = out / "report.html"
    html_path.write_text(page)
    return [md_path, html_path] + [p for row in pictures for p in row[1:5]]
