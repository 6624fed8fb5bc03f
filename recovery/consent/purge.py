"""Rows strangers can make without signing in are bounded in number (rate limits at the edge) and in
time (this purge, run by the dispatcher's sweep): expired OAuth states, expired WooCommerce activation
starts, push subscriptions that never became linked to a cart, product views and tracker visitor ids
(browse abandonment) and the track inbox's dead letters (beacons that could not be applied, kept a week for
diagnosis)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_
from sqlalchemy.orm import Session

from recovery.storage import tables as t

#: A finished activation is kept a little longer than its start: the merchant's return page reads it.
USED_ACTIVATION_KEPT = timedelta(days=1)
#: A push subscription no cart ever claimed is useless: nothing will be sent to it.
UNLINKED_PUSH_KEPT = timedelta(days=7)
#: A product view (browse abandonment) is of no use once its reminder's due time is this far past
#: (recovery/flows/browse.py plans only views that came due within two days).
PRODUCT_VIEWS_KEPT = timedelta(days=3)
#: A beacon the track relay could not apply (recovery/intake/track_inbox.py) is kept this long.
TRACK_DEAD_KEPT = timedelta(days=7)
#: A tracker visitor id tied to a cart (browse abandonment across sessions) is of no use after this
#: (recovery/intake/views.py VISITOR_KEPT; repeated here: intake imports nothing of consent).
VISITORS_KEPT = timedelta(days=30)
#: Shopify's related products for a product, cached (recovery/flows/related.py uses an answer up to 7 days
#: old); the products they start from can come from carts strangers made with the tracker.
RECOMMENDATIONS_KEPT = timedelta(days=8)
#: How often the dispatcher runs the purge (each process).
EVERY = timedelta(minutes=10)


def purge_unauthenticated(session: Session, now: datetime) -> dict[str, int]:
    def count(result: object) -> int:
        return int(getattr(result, "rowcount", 0) or 0)

    states = session.execute(delete(t.OAuthState).where(t.OAuthState.expires_at < now))
    activations = session.execute(
        delete(t.WooActivation).where(
            or_(
                and_(t.WooActivation.used_at.is_(None), t.WooActivation.expires_at < now),
                t.WooActivation.expires_at < now - USED_ACTIVATION_KEPT,
            )
        )
    )
    pushes = session.execute(
        delete(t.PushSubscription).where(
            t.PushSubscription.cart_id.is_(None), t.PushSubscription.created_at < now - UNLINKED_PUSH_KEPT
        )
    )
    views = session.execute(delete(t.ProductView).where(t.ProductView.due_at < now - PRODUCT_VIEWS_KEPT))
    dead = session.execute(delete(t.TrackInbox).where(t.TrackInbox.failed_at < now - TRACK_DEAD_KEPT))
    visitors = session.execute(delete(t.TrackerVisitor).where(t.TrackerVisitor.seen_at < now - VISITORS_KEPT))
    related = session.execute(
        delete(t.PlatformRecommendation).where(t.PlatformRecommendation.fetched_at < now - RECOMMENDATIONS_KEPT)
    )
    return {"oauth_states": count(states), "woo_activations": count(activations), "push_subscriptions": count(pushes),
            "product_views": count(views), "track_dead_letters": count(dead), "tracker_visitors": count(visitors),
            "platform_recommendations": count(related)}
