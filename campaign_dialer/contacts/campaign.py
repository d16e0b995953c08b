"""A campaign's contacts, read as every command reads them (`check`, `run`, `results`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from campaign_dialer.contacts.load import Contacts, load_contacts

if TYPE_CHECKING:  # only its fields are read: contacts stays below config at run time
    from campaign_dialer.config import Campaign


def load_campaign_contacts(campaign: Campaign, *, passthrough: bool = True) -> Contacts:
    """The campaign's contacts, read as the run read them (its columns, region, encoding):
    one reader, so `results` rebuilds exactly the rows `run` dialed from. `passthrough`:
    as `load_contacts` (False: without the input's own columns, for a plan no results are
    written from)."""
    m = campaign.model
    cols = {k: v for k, v in m.inputs.columns.model_dump().items() if v}
    return load_contacts(
        campaign.contacts_path, default_region=m.campaign.default_region,
        columns=cols or None, encoding=m.inputs.encoding, passthrough=passthrough,
    )
