"""How long work stays a worker's own, and when what did not go through is tried again.

One place for these timings: the dispatch of campaign mail (``reengage.dispatch``) and the
reps' digests (``reengage.digest.sending``) both hold a row while its mail is on the wire and
come back to what failed for a while.
"""

from __future__ import annotations

from datetime import timedelta

# A mail's row marked ``sending`` (a digest's too) is held this long: a worker that dies
# leaves it ``unknown`` once it passes, never sent again by itself.
LEASE = timedelta(minutes=10)
# How long what a pass claimed stays its own without being renewed: the running pass renews
# it every third of that, so mails a dead worker claimed but never began are due again
# within this (a mail on the wire waits for the send lease, LEASE, instead).
CLAIM_LEASE = timedelta(seconds=60)
RETRY_BASE = timedelta(minutes=2)  # a mail the server deferred: doubled each attempt...
RETRY_MAX = timedelta(hours=6)  # ...up to this
DIGEST_RETRY = timedelta(minutes=5)  # a digest the server deferred is tried again after this
ITEM_ERROR_BACKOFF = timedelta(hours=1)  # an item that raised is looked at again after this
CAMPAIGN_WAIT = timedelta(hours=1)  # how often a sequence of a broken campaign looks again
