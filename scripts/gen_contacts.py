"""Generate messy benchmark inputs: contacts CSV, DNC list, consent ledger.

The contacts file looks like a real CRM export: UTF-8 BOM, CRLF, a header in CRM spelling, quoted
commas, phones in a dozen spellings, some blank, invalid, international or with extensions, some
people twice. The DNC list and the consent ledger overlap the contacts and use other spellings;
consent events have mixed UTC offsets and are written in shuffled order.

    python scripts/gen_contacts.py --rows 1000000 --out out/bench
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SPELLINGS = (
    "{a}{b}{c}",
    "({a}) {b}-{c}",
    "{a}-{b}-{c}",
    "{a}.{b}.{c}",
    "+1 {a} {b} {c}",
    "+1{a}{b}{c}",
    "1-{a}-{b}-{c}",
    "+1 ({a}) {b}-{c}",
    "1 ({a}) {b} {c}",
    " {a} {b} {c} ",
)
MESSY = (
    "{a}-{b}-{c} x{e}",  # extension
    "{a}/{b}-{c} ext. {e}",
    "+44 20 7946 {c}",  # international
    "+61 2 9374 {c}",
    "tel: {a} {b} {c}",
)
STATES = ("CA", "TX", "FL", "NY", "IL", "", "", "", "ok", "Texas", "America/Chicago", "EST")


def _npas() -> np.ndarray:
    rows = (ROOT / "campaign_dialer" / "data" / "area_codes.csv").read_text().splitlines()
    return np.array([r.split(",")[0] for r in rows if r[:1].isdigit() and ",US," in r])


def numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random 10-digit US national numbers (area code from the table, exchange 200-999)."""
    npa = rng.choice(_npas(), n)
    exch = rng.integers(200, 1000, n).astype(str)
    line = np.char.zfill(rng.integers(0, 10000, n).astype(str), 4)
    return np.char.add(np.char.add(npa, exch), line)


def spell(rng: np.random.Generator, nat: np.ndarray, messy: float) -> list[str]:
    choice = rng.integers(0, len(SPELLINGS), len(nat))
    is_messy = rng.random(len(nat)) < messy
    mchoice = rng.integers(0, len(MESSY), len(nat))
    ext = rng.integers(1, 999, len(nat))
    out = []
    for i, d in enumerate(nat.tolist()):
        fmt = MESSY[mchoice[i]] if is_messy[i] else SPELLINGS[choice[i]]
        out.append(fmt.format(a=d[:3], b=d[3:6], c=d[6:], e=ext[i]))
    return out


def quote(cell: str) -> str:
    if any(ch in cell for ch in ',"\r\n'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def generate(out: Path, rows: int, dnc_rows: int, consent_rows: int, seed: int = 7) -> dict:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    people = numbers(rng, rows)
    # ~2% of rows repeat an earlier person (same number, other spelling)
    dup = rng.random(rows) < 0.02
    src = rng.integers(0, rows, rows)
    nat = np.where(dup & (src < np.arange(rows)), people[src], people)
    phones = spell(rng, nat, messy=0.02)
    blank = rng.random(rows) < 0.005
    invalid = rng.random(rows) < 0.005
    ids = np.char.add("C", np.arange(1, rows + 1).astype(str))
    states = rng.choice(np.array(STATES, dtype=object), rows)
    with (out / "contacts.csv").open("w", encoding="utf-8-sig", newline="") as f:
        f.write("Contact ID,First Name,Mobile Phone,State,Notes\r\n")
        lines = []
        for i in range(rows):
            p = "" if blank[i] else ("555-01" if invalid[i] else phones[i])
            note = "likes calls, mornings" if i % 7 == 0 else ""
            lines.append(f"{ids[i]},Name{i},{quote(p)},{states[i]},{quote(note)}\r\n")
            if len(lines) >= 100_000:
                f.write("".join(lines))
                lines.clear()
        f.write("".join(lines))
    # DNC: 10% of the contacts plus unrelated numbers, other spellings
    k = min(dnc_rows // 10, rows)
    dnc_nat = np.concatenate([rng.choice(people, k), numbers(rng, dnc_rows - k)])
    rng.shuffle(dnc_nat)
    with (out / "dnc.csv").open("w", encoding="utf-8", newline="") as f:
        f.write("phone_number\n")
        f.write("\n".join(quote(x) for x in spell(rng, dnc_nat, messy=0.0)) + "\n")
    # consent: grants for ~40% of people, some revokes and expiries, shuffled, mixed offsets
    who = rng.integers(0, rows, consent_rows)
    base = np.datetime64("2025-01-01T00:00:00")
    secs = rng.integers(0, 600 * 86400, consent_rows)
    revoke = rng.random(consent_rows) < 0.15
    expires = rng.random(consent_rows) < 0.2
    offsets = np.array(["Z", "+00:00", "-05:00", "-08:00", "+01:00", "-04:00", "+05:30"])
    off_idx = rng.integers(0, len(offsets), consent_rows)
    off = offsets[off_idx]
    by_id = rng.random(consent_rows) < 0.3
    shift = np.array([_offset_seconds(o) for o in offsets])[off_idx]
    t = base + secs.astype("timedelta64[s]")
    at = np.char.add((t + shift.astype("timedelta64[s]")).astype(str), off)
    exp_days = rng.integers(1, 400, consent_rows).astype("timedelta64[D]")
    exp = np.char.add((t + exp_days).astype(str), "Z")
    exp = np.where(expires & ~revoke, exp, "")
    ev = np.where(revoke, "revoke", "grant")
    phone_list = np.array(phones, dtype=object)
    with (out / "consent.csv").open("w", encoding="utf-8", newline="") as f:
        f.write("phone,contact_id,event,event_at,expires_at,source\n")
        lines = []
        for j in range(consent_rows):
            i = int(who[j])
            phone = "" if by_id[j] else quote(phone_list[i])
            cid = ids[i] if by_id[j] else ""
            lines.append(f"{phone},{cid},{ev[j]},{at[j]},{exp[j]},web form\n")
        f.write("".join(lines))
    return {
        "contacts": out / "contacts.csv",
        "dnc": out / "dnc.csv",
        "consent": out / "consent.csv",
    }


def _offset_seconds(off: str) -> int:
    if off in ("Z", "+00:00"):
        return 0
    sign = 1 if off[0] == "+" else -1
    return sign * (int(off[1:3]) * 3600 + int(off[4:6]) * 60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dnc-rows", type=int, default=None)
    ap.add_argument("--consent-rows", type=int, default=None)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    a = ap.parse_args()
    t = time.perf_counter()
    paths = generate(
        a.out,
        a.rows,
        a.dnc_rows if a.dnc_rows is not None else a.rows,
        a.consent_rows if a.consent_rows is not None else a.rows // 2,
        a.seed,
    )
    print(f"generated in {time.perf_counter() - t:.1f} s: " + ", ".join(map(str, paths.values())))


if __name__ == "__main__":
    main()
