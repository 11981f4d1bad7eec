"""Realistic marketing-system records in the legacy layout, for mapping and routing tests."""

from __future__ import annotations

from typing import Any


def application_record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "APP_NO": "2611200001234",
        "CONS_NO": "4130012345",
        "BUSI_TYPE_CODE": "101",
        "APPLY_CAP": 630.0,
        "VOLT_CODE": "AC00101",
        "CUST_CLASS_CODE": "03",
        "IMPORTANCE_CODE": "02",
        "ELEC_ADDR": "南阳市卧龙区车站南路18号",
        "LONGITUDE": 112.53,
        "LATITUDE": 32.99,
        "CHANNEL_CODE": "01",
        "HANDLE_TIME": "2026-11-20 09:13:05",
        "UPDATE_TIME": "2026-11-21 16:40:00",
        "STATUS_CODE": "01",
        "ORG_NO": "41401",
        "URBAN_RURAL_FLAG": "1",
        "DOCUMENTS": [
            {"DOC_TYPE_CODE": "001", "DOC_NAME": "营业执照", "RECEIVED_FLAG": "1"},
            {"DOC_TYPE_CODE": "007", "DOC_NAME": "用电设备清单", "RECEIVED_FLAG": "0"},
        ],
    }
    record.update(changes)
    return record


def customer_record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "CONS_ID": "900000123",
        "CONS_NO": "4130012345",
        "CONS_NAME": "南阳市宛城区李记餐馆",
        "ELEC_ADDR": "南阳市宛城区仲景路66号",
        "ELEC_TYPE_CODE": "200",
        "TRADE_CODE": "H6210",
        "VOLT_CODE": "AC03802",
        "CONTRACT_CAP": 50.0,
        "STATUS_CODE": "1",
        "ORG_NO": "41402",
        "URBAN_RURAL_FLAG": "1",
        "TG_ID": "TG0012345",
        "LONGITUDE": 112.55,
        "LATITUDE": 33.0,
        "CERT_TYPE_CODE": "02",
        "CERT_NO": "91411302MA3X123456",
        "BANK_NAME": "中国工商银行南阳分行",
        "BANK_ACCT": "6222021712000123456",
        "CONTACTS": [
            {"CONTACT_NAME": "李明", "MOBILE": "13803770001", "CONTACT_TYPE": "01"},
            {"CONTACT_NAME": "王芳", "MOBILE": "13903770002", "CONTACT_TYPE": None},
        ],
    }
    record.update(changes)
    return record
