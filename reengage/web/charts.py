"""The dashboard's charts as inline SVG, drawn by pygal on the server (the one place it is used).

Pages run no script (see ``pages.SECURITY_HEADERS``), so every chart is configured to
link no JavaScript and a filter strips the inline ``<script>`` pygal always writes (its
tooltips' configuration): what remains is plain SVG with its own scoped ``<style>``.
Values are printed on the bars, since without script there are no tooltips.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import pygal
from babel.dates import format_skeleton
from pygal.style import Style

from reengage.i18n import Texts
from reengage.stats import CallResults, CampaignResult
from reengage.web.dashboard_view import DECIDED, lift_view

# pygal appends a legacy import hook for its map plugins (``pygal.maps.*``, unused here) to
# sys.meta_path. It has no find_spec, so on Python 3.11 every failed import anywhere in the
# process (optional imports inside other libraries) then raises an ImportWarning. Take it out.
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]

GREEN, AMBER, GREY, RED, BLUE = "#1d6b43", "#c58b2b", "#9a9a92", "#b03a2e", "#2f5d8a"


def _style(*colors: str) -> Style:
    return Style(
        background="#ffffff",
        plot_background="#ffffff",
        foreground="#333333",
        foreground_strong="#1d3b2a",
        foreground_subtle="#d8d8d0",
        font_family="system-ui, sans-serif",
        title_font_size=16,
        label_font_size=12,
        major_label_font_size=12,
        legend_font_size=13,
        value_font_size=12,
        guide_stroke_color="#d8d8d0",
        major_guide_stroke_color="#c8c8c0",
        guide_stroke_dasharray="2,4",
        major_guide_stroke_dasharray="2,4",
        colors=colors,
    )


#: The widths the wide charts (lift, causes) are drawn at: the page shows the one that fits
#: its width (CSS, no script), so their words stay readable on a phone and a desk alike.
WIDE, NARROW = 1100, 420
#: Campaign charts sit two to a row on a desk and one on a phone: drawn at a width that reads
#: at both.
CAMPAIGN_WIDTH = 460


def _config(
    t: Texts, colors: tuple[str, ...] = (GREEN, AMBER, GREY), **extra: Any
) -> dict[str, Any]:
    return {
        "style": _style(*colors),
        "js": [],  # no script is linked (and _svg strips the one pygal inlines)
        "disable_xml_declaration": True,  # it is embedded in a page
        "width": CAMPAIGN_WIDTH,
        "height": 300,
        "truncate_label": -1,
        "legend_at_bottom": True,
        "no_data_text": t.gettext("No data yet"),
        "show_x_guides": False,
        **extra,
    }


def _without_scripts(root: Any) -> Any:
    for parent in root.iter():
        for child in list(parent):
            tag = child.tag if isinstance(child.tag, str) else ""
            if tag.rpartition("}")[2] == "script":
                parent.remove(child)
    return root


def _stroke_widths(widths: dict[int, float]) -> Any:
    """A filter giving series their own line width. pygal's per-series ``stroke_style`` is
    overridden by its theme's rule on every line, so the width goes on the lines' own
    style attribute, which no stylesheet overrides."""

    def apply(root: Any) -> Any:
        for group in root.iter():
            classes = str(group.get("class") or "").split()
            for index, width in widths.items():
                if "series" in classes and f"serie-{index}" in classes:
                    for path in group.iter():
                        if "line" in str(path.get("class") or "").split():
                            path.set("style", f"stroke-width:{width}px;stroke-linecap:round")
        return root

    return apply


def _svg(chart: Any, label: str) -> str:
    """The chart's SVG for inlining, with a role and a name for screen readers.

    Safe to put in a page unescaped: pygal writes it through an XML serializer, which
    escapes every label and value (campaign ids, reasons) it was given.
    """
    chart.add_xml_filter(_without_scripts)
    svg: str = chart.render(is_unicode=True)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{_attr(label)}" ', 1)


def _attr(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )


def funnel(campaign: CampaignResult, t: Texts) -> str:
    """From mails sent to treated customers reactivated by them: one bar per stage, values
    printed. The last bar is the funnel's "reactivated" (credited to the campaign), not the
    lift's "came back" (see :mod:`reengage.web.dashboard_view`)."""
    _ = t.gettext
    f = campaign.funnel
    stages = [
        (_("sent"), f.sent),
        (_("delivered"), f.delivered),
        (_("opened*"), f.opened),
        (_("clicked"), f.clicked),
        (_("replied"), f.replied),
        (_("reactivated"), f.reactivated),
    ]
    chart = pygal.Bar(
        **_config(
            t,
            title=_("Funnel: {campaign}").format(campaign=campaign.campaign_id),
            print_values=True,
            order_min=0,  # counts: no ticks between whole numbers
            show_legend=False,
            height=280,
            x_label_rotation=-30,
        )
    )
    chart.x_labels = [name for name, _ in stages]
    colors = [GREY, GREY, GREY, BLUE, BLUE, GREEN]
    chart.add("mails", [{"value": v, "color": c} for (_, v), c in zip(stages, colors, strict=True)])
    label = _("Funnel of {campaign}: {stages}").format(
        campaign=campaign.campaign_id, stages=", ".join(f"{n} {v}" for n, v in stages)
    )
    return _svg(chart, label)


def reactivation_over_time(campaign: CampaignResult, t: Texts) -> str:
    """Cumulative share who came back, treated against holdout, day by day."""
    _ = t.gettext
    points = campaign.timeline
    chart = pygal.Line(
        **_config(
            t,
            title=_("Came back over time: {campaign}").format(campaign=campaign.campaign_id),
            y_title=_("% of the group"),
            x_label_rotation=0,
            show_minor_x_labels=False,
            x_labels_major_count=min(5, max(2, len(points))),
            show_dots=len(points) <= 45,
            dots_size=2.5,
            value_formatter=lambda v: f"{v:.1f}%",
            min_scale=4,
        )
    )
    where = t.locale.replace("-", "_")
    chart.x_labels = [format_skeleton("MMMd", p.day, locale=where) for p in points]

    def pct(rate: float | None) -> float | None:
        return None if rate is None else round(100 * rate, 2)

    chart.add_xml_filter(_stroke_widths({0: 3, 1: 3}))
    chart.add(_("treated"), [pct(p.treated_rate) for p in points])
    if campaign.held_out:
        chart.add(_("holdout"), [pct(p.held_out_rate) for p in points])
    last = points[-1] if points else None
    summary = (
        _("treated {treated}%, holdout {held}%").format(
            treated=pct(last.treated_rate), held=pct(last.held_out_rate)
        )
        if last
        else _("No data yet")
    )
    label = _("Share who came back over time in {campaign}: {summary}")
    return _svg(chart, label.format(campaign=campaign.campaign_id, summary=summary))


def lift(campaigns: Sequence[CampaignResult], t: Texts, width: int = WIDE) -> str | None:
    """Each campaign with a verdict: its estimated lift (a dot) and 95% interval (a bar),
    against zero. Campaigns without enough data are left out (the page lists them): their
    estimate would read as a result. Every dot has its series' colour, as in the legend.

    None when no campaign has a verdict: empty axes from 0 to 1 mean nothing, and the page
    says in a sentence that there is nothing to draw yet."""
    _ = t.gettext
    shown = [c for c in campaigns if c.lift.kind in DECIDED]
    if not shown:
        return None
    narrow = width < WIDE
    chart = pygal.XY(
        **_config(
            t,
            colors=(GREY, GREEN, "#555555"),
            title=_("Lift (percentage points)") if narrow else None,
            x_title=None if narrow else _("lift against the holdout, in percentage points"),
            width=width,
            height=max(220, 130 + (70 if narrow else 60) * len(shown)),
            allow_interruptions=True,
            show_y_guides=False,
            show_x_guides=True,
            range=(0.5, len(shown) + 0.5),
            value_formatter=lambda v: f"{v:.1f}",
            legend_at_bottom_columns=1 if narrow else 3,
            y_label_rotation=-90 if narrow else 0,
        )
    )
    chart.y_labels = [{"label": c.campaign_id, "value": i + 1} for i, c in enumerate(shown)]
    bars: list[tuple[float, float] | None] = []
    dots: list[tuple[float, float]] = []
    low = high = 0.0
    for i, c in enumerate(shown):
        interval, difference = c.lift.interval, c.lift.difference
        assert interval is not None and difference is not None
        lo, hi, mid = 100 * interval.low, 100 * interval.high, 100 * difference
        low, high = min(low, lo), max(high, hi)
        bars += [(lo, i + 1), (hi, i + 1), None]
        dots.append((mid, i + 1))
    chart.add(_("95% interval"), bars, dots_size=0)
    chart.add(_("estimated lift"), dots, stroke=False, dots_size=8)
    chart.add(_("no lift"), [(0, 0.5), (0, len(shown) + 0.5)], dots_size=0)
    chart.add_xml_filter(_stroke_widths({0: 12, 2: 2}))
    chart.xrange = (min(low, -1.0) - 1, max(high, 1.0) + 1)
    summary = "; ".join(f"{c.campaign_id}: {lift_view(c.lift, t).verdict}" for c in shown)
    return _svg(chart, _("Lift per campaign: {summary}").format(summary=summary))


def causes(calls: CallResults, t: Texts, width: int = WIDE) -> str:
    """Why customers stopped, as reps heard it: specific, systemic or unsure, per reason."""
    _ = t.gettext
    narrow = width < WIDE
    chart = pygal.StackedBar(
        **_config(
            t,
            colors=(RED, BLUE, GREY),
            title=None,
            width=width,
            height=360 if narrow else 300,
            print_values=True,
            print_zeroes=False,
            order_min=0,
            y_title=_("calls"),
            x_label_rotation=-40 if narrow else 0,
        )
    )
    chart.x_labels = [_(r.reason.replace("_", " ")) for r in calls.reasons]
    if calls.reasons:
        chart.add(_("systemic"), [r.systemic for r in calls.reasons])
        chart.add(_("specific"), [r.specific for r in calls.reasons])
        chart.add(_("unsure"), [r.unsure for r in calls.reasons])
    summary = ", ".join(f"{r.reason} {r.calls}" for r in calls.reasons) or _("no calls yet")
    return _svg(chart, _("Reasons customers gave for stopping: {summary}").format(summary=summary))
