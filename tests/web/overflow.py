"""No console page may scroll sideways: load a page in a viewport and check the document is no wider than it.

On failure the message names the widest element that sticks out past the right edge (outside any scrolling box of
its own, such as a table inside a card with overflow-x:auto), so the fix can start there.
"""

from __future__ import annotations

from typing import Any

PHONE = {"width": 390, "height": 844}
NARROW_PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 860}

# The element that sticks out furthest, skipping those clipped by a scrolling (or hidden-overflow) ancestor that
# itself fits: their overflow is scrolled inside the card, not by the page.
_WIDEST_OFFENDER = """
() => {
  const root = document.documentElement;
  const limit = root.clientWidth;
  const clipped = (el) => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      const ox = getComputedStyle(a).overflowX;
      if (ox !== 'visible' && a.getBoundingClientRect().right <= limit + 0.5) { return true; }
    }
    return false;
  };
  let worst = null;
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right + window.scrollX <= limit + 0.5 || clipped(el)) { continue; }
    if (!worst || r.width > worst.width) {
      const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
        + (typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
      worst = { name: name, width: Math.round(r.width), right: Math.round(r.right + window.scrollX),
                text: (el.innerText || '').replace(/\\s+/g, ' ').slice(0, 60) };
    }
  }
  return { scrollWidth: root.scrollWidth, clientWidth: limit, worst: worst };
}
"""


def overflow(page: Any) -> dict[str, Any]:
    """The document's scroll and client widths, and the widest element past the right edge (or None)."""
    result: dict[str, Any] = page.evaluate(_WIDEST_OFFENDER)
    return result


def assert_no_sideways_scroll(page: Any, what: str | None = None) -> None:
    """The page as loaded fits its viewport's width; otherwise name the element that sticks out furthest."""
    found = overflow(page)
    if found["scrollWidth"] <= found["clientWidth"]:
        return
    worst = found["worst"] or {}
    raise AssertionError(
        f"{what or page.url} scrolls sideways at {page.viewport_size['width']}px: the document is "
        f"{found['scrollWidth']}px wide for {found['clientWidth']}px; widest offender <{worst.get('name')}> "
        f"{worst.get('width')}px wide, right edge at {worst.get('right')}px: {worst.get('text')!r}"
    )


def visit(page: Any, url: str, what: str | None = None) -> Any:
    """Load a page (waiting for its fonts and scripts to settle) and check it does not scroll sideways."""
    response = page.goto(url, wait_until="load")
    page.evaluate("document.fonts.ready.then(() => true)")
    assert_no_sideways_scroll(page, what)
    return response
