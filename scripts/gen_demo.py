"""Generate the demo campaign's messy inputs (deterministic): contacts, DNC, consent, sandbox data.

    python scripts/gen_demo.py [--rows 300] [--out campaigns/demo]

Numbers use the 555-01XX range reserved for fiction in the North American plan and the
Ofcom drama ranges for the UK, so no real person's number ever appears in a demo.
"""

from __future__ import annotations

import argparse
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

AREA_CODES = {  # area code -> weight; zones: Eastern, Central, Mountain, Arizona, Pacific, ...
    "212": 6, "718": 3, "917": 3, "617": 2, "404": 2, "305": 3, "407": 2,  # Eastern (FL: 305, 407)
    "312": 4, "773": 2, "214": 3, "512": 2, "405": 2,  # Central (TX: 214, 512; OK: 405)
    "303": 2, "720": 1, "602": 2, "480": 1,  # Mountain, Arizona (no DST)
    "213": 3, "310": 2, "415": 3, "206": 2,  # Pacific
    "808": 2, "907": 1, "850": 1,  # Hawaii, Alaska, split FL panhandle
}
FIRST = ["Ava", "Ben", "Chloé", "Dmitri", "Eve", "Farah", "Gus", "Hana", "Ivan", "Jun", "Kofi",
         "Lena", "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tomás", "Uma", "Yara"]
LAST = ["Okafor", "Nguyen", "Smith", "García", "Müller", "O'Brien", "Kowalski", "Dubois",
        "Tanaka", "Haddad", "Silva", "Johansson", "Reyes", "Khan", "Rossi"]
COMPANIES = ["Acme, Inc.", "Blue Harbor LLC", "Cedar & Pine", "Delta \"Prime\" Co",
             "Evergreen Health", "<script>alert('x')</script> Ltd", "=HYPERLINK(\"http://x\")",
             "Fjord Analytics", "Granite Partners", "@SUM(A1:A2)", "-2+3 Holdings"]


def spell(e164: str, rng: random.Random) -> str:
    """The same US number the many ways CRM exports write it."""
    d = e164[2:]
    a, b, c = d[:3], d[3:6], d[6:]
    return rng.choice([
        e164, f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}", f"1{a}{b}{c}", f"+1 {a} {b} {c}",
        f"{a}{b}{c}", f"1-{a}-{b}-{c}", f" {a} {b} {c} ", f"+1 ({a}) {b}-{c} ext. 12",
    ])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path("campaigns/demo"))
    ap.add_argument("--seed", type=int, default=20260609)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    codes = list(AREA_CODES)
    weights = list(AREA_CODES.values())
    used: set[str] = set()
    people: list[str] = []
    while len(people) < int(args.rows * 0.9):
        n = f"+1{rng.choices(codes, weights)[0]}55501{rng.randrange(100):02d}"
        if n not in used:
            used.add(n)
            people.append(n)
    people += ["+442079460" + f"{rng.randrange(1000):03d}" for _ in range(6)]  # London drama
    rows: list[list[str]] = []
    base = datetime(2026, 6, 9, 17, 0, tzinfo=UTC)
    for i, e164 in enumerate(people):
        cid = f"CRM-{10000 + i}" if rng.random() < 0.7 else ""
        phone = spell(e164, rng) if e164.startswith("+1") else rng.choice(
            [e164, "+44 20 7946 0" + e164[-3:], "0044 20 7946 0" + e164[-3:]])
        state = "" if rng.random() < 0.8 else rng.choice(["CA", "NY", "TX", "FL"])
        rows.append([cid, rng.choice(FIRST), rng.choice(LAST), phone,
                     rng.choice(COMPANIES), state, f"{rng.randrange(1, 90)}"])
    # the mess: duplicates in other spellings, blanks, junk, a contact with no number
    for _ in range(12):
        src = rng.choice(rows[: len(people)])
        e = next(p for p in people if p[-4:] == "".join(ch for ch in src[3] if ch.isdigit())[-4:])
        rows.append(["", src[1], src[2], spell(e, rng) if e.startswith("+1") else e,
                     src[4], "", "1"])
    rows += [["", "No", "Number", "", "Nowhere Co", "", "3"] for _ in range(4)]
    rows += [["", "Bad", "Digits", junk, "Typo LLC", "", "2"]
             for junk in ("555-0199", "12345", "call me maybe", "+1 (000) 555-0101",
                          "999-555-01999")]
    rng.shuffle(rows)
    header = ["Contact ID", "First Name", "Last Name", "Mobile Phone", "Company", "State",
              "Deal Score"]

    def csv_line(cells: list[str]) -> str:
        out_cells = []
        for c in cells:
            if any(ch in c for ch in ',"\n'):
                c = '"' + c.replace('"', '""') + '"'
            out_cells.append(c)
        return ",".join(out_cells)

    # A real export: UTF-8 with BOM and CRLF line ends.
    text = "\r\n".join(csv_line(r) for r in [header, *rows]) + "\r\n"
    (out / "contacts.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))

    us = [p for p in people if p.startswith("+1")]
    rng.shuffle(us)
    local_dnc = us[:14]
    platform_dnc = us[14:22]
    no_consent = set(us[22:40])
    dnc_lines = ["phone,added,source"] + [
        f"{spell(p, rng).strip()},2026-0{rng.randrange(1, 6)}-1{rng.randrange(10)},web form"
        for p in local_dnc
    ]
    (out / "dnc.csv").write_text("\n".join(dnc_lines) + "\n", encoding="utf-8")

    events = ["phone,event,event_at,expires_at,source"]
    offsets = ["+00:00", "-05:00", "-07:00", "+02:00", "Z"]
    for idx, p in enumerate(people):
        if p in no_consent:
            continue
        t = base - timedelta(days=rng.randrange(10, 300), minutes=rng.randrange(1440))
        off = rng.choice(offsets)
        stamp = (t.astimezone(UTC) if off in ("Z", "+00:00") else t).strftime("%Y-%m-%dT%H:%M:%S")
        tzpart = "Z" if off == "Z" else off
        if off not in ("Z", "+00:00"):
            sign = 1 if off[0] == "+" else -1
            local = t + sign * timedelta(hours=int(off[1:3]))
            stamp = local.strftime("%Y-%m-%dT%H:%M:%S")
        expires = ""
        if idx % 17 == 0:
            expires = (base - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")  # expired
        events.append(f"{p},grant,{stamp}{tzpart},{expires},webform")
        if idx % 23 == 0:  # revoked later by reply STOP
            events.append(f"{p},revoke,{(t + timedelta(days=5)).strftime('%Y-%m-%dT%H:%M:%SZ')},"
                          ",sms STOP")
        if idx % 29 == 0:  # a grant dated after the demo clock: not consent yet
            events[-1] = (f"{p},grant,{(base + timedelta(days=2)).strftime('%Y-%m-%dT%H:%M:%SZ')},"
                          ",event booth")
    body = events[:1] + rng.sample(events[1:], len(events) - 1)  # file order means nothing
    (out / "consent.csv").write_text("\n".join(body) + "\n", encoding="utf-8")

    data = {
        "sub_account_id": "sub_8a1f4c2e",
        "phone_numbers": [{"id": "pn_55ad12", "number": "+18885550199"}],
        "agents": [{"id": "agt_3d9b21", "name": "Ava",
                    "outbound_phone_number_id": "pn_55ad12"}],
        "contacts": [],
        "dnc": platform_dnc,
    }
    (out / "sandbox-data.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(rows)} contacts, {len(local_dnc)} local DNC, {len(body) - 1} consent "
          f"events, {len(platform_dnc)} platform DNC numbers to {out}")


if __name__ == "__main__":
    main()
