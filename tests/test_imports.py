"""Order imports from marketplace exports with their quirks; every row accounted for; re-import
changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook
from sqlalchemy import select

from siyu.commerce.tables import Order
from siyu.ingest.imports.presets import PRESETS, RowError, custom_preset, money_to_fen, parse_time
from siyu.ingest.imports.run import run_import
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import make_actor

TAOBAO_HEADER = (
    "订单编号,买家会员名,买家支付宝账号,买家应付货款,买家应付邮费,买家支付积分,总金额,返点积分,买家实际支付金额,"
    "买家实际支付积分,订单状态,买家留言,收货人姓名,收货地址 ,运送方式,联系电话 ,联系手机,订单创建时间,订单付款时间 ,"
    "宝贝标题 ,宝贝种类 ,物流单号 ,物流公司,订单备注,宝贝总数量,店铺Id,店铺名称"
)


def taobao_csv(tmp_path: Path, rows: list[list[str]]) -> Path:
    path = tmp_path / "ExportOrderList201605.csv"
    lines = [TAOBAO_HEADER] + [",".join(r) for r in rows]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))  # Taobao exports GBK
    return path


def row(no: str, nick: str, status: str, paid: str = "598.00元", created: str = "2016/5/23 22:02") -> list[str]:
    return [
        f'="{no}"',
        nick,
        "8446@qq.com",
        "598",
        "0",
        "0",
        "598.00元",
        "0",
        paid,
        "0",
        status,
        "",
        "马慧",
        "吉林省 通化市 柳河县 柳河镇紫御府 七号楼 3单元 201室(135300)",
        "快递",
        "",
        "'138****5678",
        created,
        created,
        "宝贝",
        "1",
        "",
        "",
        "",
        "1",
        "1001",
        "溪谷天猫旗舰店",
    ]


def _run(db: Database, workspace_id: str, path: Path, preset: str = "taobao") -> dict[str, object]:
    report = run_import(lambda: db.transaction(Scope.workspace(workspace_id)), path, PRESETS[preset])
    return {
        "total": report.total,
        "accepted": report.accepted,
        "rejected": report.rejected,
        "created": report.created,
        "unchanged": report.unchanged,
    }


def test_taobao_gbk_export_with_excel_quirks(db: Database, tmp_path: Path) -> None:
    a = make_actor(db, "acme")
    path = taobao_csv(
        tmp_path,
        [
            row("1930679858170647", "幸福蔓岩1627", "买家已付款，等待卖家发货"),
            row("1930679858170648", "幸福蔓岩1627", "交易成功"),
            row("1930679858170649", "甜甜圈", "交易关闭", paid="0"),
            row("1930679858170650", "甜甜圈", "火星状态"),
            row("1930679858170651", "", "交易成功"),
            row("1930679858170652", "小明", "交易成功", created="昨天"),
        ],
    )
    first = _run(db, a.workspace_id, path)
    assert first["total"] == 6 and first["accepted"] == 3 and first["created"] == 3
    assert first["rejected"] == [
        (5, "unknown order status '火星状态'"),
        (6, "missing buyer_id"),
        (7, "ordered_at '昨天' is not a date-time"),
    ]
    assert first["accepted"] + len(first["rejected"]) == first["total"]  # type: ignore[operator, arg-type]
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        orders = {o.order_no: o for o in s.scalars(select(Order))}
    paid = orders["1930679858170647"]
    assert (paid.status, paid.total_fen, paid.paid_fen, paid.store) == ("paid", 59800, 59800, "溪谷天猫旗舰店")
    assert paid.receiver_phone_masked == "138****5678" and paid.receiver_name_masked == "马*"
    assert paid.ordered_at.isoformat() == "2016-05-23T14:02:00+00:00"  # 22:02 in Shanghai
    assert orders["1930679858170649"].status == "cancelled"
    again = _run(db, a.workspace_id, path)
    assert again["created"] == 0 and again["unchanged"] == 3  # re-importing changes nothing


def test_douyin_bom_and_tab_prefixed_ids(db: Database, tmp_path: Path) -> None:
    a = make_actor(db, "acme")
    path = tmp_path / "douyin.csv"
    header = (
        "主订单编号,子订单编号,选购商品,商品数量,订单应付金额,收件人,收件人手机号,详细地址,"
        "订单提交时间,订单状态,售后状态"
    )
    body = (
        "\t6917926768823643751,\t6917926768823643752,面霜,1,129.00,张**,138****1111,浙江省****,"
        "2026-11-01 10:00:00,已完成,-"
    )
    path.write_bytes(("\ufeff" + header + "\n" + body + "\n").encode("utf-8"))
    result = _run(db, a.workspace_id, path, "douyin")
    assert (result["accepted"], result["rejected"]) == (1, [])
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        [order] = s.scalars(select(Order)).all()
    assert order.order_no == "6917926768823643751" and order.status == "completed" and order.total_fen == 12900


def test_youzan_xlsx_jd_jsonl_and_custom_parquet(db: Database, tmp_path: Path) -> None:
    a = make_actor(db, "acme")
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["订单号", "订单创建时间", "买家昵称", "买家手机号", "订单状态", "订单实付金额"])
    sheet.append(["E2026110100001", "2026-11-01 09:00:00", "小鹿", "13900001234", "交易成功", 88.5])
    sheet.append(["E2026110100002", "2026-11-01 09:30:00", "小熊", "139****0000", "待发货", "66"])
    book.save(tmp_path / "youzan.xlsx")
    assert _run(db, a.workspace_id, tmp_path / "youzan.xlsx", "youzan")["accepted"] == 2
    jd = tmp_path / "jd.jsonl"
    jd.write_text(
        "\n".join(
            [
                json.dumps(
                    {
                        "订单号": "200001",
                        "下单帐号": "jd_buyer_1",
                        "订单金额": "99.00",
                        "应付金额": "99.00",
                        "订单状态": "等待出库",
                        "下单时间": "2026-11-01 08:00:00",
                    },
                    ensure_ascii=False,
                ),
                "{not json",
                json.dumps(
                    {
                        "订单号": "200002",
                        "下单帐号": "jd_buyer_2",
                        "订单金额": "10",
                        "订单状态": "(删除)已取消",
                        "下单时间": "2026-11-01 08:00:00",
                    },
                    ensure_ascii=False,
                ),
            ]
        ),
        encoding="utf-8",
    )
    result = _run(db, a.workspace_id, jd, "jd")
    assert result["accepted"] == 2 and result["rejected"][0][0] == 2  # type: ignore[index]
    table = pa.table({"单号": ["POS-1"], "会员号": ["m0001"], "金额": ["128"], "时间": ["2026-11-02 12:00:00"]})
    pq.write_table(table, tmp_path / "pos.parquet")
    preset = custom_preset(
        "offline", "member_no", {"order_no": "单号", "buyer_id": "会员号", "total": "金额", "ordered_at": "时间"}
    )
    report = run_import(lambda: db.transaction(Scope.workspace(a.workspace_id)), tmp_path / "pos.parquet", preset)
    assert report.rejected == [(2, "missing status")]


def test_money() -> None:
    assert money_to_fen("598.00元", "total") == 59800
    assert money_to_fen("¥1,234.565", "total") == 123457


def test_times_as_exports_write_them() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    assert parse_time("2026/10/1 9:05", tz, "t") == datetime(2026, 10, 1, 9, 5, tzinfo=tz)
    assert parse_time("2026-10-01 09:05:07", tz, "t") == datetime(2026, 10, 1, 9, 5, 7, tzinfo=tz)
    assert parse_time('="2026/10/01"', tz, "t") == datetime(2026, 10, 1, tzinfo=tz)
    assert parse_time("2026-10-01T09:05:07+00:00", tz, "t") == datetime(2026, 10, 1, 9, 5, 7, tzinfo=UTC)
    for bad in ("2026/13/01 10:00", "2026/02/30", "昨天"):
        with pytest.raises(RowError, match="is not a date-time"):
            parse_time(bad, tz, "ordered_at")


def test_upload_through_the_api_runs_as_a_job(db: Database, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    import siyu.ingest.tasks  # noqa: F401 - registers the import task
    from siyu.api.app import create_app
    from siyu.jobs.worker import Worker
    from tests.conftest import settings_for

    a = make_actor(db, "acme")
    path = taobao_csv(
        tmp_path,
        [
            row("1", "nick-a", "交易成功"),
            row("2", "nick-b", "火星状态"),
            row("3", "nick-c", "买家已付款，等待卖家发货"),
        ],
    )
    with TestClient(create_app(settings_for(db), db)) as client:
        presets = client.get("/api/v1/imports/presets", headers=a.bearer).json()
        assert {p["name"] for p in presets} == {"taobao", "jd", "douyin", "youzan"}
        r = client.post(
            "/api/v1/imports",
            headers=a.bearer,
            data={"preset": "taobao"},
            files={"file": (path.name, path.read_bytes(), "text/csv")},
        )
        assert r.status_code == 202, r.text
        queued = r.json()
        assert queued["status"] == "queued"
        assert Worker(db, lease_seconds=30).run_until_idle() == 1
        done = client.get(f"/api/v1/imports/{queued['id']}", headers=a.bearer).json()
        assert (done["status"], done["total"], done["accepted"], done["rejected"]) == ("done", 3, 2, 1)
        csv_text = client.get(f"/api/v1/imports/{queued['id']}/rejections.csv", headers=a.bearer).text
        assert "3,unknown order status" in csv_text.replace('"', "")
        bad = client.post(
            "/api/v1/imports",
            headers=a.bearer,
            data={"preset": "custom", "options": "{}"},
            files={"file": ("x.csv", b"a,b\n1,2\n", "text/csv")},
        )
        assert bad.status_code == 422 and "mapping" in bad.json()["message"]
        exe = client.post(
            "/api/v1/imports",
            headers=a.bearer,
            data={"preset": "taobao"},
            files={"file": ("x.exe", b"MZ", "application/octet-stream")},
        )
        assert exe.status_code == 422


def test_jd_export_with_one_row_per_sku_becomes_orders_with_items(db: Database, tmp_path: Path) -> None:
    from siyu.commerce.tables import Order, OrderItem

    a = make_actor(db, "acme")
    header = "订单号,下单帐号,订单金额,应付金额,订单状态,下单时间,商品ID,商品名称,订购数量,京东价"
    lines = [
        header,
        "300001,jd_buyer_1,299.00,299.00,完成,2026-11-01 08:00:00,100012,精华液,1,199.00",
        "300001,jd_buyer_1,299.00,299.00,完成,2026-11-01 08:00:00,100034,面膜,2,50.00",
        "300002,jd_buyer_2,59.00,59.00,等待出库,2026-11-01 09:00:00,100034,面膜,一,59.00",
        "300003,jd_buyer_3,88.00,88.00,等待出库,2026-11-01 10:00:00,100056,洁面,1,88.00",
    ]
    path = tmp_path / "jd.csv"
    path.write_text("\n".join(lines) + "\n", encoding="gbk")
    first = _run(db, a.workspace_id, path, "jd")
    # Every row accounted for: two rows of order 300001, one of 300003; 300002's row refused.
    assert (first["total"], first["accepted"], first["created"]) == (4, 3, 2)
    assert first["rejected"] == [(4, "quantity '一' is not a number")]
    with db.read(Scope.workspace(a.workspace_id)) as s:
        order = s.scalars(select(Order).where(Order.order_no == "300001")).one()
        items = sorted(
            (i.sku, i.quantity, i.unit_price_fen, i.amount_fen)
            for i in s.scalars(select(OrderItem).where(OrderItem.order_id == order.id))
        )
        item_ids = set(s.scalars(select(OrderItem.id)))
    assert items == [("100012", 1, 19900, 19900), ("100034", 2, 5000, 10000)]
    again = _run(db, a.workspace_id, path, "jd")
    assert (again["accepted"], again["created"], again["unchanged"]) == (3, 0, 2)
    with db.read(Scope.workspace(a.workspace_id)) as s:
        assert set(s.scalars(select(OrderItem.id))) == item_ids  # re-importing changed nothing


def test_rejected_rows_are_handed_over_as_they_pile_up(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file of mostly bad rows is not held in memory: rejections leave in chunks, in order."""
    from siyu.ingest.imports import run as import_run

    a = make_actor(db, "acme")
    monkeypatch.setattr(import_run, "CHUNK_ROWS", 3)
    rows = [row(f"19306798581706{n:02d}", f"买家{n}", "火星状态" if n % 4 else "交易成功") for n in range(20)]
    handed: list[list[tuple[int, str]]] = []
    report = run_import(
        lambda: db.transaction(Scope.workspace(a.workspace_id)),
        taobao_csv(tmp_path, rows),
        PRESETS["taobao"],
        on_rejected=lambda batch: handed.append(batch),
    )
    delivered = [r for batch in handed for r in batch]
    assert report.rejected == [] and report.rejected_count == len(delivered) == 15
    assert max(len(batch) for batch in handed) <= 3 + 1
    assert [n for n, _reason in delivered] == sorted(n for n, _reason in delivered)
    assert report.accepted + report.rejected_count == report.total == 20
