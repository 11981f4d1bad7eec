"""The simulated PMS2.0 schema: pinyin-initial table and column names, one DDL for every backend.

The same tables are created on SQLite, PostgreSQL and MariaDB.

Tables (设备台账 equipment ledgers and a GIS coordinate table):
    T_SB_ZNYC_DZ     substation 电站: OBJ_ID, BDZMC 名称, DYDJ 电压等级, YWDW 运维单位, GDQY 供电区域,
                     BYJGS 10kV备用间隔数 (spare outgoing bays, for dedicated lines)
    T_SB_ZNYC_ZBYQ   main transformer 主变压器: OBJ_ID, SSDZ 所属电站, SBMC 名称, EDRL 额定容量 (MVA),
                     EDDY 额定电压 (a DYDJ code)
    T_SB_ZWYC_DKX    feeder 馈线: OBJ_ID, XLMC 线路名称, QSDZ 起始电站, DYDJ, YXDL 允许电流 (A),
                     LLKGS 联络开关数, GDQY 供电区域, SSMX 所属母线段 (the 10 kV bus section: I, II, III)
    T_SB_ZNYC_PDBYQ  distribution transformer 配变: OBJ_ID, SBMC, XH 型号, SSDKX 所属馈线, SSDZ,
                     EDRL (kVA), DYDJ, SYXZ 使用性质 (01 公用 / 02 专用), YXTQBH 营销台区编号 (TG_ID)
    T_SB_ZWYC_ZSKG   pole-mounted switch 柱上开关: OBJ_ID, SBMC, SSDKX, KGXZ 开关性质 (01 分段 / 02 联络)
    T_TX_SBZB        GIS coordinates 设备坐标: SBID 设备ID, SBLX 设备类型, JD 经度, WD 纬度 (CGCS2000)
Every equipment table also has YXZT 运行状态 (10 未投运, 20 在运, 30 退役), TYRQ 投运日期 and GXSJ 更新时间,
the local (Asia/Shanghai) time of the last change, in whole seconds and NULL on a few migrated rows.
DYDJ uses PMS codes ('22' = 10 kV, '32' = 110 kV), not the marketing system's VOLT_CODE ('AC00101').
GDQY is the supply-area class of 配电网规划设计技术导则 as a code: '01' A+, '02' A, '03' B, '04' C, '05' D,
'06' E; NULL where planning never classed the equipment.
Nothing enforces references between tables, as in the legacy system: rows are deleted without cascades.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData()

_ID = sa.String(32)


def _common() -> list[sa.Column[Any]]:
    return [
        sa.Column("YXZT", sa.String(4), nullable=False, comment="运行状态"),
        sa.Column("TYRQ", sa.Date, nullable=True, comment="投运日期"),
        sa.Column("GXSJ", sa.DateTime, nullable=True, comment="更新时间 (Asia/Shanghai)"),
    ]


substations = sa.Table(
    "T_SB_ZNYC_DZ",
    metadata,
    sa.Column("OBJ_ID", _ID, primary_key=True, comment="设备ID"),
    sa.Column("BDZMC", sa.String(64), nullable=False, comment="变电站名称"),
    sa.Column("DYDJ", sa.String(4), nullable=False, comment="电压等级"),
    sa.Column("YWDW", sa.String(64), nullable=True, comment="运维单位"),
    sa.Column("GDQY", sa.String(2), nullable=True, comment="供电区域"),
    sa.Column("BYJGS", sa.Integer, nullable=True, comment="10kV备用间隔数"),
    *_common(),
    sa.Index("IX_PMS_DZ_GXSJ", "GXSJ", "OBJ_ID"),
)

main_transformers = sa.Table(
    "T_SB_ZNYC_ZBYQ",
    metadata,
    sa.Column("OBJ_ID", _ID, primary_key=True, comment="设备ID"),
    sa.Column("SSDZ", _ID, nullable=False, comment="所属电站"),
    sa.Column("SBMC", sa.String(64), nullable=False, comment="设备名称"),
    sa.Column("EDRL", sa.Numeric(10, 3), nullable=False, comment="额定容量 (MVA)"),
    sa.Column("EDDY", sa.String(4), nullable=False, comment="额定电压 (DYDJ code)"),
    *_common(),
    sa.Index("IX_PMS_ZBYQ_GXSJ", "GXSJ", "OBJ_ID"),
)

feeders = sa.Table(
    "T_SB_ZWYC_DKX",
    metadata,
    sa.Column("OBJ_ID", _ID, primary_key=True, comment="设备ID"),
    sa.Column("XLMC", sa.String(64), nullable=False, comment="线路名称"),
    sa.Column("QSDZ", _ID, nullable=True, comment="起始电站"),
    sa.Column("DYDJ", sa.String(4), nullable=False, comment="电压等级"),
    sa.Column("YXDL", sa.Numeric(8, 1), nullable=True, comment="允许电流 (A)"),
    sa.Column("LLKGS", sa.Integer, nullable=True, comment="联络开关数"),
    sa.Column("GDQY", sa.String(2), nullable=True, comment="供电区域"),
    sa.Column("SSMX", sa.String(8), nullable=True, comment="所属母线段"),
    *_common(),
    sa.Index("IX_PMS_DKX_GXSJ", "GXSJ", "OBJ_ID"),
)

transformers = sa.Table(
    "T_SB_ZNYC_PDBYQ",
    metadata,
    sa.Column("OBJ_ID", _ID, primary_key=True, comment="设备ID"),
    sa.Column("SBMC", sa.String(64), nullable=False, comment="设备名称"),
    sa.Column("XH", sa.String(32), nullable=True, comment="型号"),
    sa.Column("SSDKX", _ID, nullable=True, comment="所属馈线"),
    sa.Column("SSDZ", _ID, nullable=True, comment="所属电站"),
    sa.Column("EDRL", sa.Numeric(10, 3), nullable=False, comment="额定容量 (kVA)"),
    sa.Column("DYDJ", sa.String(4), nullable=False, comment="电压等级"),
    sa.Column("SYXZ", sa.String(2), nullable=True, comment="使用性质"),
    sa.Column("YXTQBH", sa.String(16), nullable=True, comment="营销台区编号 (marketing TG_ID)"),
    *_common(),
    sa.Index("IX_PMS_PDBYQ_GXSJ", "GXSJ", "OBJ_ID"),
)

switches = sa.Table(
    "T_SB_ZWYC_ZSKG",
    metadata,
    sa.Column("OBJ_ID", _ID, primary_key=True, comment="设备ID"),
    sa.Column("SBMC", sa.String(64), nullable=False, comment="设备名称"),
    sa.Column("SSDKX", _ID, nullable=True, comment="所属馈线"),
    sa.Column("KGXZ", sa.String(2), nullable=True, comment="开关性质"),
    *_common(),
    sa.Index("IX_PMS_ZSKG_GXSJ", "GXSJ", "OBJ_ID"),
)

coordinates = sa.Table(
    "T_TX_SBZB",
    metadata,
    sa.Column("SBID", _ID, primary_key=True, comment="设备ID"),
    sa.Column("SBLX", sa.String(8), nullable=False, comment="设备类型"),
    sa.Column("JD", sa.Numeric(10, 6), nullable=False, comment="经度"),
    sa.Column("WD", sa.Numeric(10, 6), nullable=False, comment="纬度"),
    sa.Column("GXSJ", sa.DateTime, nullable=True, comment="更新时间 (Asia/Shanghai)"),
    sa.Index("IX_PMS_SBZB_GXSJ", "GXSJ", "SBID"),
)

# Equipment tables by the record type the hub's routes give them; coordinates are joined, not listed.
EQUIPMENT = {
    "substation": substations,
    "main_transformer": main_transformers,
    "feeder": feeders,
    "transformer": transformers,
    "switch": switches,
}
# SBLX of the GIS table per equipment table.
DEVICE_TYPES = {"substation": "0101", "transformer": "0302", "switch": "0305"}


def create_pms_schema(engine: Engine) -> None:
    """Create the PMS tables that do not exist yet."""
    metadata.create_all(engine)


def drop_pms_schema(engine: Engine) -> None:
    """Drop every PMS table."""
    metadata.drop_all(engine)
