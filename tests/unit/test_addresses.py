"""One spelling per address: what is suppressed in one spelling is suppressed in all."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reengage.addresses import AddressError, normalize

LOCAL = st.text(alphabet="abcdefgXYZ0123._+-", min_size=1, max_size=20)
LABEL = st.sampled_from(["example", "bücher", "ÉCOLE", "münchen", "acme", "xn--bcher-kva"])
SPACE = st.sampled_from(["", " ", "\n", "\t", " \r\n"])


@given(local=LOCAL, labels=st.lists(LABEL, min_size=1, max_size=3), before=SPACE, after=SPACE)
def test_every_spelling_of_an_address_is_one_address(
    local: str, labels: list[str], before: str, after: str
) -> None:
    address = f"{local}@{'.'.join([*labels, 'com'])}"
    variants = [
        address,
        address.upper(),
        f"{before}{address}{after}",
        address.swapcase(),
    ]
    spelled = {normalize(v) for v in variants}
    assert len(spelled) == 1
    one = spelled.pop()
    assert normalize(one) == one  # the spelling is stable
    assert one.split("@")[1].isascii()  # the domain as SMTP writes it


def test_an_international_domain_is_the_same_in_either_form() -> None:
    assert normalize("Ana@Bücher.Example ") == normalize("ana@xn--bcher-kva.example")
    assert normalize("ana@bücher.example") == "ana@xn--bcher-kva.example"


@pytest.mark.parametrize("text", ["no-at-sign", "@example.com", "ana@", "ana@bü cher.example"])
def test_what_has_no_spelling_is_refused_with_the_reason(text: str) -> None:
    with pytest.raises(AddressError, match="not"):
        normalize(text)
