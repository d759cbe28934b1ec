"""The HTML skeleton of the run report: one page, inline style and script, no external resource."""

from __future__ import annotations

import html
import json
from typing import Any, Mapping, Sequence

__all__ = ["page", "section", "figure", "table", "preformatted", "escape", "slider_block", "video_block"]

escape = html.escape

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{background:#20303f;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#c9d3dc;font-size:14px}
nav{padding:8px 28px;background:#e8ecf0;font-size:14px}nav a{margin-right:16px;color:#20303f}
main{padding:8px 28px 40px;max-width:1200px}
section{background:#fff;border:1px solid #dde2e7;border-radius:6px;padding:12px 18px;margin:16px 0}
h2{font-size:18px;margin:4px 0 10px}h3{font-size:15px;margin:14px 0 6px}
figure{margin:8px 0 14px}figure img{max-width:100%;height:auto}
figcaption{font-size:13px;color:#4a5661;margin-top:4px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
td,th{border:1px solid #dde2e7;padding:3px 8px;text-align:right}th{background:#f0f3f6}
td:first-child,th:first-child{text-align:left}
pre{background:#f3f5f7;padding:8px;overflow:auto;font-size:12px;max-height:420px}
.notes{background:#fff7e0;border-color:#f0d58a}
.slider-row{display:flex;align-items:center;gap:12px;margin:6px 0}
.slider-row input[type=range]{flex:1;max-width:640px}
.frame-label{font-size:13px;color:#4a5661;margin:6px 0 2px}
img.slider-frame{image-rendering:pixelated;height:auto;border:1px solid #333;background:#000}
video{max-width:100%;background:#000}
"""

_SCRIPT = """
(function(){
  var data = JSON.parse(document.getElementById('slider-data').textContent);
  var slider = document.getElementById('time-slider');
  var label = document.getElementById('time-label');
  var button = document.getElementById('play-button');
  function show(i){
    Object.keys(data.frames).forEach(function(id){
      var img = document.getElementById(id);
      img.src = data.frames[id][i];
      img.dataset.index = String(i);
    });
    label.textContent = 't = ' + data.times[i] + ' s  (' + (i + 1) + ' / ' + data.times.length + ')';
  }
  slider.addEventListener('input', function(){ show(parseInt(slider.value, 10)); });
  var timer = null;
  button.addEventListener('click', function(){
    if (timer) { clearInterval(timer); timer = null; button.textContent = 'play'; return; }
    button.textContent = 'pause';
    timer = setInterval(function(){
      slider.value = String((parseInt(slider.value, 10) + 1) % data.times.length); show(parseInt(slider.value, 10));
    }, 150);
  });
  show(parseInt(slider.value, 10));
})();
"""


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]], *, script: bool) -> str:
    """The whole document; ``sections`` are ``(anchor, title, html)``."""
    nav = "".join(f'<a href="#{anchor}">{escape(name)}</a>' for anchor, name, _ in sections)
    body = "".join(section(anchor, name, content) for anchor, name, content in sections)
    tail = f"<script>{_SCRIPT}</script>" if script else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header><nav>{nav}</nav>"
            f"<main>{body}</main>{tail}</body></html>\n")


def section(anchor: str, title: str, content: str) -> str:
    """One report section."""
    extra = ' class="notes"' if anchor == "notes" else ""
    return f'<section id="{escape(anchor)}"{extra}><h2>{escape(title)}</h2>{content}</section>'


def figure(uri: str, caption: str, *, alt: str | None = None) -> str:
    """An embedded image with a caption."""
    return (f'<figure><img src="{uri}" alt="{escape(alt or caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A small table of already formatted cells."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def preformatted(text: str) -> str:
    """Text kept as is (configuration, command line)."""
    return f"<pre>{escape(text)}</pre>"


def slider_block(frames: Mapping[str, Sequence[str]], labels: Mapping[str, str], times: Sequence[float],
                 *, width_px: Mapping[str, int], start: int = 0) -> str:
    """Images of every method switched together by one time slider (and a play button)."""
    data = {"frames": dict(frames), "times": [f"{t:.4g}" for t in times]}
    images = "".join(
        f'<div class="frame-label">{escape(labels[key])}</div>'
        f'<img class="slider-frame" id="{key}" src="{frames[key][start]}" width="{width_px[key]}" '
        f'alt="orthoslices of {escape(labels[key])}">'
        for key in frames)
    payload = json.dumps(data).replace("</", "<\\/")
    return ('<div class="slider-row"><button id="play-button" type="button">play</button>'
            f'<input type="range" id="time-slider" min="0" max="{len(times) - 1}" value="{start}" step="1" '
            'aria-label="time"><span id="time-label"></span></div>'
            f"{images}<script type=\"application/json\" id=\"slider-data\">{payload}</script>")


def video_block(uri: str, caption: str) -> str:
    """An embedded looping movie."""
    return (f'<figure><video id="movie" controls loop muted autoplay playsinline preload="auto" src="{uri}">'
            f"</video><figcaption>{escape(caption)}</figcaption></figure>")
