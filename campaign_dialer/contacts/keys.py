"""Who a row rings: the person key ("tel:<E.164>", else "cid:<contact id>"), built here only.

The contact history, the sticky caller ID, the holdout of an adaptive schedule and the
history hold all key a person this way; one spelling, so a call recorded under one key is
found again under the same key by every other reader.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer.contacts.tables import STRING

PHONE_PREFIX = "tel:"
CONTACT_PREFIX = "cid:"


def phone_key(phone_e164: str) -> str:
    """The person key of a number: a call to any of a person's numbers is a call to them."""
    return f"{PHONE_PREFIX}{phone_e164}"


def person_key(phone_e164: str | None, contact_id: str | None) -> str | None:
    """Who a row rings: the line itself when we know it, else the platform's contact (None
    when the row has neither; a blank string counts as absent)."""
    if phone_e164:
        return phone_key(phone_e164)
    if contact_id:
        return f"{CONTACT_PREFIX}{contact_id}"
    return None


def phone_of(key: str) -> str | None:
    """The E.164 number of a "tel:" person key, None for a "cid:" key."""
    return key[len(PHONE_PREFIX):] if key.startswith(PHONE_PREFIX) else None


def _present(values: pa.Array) -> pa.Array:
    return pc.and_kleene(pc.is_valid(values), pc.not_equal(values, ""))


def _person_keys_arrow(phone: pa.Array, contact_id: pa.Array) -> pa.Array:
    phone = pc.cast(phone, pa.large_string())
    contact_id = pc.cast(contact_id, pa.large_string())
    def text(v: str | None) -> pa.Scalar:
        return pa.scalar(v, pa.large_string())

    tel = pc.binary_join_element_wise(text(PHONE_PREFIX), phone, text(""))
    cid = pc.binary_join_element_wise(text(CONTACT_PREFIX), contact_id, text(""))
    null = text(None)
    return pc.coalesce(
        pc.if_else(pc.fill_null(_present(phone), False), tel, null),
        pc.if_else(pc.fill_null(_present(contact_id), False), cid, null),
    )


def person_keys(phone_e164: Any, contact_id: Any) -> Any:
    """`person_key` of every row at once: pandas Series in, a string Series out (<NA> where
    the row has neither, index kept); arrow arrays in, an arrow array out."""
    if isinstance(phone_e164, pd.Series):
        phone = pa.array(phone_e164.astype(STRING), type=pa.large_string())
        cid = pa.array(pd.Series(contact_id).astype(STRING), type=pa.large_string())
        out = _person_keys_arrow(phone, cid)
        return pd.Series(pd.array(out, dtype=STRING), index=phone_e164.index)
    return _person_keys_arrow(phone_e164, contact_id)
