"""Every table of every domain, imported once so the metadata is complete (migrations, tests)."""

from __future__ import annotations

import siyu.accounts.tables
import siyu.analytics.tables
import siyu.campaigns.tables
import siyu.channels.tables
import siyu.commerce.tables
import siyu.identity.tables
import siyu.ingest.imports.tables
import siyu.ingest.tables
import siyu.ingest.wechat.tables
import siyu.jobs.tables
import siyu.landing.tables
import siyu.profiles.tables
import siyu.segments.tables
import siyu.tags.tables
import siyu.tracking.tables  # noqa: F401
from siyu.storage.base import Base

metadata = Base.metadata
