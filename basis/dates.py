"""Pure date parsing: the date strings of feeds, sitemaps and pages → aware UTC datetimes.

Covers RFC 822/1123/2822/850 and their real-world variants (no or wrong weekday, any-case
month, 2-digit year, no seconds, `GMT`/`UT`/`Z`/`UTC`, US and a few other named zones,
`+0800`, `+08:00`, `GMT+8`, `AM`/`PM`, Java's `Fri Nov 27 09:00:00 CST 2026`), ISO 8601 /
W3C datetime, and numeric and Chinese forms (`2026年11月27日 下午3:05`, `2026/11/27 09:00`,
`2026.11.27`, full-width digits, a `北京时间` prefix meaning +08:00)."""
from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")  # fixed: no DST in China since 1991
_ZONE_HOURS = {"UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6,
               "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7, "CET": 1, "CEST": 2,
               "BST": 1, "MSK": 3, "HKT": 8, "SGT": 8, "JST": 9, "KST": 9, "AEST": 10,
               "AEDT": 11}
_OFFSET = re.compile(r"(?:GMT|UTC|UT)?(?P<sign>[+-])(?P<h>\d{1,2})(?::?(?P<m>\d{2}))?")
_ENGLISH_MERIDIEM = re.compile(r"(?P<h>\d{1,2})(?P<rest>(?::\d{2}){1,2})\s*(?P<ap>[AaPp])"
                               r"\.?[Mm]\.?(?!\w)")
_CHINESE_MERIDIEM = re.compile(r"(?P<ap>上午|凌晨|早上|早晨|中午|下午|傍晚|晚上)\s*(?P<h>\d{1,2})"
                               r"(?=\s*[:时点])")
_NUMERIC = re.compile(
    r"(?:[^\W\d_]{1,10}\s*:\s*)?"  # a label: 发布时间: / Published:
    r"(?P<y>\d{4})\s*[年/.-]\s*(?P<mo>\d{1,2})\s*[月/.-]\s*(?P<d>\d{1,2})\s*日?"
    r"(?:[\sT,]*(?P<h>\d{1,2})\s*[:时点]\s*(?:(?P<mi>\d{1,2})\s*分?)?"
    r"(?:\s*:?\s*(?P<s>\d{1,2})(?:\.\d+)?\s*秒?)?)?"
    r"\s*(?:(?P<utc>Z)|(?P<sign>[+-])(?P<th>\d{2}):?(?P<tm>\d{2}))?")
_RFC850 = re.compile(r"(\d{1,2})-([A-Za-z]{3,9})-(\d{2,4})")


def iso(value: datetime | None) -> str | None:
    """An aware time as ISO 8601 in UTC (`2026-11-27T01:00:00+00:00`); None stays None."""
    return value.astimezone(timezone.utc).isoformat() if value else None


def zone_for_language(language: str | None) -> tzinfo:
    """Zone of a source's zone-less dates: China (+08:00) for `zh`/`zh-*`, else UTC."""
    code = (language or "").strip().lower().replace("_", "-")
    return CHINA if code == "zh" or code.startswith("zh-") else timezone.utc


def parse_date(value: str | None, default_tz: tzinfo = timezone.utc) -> datetime | None:
    """An aware UTC datetime, or None for a missing or unreadable value (never raises).
    A value that names no zone is read in `default_tz`."""
    if not isinstance(value, str):
        return None
    text = unicodedata.normalize("NFKC", value).strip()
    if "北京时间" in text:
        text, default_tz = text.replace("北京时间", " "), CHINA
    text = text.translate({ord(c): " " for c in "()[]【】"}).strip()
    if not text:
        return None
    try:
        parsed = _iso(text) or _other(text, default_tz)
        if parsed is None:
            return None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=default_tz)) \
            .astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


def _iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _other(text: str, default_tz: tzinfo) -> datetime | None:
    """Numeric/Chinese and RFC 822 forms, after the zone token is taken out."""
    text, zone = _split_zone(_meridiem(text), default_tz)
    parsed = _numeric(text) or _rfc822(text)
    if parsed is None or parsed.tzinfo is not None:
        return parsed
    return parsed if zone is None else parsed.replace(tzinfo=zone)


def _split_zone(text: str, default_tz: tzinfo) -> tuple[str, tzinfo | None]:
    """The text without its zone tokens, and the zone (a numeric offset wins over a name)."""
    numeric: list[tzinfo] = []
    named: list[tzinfo] = []
    kept: list[str] = []
    for token in text.split():
        match = _OFFSET.fullmatch(token)
        if match:
            numeric.append(_offset(match["sign"], match["h"], match["m"]))
        elif token.upper() in _ZONE_HOURS:
            named.append(_named_zone(token.upper(), default_tz))
        else:
            kept.append(token)
    zones = numeric + named
    return " ".join(kept), zones[0] if zones else None


def _offset(sign: str, hours: str, minutes: str | None) -> tzinfo:
    delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
    return timezone(delta if sign == "+" else -delta)


def _named_zone(name: str, default_tz: tzinfo) -> tzinfo:
    """`CST` is China Standard Time in a +08:00 source, US Central elsewhere."""
    if name == "CST" and default_tz.utcoffset(datetime(2026, 1, 1)) == timedelta(hours=8):
        return CHINA
    return timezone(timedelta(hours=_ZONE_HOURS[name]))


def _meridiem(text: str) -> str:
    """`下午3:05` / `3:05 PM` → `15:05`."""
    def english(m: re.Match[str]) -> str:
        return f"{_hour24(int(m['h']), m['ap'].lower() == 'p')}{m['rest']}"

    def chinese(m: re.Match[str]) -> str:
        hour = int(m["h"])
        pm = m["ap"] in ("下午", "傍晚", "晚上") or (m["ap"] == "中午" and hour < 11)
        return str(_hour24(hour, pm))

    return _CHINESE_MERIDIEM.sub(chinese, _ENGLISH_MERIDIEM.sub(english, text))


def _hour24(hour: int, pm: bool) -> int:
    if pm:
        return hour + 12 if hour < 12 else hour
    return 0 if hour == 12 else hour


def _numeric(text: str) -> datetime | None:
    m = _NUMERIC.fullmatch(text)
    if m is None:
        return None
    parsed = datetime(int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"] or 0),
                      int(m["mi"] or 0), int(m["s"] or 0))
    if m["utc"] or m["sign"]:
        return parsed.replace(tzinfo=_offset(m["sign"] or "+", m["th"] or "0", m["tm"]))
    return parsed


def _rfc822(text: str) -> datetime | None:
    """RFC 822 and relatives (the zone is already taken out); a missing time is midnight."""
    text = _RFC850.sub(r"\1 \2 \3", text)
    for candidate in (text, f"{text} 00:00") if ":" not in text else (text,):
        try:
            return parsedate_to_datetime(candidate)
        except (TypeError, ValueError, IndexError):
            continue
    return None
