"""A two-department corpus and four keys, for the access-control (leak) tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from appliance.container import Components
from appliance.settings import Settings
from appliance.settings.settings import AccessSettings, SourceAccess

# Each department's documents carry a marker that appears nowhere else: if it shows up in any
# response to the other department, a document leaked.
HR_MARKER = "PINEAPPLE-4471"
ENG_MARKER = "ORCHARD-9352"
HR_TEXT = (
    "Salary bands. The confidential salary band for level 7 engineers is code "
    f"{HR_MARKER}. Bonuses are paid in March after the compensation review."
)
ENG_TEXTS = [
    f"The build cache server is called {ENG_MARKER}. Point your build at it to reuse artifacts.",
    "Release trains leave every second Tuesday; the release manager tags the build.",
    "Code review needs two approvals; the CI pipeline must be green before merging.",
    "On-call engineers rotate weekly; the pager hands over on Monday at ten.",
]


@dataclass(frozen=True)
class Department:
    folder: Path
    doc_ids: list[str]


def write_corpus(root: Path) -> tuple[Path, Path]:
    hr, eng = root / "hr", root / "eng"
    hr.mkdir(parents=True)
    eng.mkdir(parents=True)
    # The HR text mentions salary/level/engineers: a question about it is nearest the HR file.
    (hr / "salary-bands.txt").write_text(HR_TEXT + "\n")
    for n, text in enumerate(ENG_TEXTS):
        (eng / f"eng-{n}.txt").write_text(text + "\n")
    return hr, eng


def with_department_access(settings: Settings, hr: Path, eng: Path) -> Settings:
    settings.access = AccessSettings(
        default_groups=["everyone"],
        sources=[
            SourceAccess(path=hr, groups=["hr"], collection="hr"),
            SourceAccess(path=eng, groups=["eng"], collection="eng"),
        ],
    )
    return settings


def ingest_departments(components: Components, hr: Path, eng: Path) -> None:
    from ingest.service import IngestService

    report = IngestService.for_components(components).ingest([hr, eng])
    assert report.count("indexed") == 1 + len(ENG_TEXTS), report.outcomes


@dataclass(frozen=True)
class Keys:
    eng_reader: str
    hr_reader: str
    admin: str
    auditor: str


def create_keys(components: Components) -> Keys:
    store = components.keys
    return Keys(
        eng_reader=store.create("alice", "reader", ["eng"], "test")[1],
        hr_reader=store.create("bob", "reader", ["hr"], "test")[1],
        admin=store.create("root", "admin", ["eng"], "test")[1],
        auditor=store.create("carol", "auditor", [], "test")[1],
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
