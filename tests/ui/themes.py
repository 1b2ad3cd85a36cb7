"""Theme switching and contrast measurement for the UI tests.

``use_theme`` writes the theme setting through JupyterLab's settings API
(the same setting the Settings > Theme menu writes; Notebook 7 reads it
too); pages loaded afterwards use it. ``contrast`` measures, in the page,
the WCAG 2 contrast ratio between an element's text colour and the colour
behind it, from the computed styles: every colour is painted on a canvas
and read back, so any CSS colour syntax (rgb(), color(srgb ...), a
color-mix() result) and any alpha is resolved the way the browser draws
it (alpha composited over the layers behind, down to an opaque one)."""

from __future__ import annotations

import json
import urllib.request

WCAG_AA = 4.5  # the contrast ratio normal text needs (WCAG 2, level AA)
LIGHT = "JupyterLab Light"
DARK = "JupyterLab Dark"
THEMES_SETTING = "lab/api/settings/@jupyterlab/apputils-extension:themes"


def use_theme(jupyter_lab, theme: str) -> None:
    base_url, token = jupyter_lab
    body = json.dumps({"raw": json.dumps({"theme": theme})}).encode()
    request = urllib.request.Request(
        f"{base_url}/{THEMES_SETTING}",
        data=body,
        method="PUT",
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status in (200, 204), response.status


def wait_for_theme(page, theme: str) -> None:
    light = "true" if theme == LIGHT else "false"
    page.wait_for_function(f"document.body.dataset.jpThemeLight === '{light}'", timeout=60_000)


CONTRAST_JS = """
([textSel, fillSel]) => {
  const SHAPES = ['rect', 'circle', 'ellipse', 'path', 'polygon'];
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 1;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const rgba = (css) => {
    ctx.clearRect(0, 0, 1, 1);
    ctx.fillStyle = 'rgba(0, 0, 0, 0)';
    ctx.fillStyle = css;
    ctx.fillRect(0, 0, 1, 1);
    const [r, g, b, a] = ctx.getImageData(0, 0, 1, 1).data;
    return a === 0 ? [r, g, b, 0] : [r * 255 / a, g * 255 / a, b * 255 / a, a / 255];
  };
  const over = (top, bottom) => {
    const a = top[3];
    return [0, 1, 2].map(i => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  };
  // The opaque colour behind an element: its own background (or SVG fill)
  // over those of its ancestors, down to the page's.
  const behind = (el) => {
    const layers = [];
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
      const style = getComputedStyle(n);
      const shape = n === el && SHAPES.includes(n.tagName);  // SVG fills are inherited
      const own = shape ? style.fill : style.backgroundColor;
      if (own && own !== 'none') {
        const c = rgba(own);
        if (c[3] > 0) layers.push(c);
        if (c[3] >= 1) break;
      }
    }
    let color = [255, 255, 255, 1];
    for (const layer of layers.reverse()) color = over(layer, color);
    return color;
  };
  const lum = (c) => {
    const [r, g, b] = c.slice(0, 3).map(v => {
      v = v / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const texts = [...document.querySelectorAll(textSel)];
  return texts.map(text => {
    const fillEl = fillSel ? text.parentElement.querySelector(fillSel) : text;
    const bg = behind(fillEl);
    const style = getComputedStyle(text);
    const fg = over(rgba(text instanceof SVGElement ? style.fill : style.color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    return { text: text.textContent, ratio: (hi + 0.05) / (lo + 0.05) };
  });
}
"""


def contrast(page, text_selector: str, fill_selector: str | None = None) -> list[dict]:
    """[{text, ratio}] for each element matching ``text_selector``; the
    colour behind it is its sibling ``fill_selector`` (an SVG shape drawn
    under it), else its own and its ancestors' backgrounds."""
    return page.evaluate(CONTRAST_JS, [text_selector, fill_selector])
