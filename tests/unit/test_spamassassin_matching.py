"""Each SpamAssassin score goes to the mail it was given for, or scoring fails naming the
mail: a stand-in ``spamassassin`` (a script that scores every mail 0.1) hands the mails
back reversed, drops one, or drops the mark reengage put on each."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from reengage.spamassassin import SpamAssassinFailed, score

# Reads the mbox on stdin, writes it back in the order and shape the first argument says,
# each mail with the headers reengage asks SpamAssassin for: its "points" are its Subject.
STAND_IN = """\
import mailbox, sys, tempfile
how = sys.argv[1]
with tempfile.NamedTemporaryFile(suffix=".mbox") as given:
    given.write(sys.stdin.buffer.read())
    given.flush()
    mails = list(mailbox.mbox(given.name))
mails.reverse()
if how == "drop":
    mails = mails[1:]
out = tempfile.NamedTemporaryFile(suffix=".mbox", delete=False)
box = mailbox.mbox(out.name)
for mail in mails:
    if how == "unmarked":
        del mail["X-Reengage-Check"]
    mail["X-Spam-Score"] = mail["Subject"]
    mail["X-Spam-Tests"] = "SOME_RULE=" + mail["Subject"]
    mail["X-Spam-Report"] = "* " + mail["Subject"] + " SOME_RULE what it looks for"
    box.add(mail)
box.close()
sys.stdout.buffer.write(open(out.name, "rb").read())
"""


def stand_in(tmp_path: Path, how: str) -> str:
    path = tmp_path / "spamassassin"
    path.write_text(f"#!/bin/sh\nexec {sys.executable} {tmp_path / 'sa.py'} {how}\n")
    (tmp_path / "sa.py").write_text(STAND_IN)
    path.chmod(0o755)
    return str(path)


def mail(points: str) -> bytes:
    return (
        f"From: a@acme.example\r\nTo: b@example.com\r\nSubject: {points}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nHello\r\n"
    ).encode()


def test_scores_handed_back_in_another_order_each_land_on_their_own_mail(
    tmp_path: Path,
) -> None:
    found = score([mail("0.1"), mail("8.4"), mail("3.3")], path=stand_in(tmp_path, "reversed"))
    assert [s.points for s in found] == [0.1, 8.4, 3.3]
    assert [s.hits[0].points for s in found] == [0.1, 8.4, 3.3]


def test_a_mail_that_does_not_come_back_fails_the_check_naming_it(tmp_path: Path) -> None:
    names = ["promo/a [en]", "promo/b [en]", "promo/c [en]"]
    with pytest.raises(SpamAssassinFailed, match=r"answered for 2 of 3 mails, not for promo/c"):
        score(
            [mail("0.1"), mail("8.4"), mail("0.2")],
            path=stand_in(tmp_path, "drop"),
            names=names,
        )


def test_a_mail_that_comes_back_without_its_mark_fails_the_check(tmp_path: Path) -> None:
    with pytest.raises(SpamAssassinFailed, match=r"X-Reengage-Check: missing, subject '8.4'"):
        score([mail("0.1"), mail("8.4")], path=stand_in(tmp_path, "unmarked"))
