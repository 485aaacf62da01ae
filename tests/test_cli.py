"""The command line, end to end against an SQLite file."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from siyu.accounts.facade import find_workspace_by_slug
from siyu.analytics.facade import rule_catalog
from siyu.channels.templates import list_templates
from siyu.cli.main import app
from siyu.core.settings import get_settings
from siyu.profiles.tables import Profile
from siyu.segments.contracts import SegmentDraft
from siyu.segments.facade import create_segment
from siyu.storage import migrate
from siyu.storage.scoping import Scope
from siyu.storage.session import Database

runner = CliRunner()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIYU_DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'siyu.db'}")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_setup_flow(workdir: Path) -> None:
    head = migrate.head_revision()
    assert f"revision {head}" in run("migrate")
    assert f"revision {head}" in run("migrate")  # idempotent
    run("workspace", "create", "--name", "溪谷美妆", "--slug", "xigu")
    out = run("user", "create", "--email", "ops@xigu.cn", "--workspace", "xigu", "--role", "operator")
    assert "password:" in out
    key = run("key", "create", "--workspace", "xigu", "--scope", "ingest")
    assert ": wk_" in key
    bad = runner.invoke(app, ["workspace", "create", "--name", "x", "--slug", "xigu"])
    assert bad.exit_code == 2 and "workspace_slug_taken" in bad.output
    missing = runner.invoke(app, ["key", "create", "--workspace", "nope"])
    assert missing.exit_code == 2


def test_demo_seed_creates_workspace_and_login(workdir: Path) -> None:
    run("migrate")
    out = run("demo", "seed", "--customers", "200", "--seed", "3", "--until", "2026-11-01")
    assert '"profiles": 200' in out and "login: demo@siyu.local" in out
    assert (workdir / "var" / "demo-login.txt").is_file()
    again = run("demo", "seed", "--customers", "200", "--seed", "3")
    assert "already has orders" in again
    assert "demo@siyu.local" in run("demo", "login")


def test_demo_seed_to_files(workdir: Path) -> None:
    out = run("demo", "seed", "--customers", "100", "--out", str(workdir / "brand"), "--format", "csv")
    assert '"people": 100' in out
    assert (workdir / "brand" / "orders.csv").is_file()


def test_openapi(workdir: Path) -> None:
    assert '"openapi"' in run("openapi")


def test_import_orders_with_rejects_file(workdir: Path) -> None:
    from tests.test_imports import row, taobao_csv

    run("migrate")
    run("workspace", "create", "--name", "溪谷", "--slug", "xigu")
    path = taobao_csv(workdir, [row("1", "nick-a", "交易成功"), row("2", "nick-b", "火星状态")])
    out = run(
        "import",
        "orders",
        str(path),
        "--workspace",
        "xigu",
        "--preset",
        "taobao",
        "--rejects",
        str(workdir / "rejects.csv"),
    )
    assert '"total": 2' in out and '"accepted": 1' in out and '"rejected": 1' in out
    assert "unknown order status" in (workdir / "rejects.csv").read_text(encoding="utf-8-sig")
    again = run("import", "orders", str(path), "--workspace", "xigu")
    assert '"unchanged": 1' in again
    bad = runner.invoke(app, ["import", "orders", str(path), "--workspace", "xigu", "--preset", "amazon"])
    assert bad.exit_code == 2 and "unknown preset" in bad.output


def test_identity_rebuild_of_the_demo_brand_repairs_nothing(workdir: Path) -> None:
    run("migrate")
    run("demo", "seed", "--customers", "300", "--workspace", "demo")
    out = json.loads(run("identity", "rebuild", "--workspace", "demo").strip().splitlines()[-1])
    assert out["status"] == "done" and out["people"] == 300 and out["repaired"] == 0
    assert out["identifiers"] > 300 and out["links"] > 0


def test_identity_rebuild_refuses_an_unknown_engine(workdir: Path) -> None:
    run("migrate")
    run("workspace", "create", "--name", "溪谷", "--slug", "xigu")
    result = runner.invoke(app, ["identity", "rebuild", "--workspace", "xigu", "--engine", "hadoop"])
    assert result.exit_code != 0 and "unknown engine" in result.output


def test_serve_with_several_processes_answers_on_one_port(workdir: Path) -> None:
    import subprocess
    import sys
    import time

    import httpx

    from tests.test_console_browser import _free_port

    run("migrate")
    port = _free_port()
    env = {**os.environ, "SIYU_ENVIRONMENT": "test", "SIYU_SECRET_KEY": "s" * 40, "SIYU_WEB_DIST": "/nonexistent"}
    server = subprocess.Popen(
        [sys.executable, "-m", "siyu.cli.main", "serve", "--port", str(port), "--processes", "2", "--no-access-log"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline, ready = time.monotonic() + 30, None
        while time.monotonic() < deadline and ready is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready is not None and ready.status_code == 200, server.stderr
        children = _server_processes(server.pid)
        assert len(children) == 2
        # Keep-alive connections are spread over both processes, not piled onto one.
        clients = [_keep_alive(port) for _ in range(24)]
        held = [_connections_held(pid, port) for pid in children]
        assert sum(held) == 24 and min(held) >= 3, held
        for client in clients:
            client.close()
        # A server process that dies is replaced, on the same port.
        os.kill(children[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and children[0] in _server_processes(server.pid):
            time.sleep(0.2)
        while time.monotonic() < deadline and len(_server_processes(server.pid)) < 2:
            time.sleep(0.2)
        assert len(_server_processes(server.pid)) == 2 and children[0] not in _server_processes(server.pid)
        for _ in range(8):
            _keep_alive(port).close()
    finally:
        server.terminate()
        assert server.wait(40) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in children[1:]), "server processes outlived the supervisor"


def _server_processes(pid: int) -> list[int]:
    """The supervisor's children that run a server (multiprocessing may add a helper process)."""
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [c for c in children if "resource_tracker" not in Path(f"/proc/{c}/cmdline").read_text()]


def _keep_alive(port: int) -> socket.socket:
    """A connection that has been answered once and stays open."""
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    client.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += client.recv(4096)
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += client.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head
    return client


def _connections_held(pid: int, port: int) -> int:
    """Established connections to ``port`` whose server end this process holds."""
    inodes = {
        link.removeprefix("socket:[").removesuffix("]")
        for fd in Path(f"/proc/{pid}/fd").iterdir()
        if (link := str(fd.readlink())).startswith("socket:[")
    }
    held = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, state, inode = int(fields[1].split(":")[1], 16), fields[3], fields[9]
        held += local_port == port and state == "01" and inode in inodes
    return held


def test_a_serving_process_keeps_collector_pauses_short(workdir: Path) -> None:
    """The app as served freezes what startup built and collects young objects less often."""
    import os
    import subprocess
    import sys

    run("migrate")
    probe = (
        "import gc; from siyu.api.app import serving_app; before = gc.get_threshold(); serving_app(); "
        "print(before[0], gc.get_threshold()[0], gc.get_freeze_count() > 10_000)"
    )
    env = {**os.environ, "SIYU_ENVIRONMENT": "test", "SIYU_SECRET_KEY": "s" * 40, "SIYU_WEB_DIST": "/nonexistent"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["700", "50000", "True"]


def test_analytics_run_scores_the_demo_brand(workdir: Path) -> None:
    run("migrate")
    run("demo", "seed", "--customers", "300", "--workspace", "demo", "--until", "2026-11-01")
    out = json.loads(run("analytics", "run", "--workspace", "demo").strip().splitlines()[-1])
    assert out["status"] == "done" and out["error"] is None
    steps = {s["name"]: s for s in out["steps"]}
    assert steps["transfer"]["orders_moved"] > 0 and steps["rfm"]["people"] > 0
    assert steps["write"]["replaced"] == steps["rfm"]["people"]
    assert (workdir / "var" / "analytics").is_dir()  # the batch's snapshots live under the data dir
    groups = run("analytics", "rfm", "--workspace", "demo")
    assert "重要价值" in groups and "一般挽留" in groups
    missing = runner.invoke(app, ["analytics", "run", "--workspace", "nope"])
    assert missing.exit_code == 2 and "no workspace nope" in missing.output


def test_tags_on_the_demo_brand(workdir: Path) -> None:
    run("migrate")
    run("demo", "seed", "--customers", "300", "--workspace", "demo", "--until", "2026-11-01")
    listed = run("tags", "list", "--workspace", "demo")
    assert "上海女性" in listed and "门店 VIP" in listed and "偏好品类" in listed
    bad = workdir / "bad.json"
    bad.write_text(json.dumps({"type": "or", "conditions": [{"type": "event", "event": "Nope"}]}), encoding="utf-8")
    refused = runner.invoke(app, ["tags", "create", "--workspace", "demo", "x", "--kind", "rule", "--rule", str(bad)])
    assert refused.exit_code == 2 and "at conditions.0" in refused.output and "Nope" in refused.output
    good = workdir / "good.json"
    good.write_text(json.dumps({"type": "orders", "value": 1}), encoding="utf-8")
    made = run("tags", "create", "--workspace", "demo", "买过", "--kind", "rule", "--rule", str(good))
    tag_id = made.split()[1]
    out = json.loads(run("analytics", "run", "--workspace", "demo").strip().splitlines()[-1])
    assert out["status"] == "done", out["error"]
    assert {s["name"] for s in out["steps"]} >= {"tags", "write"}
    listed = run("tags", "list", "--workspace", "demo")
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in listed.splitlines() if "tg_" in line]
    holders = {row[0]: int(row[2]) for row in cells}
    assert all(len(row[4]) == 29 for row in cells), listed  # ids whole, to pass to other commands
    assert holders["买过"] > 0 and holders["上海女性"] > 0, listed
    manual = run("tags", "create", "--workspace", "demo", "到店")
    people = workdir / "people.csv"
    people.write_text("phone\n13000000000\n", encoding="utf-8")
    tagged = run("tags", "tag-file", "--workspace", "demo", manual.strip(), str(people))
    assert "1 rows: 0 changed now, 0 unchanged, 1 rejected" in tagged and "no one has this identifier" in tagged
    assert tag_id.startswith("tg_")


def test_segments_on_the_demo_brand(workdir: Path) -> None:
    run("migrate")
    run("demo", "seed", "--customers", "300", "--workspace", "demo", "--until", "2026-11-01")
    out = json.loads(run("segments", "refresh", "--workspace", "demo").strip().splitlines()[-1])
    assert out["status"] == "done", out["error"]  # the first run: a full one
    assert {s["name"] for s in out["steps"]} >= {"rfm", "tags", "segments", "write"}
    listed = run("segments", "list", "--workspace", "demo")
    cells = {
        row[0]: row
        for row in ([c.strip() for c in line.split("│")[1:-1]] for line in listed.splitlines())
        if row and row[-1].startswith("sg_")
    }
    assert set(cells) >= {"短信可达的高价值客户", "加购未买", "沉睡待召回", "A/B 测试 10%"}, listed
    assert 10 < int(cells["A/B 测试 10%"][2]) < 60 and int(cells["短信可达的高价值客户"][2]) > 0, listed

    rule = workdir / "rule.json"
    rule.write_text(json.dumps({"type": "reachable", "channel": "sms"}), encoding="utf-8")
    counted = run("segments", "preview", "--workspace", "demo", str(rule))
    reachable = int(counted.split()[0])
    assert 30 < reachable < 300 and "of 300 people" in counted, counted
    bad = workdir / "bad.json"
    bad.write_text(json.dumps({"type": "and", "conditions": []}), encoding="utf-8")
    refused = runner.invoke(app, ["segments", "preview", "--workspace", "demo", str(bad)])
    assert refused.exit_code == 2 and "at conditions" in refused.output

    made = run("segments", "create", "--workspace", "demo", "可短信", "--rule", str(rule))
    segment_id = made.split()[0]
    assert segment_id.startswith("sg_") and "0 people now" in made
    again = json.loads(run("segments", "refresh", "--workspace", "demo").strip().splitlines()[-1])
    assert [s["name"] for s in again["steps"]] == ["transfer", "segments", "write"]
    sheet = workdir / "members.csv"
    assert f"{reachable} people written" in run("segments", "export", "--workspace", "demo", segment_id, str(sheet))
    assert len(sheet.read_text(encoding="utf-8-sig").splitlines()) == reachable + 1
    zipped = workdir / "audience.zip"
    report = run("segments", "audience", "--workspace", "demo", segment_id, str(zipped))
    assert f"{reachable} members" in report and "no audience-upload consent" in report and zipped.exists()
    frozen = run("segments", "freeze", "--workspace", "demo", segment_id, "可短信快照")
    assert f"{reachable} people" in frozen
    both = run("segments", "overlap", "--workspace", "demo", segment_id, frozen.split()[0])
    assert f"A {reachable}, B {reachable}, both {reachable}" in both
    held = run(
        "segments", "holdouts", "--workspace", "demo", "--global-share", "8", "--create", "双11对照", "--share", "5"
    )
    assert "全局控制组" in held and "8%" in held and "双11对照" in held and "5%" in held


def test_campaigns_on_the_demo_brand(workdir: Path) -> None:
    run("migrate")
    run("demo", "seed", "--customers", "200", "--workspace", "demo", "--until", "2026-11-01")
    db = Database(get_settings().database_url)
    with db.transaction(Scope.unscoped_system()) as system:
        workspace_id = find_workspace_by_slug(system, "demo").id  # type: ignore[union-attr]
    with db.transaction(Scope.workspace(workspace_id)) as s:
        people = [p.id for p in s.scalars(select(Profile).order_by(Profile.id).limit(80))]
        segment = create_segment(
            s, SegmentDraft(name="CLI 名单", kind="static"), rule_catalog(s, workdir), None, people
        )
        template = next(t.id for t in list_templates(s) if t.name == "会员日提醒")
    db.dispose()
    refused = runner.invoke(
        app, ["campaigns", "create", "--workspace", "demo", "x", "--segment", segment.id, "--variant", "A"]
    )
    assert refused.exit_code == 2 and "KEY=TEMPLATE_ID[,FALLBACK…]:SHARE" in refused.output
    args = [
        "campaigns",
        "create",
        "--workspace",
        "demo",
        "x",
        "--segment",
        segment.id,
        "--variant",
        f"A={template}:100",
    ]
    no_value = runner.invoke(app, [*args, "--value", "coupon"])
    assert no_value.exit_code == 2 and "NAME=TEXT" in no_value.output
    made = run(
        "campaigns", "create", "--workspace", "demo", "会员日", "--segment", segment.id,
        "--variant", f"A={template}:60", "--variant", f"B={template}:40",
    )  # fmt: skip
    campaign_id = made.split()[0]
    assert campaign_id.startswith("cmp_") and "draft" in made
    assert "scheduled" in run("campaigns", "schedule", "--workspace", "demo", campaign_id)
    ran = json.loads(run("campaigns", "run", "--workspace", "demo", campaign_id).strip().splitlines()[-1])
    assert ran == {"status": "completed", "prepared": 80, "chunks": 1}
    listed = run("campaigns", "list", "--workspace", "demo", "--status", "completed")
    assert campaign_id in listed and "会员日" in listed
    report = run("campaigns", "report", "--workspace", "demo", campaign_id)
    assert "total" in report and "P(A best)" in report and "chi-square" in report
    again = runner.invoke(app, ["campaigns", "pause", "--workspace", "demo", campaign_id])
    assert again.exit_code == 2 and "completed" in again.output
    tested = run(
        "campaigns", "create", "--workspace", "demo", "先测后发", "--segment", segment.id,
        "--variant", f"A={template}:50", "--variant", f"B={template}:50", "--test", "50:ctr:4",
    )  # fmt: skip
    tested_id = tested.split()[0]
    run("campaigns", "schedule", "--workspace", "demo", tested_id)
    first = json.loads(run("campaigns", "run", "--workspace", "demo", tested_id).strip().splitlines()[-1])
    assert first["status"] == "testing" and 0 < first["prepared"] < 80
    neither = runner.invoke(app, ["campaigns", "winner", "--workspace", "demo", tested_id])
    assert neither.exit_code == 2 and "--none" in neither.output
    assert "winner B" in run("campaigns", "winner", "--workspace", "demo", tested_id, "B")
    rest = json.loads(run("campaigns", "run", "--workspace", "demo", tested_id).strip().splitlines()[-1])
    assert rest["status"] == "completed" and first["prepared"] + rest["prepared"] == 80
    bad_test = runner.invoke(app, [*args, "--test", "half"])
    assert bad_test.exit_code == 2 and "PERCENT:METRIC:HOURS" in bad_test.output
    weekly = run(
        "campaigns", "create", "--workspace", "demo", "每周会员日", "--segment", segment.id,
        "--variant", f"A={template}:100", "--every", "week", "--weekday", "5", "--at-time", "20:00",
    )  # fmt: skip
    assert "recurring" in run("campaigns", "schedule", "--workspace", "demo", weekly.split()[0])
