"""The feature statistics report: JSON for machines, HTML for the MLflow UI, text for the terminal.

Kept apart from the computation (:mod:`ml.stats`) so it can be rebuilt from a saved
``stats.json`` (``StatsReport.from_dict``) without touching any data.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Stage = Literal["raw", "transformed"]

_CSS = """
body{font:13px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin-bottom:2em}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td.name,td.kind,td.top{text-align:left}
td.top{white-space:normal;max-width:28em}
tr.shifted td{background:#fde2e1}tr.shifted td.psi{font-weight:bold;color:#a40000}
"""
_STAT_HEADERS = ["missing %", "mean / top", "std", "min", "median", "max", "distinct"]


@dataclass(frozen=True)
class FeatureStats:
    """One feature at one stage: its train and test summaries and how far it moved (PSI)."""

    name: str
    stage: Stage
    kind: Literal["numeric", "categorical"]
    train: dict[str, Any]
    test: dict[str, Any]
    psi: float | None  # None when a window is empty
    shifted: bool


@dataclass
class StatsReport:
    """Per-feature statistics of the train and test windows, in the order they were given."""

    features: list[FeatureStats]
    psi_threshold: float = 0.25
    rows: dict[str, int] = field(default_factory=dict)  # {"train": n, "test": n}

    def shifted(self) -> list[str]:
        """Names of the features whose PSI reached the threshold (raw and transformed)."""
        return [f.name for f in self.features if f.shifted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "psi_threshold": self.psi_threshold,
            "rows": dict(self.rows),
            "shifted": self.shifted(),
            "features": [asdict(f) for f in self.features],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StatsReport:
        features = [FeatureStats(**f) for f in data["features"]]
        return cls(features, data["psi_threshold"], dict(data.get("rows", {})))

    def to_json(self, indent: int | None = 2) -> str:
        """Strict JSON: non-finite numbers were turned into null when the stats were made."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def save(self, directory: str | Path, stem: str = "stats") -> tuple[Path, Path]:
        """Write ``<stem>.json`` and ``<stem>.html`` into ``directory``; returns both paths."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        as_json, as_html = folder / f"{stem}.json", folder / f"{stem}.html"
        as_json.write_text(self.to_json(), encoding="utf-8")
        as_html.write_text(self.to_html(), encoding="utf-8")
        return as_json, as_html

    def to_html(self, title: str = "Feature statistics") -> str:
        """One self-contained page (inline CSS, no scripts): a table per stage."""
        shifted = self.shifted()
        rows = ", ".join(f"{w}: {_fmt(n)} rows" for w, n in self.rows.items())
        summary = (
            f"{rows}. PSI &lt; 0.1 stable, 0.1&ndash;0.25 moderate, &gt; 0.25 significant shift; "
            f"flagged at PSI &ge; {_fmt(self.psi_threshold)}: {len(shifted)} feature(s)"
            + (f" ({html.escape(', '.join(shifted))})" if shifted else "")
            + "."
        )
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(title)}</h1><p>{summary}</p>",
        ]
        for stage in ("raw", "transformed"):
            features = [f for f in self.features if f.stage == stage]
            if features:
                parts.append(f"<h2>{stage.capitalize()} features ({len(features)})</h2>")
                parts.append(_html_table(features))
        parts.append("</body></html>")
        return "\n".join(parts)

    def table(self, width: int = 120) -> str:
        """A compact text table: a header, a rule, then exactly one line per feature."""
        fixed = [("stage", 5), ("kind", 4), ("miss%tr", 7), ("miss%te", 7)]
        rest = max(width - 2 * 8 - sum(w for _, w in fixed) - 7 - 1, 30)
        longest = max((len(f.name) for f in self.features), default=7)
        name_w = min(max(longest, 7), max(12, rest - 2 * 16))
        value_w = min(24, max(8, (rest - name_w) // 2))  # a mean or a top level needs no more
        widths = [name_w, 5, 4, 7, 7, value_w, value_w, 7, 1]
        header = ["feature", "stage", "kind", "miss%tr", "miss%te", "train", "test", "psi", ""]
        lines = [_line(header, widths), "-" * (sum(widths) + 2 * (len(widths) - 1))]
        for f in self.features:
            cells = [
                _oneline(f.name),
                "raw" if f.stage == "raw" else "trans",
                "num" if f.kind == "numeric" else "cat",
                _fmt(f.train.get("missing_pct"), pct=True),
                _fmt(f.test.get("missing_pct"), pct=True),
                _headline(f.train, f.kind),
                _headline(f.test, f.kind),
                _fmt(f.psi, digits=3),
                "!" if f.shifted else "",
            ]
            lines.append(_line(cells, widths))
        return "\n".join(lines)


def _fmt(x: Any, pct: bool = False, digits: int = 4) -> str:
    """Numbers for people: ints with separators, floats to a few significant digits."""
    if x is None:
        return "-"
    if isinstance(x, bool) or not isinstance(x, int | float):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if pct:
        return f"{x:.1f}"
    return f"{x:.{digits}f}" if digits == 3 else f"{x:.{digits}g}"


def _oneline(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")


def _headline(stats: dict[str, Any], kind: str) -> str:
    """The mean of a numeric feature, or its most frequent level with its share."""
    if kind == "numeric":
        return _fmt(stats.get("mean"))
    top = stats.get("top") or []
    if not top:
        return "-"
    value, _, share = top[0]
    return f"{_oneline(str(value))} ({_fmt(share, pct=True)}%)"


def _line(cells: list[str], widths: list[int]) -> str:
    out = []
    for i, (cell, w) in enumerate(zip(cells, widths, strict=True)):
        text = cell if len(cell) <= w else cell[: w - 1] + "…"
        # Names and levels read left-aligned, numbers right-aligned.
        out.append(text.ljust(w) if i in (0, 1, 2, 5, 6) else text.rjust(w))
    return "  ".join(out).rstrip()


def _html_stats(stats: dict[str, Any], kind: str) -> list[str]:
    cells = [f"<td>{_fmt(stats.get('missing_pct'), pct=True)}</td>"]
    if kind == "numeric":
        cells.append(f"<td>{_fmt(stats.get('mean'))}</td>")
        cells += [f"<td>{_fmt(stats.get(k))}</td>" for k in ("std", "min", "p50", "max")]
    else:
        top = " · ".join(
            f"{html.escape(str(v))} {_fmt(p, pct=True)}%" for v, _, p in stats.get("top", [])
        )
        cells.append(f'<td class="top">{top or "-"}</td>')
        cells += ["<td></td>"] * 4
    cells.append(f"<td>{_fmt(stats.get('distinct'))}</td>")
    return cells


def _html_table(features: list[FeatureStats]) -> str:
    span = len(_STAT_HEADERS)
    stat_heads = "".join(f"<th>{h}</th>" for h in _STAT_HEADERS) * 2
    head = (
        '<tr><th rowspan="2">feature</th><th rowspan="2">kind</th><th rowspan="2">PSI</th>'
        f'<th colspan="{span}">train</th><th colspan="{span}">test</th></tr>'
        f"<tr>{stat_heads}</tr>"
    )
    body = []
    for f in features:
        mark = " !" if f.shifted else ""
        cells = [
            f'<td class="name">{html.escape(f.name)}</td>',
            f'<td class="kind">{f.kind}</td>',
            f'<td class="psi">{_fmt(f.psi, digits=3)}{mark}</td>',
            *_html_stats(f.train, f.kind),
            *_html_stats(f.test, f.kind),
        ]
        row_class = ' class="shifted"' if f.shifted else ""
        body.append(f"<tr{row_class}>{''.join(cells)}</tr>")
    return f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"
