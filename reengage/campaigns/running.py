"""What a campaign file change does to the sequences already running.

A running enrollment remembers the *key* of the step it waits at. When a changed file no
longer has that key (the step was removed, or renamed: ``tip-2`` to ``tip-two``), the
daemon ends the enrollment on its next pass (exit reason ``step_removed``): the customer
gets none of the later steps, and ``not_enrolled_within_days`` keeps them out of the
campaign meanwhile. Enrollments waiting at a step that is still there go on to whatever
steps follow it in the new file. ``reengage validate`` and ``reengage doctor`` warn before
that happens.

Pure: it takes the counts of running enrollments per (campaign, step key), read elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from difflib import get_close_matches

from reengage.campaigns.files import LoadResult, Problem
from reengage.i18n import days as plural_days


def removed_step_problems(
    result: LoadResult, waiting: Mapping[tuple[str, str], int]
) -> list[Problem]:
    """A warning for each step key of a loaded campaign that running enrollments wait at but
    the campaign's file no longer has: how many, what will happen to them, how to keep them.
    ``waiting``: running enrollments per (campaign id, step key)."""
    problems: list[Problem] = []
    for (campaign_id, key), count in sorted(waiting.items()):
        campaign = result.campaigns.get(campaign_id)
        if campaign is None or count <= 0 or campaign.step(key) is not None:
            continue
        # A key nobody waits at that reads like the old one is most likely its new name.
        unused = [s.key for s in campaign.steps if (campaign_id, s.key) not in waiting]
        renamed = get_close_matches(key, unused, n=1, cutoff=0.5)
        keep = (
            f"if you renamed it to {renamed[0]!r}, rename it back to {key!r}"
            if renamed
            else f"give the step that replaces it the key {key!r}"
        )
        days = campaign.not_enrolled_within_days
        problems.append(
            Problem(
                *result.locate(campaign_id, ("steps",)),
                f"{count} running enrollment(s) wait at step {key!r}, which "
                f"{campaign_id} no longer has: the daemon's next pass ends them (exit "
                f"reason step_removed), so they get none of the later steps"
                + (
                    f", and not_enrolled_within_days keeps them out of {campaign_id} for "
                    f"{plural_days(days)}"
                    if days
                    else ""
                )
                + f". To keep them, keep the key {key!r}: {keep} (change its subject or "
                "template freely; a step's key is what a running sequence remembers)",
                severity="warning",
            )
        )
    return problems


def removed_campaign_problems(
    result: LoadResult, waiting: Mapping[tuple[str, str], int], folder: str
) -> list[Problem]:
    """A warning for each campaign running enrollments are in that no file in ``folder``
    (every campaign the daemon loads, in ``result``) has any more. None while a file fails
    to load: the daemon holds those enrollments until it loads."""
    if any(p.is_error for p in result.problems):
        return []
    gone: dict[str, int] = {}
    for (campaign_id, _), count in waiting.items():
        if campaign_id not in result.campaigns:
            gone[campaign_id] = gone.get(campaign_id, 0) + count
    return [
        Problem(
            folder,
            0,
            "",
            f"{count} running enrollment(s) are in campaign {campaign_id!r}, which no file "
            f"here has any more: the daemon's next pass ends them (exit reason "
            f"campaign_removed), so they get none of their later steps. To keep them, put "
            f"its file back, or its `id: {campaign_id}` if you changed the id",
            severity="warning",
        )
        for campaign_id, count in sorted(gone.items())
    ]
