"""The simulated sub-account's fixed data: agents, owned numbers, contacts, Do-Not-Call list.

JSON file format (``SandboxConfig.data_file`` / ``--data FILE``); every key but ``agents`` and
``phone_numbers`` may be left out::

    {
      "sub_account_id": "sub_8a1f4c2e",
      "phone_numbers": [{"id": "pn_55ad12", "number": "+18885550199"}],
      "agents": [{"id": "agt_3d9b21", "name": "Ava", "outbound_phone_number_id": "pn_55ad12"}],
      "contacts": [{"id": "ct_9d12fa", "phone_number": "+14155550188", "name": "Dana Reyes"}],
      "dnc": ["+14155550100"]
    }

Ids keep the API's prefixes (``agt_``, ``pn_``, ``ct_``), numbers are E.164, and each agent's
``outbound_phone_number_id`` names one of ``phone_numbers``. Without a file the data is
generated from the seed: the fixed records below (so docs and tests can name them) plus a few
seeded contacts.

Numbers the default sub-account owns (all in the fictional 555-01xx ranges):

- ``pn_55ad12`` +18885550199 (toll-free; agent ``agt_3d9b21``'s outbound number),
  ``pn_2e7f90`` +18885550142 (toll-free; agent ``agt_7c4e10``'s), ``pn_0b3c77`` +14155550111 (CA).
- A local-presence pool of ten, one per area code (``LOCAL_POOL``), for caller-ID rotation,
  per-number caps and sticky numbers: ``pn_4a1c20`` +12125550100 (212, NY), ``pn_4a1c21``
  +17185550101 (718, NY), ``pn_4a1c22`` +12015550102 (201, NJ), ``pn_4a1c23`` +13055550103
  (305, FL), ``pn_4a1c24`` +18135550104 (813, FL), ``pn_4a1c25`` +14055550105 (405, OK),
  ``pn_4a1c26`` +14105550106 (410, MD), ``pn_4a1c27`` +15125550107 (512, TX), ``pn_4a1c28``
  +14155550108 (415, CA), ``pn_4a1c29`` +13125550109 (312, IL). No agent calls from them by
  default: a request names one with ``from_phone_number_id``.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

E164 = re.compile(r"^\+[1-9]\d{7,14}$")

#: The default data's local-presence pool: (id, E.164 number, US state of its area code).
LOCAL_POOL: tuple[tuple[str, str, str], ...] = (
    ("pn_4a1c20", "+12125550100", "NY"),
    ("pn_4a1c21", "+17185550101", "NY"),
    ("pn_4a1c22", "+12015550102", "NJ"),
    ("pn_4a1c23", "+13055550103", "FL"),
    ("pn_4a1c24", "+18135550104", "FL"),
    ("pn_4a1c25", "+14055550105", "OK"),
    ("pn_4a1c26", "+14105550106", "MD"),
    ("pn_4a1c27", "+15125550107", "TX"),
    ("pn_4a1c28", "+14155550108", "CA"),
    ("pn_4a1c29", "+13125550109", "IL"),
)


@dataclass(frozen=True)
class PhoneNumber:
    id: str
    number: str


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    outbound_phone_number_id: str


@dataclass(frozen=True)
class Contact:
    id: str
    phone_number: str
    name: str = ""


@dataclass
class SubAccountData:
    """What the sub-account owns; lookups by id are dicts because every POST does three."""

    sub_account_id: str = "sub_8a1f4c2e"
    agents: dict[str, Agent] = field(default_factory=dict)
    phone_numbers: dict[str, PhoneNumber] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)
    dnc: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Fail at start-up, not mid-campaign, on data that could not come from the real API."""
        for pn in self.phone_numbers.values():
            _check(pn.id.startswith("pn_"), f"phone number id {pn.id!r} must start with pn_")
            _check(bool(E164.match(pn.number)), f"phone number {pn.id}: {pn.number!r} not E.164")
        for agent in self.agents.values():
            _check(agent.id.startswith("agt_"), f"agent id {agent.id!r} must start with agt_")
            _check(
                agent.outbound_phone_number_id in self.phone_numbers,
                f"agent {agent.id}: outbound number {agent.outbound_phone_number_id!r} unknown",
            )
        for contact in self.contacts.values():
            _check(contact.id.startswith("ct_"), f"contact id {contact.id!r} must start with ct_")
            _check(
                bool(E164.match(contact.phone_number)),
                f"contact {contact.id}: {contact.phone_number!r} not E.164",
            )
        for number in self.dnc:
            _check(bool(E164.match(number)), f"DNC entry {number!r} not E.164")

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SubAccountData:
        try:
            return cls(
                sub_account_id=str(obj.get("sub_account_id", "sub_8a1f4c2e")),
                phone_numbers={
                    p["id"]: PhoneNumber(id=p["id"], number=p["number"])
                    for p in obj["phone_numbers"]
                },
                agents={
                    a["id"]: Agent(
                        id=a["id"],
                        name=a.get("name", ""),
                        outbound_phone_number_id=a["outbound_phone_number_id"],
                    )
                    for a in obj["agents"]
                },
                contacts={
                    c["id"]: Contact(id=c["id"], phone_number=c["phone_number"],
                                     name=c.get("name", ""))
                    for c in obj.get("contacts", [])
                },
                dnc=set(obj.get("dnc", [])),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"sandbox data: missing or malformed entry ({exc!r})") from exc

    @classmethod
    def load(cls, path: Path | str) -> SubAccountData:
        with open(path, encoding="utf-8") as fh:
            return cls.from_json(json.load(fh))

    def to_json(self) -> dict[str, Any]:
        return {
            "sub_account_id": self.sub_account_id,
            "phone_numbers": [{"id": p.id, "number": p.number}
                              for p in self.phone_numbers.values()],
            "agents": [
                {"id": a.id, "name": a.name,
                 "outbound_phone_number_id": a.outbound_phone_number_id}
                for a in self.agents.values()
            ],
            "contacts": [{"id": c.id, "phone_number": c.phone_number, "name": c.name}
                         for c in self.contacts.values()],
            "dnc": sorted(self.dnc),
        }

    @classmethod
    def generate(cls, seed: int = 0, extra_contacts: int = 6) -> SubAccountData:
        """The default world: fixed, documented records plus a few seeded contacts."""
        phone_numbers = [
            PhoneNumber("pn_55ad12", "+18885550199"),
            PhoneNumber("pn_2e7f90", "+18885550142"),
            PhoneNumber("pn_0b3c77", "+14155550111"),
            *(PhoneNumber(pn_id, number) for pn_id, number, _state in LOCAL_POOL),
        ]
        agents = [
            Agent("agt_3d9b21", "Ava (appointments)", "pn_55ad12"),
            Agent("agt_7c4e10", "Ben (qualification)", "pn_2e7f90"),
        ]
        contacts = [
            Contact("ct_9d12fa", "+14155550188", "Dana Reyes"),
            Contact("ct_5b7e31", "+14155550123", "Sam Okafor"),
            Contact("ct_a04c9e", "+12125550147", "Lee Park"),
            Contact("ct_71f2d8", "+13125550162", "Rosa Lind"),
            Contact("ct_c3e815", "+16175550178", "Ivo Marsh"),
            Contact("ct_0d9b46", "+14155550100", "Noor Haddad"),  # on the DNC list
        ]
        rng = random.Random(f"sandbox-data:{seed}")
        areas = ("206", "303", "404", "512", "602", "713", "808", "919")
        taken = {c.phone_number for c in contacts} | {c.id for c in contacts}
        taken |= {p.number for p in phone_numbers}  # nobody is called on an owned number
        while len(contacts) < 6 + extra_contacts:
            number = f"+1{rng.choice(areas)}55501{rng.randrange(100):02d}"
            contact_id = f"ct_{rng.getrandbits(24):06x}"
            if number in taken or contact_id in taken:
                continue
            taken |= {number, contact_id}
            contacts.append(Contact(contact_id, number, ""))
        return cls(
            sub_account_id="sub_8a1f4c2e",
            phone_numbers={p.id: p for p in phone_numbers},
            agents={a.id: a for a in agents},
            contacts={c.id: c for c in contacts},
            dnc={"+14155550100", "+12025550199"},
        )


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(f"sandbox data: {message}")
