"""Load the contacts and the compliance inputs at once (arrow releases the GIL)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from campaign_dialer.compliance.consent import ConsentLedger
from campaign_dialer.compliance.dnc import DncList
from campaign_dialer.compliance.ledger import LedgerView
from campaign_dialer.contacts import Contacts, load_contacts


def load_inputs(
    contacts_path: Path,
    *,
    default_region: str,
    columns: Mapping[str, str | None] | None = None,
    dnc_paths: Sequence[Path] = (),
    consent_path: Path | None = None,
    ledger: LedgerView | None = None,
) -> tuple[Contacts, DncList, ConsentLedger | None]:
    """Load contacts, DNC lists and consent ledger concurrently; same result as one by one.

    Most of the work is arrow parsing and kernels that release the GIL, so the three files
    overlap on two cores. The first error (contacts, then DNC, then consent) is raised.
    """
    with ThreadPoolExecutor(3) as pool:
        fc = pool.submit(
            load_contacts, contacts_path, default_region=default_region, columns=columns
        )
        fd = pool.submit(DncList.load, dnc_paths, default_region=default_region, ledger=ledger)
        fl = (
            pool.submit(ConsentLedger.load, consent_path, default_region=default_region)
            if consent_path is not None
            else None
        )
        contacts = fc.result()
        dnc = fd.result()
        consent = fl.result() if fl is not None else None
    return contacts, dnc, consent
