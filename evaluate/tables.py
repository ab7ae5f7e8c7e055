"""Comparison tables: pure functions of result records -> Markdown, CSV or LaTeX.

A table groups records into rows (e.g. model x classifier) and column groups (e.g.
dataset), and shows each metric as ``mean ± std (n=seeds)``. Per column the best mean is
marked 🔴 and the second 🔵, as the seed study's README does; rows selected on the test
set (``selection: oracle``) are labelled so and never take a mark from honest rows. Cells
a grid could not run say why ("n/a (missing features)"); failed seeds are counted.
"""
from __future__ import annotations

import csv
import io
import math
import statistics
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from zsgm.evaluate.records import FINISHED, status_of

BEST, SECOND = "🔴", "🔵"
COLLAPSED = "‡"
METRICS = ("U", "S", "H", "zsl")
METRIC_NAMES = {"U": "U", "S": "S", "H": "H", "zsl": "ZSL"}
GAIN = "gain"  # the metric key of a table's "what generation adds" column (TableSpec.gain)
FIELD_NAMES = {"model": "Model", "classifier": "Classifier", "dataset": "Dataset", "backbone": "Backbone",
               "pretrained": "Weights", "tricks": "Tricks", "variant": "Variant", "selection": "Selection",
               "noise": "Noise"}
SELECTION_CAPTIONS = {
    "validation": "model selection on validation classes carved out of the seen classes (test never looked at)",
    "oracle": "ORACLE selection: best epoch picked on the test set, as the seed study did — optimistic",
    "fixed": "no model selection: the configured budget, last epoch",
}


@dataclass(frozen=True)
class TableSpec:
    """How to lay out one table; experiment YAMLs fill it (``tables:`` block)."""
    name: str
    title: str = ""
    rows: tuple[str, ...] = ("model", "classifier")
    columns: tuple[str, ...] = ("dataset",)
    metrics: tuple[str, ...] = ("U", "S", "H")
    names: dict[str, str] = field(default_factory=dict)     # value renames for display
    note: str = ""
    where: dict[str, tuple] = field(default_factory=dict)   # keep only records whose field is one of these
    baselines: tuple[str, ...] = ()                         # row values (first row field) shown but unmarked
    sources: dict[str, str] = field(default_factory=dict)   # row value -> its source (a "Source" column)
    # {field: a row field, baseline: one of its values}: a column per group, "what generation adds",
    # each row's H minus the H of the baseline's row that agrees on every other row field (paired by seed)
    gain: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict, source: str = "table") -> "TableSpec":
        from zsgm.core.errors import ZsgmError

        known = {"name", "title", "rows", "columns", "metrics", "names", "note", "where", "baselines", "sources", "gain"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ZsgmError(f"{source}: unknown key(s) {unknown} in a table; known: {', '.join(sorted(known))}")
        if "name" not in d:
            raise ZsgmError(f"{source}: every table needs a 'name' (its file results/tables/<name>.md)")
        bad = [m for m in d.get("metrics", ()) if m not in METRICS]
        if bad:
            raise ZsgmError(f"{source}: table {d['name']}: unknown metric(s) {bad}; use {', '.join(METRICS)}")
        tup = {k: tuple(d[k]) for k in ("rows", "columns", "metrics", "baselines") if k in d}
        where = d.get("where") or {}
        if not isinstance(where, dict):
            raise ZsgmError(f"{source}: table {d['name']}: 'where' must map a field to a value or a list of values")
        tup["where"] = {str(k): tuple(str(x) for x in (v if isinstance(v, list) else [v])) for k, v in where.items()}
        for key in ("names", "sources"):
            if not isinstance(d.get(key) or {}, dict):
                raise ZsgmError(f"{source}: table {d['name']}: '{key}' must map values to text")
        tup["sources"] = {str(k): str(v) for k, v in (d.get("sources") or {}).items()}
        gain = d.get("gain") or {}
        if gain and (not isinstance(gain, dict) or set(gain) != {"field", "baseline"}
                     or gain["field"] not in d.get("rows", cls.rows)):
            raise ZsgmError(f"{source}: table {d['name']}: 'gain' must be {{field: <one of its rows>, baseline: "
                            f"<a value of it>}}, got {gain!r}")
        tup["gain"] = {k: str(v) for k, v in gain.items()}
        return cls(**{**d, **tup})

    def keeps(self, record: dict) -> bool:
        """Whether a record (or a grid cell's fields) belongs in this table (``where``)."""
        return all(str(_value(record, k)) in allowed for k, allowed in self.where.items())


@dataclass
class Stat:
    """One table cell before formatting."""
    values: list[float] = field(default_factory=list)
    failed: int = 0
    missing: str = ""
    collapsed: int = 0      # seeds still collapsed (unseen accuracy ~0) after the bounded re-seeding
    saw_val: int = 0        # seeds whose selection ran on features trained on the validation classes (scratch)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None


@dataclass
class Table:
    """A rendered-format-neutral table: header, rows of cells and their marks, caption."""
    spec: TableSpec
    row_keys: list[tuple]                 # (values of spec.rows..., selection)
    col_keys: list[tuple]                 # values of spec.columns
    cells: dict[tuple, Stat]              # (row_key, col_key, metric) -> Stat
    marks: dict[tuple, str]               # same key -> BEST | SECOND
    caption: str
    weights: dict[str, str] = field(default_factory=dict)   # pretrained weights (timm name.tag) -> note

    def columns(self) -> list[tuple[tuple, str]]:
        metrics = [*self.spec.metrics, *([GAIN] if self.spec.gain else [])]
        return [(c, m) for c in self.col_keys for m in metrics]

    def metric_name(self, m: str) -> str:
        return f"H − {_show(self.spec, self.spec.gain['baseline'])}" if m == GAIN else METRIC_NAMES.get(m, m)


def _value(record: dict, key: str):
    if key == "pretrained":
        v = record.get(key)
        return "pretrained" if v in (True, "true", "pretrained") else "scratch" if v in (False, "false", "scratch") else v
    return record.get(key)


def _row_key(spec: TableSpec, r: dict) -> tuple:
    return tuple(_value(r, k) for k in spec.rows) + (r.get("selection") or "validation",)


def _col_key(spec: TableSpec, r: dict) -> tuple:
    return tuple(_value(r, k) for k in spec.columns)


def build_table(spec: TableSpec, records: Iterable[dict], missing: Iterable[dict] = (),
                order: Sequence[dict] = ()) -> Table:
    """Aggregate ``records`` (one per run and seed) into a :class:`Table`.

    ``missing`` are cells a grid could not run, each a dict of the same fields plus
    ``missing`` (what it lacks); ``order`` (dicts of the same fields, e.g. the grid's
    cells) fixes the order of rows and column groups, else first appearance.
    """
    records = [r for r in records if spec.keeps(r)]
    missing = [r for r in missing if spec.keeps(r)]
    order = [r for r in order if spec.keeps(r)]
    row_keys: dict[tuple, None] = {}
    col_keys: dict[tuple, None] = {}
    for r in [*order, *records, *missing]:
        row_keys.setdefault(_row_key(spec, r))
        col_keys.setdefault(_col_key(spec, r))
    cells: dict[tuple, Stat] = {}
    for r in records:
        rk, ck = _row_key(spec, r), _col_key(spec, r)
        ok = status_of(r) in FINISHED
        for m in spec.metrics:
            stat = cells.setdefault((rk, ck, m), Stat())
            v = r.get(m)
            if ok and isinstance(v, (int, float)) and not math.isnan(v):
                stat.values.append(float(v))
                stat.collapsed += bool(r.get("collapsed"))
                stat.saw_val += bool(r.get("selection_saw_val_classes"))
            elif not ok:
                stat.failed += 1
    for r in missing:
        for m in spec.metrics:
            stat = cells.setdefault((_row_key(spec, r), _col_key(spec, r), m), Stat())
            stat.missing = stat.missing or str(r.get("missing") or "inputs")
    if spec.gain:
        _gains(spec, records, cells)
    weights = {str(r["weights"]): str(r.get("weights_note") or "") for r in records
               if r.get("weights") and "." in str(r["weights"])}  # a timm name.tag (not 'scratch' / 'random')
    table = Table(spec, list(row_keys), list(col_keys), cells, {}, "", dict(sorted(weights.items())))
    table.marks = _marks(table)
    table.caption = _caption(table)
    return table


def _gains(spec: TableSpec, records: list[dict], cells: dict[tuple, Stat]) -> None:
    """Each row's H minus its baseline row's H (same other row fields, same column, same seed)."""
    at = spec.rows.index(spec.gain["field"])
    h = {(_row_key(spec, r), _col_key(spec, r), r.get("seed")): float(r["H"]) for r in records
         if status_of(r) in FINISHED and isinstance(r.get("H"), (int, float)) and not math.isnan(r["H"])}
    for (rk, ck, seed), value in h.items():
        base = rk[:at] + (spec.gain["baseline"],) + rk[at + 1:]
        if rk[at] != spec.gain["baseline"] and (base, ck, seed) in h:
            cells.setdefault((rk, ck, GAIN), Stat()).values.append(value - h[(base, ck, seed)])


def _marks(table: Table) -> dict[tuple, str]:
    """Best and second per column, on the displayed (rounded) mean so that shown ties tie."""
    # Baselines (ridge, no generator ...) are sanity lines: shown, never marked.
    rows = [rk for rk in table.row_keys if not is_baseline(table.spec, rk)]
    honest = [rk for rk in rows if rk[-1] != "oracle"]
    # Oracle rows compete only when nothing else is in the table.
    contenders = honest or rows
    marks: dict[tuple, str] = {}
    for ck, m in table.columns():
        means = {rk: round(s.mean, 1) for rk in contenders
                 if (s := table.cells.get((rk, ck, m))) is not None and s.mean is not None}
        if len(means) < 2:
            continue
        ranked = sorted(set(means.values()), reverse=True)
        for rk, v in means.items():
            if v == ranked[0]:
                marks[(rk, ck, m)] = BEST
            elif len(ranked) > 1 and v == ranked[1]:
                marks[(rk, ck, m)] = SECOND
    return marks


def is_baseline(spec: TableSpec, rk: tuple) -> bool:
    return bool(spec.baselines) and str(rk[0]) in spec.baselines


def _caption(table: Table) -> str:
    spec = table.spec
    selections = list(dict.fromkeys(rk[-1] for rk in table.row_keys))
    parts = [spec.title or spec.name]
    if len(table.col_keys) == 1 and spec.columns:
        parts.append(", ".join(f"{FIELD_NAMES.get(k, k)} {_show(spec, v)}" for k, v in zip(spec.columns, table.col_keys[0])))
    parts.append("; ".join(f"Selection: {s} — {SELECTION_CAPTIONS.get(s, s)}" for s in selections))
    parts.append(f"Per-class mean accuracy in %, mean ± std over seeds (n = seeds); "
                 f"{BEST} best, {SECOND} second per column"
                 + (" among non-oracle rows" if "oracle" in selections and len(selections) > 1 else "")
                 + (" (baselines unmarked)" if any(is_baseline(spec, rk) for rk in table.row_keys) else ""))
    if spec.gain:
        others = [FIELD_NAMES.get(k, k).lower() for k in (*spec.rows, *spec.columns) if k != spec.gain["field"]]
        parts.append(f"{table.metric_name(GAIN)}: what generation adds, each row's H minus the H of the "
                     f"{_show(spec, spec.gain['baseline'])} row of the same {', '.join(others)}, paired by seed")
    if any(s.collapsed for s in table.cells.values()):
        parts.append(f"{COLLAPSED}k: k seeds stayed collapsed (validation unseen accuracy ≈ 0) after the bounded "
                     f"re-seeding; they are included in the mean")
    if any(s.saw_val for s in table.cells.values()):
        parts.append("Scratch backbones were trained on all trainval images, the validation classes "
                     "included, so validation selection saw those classes (optimistic for scratch rows)")
    if table.weights:
        parts.append("Weights: " + ", ".join(f"{w} ({note})" if note else w for w, note in table.weights.items()))
    if spec.note:
        parts.append(spec.note)
    return ". ".join(p.rstrip(".") for p in parts if p) + "."


def _show(spec: TableSpec, value) -> str:
    if value is None:
        return "–"
    return spec.names.get(str(value), str(value))


def row_label(table: Table, rk: tuple) -> list[str]:
    """Display values of a row's fields (and its source, where the table has a Source column);
    a non-validation selection is spelled out, a baseline is said to be one."""
    labels = [_show(table.spec, v) for v in rk[:-1]]
    if rk[-1] != "validation" and labels:
        labels[0] += f" ({rk[-1]})"
    if is_baseline(table.spec, rk) and labels:
        labels[0] += " [baseline]"
    if table.spec.sources:
        labels.insert(len(table.spec.rows), table.spec.sources.get(str(rk[0]), "–"))
    return labels


def _row_fields(spec: TableSpec) -> list[str]:
    """Header names of the label columns."""
    head = [FIELD_NAMES.get(k, k.capitalize()) for k in spec.rows]
    return head + (["Source"] if spec.sources else [])


def format_stat(stat: Stat | None, mark: str = "", digits: int = 1, signed: bool = False) -> str:
    """``54.3 ± 1.2 (n=3) 🔴``; one seed shows ``± –`` since its spread is unknown."""
    if stat is None:
        return "–"
    if stat.mean is None:
        if stat.missing:
            return f"n/a (missing {stat.missing})"
        return f"failed (×{stat.failed})" if stat.failed else "–"
    std = f"{stat.std:.{digits}f}" if stat.std is not None else "–"
    text = f"{stat.mean:{'+' if signed else ''}.{digits}f} ± {std} (n={stat.n})"
    if stat.collapsed:
        text += f" {COLLAPSED}{stat.collapsed}"
    if stat.failed:
        text += f" +{stat.failed} failed"
    return f"{text} {mark}" if mark else text


def _header(table: Table) -> list[str]:
    spec = table.spec
    head = _row_fields(spec)
    many_groups = len(table.col_keys) > 1 or not spec.columns
    for ck, m in table.columns():
        group = " ".join(_show(spec, v) for v in ck)
        name = table.metric_name(m)
        head.append(f"{group} {name}" if many_groups and group else name)
    return head


def to_markdown(table: Table) -> str:
    head = _header(table)
    lines = [f"**{table.spec.title or table.spec.name}**", "",
             "| " + " | ".join(head) + " |",
             "|" + "|".join([":---"] * len(_row_fields(table.spec))
                            + ["---:"] * (len(head) - len(_row_fields(table.spec)))) + "|"]
    for rk in table.row_keys:
        cells = [format_stat(table.cells.get((rk, ck, m)), table.marks.get((rk, ck, m), ""), signed=m == GAIN)
                 for ck, m in table.columns()]
        lines.append("| " + " | ".join(row_label(table, rk) + cells) + " |")
    lines += ["", f"*{table.caption}*", ""]
    return "\n".join(lines)


def to_csv(table: Table) -> str:
    """Tidy rows (one per row x column group x metric) for programs."""
    spec = table.spec
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*spec.rows, "selection", *(["source"] if spec.sources else []), "baseline", *spec.columns, "metric",
                "mean", "std", "n", "failed", "collapsed", "missing", "mark"])
    for rk in table.row_keys:
        src = [spec.sources.get(str(rk[0]), "")] if spec.sources else []
        for ck, m in table.columns():
            s = table.cells.get((rk, ck, m)) or Stat()
            mark = {BEST: "best", SECOND: "second"}.get(table.marks.get((rk, ck, m), ""), "")
            w.writerow([*rk, *src, int(is_baseline(spec, rk)), *ck, m, "" if s.mean is None else f"{s.mean:.4f}",
                        "" if s.std is None else f"{s.std:.4f}", s.n, s.failed, s.collapsed, s.missing, mark])
    return buf.getvalue()


_LATEX_ESCAPES = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def _tex(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


_TEX_SYMBOLS = {"±": r"$\pm$", COLLAPSED: r"$^\ddagger$", "×": r"$\times$", "≈": r"$\approx$", "—": "---",
                "–": "--", "γ": r"$\gamma$"}


def _tex_symbols(text: str) -> str:
    for sym, tex in _TEX_SYMBOLS.items():
        text = text.replace(sym, tex)
    return text


def to_latex(table: Table) -> str:
    """booktabs table; best in bold, second underlined (colour emoji do not typeset)."""
    spec = table.spec
    n_rows, n_metrics = len(_row_fields(spec)), len(spec.metrics) + bool(spec.gain)
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             r"\begin{tabular}{" + "l" * n_rows + "r" * len(table.columns()) + "}", r"\toprule"]
    if spec.columns:
        groups = [r"\multicolumn{%d}{c}{%s}" % (n_metrics, _tex(" ".join(_show(spec, v) for v in ck)))
                  for ck in table.col_keys]
        lines.append(" & " * n_rows + " & ".join(groups) + r" \\")
        rules = [r"\cmidrule(lr){%d-%d}" % (n_rows + 1 + i * n_metrics, n_rows + (i + 1) * n_metrics)
                 for i in range(len(table.col_keys))]
        lines.append(" ".join(rules))
    lines.append(" & ".join([_tex(h) for h in _row_fields(spec)]
                            + [_tex(table.metric_name(m)) for _, m in table.columns()]) + r" \\")
    lines.append(r"\midrule")
    for rk in table.row_keys:
        cells = []
        for ck, m in table.columns():
            s = table.cells.get((rk, ck, m))
            text = _tex_symbols(_tex(format_stat(s, signed=m == GAIN)))
            mark = table.marks.get((rk, ck, m))
            cells.append(r"\textbf{%s}" % text if mark == BEST else r"\underline{%s}" % text if mark == SECOND
                         else text)
        lines.append(" & ".join([_tex(x) for x in row_label(table, rk)] + cells) + r" \\")
    caption = _tex(table.caption.replace(BEST, "bold").replace(SECOND, "underlined"))
    caption = _tex_symbols(caption)
    lines += [r"\bottomrule", r"\end{tabular}", r"\caption{%s}" % caption,
              r"\label{tab:%s}" % _tex(spec.name), r"\end{table}", ""]
    return "\n".join(lines)


RENDERERS = {"md": to_markdown, "csv": to_csv, "tex": to_latex}


def render(spec: TableSpec, records: Iterable[dict], fmt: str = "md", missing: Iterable[dict] = (),
           order: Sequence[dict] = ()) -> str:
    """Records -> table text in ``fmt`` (md, csv or tex)."""
    return RENDERERS[fmt](build_table(spec, records, missing, order))
