"""File import of a Taobao/Tmall order export (GBK CSV with Excel's quirks): rows per second and
peak memory, against pandas merely reading the same file.

    python bench/import_orders.py [--rows 100000] [--database-url URL]

The file is written first (every 50th row malformed, every 10th buyer a returning one); then the
import runs, in a process of its own, as the import job runs it — streamed, in chunks of 500 rows, each chunk one
transaction — and is checked: accepted + rejected = total. A second run of the same file must
change nothing. Peak memory is the process's, measured after each run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from siyu.accounts import facade
from siyu.ingest.imports.presets import PRESETS
from siyu.ingest.imports.run import run_import
from siyu.storage import migrate
from siyu.storage.planner import refresh_statistics
from siyu.storage.scoping import Scope
from siyu.storage.session import Database

HEADER = (
    "订单编号,买家会员名,买家支付宝账号,买家应付货款,买家应付邮费,买家支付积分,总金额,返点积分,买家实际支付金额,"
    "买家实际支付积分,订单状态,买家留言,收货人姓名,收货地址 ,运送方式,联系电话 ,联系手机,订单创建时间,订单付款时间 ,"
    "宝贝标题 ,宝贝种类 ,物流单号 ,物流公司,订单备注,宝贝总数量,店铺Id,店铺名称"
)
STATUSES = ("交易成功", "买家已付款，等待卖家发货", "卖家已发货，等待买家确认", "交易关闭", "等待买家付款")


def write_export(path: Path, rows: int) -> None:
    with path.open("w", encoding="gbk", newline="") as f:
        f.write(HEADER + "\r\n")
        for n in range(rows):
            buyer = n // 10 if n % 10 == 0 else n  # some buyers come back
            status = STATUSES[n % len(STATUSES)] if n % 50 else "火星状态"  # a malformed row
            day = 1 + n % 28
            f.write(
                f'="{4000000000 + n}",tb_{buyer:08d},x@qq.com,128,0,0,128.00元,0,128.00元,0,{status},,'
                f"张*,浙江省 杭州市 西湖区 ***,快递,,'138****{n % 10000:04d},2026/10/{day} 10:00,2026/10/{day} 10:05,"
                f"精华液,1,,,,1,1001,溪谷天猫旗舰店\r\n"
            )


def pandas_read(path: Path, out: Any) -> None:
    started = time.perf_counter()
    pd.read_csv(path, encoding="gbk", dtype=str)
    out.put((time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def in_child(target: Any, *args: Any) -> Any:
    """Run in a fresh process, so that time and peak memory are the target's own."""
    context = multiprocessing.get_context("spawn")
    out = context.SimpleQueue()
    child = context.Process(target=target, args=(*args, out))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"{target.__name__} failed")
    return out.get()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    path = tmp / "ExportOrderList.csv"
    write_export(path, args.rows)
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    print(f"{url.split(':', 1)[0]}: {args.rows:,} rows ({path.stat().st_size / 1e6:.0f} MB GBK CSV)")
    in_child(imports, url, path, args.rows)
    read_s, pandas_rss = in_child(pandas_read, path)
    print(f"pandas.read_csv alone {read_s:.2f} s, peak RSS {pandas_rss:,.0f} MB")


def imports(url: str, path: Path, rows: int, out: Any) -> None:
    """Import the file, then import it again; prints rates and the process's peak memory."""
    db = Database(url)
    migrate.upgrade(db.engine)
    with db.transaction(Scope.unscoped_system()) as s:
        ws = facade.create_workspace(s, name="bench", slug=f"bench-{time.time_ns()}")
    scope = Scope.workspace(ws.id)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    refresh = partial(refresh_statistics, db.engine)  # as the import job does
    report = run_import(lambda: db.transaction(scope), path, PRESETS["taobao"], refresh_statistics=refresh)
    first_s = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert report.accepted + report.rejected_count == report.total == rows
    started = time.perf_counter()
    again = run_import(lambda: db.transaction(scope), path, PRESETS["taobao"], refresh_statistics=refresh)
    second_s = time.perf_counter() - started
    assert again.created == again.updated == 0 and again.unchanged == report.created + report.updated
    print(
        f"import {rows / first_s:,.0f} rows/s ({first_s:.1f} s): accepted {report.accepted:,}, "
        f"rejected {report.rejected_count:,}, orders created {report.created:,}"
    )
    print(f"re-import {rows / second_s:,.0f} rows/s: nothing changed ({again.unchanged:,} unchanged)")
    print(f"import peak RSS {rss_after:,.0f} MB (before the import {rss_before:,.0f} MB)", flush=True)
    out.put(None)


if __name__ == "__main__":
    main()
