"""The recipient's address: a province/city/district region plus a deliverable detail.

Usage::

    value = parse_address("深圳南山 科技园南区8栋1201")     # or raises Invalid
    value == {"region": "广东省深圳市南山区", "detail": "科技园南区8栋1201",
              "province": "广东省", "city": "深圳市", "district": "南山区", "code": "440305"}
    show_address(value)        # "广东省深圳市南山区 科技园南区8栋1201"
    check_address(value)       # re-validates a stored value against today's table

The region is read from the start of the text, longest match first: province,
then city, then district, each by full name (广东省) or short form (广东), with
spaces or commas between them. The province may be left out when the city (or
a district's full name) is unique in the country. Municipalities (北京市朝阳区)
and cities without districts (东莞市, 仙桃市) are shaped in `data/regions.json`
so they need no special case here; see `data/build_regions.py`.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.codes import Code
from bot.forms.base import Given, Invalid
from bot.forms.safety import free_text
from bot.words import normalize

MAX_LENGTH = 120
MIN_DETAIL = 5

_DATA = Path(__file__).with_name("data") / "regions.json"
_GIVEN = Given()  # the addresses parse_address gave in this process, by _key
_SEPARATORS = " ,;/|、。-"
# A short form followed by one of these is the start of a longer name we do not
# know (朝阳 in 朝阳区 is not 朝阳市), so it must not match on its own.
_ADMIN_SUFFIX = frozenset("省市区县州盟旗")
_SUFFIXES = {
    1: ("维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市"),
    2: ("自治州", "地区", "盟", "市"),
    3: ("自治县", "自治旗", "新区", "林区", "区", "县", "市", "旗"),
}
_ETHNIC = re.compile(
    "(?:朝鲜|土家|苗|藏|羌|彝|布依|侗|壮|哈尼|傣|白|景颇|傈僳|回|蒙古|哈萨克|柯尔克孜"
    "|满|畲|瑶|黎|仫佬|毛南|仡佬|水|纳西|普米|独龙|拉祜|佤|布朗|怒|达斡尔|鄂温克|各)族?$"
)
# Something a courier can walk to: a number, or a word for a street or building.
_DELIVERABLE = re.compile(
    r"\d|[路街道巷弄号栋幢楼座室村组苑园院厦场里屯镇乡区门层期舍寓墅坊庄湾城]|单元|胡同|公司|学校"
)


def parse_address(text: str) -> dict[str, str]:
    """Split typed text into region and detail; raise Invalid if either is missing or vague."""
    text = normalize(text)
    if not text:
        raise Invalid(Code.ADDRESS_EMPTY)
    if len(text) > MAX_LENGTH:
        raise Invalid(Code.ADDRESS_TOO_LONG, length=len(text), limit=MAX_LENGTH)
    free_text(text, "地址")
    table = _table()
    end, province, city, district = _read_region(table, text)
    if province is None:
        raise Invalid(Code.ADDRESS_NO_REGION, text=text)
    region = _region_name(province, city, district)
    if city is None or (district is None and table.children.get(city.code)):
        example = table.units[table.children[city.code][0]].name if city else ""
        raise Invalid(Code.ADDRESS_NO_DISTRICT, region=region, example=example, text=text)
    detail = text[end:].strip(_SEPARATORS)
    if len(detail.replace(" ", "")) < MIN_DETAIL or not _DELIVERABLE.search(detail):
        raise Invalid(Code.ADDRESS_TOO_SHORT, detail=detail, min=MIN_DETAIL, region=region)
    value = {
        "region": region,
        "detail": detail,
        "province": province.name,
        "city": city.name,
        "district": district.name if district else "",
        "code": (district or city).code.ljust(6, "0"),
    }
    return _GIVEN.add(value, _key(value))


def show_address(value: dict[str, Any]) -> str:
    """One line for a person or a courier: region, a space, detail."""
    return f"{value['region']} {value['detail']}"


def check_address(value: Any) -> dict[str, str]:
    """Re-validate a stored address; the table may have changed since it was typed (not
    while this process runs: an address its `parse_address` gave is good as it is)."""
    if not isinstance(value, dict) or not value.get("region") or "detail" not in value:
        raise Invalid(Code.ADDRESS_NO_REGION, text="")
    if _key(value) in _GIVEN:
        return value
    fresh = parse_address(show_address(value))
    if fresh["code"] != value.get("code"):
        raise Invalid(Code.ADDRESS_NO_REGION, text=show_address(value))
    return fresh


def _key(value: dict[str, Any]) -> tuple:
    return tuple(sorted((k, v) for k, v in value.items() if isinstance(v, str)))


# -- the region table ---------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    code: str
    name: str
    level: int  # 1 province, 2 city, 3 district
    parent: str  # "" for a province


@dataclass(frozen=True)
class _Table:
    units: dict[str, _Unit]
    children: dict[str, list[str]]
    aliases: dict[str, list[tuple[str, bool]]]  # text -> [(code, is_short_form)]
    longest: int


@functools.cache
def _table() -> _Table:
    """Load regions.json once per process (about 3,300 names)."""
    data = json.loads(_DATA.read_text(encoding="utf-8"))
    units: dict[str, _Unit] = {}
    children: dict[str, list[str]] = {}

    def add(code: str, name: str, level: int, parent: str) -> None:
        units[code] = _Unit(code, name, level, parent)
        children.setdefault(parent, []).append(code)

    for pcode, pname, cities in data["provinces"]:
        add(pcode, pname, 1, "")
        for ccode, cname, districts in cities:
            add(ccode, cname, 2, pcode)
            for dcode, dname in districts:
                add(dcode, dname, 3, ccode)
    aliases: dict[str, list[tuple[str, bool]]] = {}
    for unit in units.values():
        for alias, short in _aliases(unit):
            aliases.setdefault(alias, []).append((unit.code, short))
    return _Table(units, children, aliases, max(map(len, aliases)))


def _aliases(unit: _Unit) -> list[tuple[str, bool]]:
    """The full name, and the short forms people type: 广东, 深圳, 南山, 延边州."""
    out = [(unit.name, False)]
    suffix = next((s for s in _SUFFIXES[unit.level] if unit.name.endswith(s)), "")
    stem = unit.name[: len(unit.name) - len(suffix)]
    # Provinces' suffixes already carry the people's name (壮族自治区); others need it peeled.
    if unit.level > 1 and suffix.startswith("自治"):
        while len(stem) > 2 and _ETHNIC.search(stem):
            stem = _ETHNIC.sub("", stem)
    if suffix and len(stem) >= 2:
        out.append((stem, True))
        if suffix in ("自治州", "自治县"):
            out.append((stem + suffix[-1], True))  # 延边州, 石柱县
    return out


# -- reading the region -------------------------------------------------------


def _read_region(table: _Table, text: str):
    """Try every province/city/district combination at the start; keep the longest reading."""
    best = (0, None, None, None)
    for province, p_end in [(None, 0), *_matches(table, text, 0, 1, None)]:
        for city, c_end in [(None, p_end), *_matches(table, text, p_end, 2, province)]:
            within = city or province
            # Without any place above it, only a district's full name is unambiguous enough.
            found = _matches(table, text, c_end, 3, within, full_only=within is None)
            for district, d_end in [(None, c_end), *found]:
                if district is None and city is None and province is None:
                    continue
                # Ties go to the reading with more levels: 北京市 is a city, not just a province.
                if (d_end, district is not None, city is not None) > (
                    best[0],
                    best[3] is not None,
                    best[2] is not None,
                ):
                    best = (d_end, province, city, district)
    end, province, city, district = best
    if district is not None and city is None:
        city = table.units[district.parent]
    if city is not None and province is None:
        province = table.units[city.parent]
    return end, province, city, district


def _matches(
    table: _Table, text: str, pos: int, level: int, within: _Unit | None, full_only: bool = False
) -> list[tuple[_Unit, int]]:
    """Units of `level` under `within` named at `pos`; a name shared by two is no match."""
    while pos < len(text) and text[pos] in _SEPARATORS:
        pos += 1
    found: list[tuple[_Unit, int]] = []
    for length in range(min(table.longest, len(text) - pos), 1, -1):
        end = pos + length
        hits = []
        for code, short in table.aliases.get(text[pos:end], ()):
            unit = table.units[code]
            if unit.level != level or (short and full_only):
                continue
            if within is not None and within.code not in _ancestors(table, unit):
                continue
            if short and end < len(text) and text[end] in _ADMIN_SUFFIX:
                continue
            hits.append(unit)
        if len(hits) == 1:
            found.append((hits[0], end))
    return found


def _ancestors(table: _Table, unit: _Unit) -> list[str]:
    codes = []
    while unit.parent:
        codes.append(unit.parent)
        unit = table.units[unit.parent]
    return codes


def _region_name(province: _Unit, city: _Unit | None, district: _Unit | None) -> str:
    # A municipality's city carries the municipality's name: 北京市朝阳区, not 北京市北京市朝阳区.
    parts = [province.name]
    if city is not None and city.name != province.name:
        parts.append(city.name)
    if district is not None:
        parts.append(district.name)
    return "".join(parts)
