"""The documentation site: reference pages generated from the code and never stale, pages
that name nothing of one machine."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import Field, create_model

from campaign_dialer.config import ApiSection, CampaignFile

ROOT = Path(__file__).resolve().parents[1]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "scripts" /
                                                  "gen_reference.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_reference", mod)
    spec.loader.exec_module(mod)
    return mod


def test_every_generated_reference_page_is_current() -> None:
    gen = generator()
    assert gen.stale() == [], "run: python scripts/gen_reference.py"


def test_a_changed_default_in_the_config_model_changes_the_campaign_file_page() -> None:
    """What makes the test above fail when a default changes without regenerating."""
    gen = generator()
    api = create_model("ApiSection", __base__=ApiSection, __doc__=ApiSection.__doc__,
                       requests_per_second=(float, Field(default=11.0, description="x")))
    root = create_model("CampaignFile", __base__=CampaignFile,
                        api=(api, Field(default_factory=api)))
    page = (ROOT / "docs" / "reference" / "campaign-file.md").read_text(encoding="utf-8")
    assert "| `api.requests_per_second` | number (> 0, ≤ 10,000) | `10` |" in page
    changed = gen.campaign_file_page(root)
    assert changed != page and "| `api.requests_per_second` | number | `11` | x |" in changed


def test_an_undescribed_key_reason_or_exit_code_stops_the_generator() -> None:
    gen = generator()
    api = create_model("ApiSection", __base__=ApiSection, new_key=(int, 3))
    root = create_model("CampaignFile", __base__=CampaignFile,
                        api=(api, Field(default_factory=api)))
    with pytest.raises(gen.Stale, match="api.new_key"):
        gen.campaign_file_page(root)
    with pytest.raises(gen.Stale, match="describe"):
        gen._same_keys("reasons", ["blank_phone", "brand_new"], gen.REASON_HELP)


def test_every_reference_page_and_every_docs_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in (ROOT / "docs").rglob("*.md"):
        assert page.relative_to(ROOT / "docs").as_posix() in nav, page
    for name in generator().pages():
        assert f"reference/{name}" in nav


SHIPPED = [ROOT / "README.md", ROOT / "mkdocs.yml", *sorted((ROOT / "docs").rglob("*.md")),
           *sorted((ROOT / "campaign_dialer").rglob("*.py")),
           *sorted((ROOT / "campaign_dialer" / "data").glob("*.csv")),
           *sorted((ROOT / "scripts").glob("*.py")), *sorted((ROOT / "tests").glob("*.py"))]
# An absolute folder of one machine means nothing to a reader (a home, a workspace, a temp
# folder given as where something lives).
MACHINE_PATH = re.compile(r"(?<![\w.])/(work|home|Users|root|mnt)/[\w.-]+|"
                          r"(?<![\w.])/tmp/(?!['\"]?\w*\.sqlite)[\w-]+")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_shipped_file_points_at_a_folder_of_one_machine(path: Path) -> None:
    if path.name == "test_docs.py":
        return  # this file spells the patterns
    text = path.read_text(encoding="utf-8")
    hits = [m.group(0) for m in MACHINE_PATH.finditer(text)]
    assert not hits, hits
