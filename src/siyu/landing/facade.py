"""The landing domain's public face: pages, their versions, visits, forms and numbers."""

from __future__ import annotations

from siyu.landing import library, visits
from siyu.landing.library import LAYOUTS, PageDraft, PagePublic
from siyu.landing.render import render_page
from siyu.landing.visits import CampaignVisits, Form, FormRefusedError, PageStats

__all__ = [
    "LAYOUTS",
    "CampaignVisits",
    "Form",
    "FormRefusedError",
    "PageDraft",
    "PagePublic",
    "PageStats",
    "render_page",
]

save_page = library.save_page
check = library.check
publish = library.publish
archive = library.archive
versions = library.versions
page_row = library.page_row
page_to_public = library.page_to_public
find_published = visits.find_published
form_token = visits.form_token
record_visit = visits.record_visit
submit = visits.submit
page_stats = visits.page_stats
campaign_visits = visits.campaign_visits
submissions = visits.submissions

list_pages = library.list_pages
