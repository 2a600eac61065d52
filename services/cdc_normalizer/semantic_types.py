"""Value converters: Debezium / Kafka Connect JSON values -> the canonical values of `claims_shared.contracts.cdc`.

Each converter takes one non-null JSON value and returns its canonical form, or raises `ValueError` (`TypeError`,
`OverflowError`) when the value cannot be decoded with its type. Converters are built once per field, from either an
inline Connect schema (`connect_field_decoder`) or a PostgreSQL `format_type()` string (`pg_type_decoder`), so the hot
path does no schema interpretation. A field decoder is `(converter, expected_type)`: a `None` converter means the
value is kept as is after checking that its Python type is `expected_type`.

Canonical forms decided here (see the module docstring of `claims_shared.contracts.cdc`):
- timestamp `YYYY-MM-DDTHH:MM:SS` with `.ffffff` (exactly 6 digits) only when the fraction is not zero, which is
  Python's `datetime.isoformat()`; timestamptz the same in UTC with `Z`; time `HH:MM:SS[.ffffff]` (PostgreSQL's
  `24:00:00` is kept); timetz the same in UTC with `Z`. Nanosecond inputs are truncated to microseconds.
- decimals: exact decimal strings with the column's scale (`numeric(12,2)` 5 -> `"5.00"`), never exponent notation:
  PostgreSQL's `numeric::text`. Unconstrained `numeric` (VariableScaleDecimal): Debezium drops the display scale,
  so trailing fractional zeros are removed (`trim_scale(n)::text`: `1.500` -> `"1.5"`, `100` -> `"100"`).
- floats: numbers; non-finite values as the strings `"NaN"`, `"Infinity"`, `"-Infinity"` (what PostgreSQL's
  `to_jsonb` gives, since JSON has no non-finite numbers).
- intervals: ISO-8601 durations with a sign on each component, the way PostgreSQL's `intervalstyle=iso_8601`
  prints `justify_hours(interval)`: `PT1H30M`, `P3DT4H`, `P-1DT-2H`, `PT0.5S`, `PT0S`. A `MicroDuration` has no
  months (Debezium turns a month into 30.4375 days), so it is rendered in days (of 24 h), hours, minutes, seconds.
- bytes: standard base64 with padding; bit strings (`io.debezium.data.Bits`): `'0101'` text, as PostgreSQL prints.
- json: parsed JSON (numbers as int or float; integers of any size stay exact).
- enums, inet/cidr/macaddr, xml, ltree, text: strings as sent.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

import orjson

Converter = Callable[[Any], Any]
FieldDecoder = tuple[Converter | None, type | None]

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_NON_FINITE = {"NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity"}
_US_PER_DAY = 86_400_000_000


class ValueDecodeError(ValueError):
    """A value that does not fit its declared type; the message says what was expected."""


# --------------------------------------------------------------------------------------------------- numbers

def decimal_text(unscaled: int, scale: int) -> str:
    """`unscaled * 10**-scale` as a plain decimal string keeping `scale` digits (no exponent)."""
    if scale <= 0:
        return str(unscaled * 10 ** -scale) if scale else str(unscaled)
    digits = str(abs(unscaled)).rjust(scale + 1, "0")
    return f"{'-' if unscaled < 0 else ''}{digits[:-scale]}.{digits[-scale:]}"


def _unscaled_from_base64(text: str) -> int:
    raw = binascii.a2b_base64(text, strict_mode=True)
    if not raw:
        raise ValueDecodeError("empty byte string for a decimal")
    return int.from_bytes(raw, "big", signed=True)


def _plain_decimal(text: str, scale: int | None) -> str:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueDecodeError(f"not a decimal number: {text[:40]!r}") from None
    if not value.is_finite():
        raise ValueDecodeError(f"non-finite decimal {text!r} is not representable")
    if scale is not None:
        value = value.quantize(Decimal(1).scaleb(-scale))
    return format(value, "f")


def decimal_converter(scale: int | None, *, string_mode: bool = False) -> Converter:
    """A decimal column: Connect `Decimal` (base64 unscaled, `scale` fixed), `VariableScaleDecimal` (`{"scale",
    "value"}`), a decimal string (`decimal.handling.mode=string`) or a JSON number (`double` mode, or
    `decimal.format=NUMERIC`). With `scale=None` (unconstrained numeric) a base64 string is read with scale 0."""

    def convert(v: Any) -> str:
        t = type(v)
        if t is str:
            # Base64 never contains '.' or '-', and a decimal string of a scaled column always has a point, so
            # only scale-0 digit strings are ambiguous: `string_mode` (decimal_handling="string") decides them.
            if string_mode or "." in v or v[:1] == "-" or v in _NON_FINITE:
                return _plain_decimal(v, scale)
            try:
                return decimal_text(_unscaled_from_base64(v), scale or 0)
            except binascii.Error:
                return _plain_decimal(v, scale)
        if t is dict:
            return decimal_text(_unscaled_from_base64(v["value"]), int(v["scale"]))
        if t is int:
            return decimal_text(v * 10 ** scale, scale) if scale and scale > 0 else str(v)
        if t is float:
            if not math.isfinite(v):
                raise ValueDecodeError(f"non-finite decimal {v!r} is not representable")
            return _plain_decimal(repr(v), scale)
        raise ValueDecodeError(f"expected a decimal (base64, struct, string or number), got {t.__name__}")

    return convert


def _trim_scale(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def variable_scale_decimal(v: Any) -> str:
    """Unconstrained `numeric`: Debezium drops its display scale (`-123.456000` arrives as scale 3), so the
    canonical form is the shortest exact one, PostgreSQL's `trim_scale(n)::text`, whatever scale is sent."""
    if type(v) is not dict:
        if type(v) is str:  # decimal.handling.mode=string keeps no struct
            return _trim_scale(_plain_decimal(v, None))
        if type(v) in (int, float):
            return _trim_scale(decimal_converter(None)(v))
        raise ValueDecodeError(f"expected a VariableScaleDecimal struct {{scale, value}}, got {type(v).__name__}")
    return _trim_scale(decimal_text(_unscaled_from_base64(v["value"]), int(v["scale"])))


def float_value(v: Any) -> float | str:
    t = type(v)
    if t is float:
        return v if math.isfinite(v) else ("NaN" if v != v else ("Infinity" if v > 0 else "-Infinity"))
    if t is int:
        return float(v)
    if t is str and v in _NON_FINITE:
        return v
    raise ValueDecodeError(f"expected a floating-point number, got {v!r:.40}")


def integer_value(v: Any) -> int:
    if type(v) is int:
        return v
    if type(v) is str and v.lstrip("-").isdigit():
        return int(v)
    raise ValueDecodeError(f"expected an integer, got {v!r:.40}")


def boolean_value(v: Any) -> bool:
    if type(v) is bool:
        return v
    raise ValueDecodeError(f"expected a boolean, got {v!r:.40}")


# ---------------------------------------------------------------------------------------------- date and time

def format_datetime(dt: datetime) -> str:
    # isoformat: `YYYY-MM-DDTHH:MM:SS`, plus `.ffffff` only when microseconds are not zero.
    return dt.isoformat()


def timestamp_from_epoch(per_second: int) -> Converter:
    """Epoch ms (`Timestamp`), µs (`MicroTimestamp`) or ns (`NanoTimestamp`) -> local timestamp text (no zone).
    Negative values (before 1970) are exact; ns are truncated (floored) to µs."""
    to_us = 1_000_000 // per_second if per_second <= 1_000_000 else 0

    def convert(v: Any) -> str:
        if type(v) is not int:
            if type(v) is str:
                return _iso_local_timestamp(v)
            raise ValueDecodeError(f"expected epoch time as an integer, got {v!r:.40}")
        us = v * to_us if to_us else v // 1000
        days, us_of_day = divmod(us, _US_PER_DAY)
        return f"{_date_text(days)}T{format_time_of_day(us_of_day)}"

    return convert


_date_texts: dict[int, str] = {}


def _date_text(epoch_days: int) -> str:
    """`YYYY-MM-DD` of an epoch day, memoised: a change stream touches few distinct days."""
    text = _date_texts.get(epoch_days)
    if text is None:
        if len(_date_texts) > 100_000:
            _date_texts.clear()
        text = _date_texts[epoch_days] = date.fromordinal(_EPOCH_ORDINAL + epoch_days).isoformat()
    return text


def _iso_local_timestamp(v: str) -> str:
    dt = datetime.fromisoformat(v)
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt.isoformat()


_UTC_TIMESTAMP = re.compile(r"(\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d)"
                            r"(?:\.(\d{1,9}))?Z$")


def zoned_timestamp(v: Any) -> str:
    """ISO-8601 timestamp with an offset -> UTC `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`."""
    if type(v) is not str:
        raise ValueDecodeError(f"expected an ISO-8601 timestamp string, got {v!r:.40}")
    m = _UTC_TIMESTAMP.match(v)
    if m is not None:  # Debezium's usual form: already UTC; only the fraction may need normalising
        frac = m.group(2)
        if not frac:
            return v
        frac = frac[:6].ljust(6, "0")
        return f"{m.group(1)}Z" if frac == "000000" else f"{m.group(1)}.{frac}Z"
    dt = datetime.fromisoformat(v)
    if dt.tzinfo is None:
        raise ValueDecodeError(f"zoned timestamp without an offset: {v!r}")
    if dt.utcoffset():
        dt = dt.astimezone(timezone.utc)
    return dt.replace(tzinfo=None).isoformat() + "Z"


def date_from_epoch_days(v: Any) -> str:
    if type(v) is int:
        return _date_text(v)
    if type(v) is str:
        return date.fromisoformat(v).isoformat()
    raise ValueDecodeError(f"expected epoch days as an integer, got {v!r:.40}")


def format_time_of_day(us: int) -> str:
    if not 0 <= us <= _US_PER_DAY:  # PostgreSQL allows 24:00:00
        raise ValueDecodeError(f"time of day out of range: {us} µs")
    seconds, micro = divmod(us, 1_000_000)
    minutes, s = divmod(seconds, 60)
    h, m = divmod(minutes, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.{micro:06d}" if micro else f"{h:02d}:{m:02d}:{s:02d}"


_TIME_TEXT = re.compile(r"(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d(?::?\d\d(?::?\d\d)?)?)?$")


def _parse_time_text(v: str) -> tuple[int, int]:
    """`HH:MM:SS[.f][offset]` -> (µs of day, offset seconds)."""
    m = _TIME_TEXT.match(v)
    if not m:
        raise ValueDecodeError(f"not a time of day: {v[:40]!r}")
    h, mi, s, frac, zone = m.groups()
    us = ((int(h) * 60 + int(mi)) * 60 + int(s)) * 1_000_000 + (int(frac[:6].ljust(6, "0")) if frac else 0)
    offset = 0
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        offset = int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60 + int(digits[4:6] or 0)
        offset = -offset if zone[0] == "-" else offset
    return us, offset


def time_from_epoch(per_second: int) -> Converter:
    """`Time` (ms), `MicroTime` (µs), `NanoTime` (ns) of the day -> `HH:MM:SS[.ffffff]`."""

    def convert(v: Any) -> str:
        if type(v) is int:
            us = v * (1_000_000 // per_second) if per_second <= 1_000_000 else v // 1000
            return format_time_of_day(us)
        if type(v) is str:
            return format_time_of_day(_parse_time_text(v)[0])
        raise ValueDecodeError(f"expected a time of day as an integer, got {v!r:.40}")

    return convert


def zoned_time(v: Any) -> str:
    """`io.debezium.time.ZonedTime` (`HH:MM:SS[.f]` + offset) -> UTC `HH:MM:SS[.ffffff]Z`."""
    if type(v) is not str:
        raise ValueDecodeError(f"expected an ISO-8601 time string, got {v!r:.40}")
    us, offset = _parse_time_text(v)
    if offset:
        us = (us - offset * 1_000_000) % _US_PER_DAY
    return format_time_of_day(us) + "Z"


def _seconds_text(us: int) -> str:
    seconds, micro = divmod(abs(us), 1_000_000)
    text = f"{seconds}.{micro:06d}".rstrip("0").rstrip(".") if micro else str(seconds)
    return "-" + text if us < 0 else text


def iso_duration_from_micros(us: int) -> str:
    """µs -> ISO-8601 duration with per-component signs (PostgreSQL iso_8601 style of `justify_hours`)."""
    if us == 0:
        return "PT0S"
    sign = -1 if us < 0 else 1
    a = abs(us)
    days, rest = divmod(a, _US_PER_DAY)
    hours, rest = divmod(rest, 3_600_000_000)
    minutes, micros = divmod(rest, 60_000_000)
    out = "P"
    if days:
        out += f"{sign * days}D"
    time_part = ""
    if hours:
        time_part += f"{sign * hours}H"
    if minutes:
        time_part += f"{sign * minutes}M"
    if micros:
        time_part += _seconds_text(sign * micros) + "S"
    return out + ("T" + time_part if time_part else "")


def micro_duration(v: Any) -> str:
    if type(v) is int:
        return iso_duration_from_micros(v)
    if type(v) is float and v.is_integer():  # MicroDuration is INT64, but be lenient with 1.0E9-style writers
        return iso_duration_from_micros(int(v))
    if type(v) is str:
        return interval_text(v)
    raise ValueDecodeError(f"expected a duration in µs, got {v!r:.40}")


_ISO_DURATION = re.compile(
    r"(-)?P(?:(-?\d+)Y)?(?:(-?\d+)M)?(?:(-?\d+)W)?(?:(-?\d+)D)?"
    r"(?:T(?:(-?\d+)H)?(?:(-?\d+)M)?(?:(-?\d+(?:\.\d+)?)S)?)?$"
)


def interval_text(v: Any) -> str:
    """`io.debezium.time.Interval` (`P1Y2M3DT4H5M6.78S`, zero parts included) -> the same without zero parts."""
    if type(v) is not str:
        raise ValueDecodeError(f"expected an ISO-8601 duration string, got {v!r:.40}")
    m = _ISO_DURATION.match(v)
    if not m or v in ("P", "-P") or v.endswith("T"):
        raise ValueDecodeError(f"not an ISO-8601 duration: {v[:40]!r}")
    neg, y, mo, w, d, h, mi, s = m.groups()
    flip = -1 if neg else 1
    days = (int(w) * 7 if w else 0) + (int(d) if d else 0)
    out = "P"
    for amount, unit in ((y, "Y"), (mo, "M")):
        if amount and int(amount):
            out += f"{flip * int(amount)}{unit}"
    if days:
        out += f"{flip * days}D"
    time_part = ""
    for amount, unit in ((h, "H"), (mi, "M")):
        if amount and int(amount):
            time_part += f"{flip * int(amount)}{unit}"
    if s and Decimal(s):
        seconds = Decimal(s) * flip
        time_part += format(seconds.normalize(), "f") + "S"
    out += "T" + time_part if time_part else ""
    return "PT0S" if out == "P" else out


# ---------------------------------------------------------------------------------------------- other types

_BIG_INT = re.compile(r"\d{16,}")


def json_value(v: Any) -> Any:
    """`io.debezium.data.Json` text -> parsed JSON. orjson turns integers beyond 64 bits into floats, so text with
    long digit runs goes through the standard library parser, which keeps them exact."""
    if type(v) is not str:
        raise ValueDecodeError(f"expected JSON text, got {type(v).__name__}")
    if _BIG_INT.search(v):
        return json.loads(v)
    return orjson.loads(v)


def uuid_value(v: Any) -> str:
    if type(v) is not str or len(v) != 36:
        raise ValueDecodeError(f"expected a UUID string, got {v!r:.40}")
    return v.lower()


def bytes_value(v: Any) -> str:
    """Base64 (JsonConverter's encoding of Connect bytes) -> canonical base64 (standard alphabet, padded)."""
    if type(v) is not str:
        raise ValueDecodeError(f"expected base64 text, got {type(v).__name__}")
    return binascii.b2a_base64(binascii.a2b_base64(v, strict_mode=True), newline=False).decode("ascii")


def bits_converter(length: int | None) -> Converter:
    """`io.debezium.data.Bits`: little-endian bytes of the bit string's value -> `'0101'` text of `length` bits."""

    def convert(v: Any) -> str:
        if type(v) is bool:  # bit(1) arrives as a boolean
            return "1" if v else "0"
        if type(v) is not str:
            raise ValueDecodeError(f"expected base64 bits, got {type(v).__name__}")
        raw = base64.b64decode(v, validate=True)
        n = length if length is not None else len(raw) * 8
        value = int.from_bytes(raw, "little")
        if value.bit_length() > n:
            raise ValueDecodeError(f"{value.bit_length()} bits do not fit bit({n})")
        return format(value, f"0{n}b") if n else ""

    return convert


def string_value(v: Any) -> str:
    if type(v) is str:
        return v
    raise ValueDecodeError(f"expected a string, got {type(v).__name__}")


def array_converter(item: FieldDecoder) -> Converter:
    conv, expected = item

    def convert(v: Any) -> list[Any]:
        if type(v) is not list:
            raise ValueDecodeError(f"expected an array, got {type(v).__name__}")
        if conv is not None:
            return [None if x is None else conv(x) for x in v]
        for x in v:
            if x is not None and type(x) is not expected:
                raise ValueDecodeError(f"array element {x!r:.40} is not {expected.__name__}")  # type: ignore[union-attr]
        return v

    return convert


def map_converter(values: FieldDecoder) -> Converter:
    conv, _ = values

    def convert(v: Any) -> dict[str, Any]:
        if type(v) is not dict:
            raise ValueDecodeError(f"expected a map, got {type(v).__name__}")
        if conv is None:
            return v
        return {k: None if x is None else conv(x) for k, x in v.items()}

    return convert


def struct_converter(fields: list[tuple[str, FieldDecoder]]) -> Converter:
    def convert(v: Any) -> dict[str, Any]:
        if type(v) is not dict:
            raise ValueDecodeError(f"expected a struct, got {type(v).__name__}")
        out = {}
        for name, (conv, _) in fields:
            x = v.get(name)
            out[name] = None if x is None or conv is None else conv(x)
        return out

    return convert


# ------------------------------------------------------------------------------------ from Connect schemas

_NAMED: dict[str, FieldDecoder] = {
    "io.debezium.data.VariableScaleDecimal": (variable_scale_decimal, None),
    "io.debezium.time.ZonedTimestamp": (zoned_timestamp, None),
    "org.apache.kafka.connect.data.Timestamp": (timestamp_from_epoch(1000), None),
    "io.debezium.time.Timestamp": (timestamp_from_epoch(1000), None),
    "io.debezium.time.MicroTimestamp": (timestamp_from_epoch(1_000_000), None),
    "io.debezium.time.NanoTimestamp": (timestamp_from_epoch(1_000_000_000), None),
    "io.debezium.time.Date": (date_from_epoch_days, None),
    "org.apache.kafka.connect.data.Date": (date_from_epoch_days, None),
    "io.debezium.time.Time": (time_from_epoch(1000), None),
    "org.apache.kafka.connect.data.Time": (time_from_epoch(1000), None),
    "io.debezium.time.MicroTime": (time_from_epoch(1_000_000), None),
    "io.debezium.time.NanoTime": (time_from_epoch(1_000_000_000), None),
    "io.debezium.time.ZonedTime": (zoned_time, None),
    "io.debezium.time.MicroDuration": (micro_duration, None),
    "io.debezium.time.Interval": (interval_text, None),
    "io.debezium.time.IsoDate": (date_from_epoch_days, None),
    "io.debezium.time.IsoTime": (time_from_epoch(1_000_000), None),
    "io.debezium.time.IsoTimestamp": (_iso_local_timestamp, None),
    "io.debezium.data.Json": (json_value, None),
    "io.debezium.data.Uuid": (uuid_value, None),
}

_PRIMITIVE: dict[str, FieldDecoder] = {
    "int8": (None, int), "int16": (None, int), "int32": (None, int), "int64": (None, int),
    "float32": (float_value, None), "float64": (float_value, None), "float": (float_value, None),
    "double": (float_value, None),
    "boolean": (None, bool), "string": (None, str), "bytes": (bytes_value, None),
}


def connect_field_decoder(schema: dict[str, Any]) -> FieldDecoder:
    """Decoder of one value described by a Connect schema (`type`, semantic `name`, `parameters`, `items`...).
    Names not known here (`io.debezium.data.Enum`, `EnumSet`, `Xml`, `Ltree`, ...) decode by their `type`."""
    name = schema.get("name")
    params = schema.get("parameters") or {}
    if name == "org.apache.kafka.connect.data.Decimal":
        return decimal_converter(int(params.get("scale", 0))), None
    if name == "io.debezium.data.Bits":
        length = params.get("length")
        return bits_converter(int(length) if length is not None else None), None
    if name in _NAMED:
        return _NAMED[name]
    kind = schema.get("type")
    if kind in _PRIMITIVE:
        return _PRIMITIVE[kind]
    if kind == "array":
        return array_converter(connect_field_decoder(schema.get("items") or {"type": "string"})), None
    if kind == "map":
        return map_converter(connect_field_decoder(schema.get("values") or {"type": "string"})), None
    if kind == "struct":
        return struct_converter([(f["field"], connect_field_decoder(f)) for f in schema.get("fields", [])]), None
    raise ValueDecodeError(f"unknown Connect schema type {kind!r}")


# --------------------------------------------------------------------------- from PostgreSQL format_type()

_TYPMOD = re.compile(r"^([a-z ]+?)(?:\((\d+)(?:,\s*(-?\d+))?\))?((?: with| without) time zone)?$")


def pg_type_decoder(type_text: str, *, decimal_handling: str = "precise") -> FieldDecoder:
    """Decoder of a schemaless JSON value of a PostgreSQL column, given `format_type()` text such as
    `numeric(12,2)`, `timestamp(3) without time zone`, `text[]`. Assumes the connector settings of this project
    (`time.precision.mode=adaptive_time_microseconds`, `interval.handling.mode=numeric`, `binary.handling.mode=bytes`)
    but also accepts ISO strings for temporal values and string decimals. Unknown types (enums, domains of text,
    inet, cidr, macaddr, xml, ltree, ...) are text."""
    text = type_text.strip().lower()
    if text.endswith("[]"):
        return array_converter(pg_type_decoder(text[:-2], decimal_handling=decimal_handling)), None
    m = _TYPMOD.match(text)
    base, p1, p2, zone = m.groups() if m else (text, None, None, None)
    base = base.strip()
    if zone:
        base = f"{base}{zone}"
    if base in ("smallint", "integer", "bigint", "int2", "int4", "int8", "oid"):
        return None, int
    if base in ("real", "double precision", "float4", "float8"):
        return float_value, None
    if base in ("numeric", "decimal"):
        scale = int(p2) if p2 is not None else (0 if p1 is not None else None)
        if scale is None:
            return variable_scale_decimal, None
        return decimal_converter(scale, string_mode=decimal_handling == "string"), None
    if base == "money":
        return decimal_converter(2, string_mode=decimal_handling == "string"), None
    if base in ("boolean", "bool"):
        return None, bool
    if base == "date":
        return date_from_epoch_days, None
    if base in ("time without time zone", "time"):
        return time_from_epoch(1_000_000), None
    if base in ("time with time zone", "timetz"):
        return zoned_time, None
    if base in ("timestamp without time zone", "timestamp"):
        precise_to_ms = p1 is not None and int(p1) <= 3  # Debezium sends timestamp(0..3) as epoch ms
        return timestamp_from_epoch(1000 if precise_to_ms else 1_000_000), None
    if base in ("timestamp with time zone", "timestamptz"):
        return zoned_timestamp, None
    if base == "interval":
        return micro_duration, None
    if base == "uuid":
        return uuid_value, None
    if base in ("json", "jsonb"):
        return json_value, None
    if base == "bytea":
        return bytes_value, None
    if base in ("bit", "bit varying", "varbit"):
        length = int(p1) if p1 is not None else (1 if base == "bit" else None)
        if length == 1 and base == "bit":
            return (lambda v: v if type(v) is bool else bits_converter(1)(v)), None
        return bits_converter(length), None
    return None, str
