"""Takes a web page's navigation, banners and footers out before it is parsed.

Generated manuals repeat the same links on every page (DocBook's "Prev Up Home Next" table,
Sphinx's sidebar and pilcrow anchors, a site's header and footer). Left in, they become chunks
that match every question a little and crowd real passages out of the top results, and they put
"Next" and "Home" into answers. What is removed is what HTML itself marks as not being the
page's content (nav, header, footer, aside, ARIA landmark roles) and the navigation classes of
the common documentation generators; anything else, DocBook's boxed "sidebar" notes included,
is the page's text and stays.
"""

from __future__ import annotations

import lxml.html
from lxml import etree

# Elements that are never the page's own text.
_DROP_TAGS = frozenset(
    {"script", "style", "noscript", "template", "nav", "aside", "form", "button", "iframe",
     "svg", "img", "footer"}
)  # fmt: skip
# ARIA landmarks that mark navigation around the content.
_DROP_ROLES = frozenset({"navigation", "banner", "contentinfo", "search"})
# Navigation classes of DocBook XSL (navheader, navfooter), Publican (docnav), Sphinx
# (sphinxsidebar, related, headerlink, footer) and common site themes.
_DROP_CLASSES = frozenset(
    {"navheader", "navfooter", "docnav", "sphinxsidebar", "related", "headerlink", "footer",
     "breadcrumb", "breadcrumbs", "navbar", "skip-link", "skiplink", "site-header", "site-footer"}
)  # fmt: skip
_DROP_IDS = frozenset(
    {"banner", "header", "footer", "nav", "navbar", "navigation", "menu", "breadcrumbs",
     "sidebar-nav"}
)  # fmt: skip


def _is_boilerplate(element: etree._Element) -> bool:
    tag = element.tag if isinstance(element.tag, str) else ""
    if tag in _DROP_TAGS:
        return True
    if tag == "header":
        # A page's own heading often sits in <header> inside <article> or <main>: keep those.
        return element.find(".//h1") is None and element.find(".//h2") is None
    if (element.get("role") or "").lower() in _DROP_ROLES:
        return True
    if (element.get("id") or "").lower() in _DROP_IDS:
        return True
    classes = set((element.get("class") or "").lower().split())
    return bool(classes & _DROP_CLASSES)


def clean_html(content: bytes, encoding: str) -> str:
    """The page as HTML text without its navigation; the input unchanged if it is not HTML."""
    parser = lxml.html.HTMLParser(encoding=encoding, remove_comments=True)
    try:
        document = lxml.html.document_fromstring(content, parser=parser)
    except (etree.ParserError, ValueError):
        return content.decode(encoding, errors="replace")
    # Collected first: removing while iterating would skip siblings.
    doomed = [element for element in document.iter() if _is_boilerplate(element)]
    for element in doomed:
        if element.getparent() is not None:
            element.drop_tree()  # keeps the text that follows the element
    return lxml.html.tostring(document, encoding="unicode")
