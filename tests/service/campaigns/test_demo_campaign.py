"""The demo city gets one running campaign, once."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.accounts.principal import SYSTEM
from service.campaigns.campaigns import CampaignService
from service.cases.catalogue import seed_catalogue
from service.db.models import Campaign
from service.demo import load_demo_campaign, load_demo_hotspots
from service.settings import AppSettings


def test_demo_campaign_runs_today_over_the_district(
    session: Session, demo_loaded: AppSettings
) -> None:
    seed_catalogue(session, demo_loaded.grids.city)
    load_demo_hotspots(session, demo_loaded)
    name = load_demo_campaign(session, demo_loaded)
    assert name is not None and "专项整治" in name
    svc = CampaignService(session, demo_loaded)
    running = svc.campaigns(SYSTEM, active_on=svc.today())
    assert [c.name for c in running] == [name]
    campaign = running[0]
    assert [t["kind"] for t in campaign.targets] == [
        "close_rate",
        "hotspot_coverage",
        "recurrence_max",
    ]
    assert campaign.hotspot_ids and campaign.category_codes == ["0502", "0103"]
    # a second load adds nothing
    assert load_demo_campaign(session, demo_loaded) is None
    count = select(func.count()).where(Campaign.city == demo_loaded.grids.city)
    assert session.scalar(count) == 1
