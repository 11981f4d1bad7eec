"""Seeded generator of a realistic Nanyang (Henan) marketing-system world: same seed, same world.

Customer classes (CUST_CLASS_CODE): about 80% "01" low-voltage residential (4-16 kVA at 220/380 V), 16%
"02" low-voltage non-residential (20-160 kVA at 380 V), 3% "03" high-voltage single source (250-2500 kVA at
10 kV) and 1% "04" high-voltage dual source (1250-8000 kVA at 10 kV, mostly important users).
Code values this generator uses beyond the shared record layout:
customer STATUS_CODE "1" in service, "2" waiting for connection (a new-connection application is open);
application STATUS_CODE "01" acceptance, "02" survey, "03" scheme reply, "04" external works, "05" design
review, "06" mid inspection, "07" completion inspection, "08" contract, "09" energisation, "10" archived, each
application following its own process (world.status_flow);
CONTACT_TYPE "01" owner or legal representative, "02" electrical contact, "03" billing contact.
UPDATE_TIME comes in bursts: batch jobs stamp several applications with exactly the same second.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from ground.errors import ConfigError
from simulators.marketing.world import (
    LEGACY_TIME_FORMAT,
    ApplicationRow,
    ContactRow,
    CustomerRow,
    DocumentRow,
    MarketingWorld,
    status_flow,
)

_SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴孔向汤"
)
_GIVEN_NAMES = (
    "伟",
    "芳",
    "娜",
    "秀英",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀兰",
    "霞",
    "平",
    "刚",
    "桂英",
    "建国",
    "建华",
    "志强",
    "海燕",
    "红梅",
    "玉兰",
    "国庆",
    "卫东",
    "振华",
    "文博",
    "子涵",
    "浩然",
    "雨桐",
    "俊杰",
    "书豪",
    "梦瑶",
    "晓东",
    "新民",
    "保国",
    "春生",
    "金凤",
)


@dataclass(frozen=True)
class _Area:
    """A district or county: where addresses, supply units and resident-id region codes come from."""

    name: str
    org_no: str
    region_code: str
    urban: bool
    places: tuple[str, ...]


_AREAS = (
    _Area("卧龙区", "41401", "411303", True, ("车站南路", "中州路", "人民路", "卧龙路", "七一路", "张衡路")),
    _Area("宛城区", "41402", "411302", True, ("新华路", "建设路", "工业路", "光武路", "仲景路", "独山大道")),
    _Area("镇平县", "41403", "411324", False, ("石佛寺镇", "贾宋镇", "侯集镇")),
    _Area("方城县", "41404", "411322", False, ("博望镇", "赵河镇", "拐河镇")),
    _Area("南召县", "41405", "411321", False, ("云阳镇", "皇路店镇", "南河店镇")),
    _Area("社旗县", "41406", "411327", False, ("赊店镇", "桥头镇")),
    _Area("唐河县", "41407", "411328", False, ("源潭镇", "毕店镇", "郭滩镇")),
)
_VILLAGES = ("王庄", "李营", "张湾", "刘岗", "陈庄", "杨寨", "赵楼", "黄庄", "孙岗", "马营", "朱湾", "郭庄")
_INDUSTRIAL_PARKS = ("高新技术产业开发区", "产业集聚区", "官庄工区", "新能源经济技术开发区")

# (business kind, GB/T 4754 industry code, ELEC_TYPE_CODE) for low-voltage non-residential customers.
_SMALL_BUSINESSES = (
    ("餐馆", "H6210", "200"),
    ("烩面馆", "H6210", "200"),
    ("超市", "F5212", "200"),
    ("便利店", "F5212", "200"),
    ("五金店", "F5234", "200"),
    ("药店", "F5251", "200"),
    ("诊所", "Q8423", "200"),
    ("汽修店", "O8111", "200"),
    ("面粉加工坊", "C1311", "200"),
    ("养殖场", "A0313", "400"),
    ("灌溉站", "A0190", "400"),
)
# (name suffix, GB/T 4754 industry code, ELEC_TYPE_CODE) for high-voltage customers.
_ENTERPRISES = (
    ("纺织有限公司", "C1711", "300"),
    ("食品有限公司", "C1391", "300"),
    ("药业有限公司", "C2710", "300"),
    ("水泥有限公司", "C3011", "300"),
    ("特钢有限公司", "C3130", "300"),
    ("新材料科技有限公司", "C3091", "300"),
    ("数据科技有限公司", "I6450", "200"),
    ("广场置业有限公司", "K7010", "200"),
    ("冷链物流有限公司", "G5960", "200"),
)
_ENTERPRISE_WORDS = (
    "宛东",
    "卧龙",
    "白河",
    "独山",
    "仲景",
    "伏牛",
    "丹江",
    "张衡",
    "南都",
    "汉冶",
    "宛北",
    "鸭河",
)
_HOSPITALS = (
    "南阳市第一人民医院",
    "南阳市中心医院",
    "南阳市第二人民医院",
    "南阳市中医院",
    "南阳市妇幼保健院",
)
_BANKS = (
    "中国工商银行南阳分行",
    "中国农业银行南阳分行",
    "中国建设银行南阳分行",
    "中国银行南阳分行",
    "南阳农村商业银行",
    "中国邮政储蓄银行南阳市分行",
)
_MOBILE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "176",
    "177",
    "180",
    "182",
    "185",
    "186",
    "187",
    "188",
    "189",
    "199",
)

_RESIDENTIAL_CAPS = (4.0, 6.0, 8.0, 10.0, 12.0, 16.0)
_LV_CAPS = (20.0, 30.0, 40.0, 50.0, 63.0, 80.0, 100.0, 125.0, 160.0)
_HV_SINGLE_CAPS = (250.0, 315.0, 400.0, 500.0, 630.0, 800.0, 1000.0, 1250.0, 1600.0, 2000.0, 2500.0)
_HV_DUAL_CAPS = (1250.0, 1600.0, 2000.0, 2500.0, 3150.0, 4000.0, 5000.0, 6300.0, 8000.0)
_CAPS_BY_CLASS = {"01": _RESIDENTIAL_CAPS, "02": _LV_CAPS, "03": _HV_SINGLE_CAPS, "04": _HV_DUAL_CAPS}

_DOCUMENTS_BY_CLASS = {
    "01": (("01", "身份证明"), ("02", "房屋产权证明")),
    "02": (("03", "营业执照"), ("01", "法定代表人身份证明"), ("02", "房屋产权证明或租赁合同")),
    "03": (("03", "营业执照"), ("01", "法定代表人身份证明"), ("04", "用电设备清单"), ("05", "项目批准文件")),
    "04": (
        ("03", "营业执照"),
        ("01", "法定代表人身份证明"),
        ("04", "用电设备清单"),
        ("05", "项目批准文件"),
        ("06", "重要负荷说明"),
    ),
}
# Weights of CHANNEL_CODE "01".."05" per customer class: households apply online, enterprises in person.
_CHANNEL_WEIGHTS = {
    "01": (20, 30, 45, 5, 0),
    "02": (30, 25, 35, 5, 5),
    "03": (35, 15, 0, 0, 50),
    "04": (35, 15, 0, 0, 50),
}

# LOAD_TYPE shares [G]: a household's own charging pile (充电桩, "01") is a common low-voltage residential
# application in towns, rarer in villages; heat pumps (热泵, "02") come with rural heating conversions
# (煤改电) applied for in the heating months, fewer in towns. Other applications state "00".
_LOAD_TYPE_CHANGES = ("101", "111")  # new connections and capacity increases bring new equipment
_EV_SHARE = {"1": 0.15, "2": 0.05}  # of residential ones, by URBAN_RURAL_FLAG (1 urban, 2 rural)
_HEAT_PUMP_SHARE = {"1": 0.05, "2": 0.2}  # of residential ones accepted in the heating months
_HEATING_MONTHS = frozenset({11, 12, 1, 2})

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(region_code: str, birth: datetime, sequence: int) -> str:
    """An 18-character resident identity number (GB 11643) with a correct check character."""
    body = f"{region_code}{birth:%Y%m%d}{sequence:03d}"
    total = sum(int(digit) * weight for digit, weight in zip(body, _ID_WEIGHTS, strict=True))
    return body + _ID_CHECK[total % 11]


def social_credit_code(region_code: str, organisation: str) -> str:
    """An 18-character unified social credit code (GB 32100) for an enterprise, with correct check characters.

    organisation is the 8-digit body of the organisation code; its check digit is computed here.
    """
    weighted = zip(organisation, _ORG_CODE_WEIGHTS, strict=True)
    org_total = sum(int(digit) * weight for digit, weight in weighted)
    org_check = (11 - org_total % 11) % 11
    body = f"91{region_code}{organisation}{'X' if org_check == 10 else org_check}"
    total = sum(_USCC_CHARS.index(char) * weight for char, weight in zip(body, _USCC_WEIGHTS, strict=True))
    return body + _USCC_CHARS[(31 - total % 31) % 31]


def load_type_code(app_no: str, cust_class: str, busi_type: str, urban_rural: str, handled: datetime) -> str:
    """LOAD_TYPE of a seeded application, drawn from its own Random keyed by APP_NO.

    A Random of its own keeps the main draw order, so every other value of a seed's world stays as it was,
    while the same seed still gives the same load types.
    """
    if cust_class != "01" or busi_type not in _LOAD_TYPE_CHANGES:
        return "00"
    roll = random.Random(f"load type {app_no}").random()
    ev_share = _EV_SHARE.get(urban_rural, _EV_SHARE["2"])
    if roll < ev_share:
        return "01"
    if handled.month in _HEATING_MONTHS and roll < ev_share + _HEAT_PUMP_SHARE.get(urban_rural, 0.0):
        return "02"
    return "00"


class _Generator:
    """Draws every value from one Random, in a fixed order, so a seed fixes the whole world."""

    def __init__(self, seed: int, start: datetime) -> None:
        self.rng = random.Random(seed)
        self.start = start

    def person_name(self) -> str:
        return self.rng.choice(_SURNAMES) + self.rng.choice(_GIVEN_NAMES)

    def mobile(self) -> str:
        return self.rng.choice(_MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"

    def digits(self, prefix: str, length: int) -> str:
        return prefix + "".join(str(self.rng.randrange(10)) for _ in range(length - len(prefix)))

    def contact(self, contact_type: str) -> ContactRow:
        return ContactRow(CONTACT_NAME=self.person_name(), MOBILE=self.mobile(), CONTACT_TYPE=contact_type)

    def coordinates(self) -> tuple[float | None, float | None]:
        # Some sites were never surveyed on a map.
        if self.rng.random() < 0.04:
            return None, None
        return round(self.rng.uniform(112.4, 112.7), 6), round(self.rng.uniform(32.9, 33.1), 6)

    def address(self, area: _Area, industrial: bool) -> str:
        if industrial:
            return f"南阳市{area.name}{self.rng.choice(_INDUSTRIAL_PARKS)}{self.rng.randint(1, 88)}号"
        place = self.rng.choice(area.places)
        if area.urban:
            return f"南阳市{area.name}{place}{self.rng.randint(1, 999)}号"
        return f"南阳市{area.name}{place}{self.rng.choice(_VILLAGES)}村{self.rng.randint(1, 12)}组"

    def customer_class(self) -> str:
        return self.rng.choices(("01", "02", "03", "04"), weights=(80, 16, 3, 1))[0]

    def customer(self, cons_no: str, cons_id: str) -> tuple[CustomerRow, str]:
        """A customer row and its customer class."""
        rng = self.rng
        cust_class = self.customer_class()
        hv = cust_class in ("03", "04")
        urban_share = 0.6 if cust_class == "01" else 0.8
        urban = rng.random() < urban_share
        area = rng.choice([candidate for candidate in _AREAS if candidate.urban == urban])
        capacity = rng.choice(_CAPS_BY_CLASS[cust_class])
        longitude, latitude = self.coordinates()
        contacts: list[ContactRow]
        if cust_class == "01":
            name = self.person_name()
            trade_code = None
            elec_type = "100"
            volt_code = "AC02202" if capacity <= 8 or rng.random() < 0.3 else "AC03802"
            cert_type, cert_no = "01", self.resident_id(area)
            contacts = [ContactRow(CONTACT_NAME=name, MOBILE=self.mobile(), CONTACT_TYPE="01")]
            bank_acct = self.digits("62", 19) if rng.random() < 0.6 else None
        else:
            if hv:
                if rng.random() < 0.08:
                    name, trade_code, elec_type = rng.choice(_HOSPITALS), "Q8411", "200"
                else:
                    suffix, trade_code, elec_type = rng.choice(_ENTERPRISES)
                    name = f"南阳{rng.choice(_ENTERPRISE_WORDS)}{suffix}"
                volt_code = "AC00101"
            else:
                kind, trade_code, elec_type = rng.choice(_SMALL_BUSINESSES)
                name = f"南阳市{area.name}{rng.choice(_SURNAMES)}记{kind}"
                volt_code = "AC03802"
            cert_type = "02"
            cert_no = social_credit_code(area.region_code, f"{rng.randrange(10**8):08d}")
            owner = self.person_name()
            contacts = [ContactRow(CONTACT_NAME=owner, MOBILE=self.mobile(), CONTACT_TYPE="01")]
            if hv or rng.random() < 0.4:
                contacts.append(self.contact("02"))
            if hv and rng.random() < 0.5:
                contacts.append(self.contact("03"))
            bank_acct = self.digits("4105", 20) if rng.random() < 0.8 else None
        row = CustomerRow(
            CONS_ID=cons_id,
            CONS_NO=cons_no,
            CONS_NAME=name,
            ELEC_ADDR=self.address(area, industrial=hv and elec_type == "300"),
            ELEC_TYPE_CODE=elec_type,
            TRADE_CODE=trade_code,
            VOLT_CODE=volt_code,
            CONTRACT_CAP=capacity,
            STATUS_CODE="1",
            ORG_NO=area.org_no,
            URBAN_RURAL_FLAG="1" if area.urban else "2",
            TG_ID=None if hv else f"TG{rng.randrange(10**7):07d}",
            LONGITUDE=longitude,
            LATITUDE=latitude,
            CERT_TYPE_CODE=cert_type,
            CERT_NO=cert_no,
            BANK_NAME=rng.choice(_BANKS) if bank_acct else None,
            BANK_ACCT=bank_acct,
            CONTACTS=contacts,
        )
        return row, cust_class

    def resident_id(self, area: _Area) -> str:
        birth = datetime(1950, 1, 1) + timedelta(days=self.rng.randrange(365 * 55))
        return resident_id(area.region_code, birth, self.rng.randrange(1000))

    def update_times(self, count: int) -> list[datetime]:
        """Ascending change times; about one in ten is a burst of 3-12 changes in one second, and now and
        then a nightly batch stamps 40-80 applications at once."""
        rng = self.rng
        times: list[datetime] = []
        moment = self.start
        while len(times) < count:
            roll = rng.random()
            size = rng.randint(40, 80) if roll < 0.01 else rng.randint(3, 12) if roll < 0.11 else 1
            times.extend([moment] * min(size, count - len(times)))
            moment += timedelta(seconds=rng.randint(1, 900))
        return times

    def application(
        self, sequence: int, customer: CustomerRow, cust_class: str, updated: datetime
    ) -> ApplicationRow:
        rng = self.rng
        handled = updated - timedelta(seconds=rng.randrange(20 * 86400))
        busi_type = rng.choices(("101", "111", "113", "105"), weights=(70, 20, 5, 5))[0]
        caps = _CAPS_BY_CLASS[cust_class]
        current = customer["CONTRACT_CAP"]
        if busi_type == "111":
            capacity = rng.choice([cap for cap in caps if cap > current] or [current])
        elif busi_type == "113":
            capacity = rng.choice([cap for cap in caps if cap < current] or [current])
        else:
            capacity = current
        if cust_class == "03":
            importance = rng.choices(("00", "03", "04"), weights=(85, 10, 5))[0]
        elif cust_class == "04":
            importance = rng.choices(("00", "01", "02", "03"), weights=(10, 10, 50, 30))[0]
        else:
            importance = "00"
        documents = [
            DocumentRow(DOC_TYPE_CODE=code, DOC_NAME=name, RECEIVED_FLAG="0" if rng.random() < 0.03 else "1")
            for code, name in _DOCUMENTS_BY_CLASS[cust_class]
        ]
        app_no = f"{handled:%y%m%d}{sequence:07d}"
        row = ApplicationRow(
            APP_NO=app_no,
            CONS_NO=customer["CONS_NO"],
            BUSI_TYPE_CODE=busi_type,
            APPLY_CAP=capacity,
            VOLT_CODE=customer["VOLT_CODE"],
            CUST_CLASS_CODE=cust_class,
            IMPORTANCE_CODE=importance,
            ELEC_ADDR=customer["ELEC_ADDR"],
            LONGITUDE=customer["LONGITUDE"],
            LATITUDE=customer["LATITUDE"],
            CHANNEL_CODE=rng.choices(("01", "02", "03", "04", "05"), weights=_CHANNEL_WEIGHTS[cust_class])[0],
            HANDLE_TIME=handled.strftime(LEGACY_TIME_FORMAT),
            UPDATE_TIME=updated.strftime(LEGACY_TIME_FORMAT),
            STATUS_CODE="01",
            RETURN_REASON_CODE=None,
            ORG_NO=customer["ORG_NO"],
            URBAN_RURAL_FLAG=customer["URBAN_RURAL_FLAG"],
            TRADE_CODE=customer["TRADE_CODE"],
            # A temporary supply (临时用电) states its last day: half a year from acceptance, no draw so the
            # seeded world stays as it was.
            TEMP_END_DATE=f"{(handled + timedelta(days=180)):%Y-%m-%d}" if busi_type == "105" else None,
            LOAD_TYPE=load_type_code(app_no, cust_class, busi_type, customer["URBAN_RURAL_FLAG"], handled),
            DOCUMENTS=documents,
        )
        # Older applications have moved further along their process.
        flow = status_flow(row)
        row["STATUS_CODE"] = flow[min((updated - handled).days * len(flow) // 20, len(flow) - 1)]
        return row


# A fixed default start keeps a seed's world the same from one day to the next.
DEFAULT_START = datetime(2026, 11, 2, 8, 30, 0)


def generate_world(
    seed: int, customers: int, applications: int, start: datetime = DEFAULT_START
) -> MarketingWorld:
    """A world of `customers` customers and `applications` applications changed from `start` on (local time).

    The same arguments always give the same world.
    """
    customer_rows, application_rows = generate_rows(seed, customers, applications, start)
    return MarketingWorld(customer_rows, application_rows)


def generate_rows(
    seed: int,
    customers: int,
    applications: int,
    start: datetime = DEFAULT_START,
    *,
    distinct_customers: bool = False,
) -> tuple[list[CustomerRow], list[ApplicationRow]]:
    """The rows of generate_world, for callers that adjust them (place sites, hold back applications).

    Applications pick their customers at random, so a customer may have several; with distinct_customers
    each application has a customer of its own.
    """
    if customers < 1:
        raise ConfigError(f"customers must be at least 1, got {customers}")
    if applications < 0:
        raise ConfigError(f"applications must not be negative, got {applications}")
    if distinct_customers and applications > customers:
        raise ConfigError(
            f"{applications} applications need as many customers of their own, but there are {customers}"
        )
    generator = _Generator(seed, start.replace(microsecond=0, tzinfo=None))
    rng = generator.rng
    cons_numbers = rng.sample(range(10**7), customers)
    first_cons_id = rng.randrange(900_000_000, 990_000_000 - customers)
    classified = [
        generator.customer(f"413{number:07d}", str(first_cons_id + index))
        for index, number in enumerate(cons_numbers)
    ]
    application_rows: list[ApplicationRow] = []
    sequence = rng.randrange(1, 10**5)
    own = rng.sample(classified, applications) if distinct_customers else []
    for index, updated in enumerate(generator.update_times(applications)):
        customer, cust_class = own[index] if distinct_customers else rng.choice(classified)
        # Gaps in the numbering, as other business types share the sequence; 7 digits last for 10^6 rows.
        sequence += rng.randint(1, 9)
        row = generator.application(sequence, customer, cust_class, updated)
        if row["BUSI_TYPE_CODE"] == "101":
            customer["STATUS_CODE"] = "2"
        application_rows.append(row)
    return [customer for customer, _ in classified], application_rows
