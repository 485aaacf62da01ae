"""A page's HTML: mobile-first, one file (styles inline, no scripts), escaped throughout. The
form posts back to the page's own address with the token it was handed, the phone number, the
consent box and the campaign the visitor came from."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment

_ENV = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)

PAGE = _ENV.from_string(
    """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<title>{{ c.title }}</title>
<style>
  * { box-sizing: border-box; }
  body { margin: 0; font: 16px/1.6 -apple-system, "PingFang SC", "Noto Sans CJK SC", sans-serif; color: #222;
         background: #f6f6f6; }
  main { max-width: 480px; margin: 0 auto; background: #fff; min-height: 100vh; }
  .hero { background: {{ color }}; color: #fff; padding: 28px 20px 24px; }
  .hero h1 { margin: 0; font-size: 24px; line-height: 1.3; }
  .hero p { margin: 8px 0 0; opacity: .9; }
  .hero img { display: block; width: 100%; border-radius: 8px; margin-top: 16px; }
  .highlight { margin: 16px 0 0; font-size: {{ '36px' if layout == 'coupon' else '18px' }}; font-weight: 700; }
  .body { padding: 16px 20px; white-space: pre-line; color: #444; }
  form { padding: 4px 20px 28px; }
  label.phone { display: block; font-size: 14px; color: #666; margin-bottom: 6px; }
  input[type=tel] { width: 100%; font-size: 18px; padding: 12px; border: 1px solid #ccc; border-radius: 8px; }
  .consent { display: flex; gap: 8px; align-items: flex-start; font-size: 13px; color: #555; margin: 14px 0; }
  .consent input { margin-top: 4px; width: 18px; height: 18px; flex: none; }
  button { width: 100%; font-size: 18px; padding: 13px; border: 0; border-radius: 24px; background: {{ color }};
           color: #fff; }
  .error { color: #c0392b; font-size: 14px; margin: 0 0 10px; }
  .done { padding: 40px 20px; text-align: center; font-size: 18px; }
</style>
</head>
<body>
<main>
  <section class="hero">
    <h1>{{ c.title }}</h1>
    {% if c.subtitle %}<p>{{ c.subtitle }}</p>{% endif %}
    {% if c.highlight %}<p class="highlight">{{ c.highlight }}</p>{% endif %}
    {% if c.image_url %}<img src="{{ c.image_url }}" alt="">{% endif %}
  </section>
  {% if done %}
  <p class="done" role="status">{{ c.success }}</p>
  {% else %}
  {% if c.body %}<div class="body">{{ c.body }}</div>{% endif %}
  <form method="post" action="">
    {% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
    <input type="hidden" name="token" value="{{ token }}">
    <input type="hidden" name="utm_campaign" value="{{ utm_campaign }}">
    <input type="hidden" name="utm_content" value="{{ utm_content }}">
    <label class="phone" for="phone">手机号</label>
    <input id="phone" name="phone" type="tel" inputmode="numeric" autocomplete="tel" maxlength="20" required
           value="{{ phone }}">
    <label class="consent"><input type="checkbox" name="consent" value="yes" required>
      <span>{{ c.consent_text }}</span></label>
    <button type="submit">{{ c.button }}</button>
  </form>
  {% endif %}
</main>
</body>
</html>
"""
)

DEFAULT_COLOR = {"signup": "#2f7d6d", "coupon": "#d9472b", "event": "#3a5ba0"}


def render_page(
    layout: str,
    content: dict[str, Any],
    *,
    token: str,
    utm_campaign: str = "",
    utm_content: str = "",
    phone: str = "",
    error: str = "",
    done: bool = False,
) -> str:
    return PAGE.render(
        c=content,
        layout=layout,
        color=content.get("color") or DEFAULT_COLOR.get(layout, "#2f7d6d"),
        token=token,
        utm_campaign=utm_campaign,
        utm_content=utm_content,
        phone=phone,
        error=error,
        done=done,
    )
