"""The uplift table of ``reengage stats``: per campaign, segment and rhythm class, who came
back treated and held out, the uplift and its interval, or why there is no number yet."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from reengage.cli.columns import Column, Layout

if TYPE_CHECKING:
    from reengage.stats import CampaignResult, Results
    from reengage.uplift import GroupUplift


def rate(count: int, total: int) -> str:
    """``12/40 (30.0%)``; a dash for nobody."""
    return f"{count:,}/{total:,} ({100 * count / total:.1f}%)" if total else "—"


def uplift_title(results: Results) -> str:
    from reengage.uplift import MIN_GROUP

    days = round(results.horizon.total_seconds() / 86400)
    return (
        f"Uplift: who contact helps, treated against held out, per segment and rhythm class "
        f"(customers who have had the whole {days}-day window; a number needs {MIN_GROUP} "
        f"treated and {MIN_GROUP} held out)"
    )


def uplift_note(c: CampaignResult, results: Results | None = None) -> str | None:
    """Why a campaign shows no group of its own: it held nobody out (one line, rather than
    the same words beside every group), or nobody has had the whole window yet."""
    from reengage.uplift import NO_HOLDOUT_VERDICT

    if c.uplift is not None and not c.uplift.keeps_holdout:
        return NO_HOLDOUT_VERDICT
    if uplift_groups(c):
        return None
    if results is None:
        return "nobody has had the whole window yet"
    days = round(results.horizon.total_seconds() / 86400)
    return f"nobody has had the whole {days}-day window yet"


def uplift_groups(c: CampaignResult) -> list[GroupUplift]:
    """The groups with a row of their own: none for a campaign that held nobody out."""
    if c.uplift is None or not c.uplift.keeps_holdout:
        return []
    return [*c.uplift.segments, *c.uplift.rhythms]


def uplift_layout(campaigns: list[CampaignResult], *, per_campaign: bool) -> Layout:
    """A row per segment and rhythm class (under a row per campaign when ``per_campaign``):
    who came back in each group, the uplift and its interval (none without enough data)."""
    from reengage.stats.intervals import points

    labels: list[str | Text] = []
    cells: list[list[str | Text]] = [[], [], [], [], []]
    sections: set[int] = set()
    indent = "  " if per_campaign else ""
    for c in campaigns:
        groups = uplift_groups(c)
        if per_campaign:
            labels.append(Text(c.campaign_id, style="bold"))
            row: list[str | Text] = ["", "", "", ""]
            row.append(Text(uplift_note(c) or ""))
            for column, cell in zip(cells, row, strict=True):
                column.append(cell)
        previous = None
        for g in groups:
            if previous == "segment" and g.grouping == "rhythm":
                sections.add(len(labels) - 1)  # a line between the two groupings
            previous = g.grouping
            labels.append(Text(f"{indent}{g.grouping}: {g.label}"))
            interval = g.interval
            row = [
                rate(g.treated_came_back, g.treated),
                rate(g.held_out_came_back, g.held_out),
                "—" if g.uplift is None else f"{points(g.uplift)} pts",
                "—" if interval is None else f"{points(interval.low)} to {points(interval.high)}",
                Text(g.words),
            ]
            for column, cell in zip(cells, row, strict=True):
                column.append(cell)
        sections.add(len(labels) - 1)
    headers = ["treated came back", "holdout came back", "uplift", "95% CI"]
    return Layout(
        Column("campaign / group" if per_campaign else "group", labels, right=False, text=True),
        [
            *(Column(header, column) for header, column in zip(headers, cells, strict=False)),
            Column("verdict", cells[4], right=False, text=True),
        ],
        sections,
    )
