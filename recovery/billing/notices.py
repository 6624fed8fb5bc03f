"""The 80 % / 100 % notices: flagged by the limit check (usage.py, in the same UPDATE), emailed once per
store and period each by the dispatcher (app/billing_mail.py), shown as the banner until the period resets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from recovery.storage import tables as t


@dataclass(frozen=True)
class Notice:
    store_id: int
    period_end: datetime
    share: int  # 80 or 100
    used: int
    allowance: int

    def mark_sent(self, session: Session, now: datetime) -> None:
        column = t.PlanUsage.notice_100_sent_at if self.share == 100 else t.PlanUsage.notice_80_sent_at
        session.execute(
            update(t.PlanUsage)
            .where(t.PlanUsage.store_id == self.store_id, t.PlanUsage.period_end == self.period_end)
            .values({column.key: now})
        )


def claim_notices(session: Session, now: datetime, limit: int = 50) -> list[Notice]:
    """Flagged, unsent notices (rows locked, skipping those another dispatcher holds). A store that reached
    100 % before its 80 % email went gets only the 100 % one."""
    u = t.PlanUsage
    rows = session.scalars(
        select(u)
        .where(or_(
            u.notice_80_at.is_not(None) & u.notice_80_sent_at.is_(None),
            u.notice_100_at.is_not(None) & u.notice_100_sent_at.is_(None),
        ), u.period_end > now)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()  # fmt: skip
    notices = []
    for row in rows:
        if row.notice_100_at is not None and row.notice_100_sent_at is None:
            if row.notice_80_sent_at is None:
                row.notice_80_sent_at = now  # superseded by the 100 % notice
            notices.append(Notice(row.store_id, row.period_end, 100, row.used, row.allowance))
        else:
            notices.append(Notice(row.store_id, row.period_end, 80, row.used, row.allowance))
    return notices


def notice_text(store: t.Store, notice: Notice, app_url: str) -> tuple[str, str]:
    name = store.name or store.domain
    resets = notice.period_end.strftime("%Y-%m-%d")
    if notice.share == 100:
        subject = f"CartResQ: {name} reached its plan limit"
        lead = (f"{name} has started recovery for {notice.used} of the {notice.allowance} carts its plan includes "
                f"this period. New abandoned carts are recorded but no recovery starts for them until you upgrade "
                f"or the period resets on {resets}. Sequences already started finish as planned.")
    else:
        subject = f"CartResQ: {name} has used 80 % of its plan"
        lead = (f"{name} has started recovery for {notice.used} of the {notice.allowance} carts its plan includes "
                f"this period (resets on {resets}). At 100 %, new carts are held back until you upgrade.")
    return subject, f"{lead}\n\nPlans and usage: {app_url}/app/billing\n"
