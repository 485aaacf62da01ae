"""Ids in paths: each kind of id has its own prefix, and its path parameter says so.

A collection's named routes (``/segments/schedule``, ``/jobs/counts``) sit beside its item route
(``/segments/{segment_id}``); the prefix keeps the two apart in the schema, so a client or a
fuzzer reading the OpenAPI document never mistakes one for the other.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

CampaignId = Annotated[str, Path(pattern=r"^cmp_[0-9A-Za-z_]{1,28}$", description="a campaign's id, cmp_…")]
ImportId = Annotated[str, Path(pattern=r"^imp_[0-9A-Za-z_]{1,28}$", description="an import's id, imp_…")]
JobId = Annotated[str, Path(pattern=r"^job_[0-9A-Za-z_]{1,28}$", description="a job's id, job_…")]
SegmentId = Annotated[str, Path(pattern=r"^sg_[0-9A-Za-z_]{1,29}$", description="a segment's id, sg_…")]
TagId = Annotated[str, Path(pattern=r"^tg_[0-9A-Za-z_]{1,29}$", description="a tag's id, tg_…")]
