"""Carts made by bots and crawlers: kept for analytics, never messaged.

What counts, conservatively (a real shopper wrongly flagged loses one reminder; a crawler mailed costs
sender reputation):
- a user agent that crawlerdetect (a maintained pattern list) knows as a crawler, or a headless browser;
- an address of a known crawler: Google's shopping crawler (storebot) checks out with addresses at
  storebotmail.joonix.net (market.md §2 item 6; blocking it risks Merchant Center, so we never block,
  we just never mail it);
- a disposable-address domain (the `disposable-email-domains` package's list);
- no human interaction: a tracker cart with contact details but no item ever added.
Shopify checkouts carry no user agent; the tracker may set `user_agent` on its snapshot.
"""

from __future__ import annotations

import functools
from typing import Any

CRAWLER_DOMAINS = frozenset({"storebotmail.joonix.net"})
HEADLESS_MARKERS = ("headlesschrome", "phantomjs", "lighthouse", "puppeteer", "playwright", "selenium")


@functools.cache
def _detector() -> Any:
    from crawlerdetect import CrawlerDetect

    return CrawlerDetect()


@functools.cache
def _disposable() -> frozenset[str]:
    from disposable_email_domains import blocklist

    return frozenset(blocklist)


def classify(email: str | None = None, user_agent: str | None = None) -> str | None:
    """Why these look like a bot's ("crawler_ua", "crawler_address", "disposable_domain"), or None."""
    if user_agent:
        lowered = user_agent.lower()
        if any(marker in lowered for marker in HEADLESS_MARKERS) or _detector().isCrawler(user_agent):
            return "crawler_ua"
    domain = (email or "").rpartition("@")[2].strip().lower()
    if domain:
        if domain in CRAWLER_DOMAINS or any(domain.endswith("." + d) for d in CRAWLER_DOMAINS):
            return "crawler_address"
        if domain in _disposable():
            return "disposable_domain"
    return None


def cart_reason(cart: Any) -> str | None:
    """The stored reason, else what the cart's own fields show (carts ingested before the list changed)."""
    if cart.bot_reason:
        return str(cart.bot_reason)
    if cart.source == "tracker" and not cart.line_items:
        return "no_interaction"
    return classify(cart.email)
