"""What the dashboard says about a campaign (issue 21): the verdict first and an estimate only
beside a verdict that allows one, the two groups apart, money in the configured currency,
in English and Chinese; the lift chart draws only campaigns with a verdict."""

from __future__ import annotations

from reengage import i18n
from reengage.config import load_settings
from reengage.stats import CampaignResult, Funnel, StepResult
from reengage.stats.intervals import Lift, lift
from reengage.stats.results import BEFORE_FIRST_MAIL
from reengage.web import WebConfig, charts
from reengage.web.dashboard_view import definitions, groups, lift_view

EN, ZH = i18n.texts("en"), i18n.texts("zh-CN")


def campaign(name: str, measured: Lift, revenue: float = 11_300.4, held_revenue: float = 500.0):  # type: ignore[no-untyped-def]
    return CampaignResult(
        campaign_id=name,
        enrolled=measured.treated + measured.held_out,
        held_out=measured.held_out,
        funnel=Funnel(reactivated=measured.treated_reactivated, revenue=revenue),
        steps=[],
        lift=measured,
        timeline=[],
        held_out_revenue=held_revenue,
    )


def test_not_enough_data_shows_the_verdict_and_what_is_missing_but_no_estimate() -> None:
    few = lift(8, 1, 4, 1)  # a 12.5 − 25 = −12.5 point "difference" that means nothing yet
    shown = lift_view(few, EN)
    assert shown.verdict == "Not enough data yet"
    assert shown.estimate is None
    assert shown.why is not None and "8 treated and 4 held out, 2 came back" in shown.why
    assert "12.5" not in shown.verdict + shown.why
    assert lift_view(few, ZH).verdict == "数据尚不足"


def test_a_decided_lift_has_its_estimate_and_interval_beside_the_verdict() -> None:
    shown = lift_view(lift(1000, 200, 1000, 100), EN)
    assert shown.verdict == "Lift: more came back than in the holdout"
    assert shown.estimate is not None and shown.estimate.startswith("estimated +10.0 points")
    assert "95% interval" in shown.estimate
    none = lift_view(lift(1000, 101, 1000, 100), ZH)
    assert none.verdict == "尚无可测量的提升"
    assert none.estimate is not None and none.estimate.startswith("估计 +0.1 个百分点")


def test_the_groups_are_apart_and_a_campaign_without_holdout_names_no_holdout_spend() -> None:
    with_holdout = groups(campaign("a", lift(1089, 226, 111, 10)), EN, "USD", 30)
    assert with_holdout == [
        "1,089 customers treated (sent the mails)",
        "111 customers held out (never contacted, for comparison)",
        "226 treated customers reactivated, spending $11,300",
        "The holdout spent $500 in the same window without any mail",
    ]
    without = groups(campaign("b", lift(2, 0, 0, 0), revenue=0), EN, "EUR", 30)
    assert without == [
        "2 customers treated (sent the mails)",
        "No holdout: every customer who entered was sent the mails",
        "0 treated customers reactivated, spending €0",
    ]
    assert not any("holdout spent" in line for line in without)
    chinese = groups(campaign("a", lift(1, 1, 1, 0)), ZH, "CNY", 30)
    assert chinese[0] == "实验组 1 位客户（收到邮件）"
    assert "¥11,300" in chinese[2]


def test_a_campaign_whose_treated_entered_another_says_its_lift_is_of_them_together() -> None:
    shown = campaign("a", lift(1089, 226, 111, 10))
    shown = CampaignResult(**{**shown.__dict__, "also_entered": 640})
    lines = groups(shown, EN, "USD", 30)
    assert lines[3] == (
        "640 treated customers also entered another campaign within 30 days; their returns "
        "count for each, so this lift is of the campaigns together"
    )
    assert "640 位客户在 30 天内又进入了另一个活动" in groups(shown, ZH, "USD", 30)[3]
    alone = groups(campaign("a", lift(1089, 226, 111, 10)), EN, "USD", 30)
    assert not any("another campaign" in line for line in alone)


def test_purchases_before_the_first_mail_are_not_called_reactivated_after_a_mail() -> None:
    # reengage stats credits 40 of the 226 to "(before the first mail)": the page counts
    # them as it does, and says so, rather than "226 reactivated after a mail".
    early = StepResult(BEFORE_FIRST_MAIL, Funnel(reactivated=40, revenue=1_999.6))
    mailed = StepResult("first", Funnel(reactivated=186, revenue=9_300.8))
    shown = campaign("a", lift(1089, 226, 111, 10))
    shown = CampaignResult(**{**shown.__dict__, "steps": [mailed, early]})
    lines = groups(shown, EN, "EUR", 30)
    assert not any("after a mail" in line for line in lines)
    assert lines[2] == (
        "226 treated customers reactivated, spending €11,300 "
        "(of them, 40 bought before the first mail went, spending €2,000)"
    )
    assert any(
        "其中 40 位在第一封邮件发出前就已购买" in line for line in groups(shown, ZH, "EUR", 30)
    )
    meaning = dict(definitions(EN, 30))["Reactivated"]
    assert "before the first mail went" in meaning


def test_the_lift_chart_draws_only_campaigns_with_a_verdict_in_the_legends_colours() -> None:
    decided = campaign("decided", lift(1000, 200, 1000, 100))
    undecided = campaign("too-few", lift(8, 1, 4, 1))
    svg = charts.lift([decided, undecided], EN)
    assert "decided" in svg and "too-few" not in svg
    # no dot carries a colour of its own: each is drawn in its series' (and legend's) colour
    assert 'style="fill' not in svg and "fill:" not in svg.split("</style>", 1)[1]
    assert "estimated lift" in svg
    assert "估计提升" in charts.lift([decided], ZH, charts.NARROW)


def test_the_dashboard_takes_its_currency_from_the_settings() -> None:
    settings = load_settings(env_file=None, secret_key="s" * 40, currency="USD")
    assert WebConfig.from_settings(settings).currency == "USD"


def test_without_any_verdict_there_is_no_lift_chart_to_draw() -> None:
    # Empty 0–1 axes with "No data yet" read as a chart; the page says it in a sentence.
    undecided = [campaign("too-few", lift(8, 1, 4, 1)), campaign("none", lift(3, 0, 0, 0))]
    assert charts.lift(undecided, EN) is None
    assert charts.lift(undecided, ZH, charts.NARROW) is None
