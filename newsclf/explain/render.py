"""An :class:`~newsclf.explain.result.Explanation` shown to a person: ANSI-shaded text for a
terminal, or a self-contained HTML page."""

from __future__ import annotations

import html
import os
import sys
import unicodedata

import numpy as np

# xterm-256 background colours from pale to strong, for shading tokens by importance
_ANSI_SHADES = (231, 230, 229, 223, 222, 216, 215, 209, 203, 196)
# the same for signed scores: green for the predicted label, red against it
_ANSI_FOR = (231, 194, 157, 120, 83, 46)
_ANSI_AGAINST = (231, 224, 217, 210, 203, 196)
_HTML_FOR, _HTML_AGAINST, _HTML_ROLLOUT = "22, 163, 74", "220, 38, 38", "220, 38, 38"


def terminal_text(explanation, color: bool | None = None, top: int = 10) -> str:
    """Text for a terminal: the prediction line, then the tokens.

    With ``color`` (default: when standard output is a terminal and ``NO_COLOR`` is unset)
    the whole token sequence is shown with ANSI backgrounds shaded by importance (signed
    methods: green for the label, red against it, darker = stronger), followed by the
    ranked tokens; without colour only the ranked tokens. Rollout ranks the ``top`` most
    important as ``token  0.123``; signed methods say what the numbers are, then list up to
    ``top`` tokens for the label (``token  +0.123``, strongest first) and up to ``top``
    against it (``token  -0.045``). Tokens are normalized text (no control characters), so
    the output is safe to print whatever the input contained."""
    if color is None:
        color = _stdout_is_terminal()
    lines = [f"prediction: {explanation.prediction_line()}"]
    separator = " " if explanation.tokenizer == "word" else ""
    if color:
        peak = float(np.abs(explanation.importance).max()) if len(explanation.importance) else 0.0
        shaded = []
        for token, weight in zip(explanation.tokens, explanation.importance):
            shades = _ANSI_SHADES if not explanation.signed else (
                _ANSI_FOR if weight > 0 else _ANSI_AGAINST)
            level = 0 if peak <= 0 else int(round(abs(weight) / peak * (len(shades) - 1)))
            shaded.append(f"\x1b[48;5;{shades[level]}m\x1b[38;5;16m{token}\x1b[0m")
        legend = (f"green = for {explanation.label}, red = against; darker = stronger"
                  if explanation.signed else "darker = more important")
        lines.append(f"tokens ({legend}): " + separator.join(shaded))
    if not explanation.signed:
        ranked = explanation.top_tokens(top)
        if ranked:
            lines.append(f"most important tokens ({explanation.description.split(' (')[0]}):")
            lines += _ranked_lines(ranked, "{:.3f}")
        return "\n".join(lines)
    lines.append(f"importance: {explanation.description}")
    supporting, opposing = explanation.tokens_for(top), explanation.tokens_against(top)
    width = max((_display_width(token) for token, _ in supporting + opposing), default=0)
    for name, ranked in ((f"for {explanation.label}", supporting),
                         (f"against {explanation.label}", opposing)):
        lines.append(f"{name}:" if ranked else f"{name}: none")
        lines += _ranked_lines(ranked, "{:+.3f}", width)
    return "\n".join(lines)


def html_page(explanation, top: int = 10) -> str:
    """A self-contained HTML page (UTF-8, inline CSS, no scripts or external resources):
    the prediction, the tokens highlighted by importance (signed methods: green for the
    label, red against it), a legend saying what the numbers are, the ``top`` most
    important tokens (signed methods: up to ``top`` for and up to ``top`` against the
    label) and the class probabilities."""
    esc = html.escape
    peak = float(np.abs(explanation.importance).max()) if len(explanation.importance) else 0.0
    separator = " " if explanation.tokenizer == "word" else ""
    number = "{:+.4f}" if explanation.signed else "{:.4f}"
    spans = []
    for i, (token, weight) in enumerate(zip(explanation.tokens, explanation.importance)):
        alpha = 0.0 if peak <= 0 else abs(weight) / peak
        colour = _HTML_ROLLOUT if not explanation.signed else (
            _HTML_FOR if weight > 0 else _HTML_AGAINST)
        spans.append(f'<span class="tok" style="background: rgba({colour}, {alpha:.3f})" '
                     f'title="#{i}: {number.format(weight)}">{esc(token)}</span>')
    rows = []
    for name, p in sorted(explanation.probabilities.items(), key=lambda item: -item[1]):
        mark = ' class="best"' if name == explanation.label else ""
        rows.append(f'<tr{mark}><td>{esc(str(name))}</td><td class="num">{p:.4f}</td>'
                    f'<td class="bar"><div style="width: {100 * p:.1f}%"></div></td></tr>')
    label = esc(explanation.label)
    if explanation.signed:
        legend = (f'<span class="tok" style="background: rgba({_HTML_FOR}, 0.6)">Green</span>'
                  f' = the token supports {label}, <span class="tok" style="background: '
                  f'rgba({_HTML_AGAINST}, 0.6)">red</span> = it argues against it; darker = '
                  f"stronger. The numbers are {esc(explanation.description)}. Hover a token for its "
                  "score.")
        ranked = (f"<h2>Tokens for {label}</h2>\n"
                  f"{_html_list(explanation.tokens_for(top), 'for', '{:+.3f}')}\n"
                  f"<h2>Tokens against {label}</h2>\n"
                  f"{_html_list(explanation.tokens_against(top), 'against', '{:+.3f}')}")
    else:
        legend = ("Darker red = more important to the pooled representation the classifier\n"
                  f"reads ({esc(explanation.description)}); hover a token for its score.")
        ranked = "<h2>Most important tokens</h2>\n" + _html_list(explanation.top_tokens(top))
    return f"""<!DOCTYPE html>
<html lang="zh">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>newsclf: {label} {explanation.score:.3f}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "WenQuanYi Zen Hei",
   sans-serif; max-width: 46em; margin: 2em auto; padding: 0 1em; color: #222; }}
h1 {{ font-size: 1.3em; }}
.text {{ color: #555; }}
.tokens {{ font-size: 1.6em; line-height: 1.9; margin: 1em 0; }}
.tok {{ padding: 0.1em 0.05em; border-radius: 0.15em; }}
.legend {{ font-size: 0.85em; color: #666; }}
table {{ border-collapse: collapse; margin-top: 1em; }}
td, th {{ padding: 0.2em 0.8em; text-align: left; }}
tr.best {{ font-weight: bold; }}
.num {{ font-variant-numeric: tabular-nums; text-align: right; }}
td.bar {{ width: 12em; }}
td.bar div {{ height: 0.8em; background: #3b82f6; }}
ol {{ columns: 2; }}
</style>
</head>
<body>
<h1>Prediction: {label} <span class="num">({explanation.score:.3f})</span></h1>
<p class="text">{esc(explanation.text)}</p>
<div class="tokens">{separator.join(spans)}</div>
<p class="legend">{legend}</p>
{ranked}
<h2>Class probabilities</h2>
<table>
<tr><th>class</th><th>probability</th><th></th></tr>
{chr(10).join(rows)}
</table>
</body>
</html>
"""


def _ranked_lines(ranked, number: str, width: int | None = None) -> list[str]:
    if width is None:
        width = max((_display_width(token) for token, _ in ranked), default=0)
    return [f"  {token}{' ' * (width - _display_width(token))}  {number.format(weight)}"
            for token, weight in ranked]


def _html_list(ranked, css_class: str | None = None, number: str = "{:.3f}") -> str:
    if not ranked:
        return '<p class="legend">none</p>'
    attribute = f' class="{css_class}"' if css_class else ""
    items = "".join(f'<li>{html.escape(token)} <span class="num">{number.format(weight)}'
                    "</span></li>" for token, weight in ranked)
    return f"<ol{attribute}>{items}</ol>"


def _stdout_is_terminal() -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)
