"""Channels: preparing a send (the send policy and the template, in bulk) for N people, against a
per-recipient Jinja2 loop over the same people in the same run; and dispatching M messages
through the durable send ledger to the sandbox provider.

    python bench/channels.py prepare [--people 1000000] [--repeat 3] [--dir DIR] [--database-url URL]
    python bench/channels.py dispatch [--messages 100000] [--repeat 3] [--dir DIR] [--database-url URL]

By default the store is a new SQLite file; ``--database-url`` names an empty PostgreSQL database
instead (``postgresql+psycopg://postgres@127.0.0.1:5432/siyu_bench``).

The people: one phone each, 80 % with marketing consent, 1 % suppressed, three traits (name,
city, points). The template: a marketing SMS naming two traits. Prepare is timed as a dry run
(policy and rendering: what the interception report does) and with the ledger write; the
peer renders the same compiled template once per person with Jinja2, reading the same rows.
Dispatch writes M messages and times claiming, sending to the sandbox and closing them. Each
line prints the median of ``--repeat`` runs; the machine is shared, so read the ratios.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import func, select, update

from siyu.accounts import facade as accounts_facade
from siyu.channels import accounts
from siyu.channels.adapters.base import MemoryTokenStore
from siyu.channels.contracts import ChannelKind, Content, MessageKind
from siyu.channels.dispatch import Dispatcher
from siyu.channels.ledger import MessageIn, write_messages
from siyu.channels.policy import Policy, save_policy
from siyu.channels.prepare import Links, Recipient, SendRequest, prepare_send
from siyu.channels.suppression import suppress_addresses
from siyu.channels.tables import ChannelAccount, Message
from siyu.channels.templates import TemplateDraft, save_template
from siyu.channels.words import word_list
from siyu.core.clock import utcnow
from siyu.identity.tables import Identity
from siyu.profiles.tables import ConsentRecord, Profile
from siyu.storage import migrate
from siyu.storage.bulk import append_rows, fetch_rows
from siyu.storage.scoping import Scope
from siyu.storage.session import Database

SECRET = "bench-secret-" + "x" * 40
BODY = "{{ profile.name }}，您在{{ profile.city }}的积分{{ profile.points }}即将到期 拒收请回复R"
CITIES = ("上海", "北京", "杭州", "广州", "成都", "深圳")


def median_of(repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def brand(directory: Path, people: int, url: str | None = None) -> tuple[Database, str, list[str], str, str]:
    db = Database(url or f"sqlite:///{directory / 'siyu.db'}")
    migrate.upgrade(db.engine)
    with db.transaction(Scope.unscoped_system()) as system:
        workspace_id = accounts_facade.create_workspace(system, name="bench", slug="bench").id
    now = utcnow()
    ids = [f"pf_{i:024d}" for i in range(people)]
    scope = Scope.workspace(workspace_id)
    step = 200_000
    for start in range(0, people, step):
        chunk = range(start, min(start + step, people))
        with db.transaction(scope) as s:
            append_rows(
                s,
                Profile,
                (
                    "id",
                    "display_name",
                    "traits",
                    "trait_sources",
                    "first_seen_at",
                    "last_seen_at",
                    "created_at",
                    "updated_at",
                ),
                [
                    (
                        ids[i],
                        f"会员{i}",
                        {"name": f"会员{i}", "city": CITIES[i % 6], "points": i % 5000},
                        {},
                        now,
                        now,
                        now,
                        now,
                    )
                    for i in chunk
                ],
                on_conflict=("id",),
            )
            append_rows(
                s,
                Identity,
                ("id", "profile_id", "kind", "scope", "value", "weak", "shared", "first_seen_at"),
                [(f"idn_{i:024d}", ids[i], "phone", "", f"+8613{i:09d}", False, False, now) for i in chunk],
                on_conflict=("id",),
            )
            append_rows(
                s,
                ConsentRecord,
                ("id", "identity_id", "channel", "purpose", "status", "at", "source", "proof", "recorded_at"),
                [
                    (
                        f"cns_{i:024d}",
                        f"idn_{i:024d}",
                        "sms",
                        "marketing",
                        "granted",
                        now,
                        "bench",
                        {"text_version": "v1"},
                        now,
                    )
                    for i in chunk
                    if i % 5
                ],
                on_conflict=("id",),
            )
            suppress_addresses(s, [("sms", f"+8613{i:09d}", "bench") for i in chunk if i % 100 == 7], source="bench")
    with db.transaction(scope) as s:
        account = accounts.save_account(
            s, SECRET, accounts.AccountIn(ChannelKind.SMS, "sandbox", "sandbox", {"sign_name": "品牌"}, {})
        )
        template = save_template(s, TemplateDraft("bench", ChannelKind.SMS, MessageKind.MARKETING, body=BODY), None)
    return db, workspace_id, ids, template.id, account.id


def bench_prepare(args: argparse.Namespace, directory: Path) -> None:
    started = time.perf_counter()
    db, workspace_id, ids, template_id, _ = brand(directory, args.people, args.database_url)
    print(f"data: {args.people:,} people in {time.perf_counter() - started:.1f} s")
    scope = Scope.workspace(workspace_id)
    links = Links("https://crm.example", SECRET)
    policy = Policy(quiet_hours={}, caps=())  # the window and caps are cheap; they do not change the work
    words = word_list("")
    recipients = [Recipient(p) for p in ids]

    def ours(dry_run: bool, step: list[int]) -> Any:
        step[0] += 1
        request = SendRequest(source="bench", step=str(step[0]), template_id=template_id, recipients=recipients)
        with db.transaction(scope) as s:
            return prepare_send(s, request, policy=policy, words=words, links=links, dry_run=dry_run)

    env = ImmutableSandboxedEnvironment()
    compiled = env.from_string(BODY)

    def peer() -> int:
        # The same rows read, then the template rendered person by person.
        with db.read(scope) as s:
            rows = fetch_rows(s, Profile, ("id", "traits"), "id", ids)
        out = [compiled.render(profile=traits) for _pid, traits in rows]
        return len(out)

    counter = [0]
    dry, report = median_of(args.repeat, lambda: ours(True, counter))
    loop, rendered = median_of(args.repeat, peer)
    wet, _ = median_of(args.repeat, lambda: ours(False, counter))
    print(f"queued {report.queued:,}, skipped {dict(report.skipped)}; the loop rendered {rendered:,}")
    print(f"prepare (policy + render, dry run): {dry:.2f} s  ({args.people / dry:,.0f} people/s)")
    print(f"prepare and write the ledger:       {wet:.2f} s")
    print(f"per-recipient Jinja2 loop (render only): {loop:.2f} s")
    print(f"ratio dry prepare / Jinja2 loop: {dry / loop:.2f}")


def bench_dispatch(args: argparse.Namespace, directory: Path) -> None:
    db, workspace_id, ids, _, account_id = brand(directory, 1000, args.database_url)
    scope = Scope.workspace(workspace_id)
    rates = []
    for run in range(args.repeat):
        with db.transaction(scope) as s:
            s.execute(update(ChannelAccount).values(rate_per_second=1e9))
            save_policy(s, Policy(quiet_hours={}, caps=()), "")  # whatever the hour the bench runs at
        now = utcnow() - timedelta(seconds=1)
        items = [
            MessageIn(
                key=f"r{run}:{i}",
                channel=ChannelKind.SMS,
                kind=MessageKind.MARKETING,
                address=f"+8613{i:09d}",
                content=Content(text=f"【品牌】会员{i}，积分即将到期 拒收请回复R"),
                account_id=account_id,
                profile_id=ids[i % len(ids)],
                source="bench",
                not_before=now,
            )
            for i in range(args.messages)
        ]
        started = time.perf_counter()
        with db.transaction(scope) as s:
            write_messages(s, items, now)
        wrote = time.perf_counter() - started
        started = time.perf_counter()
        if args.processes == 1:
            sent = Dispatcher(db, workspace_id, SECRET, MemoryTokenStore()).run().sent
        else:
            context = multiprocessing.get_context("spawn")
            with context.Pool(args.processes) as pool:
                sent = sum(pool.map(_dispatch, [(db.url, workspace_id)] * args.processes))
        took = time.perf_counter() - started
        with db.read(scope) as s:
            attempts = dict(
                s.execute(
                    select(Message.attempts, func.count())
                    .where(Message.key.like(f"r{run}:%"))
                    .group_by(Message.attempts)
                ).all()
            )
        assert sent == args.messages and attempts == {1: args.messages}, (sent, attempts)  # each sent once
        rate = args.messages / took
        rates.append(rate)
        print(f"run {run + 1}: wrote {args.messages:,} in {wrote:.2f} s; dispatched in {took:.2f} s ({rate:,.0f}/s)")
    print(
        f"dispatch to the sandbox through the ledger, {args.processes} process(es): "
        f"median {statistics.median(rates):,.0f} messages/s"
    )


def _dispatch(job: tuple[str, str]) -> int:
    """One dispatcher process: claims and sends until nothing is due."""
    url, workspace_id = job
    return Dispatcher(Database(url), workspace_id, SECRET, MemoryTokenStore()).run().sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("prepare", "dispatch"))
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--processes", type=int, default=1, help="dispatcher processes (dispatch)")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--database-url", default=None, help="an empty PostgreSQL database (default: SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        (bench_prepare if args.what == "prepare" else bench_dispatch)(args, Path(tmp))


if __name__ == "__main__":
    main()
