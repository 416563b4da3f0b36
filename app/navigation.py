"""The dashboard's pages, as data, and the ``st.navigation`` menu built from them.

To add a page, write ``pages/<name>.py`` and make sure it has an entry in
:data:`PAGES` (title, icon, file, section). Entries whose file does not exist
yet are skipped, so the app runs while pages are still being written and picks
them up as soon as their file appears. Every page is registered explicitly:
with ``st.navigation`` the ``pages/`` folder is not auto-discovered.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Repository root (the folder of ``streamlit_app.py``); page files are relative to it.
ROOT: Path = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class PageSpec:
    """One page of the dashboard.

    Attributes:
        title: menu and browser-tab title, e.g. ``"Compose"``.
        icon: a Material icon (``":material/science:"``) or an emoji.
        file: page script relative to the repository root, e.g. ``"pages/compose.py"``;
            its stem is the URL path (``/compose``).
        section: menu section, e.g. ``"Start"``.
        default: the page shown at ``/`` (exactly one: Home).
    """

    title: str
    icon: str
    file: str
    section: str
    default: bool = False

    @property
    def url_path(self) -> str:
        """URL path of the page (``""`` for the default page, else the file stem)."""
        return "" if self.default else Path(self.file).stem

    def exists(self, root: Path = ROOT) -> bool:
        """True when the page's file is present."""
        return (root / self.file).is_file()


#: Every page, in menu order. Append (or fill in) one entry per new page.
PAGES: list[PageSpec] = [
    PageSpec("Home", ":material/home:", "pages/home.py", "Start", default=True),
    PageSpec("Data", ":material/table_chart:", "pages/data.py", "Start"),
    PageSpec("Compose", ":material/science:", "pages/compose.py", "Start"),
    PageSpec("Train", ":material/model_training:", "pages/train.py", "Model"),
    PageSpec("Sweep", ":material/tune:", "pages/sweep.py", "Model"),
    PageSpec("Latents", ":material/scatter_plot:", "pages/latents.py", "Model"),
    PageSpec("Explain", ":material/insights:", "pages/explain.py", "Model"),
    PageSpec("Predict", ":material/online_prediction:", "pages/predict.py", "Use"),
    PageSpec("Screen", ":material/filter_alt:", "pages/screen.py", "Use"),
    PageSpec("Design", ":material/design_services:", "pages/design.py", "Use"),
    PageSpec("Compare", ":material/compare_arrows:", "pages/compare.py", "Use"),
    PageSpec("Learn", ":material/school:", "pages/learn.py", "Teach"),
]


def available_pages(root: Path = ROOT) -> list[PageSpec]:
    """The entries of :data:`PAGES` whose file exists, in menu order."""
    return [spec for spec in PAGES if spec.exists(root)]


def page_spec(title_or_file: str) -> PageSpec | None:
    """The entry with this title (case-insensitive) or file, or ``None``."""
    wanted = title_or_file.lower()
    for spec in PAGES:
        if spec.title.lower() == wanted or spec.file == title_or_file:
            return spec
    return None


def is_available(title_or_file: str, root: Path = ROOT) -> bool:
    """True when the page exists; use it before ``st.page_link`` to a page that may not be written yet."""
    spec = page_spec(title_or_file)
    return spec is not None and spec.exists(root)


def sections(root: Path = ROOT) -> dict[str, list[PageSpec]]:
    """Available pages grouped by section, sections in order of first appearance."""
    grouped: dict[str, list[PageSpec]] = {}
    for spec in available_pages(root):
        grouped.setdefault(spec.section, []).append(spec)
    return grouped


def build_navigation(root: Path = ROOT):  # -> streamlit.navigation.page.StreamlitPage
    """Register every available page with ``st.navigation`` (sidebar menu, grouped by section).

    Returns the selected page; the entry script calls ``.run()`` on it.
    """
    import streamlit as st

    menu = {
        section: [
            st.Page(str(root / spec.file), title=spec.title, icon=spec.icon, default=spec.default,
                    **({} if spec.default else {"url_path": spec.url_path}))
            for spec in specs
        ]
        for section, specs in sections(root).items()
    }
    return st.navigation(menu, position="sidebar", expanded=True)
