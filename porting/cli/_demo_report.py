"""The demo's report folder: ``report.md``, ``report.html`` and the batch pictures."""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path
from typing import Any

from torch2ms_base._report import Report, jsonable, markdown_table

__all__ = ["DemoReport", "write_report"]


def _pictures(out: Path, kept_pt: list, kept_ms: list) -> list[tuple[int, Path, Path, Path, Path, int]]:
    """PNG per shown batch: each side's mosaic, the difference map, and all three side by side."""
    import cv2

    from porting.cli._yolo_plots import diff_heatmap, plot_batch, side_by_side

    made: list[tuple[int, Path, Path, Path, Path, int]] = []
    # pictures of the batches both sides yielded; a side that yielded fewer is reported by compare_pipelines
    for k, ((img_pt, lab_pt), (img_ms, lab_ms)) in enumerate(zip(kept_pt, kept_ms, strict=False)):
        pt = plot_batch(img_pt, lab_pt, title=f"yolov5_pt batch {k}")
        ms = plot_batch(img_ms, lab_ms, title=f"yolov5_ms batch {k}")
        if img_pt.shape == img_ms.shape:
            diff, differing = diff_heatmap(img_ms, img_pt)
        else:  # no per-pixel map between different shapes: say so in the picture itself
            diff = plot_batch(img_pt[:1] * 0, lab_pt[:0], title=f"shapes differ: {img_ms.shape} vs {img_pt.shape}")
            differing = -1
        pt_png, ms_png, diff_png, side_png = (
            out / f"batch{k}_{name}.png" for name in ("yolov5_pt", "yolov5_ms", "diff", "side_by_side")
        )
        paths = (pt_png, ms_png, diff_png, side_png)
        for path, picture in zip(paths, (pt, ms, diff, side_by_side(pt, ms, diff)), strict=True):
            if not cv2.imwrite(str(path), picture):
                raise OSError(f"could not write {path}")
        made.append((k, pt_png, ms_png, diff_png, side_png, differing))
    return made


def _settings(args: Any, described: str, hyp: dict, speeds: tuple, unreadable: list,
              upstream_note: str | None) -> list[tuple[str, Any]]:  # fmt: skip
    from torch2ms_base import environment_report

    pt_speed, ms_speed = speeds
    env = environment_report()
    settings = [
        ("data", described + (f"; {len(unreadable)} corrupt image(s) skipped (unreadable or bad label): "
                              + ", ".join(Path(u).name for u in unreadable) if unreadable else "")),
        ("seed", args.seed), ("epochs", args.epochs), ("batch size", args.batch), ("image size", args.imgsz),
        ("workers", args.workers), ("hyp", f"{args.hyp}: " + ", ".join(f"{k}={v}" for k, v in hyp.items())),
        ("images/s yolov5_pt (alone, build and start-up included)", f"{pt_speed:.1f}"),
        ("images/s yolov5_ms (alone, build and start-up included)", f"{ms_speed:.1f}"),
        ("ratio yolov5_ms / yolov5_pt (same images; a short run is dominated by start-up)",
         f"{ms_speed / pt_speed:.2f}"),
        ("versions", ", ".join(f"{k} {v}" for k, v in vars(env).items() if v)),
    ]  # fmt: skip
    if upstream_note:
        settings.append(("upstream", upstream_note))
    return settings


_HEAD = ("comparison", "verdict", "batches", "tensors", "bytes", "mismatches", "worst absolute difference")
_TITLE = "YOLOv5 v7.0 data pipeline: yolov5_ms (MindSpore) vs yolov5_pt (PyTorch)"
_HOW = "every batch of every epoch compared element by element, exactly (rtol = atol = 0, dtypes and shapes checked)."


@dataclasses.dataclass
class DemoReport(Report):
    """The demo's outcome: each comparison's :class:`~porting.PipelineReport`, the settings, the pictures.

    ``ok`` only when every comparison is exact, non-empty and equal ("bit-identical").
    """

    comparisons: list  # _Comparison(title, report)
    settings: list  # (name, value) rows
    pictures: list = dataclasses.field(default_factory=list)  # (k, pt, ms, diff, side_by_side, differing)

    @property
    def ok(self) -> bool:
        """Every comparison bit-identical."""
        return bool(self.comparisons) and all(
            c.report.ok and c.report.verdict == "bit-identical" for c in self.comparisons
        )

    @property
    def verdict(self) -> str:
        """``bit-identical`` or ``MISMATCH``."""
        return "bit-identical" if self.ok else "MISMATCH"

    def rows(self) -> list[tuple]:
        """One row per comparison (see ``_HEAD``)."""
        out = []
        for c in self.comparisons:
            r = c.report
            worst = (
                "none (all equal)" if r.worst_abs_location is None else f"{r.worst_abs_diff} at {r.worst_abs_location}"
            )
            out.append((c.title, r.verdict, r.batches, r.tensors, r.bytes, len(r.mismatches), worst))
        return out

    def summary(self) -> str:
        """One line per comparison."""
        return "\n".join(f"{c.title}: {c.report.summary().splitlines()[0]}" for c in self.comparisons)

    def __str__(self) -> str:
        return f"{self.verdict}\n{self.summary()}"

    def to_dict(self) -> dict:
        """JSON-ready: verdict, each comparison's report, the settings."""
        return {
            "ok": self.ok,
            "verdict": self.verdict,
            "comparisons": {c.title: c.report.to_dict() for c in self.comparisons},
            "settings": jsonable(dict(self.settings)),
        }

    def to_markdown(self) -> str:
        """``report.md``: verdict, the comparisons table, settings, mismatches, the pictures."""
        md = [
            f"# {_TITLE}",
            "",
            f"**Result: {self.verdict}** — {_HOW}",
            "",
            markdown_table(_HEAD, self.rows()),
            "",
            "## Settings",
            "",
            markdown_table(("", ""), self.settings),
        ]
        for c in self.comparisons:
            if not c.report.ok:
                md += ["", f"## Mismatches: {c.title}", "", "```", c.report.failure_text(max_shown=5), "```"]
        md += ["", "## First batches", ""]
        for k, _, _, _, both, differing in self.pictures:
            md += [
                f"### Batch {k}: {_picture_note(differing)}",
                "",
                f"![batch {k}: yolov5_pt | yolov5_ms | difference]({both.name})",
                "",
            ]
        return "\n".join(md) + "\n"

    def to_html(self) -> str:
        """``report.html``: the same as :meth:`to_markdown`, as one page."""
        e = html.escape
        table = (
            "<tr>"
            + "".join(f"<th>{e(h)}</th>" for h in _HEAD)
            + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>" for row in self.rows())
        )
        config = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in self.settings)
        figures = "".join(
            f'<h3>Batch {k}</h3><p>{_picture_note(d)}</p><img src="{e(both.name)}" '
            f'alt="batch {k}: yolov5_pt, yolov5_ms, difference" style="max-width:100%">'
            for k, _, _, _, both, d in self.pictures
        )
        mismatches = "".join(f"<h2>Mismatches: {e(c.title)}</h2><pre>{e(c.report.failure_text(max_shown=5))}</pre>"
                             for c in self.comparisons if not c.report.ok)  # fmt: skip
        return (
            '<!doctype html><html><head><meta charset="utf-8"><title>torch2ms YOLOv5 report</title>'
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style></head><body>"
            f"<h1>{e(_TITLE)}</h1><p><b>Result: {self.verdict}</b> &mdash; {e(_HOW)}</p>"
            f"<table>{table}</table><h2>Settings</h2><table>{config}</table>{mismatches}<h2>First batches</h2>{figures}"
            "</body></html>\n"
        )


def _picture_note(differing: int) -> str:
    if differing == 0:
        return "no pixel differs"
    return "shapes differ" if differing < 0 else f"{differing} pixel(s) differ"


def write_report(
    out: Path,
    *,
    args: Any,
    described: str,
    hyp: dict,
    comparisons: list,
    kept_pt: list,
    kept_ms: list,
    speeds: tuple,
    unreadable: list,
    upstream_note: str | None,
) -> tuple[DemoReport, list[Path]]:
    """Write ``report.md``, ``report.html``, ``report.json`` and the pictures into ``out``.

    Returns:
        The :class:`DemoReport` and the paths written (md, html, json, then the pictures).
    """
    report = DemoReport(comparisons, _settings(args, described, hyp, speeds, unreadable, upstream_note))
    report.pictures = _pictures(out, kept_pt, kept_ms)
    md_path, html_path, json_path = out / "report.md", out / "report.html", out / "report.json"
    md_path.write_text(report.to_markdown())
    html_path.write_text(report.to_html())
    json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return report, [md_path, html_path, json_path] + [p for row in report.pictures for p in row[1:5]]
