"""Building blocks of the normalizer: value checks, row buffers, keys, attributes.

Rows are collected as plain tuples in the column order of :data:`~playment_datasets.
schema.TABLES` and turned into one Arrow table per table name at the end; nothing here
touches pandas or builds Arrow objects per row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from itertools import chain, repeat
from typing import Any

import pyarrow as pa

from playment_datasets.schema import TABLE_NAMES, TABLES

_INT64_MAX = 2**63 - 1
#: Tables whose rows an Out holds as ready Arrow tables rather than tuples (they can be
#: millions of rows per job: one per labelled point).
ARROW_TABLES = frozenset({"point_labels"})
_EMPTY = {name: TABLES[name].empty_table() for name in TABLE_NAMES}
_TYPES = {name: [field.type for field in TABLES[name]][1:] for name in TABLE_NAMES}


class Bad(Exception):
    """A result that does not have the documented shape (internal, carries the JSON path)."""

    def __init__(self, path: str, message: str, error_type: str = "wrong_type",
                 expected: str | None = None, got: str | None = None) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.detail = message
        self.error_type = error_type
        self.expected = expected
        self.got = got


def describe(value: Any) -> str:
    """A short description of a JSON value for error messages."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
             float: "number", type(None): "null"}
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{names.get(type(value), type(value).__name__)} {text}"


def bad(path: str, expected: str, got: Any) -> Bad:
    """Build the exception for a value of the wrong type or shape."""
    if type(got) is float and got - got != 0:
        return Bad(path, f"expected {expected}, got the non-finite number {got!r}",
                   "non_finite_number", expected, repr(got))
    return Bad(path, f"expected {expected}, got {describe(got)}", "wrong_type", expected,
               describe(got))


def num(value: Any, path: str) -> float:
    """A finite JSON number as float (booleans are not numbers)."""
    t = type(value)
    if t is float:
        if value - value == 0:
            return value  # type: ignore[no-any-return]
    elif t is int:
        if -(2**53) <= value <= 2**53:
            return float(value)
    raise bad(path, "a finite number", value)


def opt_num(value: Any, path: str) -> float | None:
    return None if value is None else num(value, path)


def opt_int(value: Any, path: str) -> int | None:
    """An optional JSON integer that fits in int64."""
    if value is None:
        return None
    if type(value) is int and -_INT64_MAX <= value <= _INT64_MAX:
        return value
    if type(value) is int:
        raise Bad(path, f"expected an integer that fits in 64 bits, got {describe(value)}",
                  "out_of_range")
    raise bad(path, "an integer", value)


def opt_str(value: Any, path: str) -> str | None:
    if value is None or type(value) is str:
        return value
    raise bad(path, "a string", value)


def opt_bool(value: Any, path: str) -> bool | None:
    if value is None or type(value) is bool:
        return value
    raise bad(path, "true or false", value)


def need_dict(value: Any, path: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise bad(path, "an object", value)
    return value


def need_list(value: Any, path: str) -> list[Any]:
    if type(value) is not list:
        raise bad(path, "an array", value)
    return value


# json.dumps with options builds a new encoder per call; one shared encoder is the same
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode(value: Any, path: str) -> str:
    """Compact JSON text of ``value`` (for ``extra`` columns and non-string values)."""
    try:
        return _ENCODER.encode(value)
    except ValueError:
        raise Bad(path, "expected finite numbers only, got NaN or Infinity",
                  "non_finite_number") from None


def suffix_index(key: str) -> int | None:
    """The integer suffix of a point or edge key: ``"p10"`` → 10; None when there is none."""
    if key[1:].isdigit() and key[1:].isascii():
        value = int(key[1:])
    else:
        end = len(key)
        start = end
        while start > 0 and "0" <= key[start - 1] <= "9":
            start -= 1
        if start == end:
            return None
        value = int(key[start:end])
    return value if value <= 2**31 - 1 else None


_ORDER_CACHE: dict[tuple[str, ...], list[tuple[str, int | None]]] = {}


def sort_keys(keys: tuple[str, ...]) -> list[tuple[str, int | None]]:
    """``(key, suffix)`` in the order of the integer suffix (``p9`` before ``p10``).

    Keys without an integer suffix come last, by name. The same few key sets
    (``p1``…``pN``) recur in every file, so orders are memoized (bounded).
    """
    cached = _ORDER_CACHE.get(keys)
    if cached is not None:
        return cached
    order = _sort_keys(keys)
    if len(_ORDER_CACHE) < 4096 and sum(map(len, keys)) < 512:
        _ORDER_CACHE[keys] = order
    return order


def _sort_keys(keys: tuple[str, ...]) -> list[tuple[str, int | None]]:
    decorated = []
    plain = True
    last = -1
    for k in keys:
        idx = suffix_index(k)
        if idx is None:
            plain = False
            decorated.append((1, 0, k))
        else:
            if idx <= last:
                plain = False
            last = idx
            decorated.append((0, idx, k))
    if not plain:
        decorated.sort()
    return [(k, idx if rank == 0 else None) for rank, idx, k in decorated]


def parse_label(label: str) -> tuple[str, int | None]:
    """Split a segmentation label into class name and instance: ``"car # 4"`` → ("car", 4)."""
    head, sep, tail = label.rpartition("#")
    tail = tail.strip()
    if sep and tail.isdigit() and tail.isascii() and int(tail) <= _INT64_MAX:
        return head.strip(), int(tail)
    return label.strip(), None


def rgb_to_hex(text: str) -> str | None:
    """``"rgb(244, 35, 242)"`` → ``"#f423f2"``; None when ``text`` is not that shape."""
    t = text.strip()
    if t[:4].lower() == "rgb(" and t.endswith(")"):
        parts = t[4:-1].split(",")
        if len(parts) == 3:
            try:
                r, g, b = (int(p) for p in parts)
            except ValueError:
                return None
            if 0 <= r < 256 and 0 <= g < 256 and 0 <= b < 256:
                return f"#{r:02x}{g:02x}{b:02x}"
    return None


def is_hex_color(text: str) -> bool:
    return (len(text) == 7 and text[0] == "#" and text[1:].isascii()
            and all(c in "0123456789abcdefABCDEF" for c in text[1:]))


class Columns:
    """Rows of one table as one list per column, ``job_id`` left out (one per job).

    The points of an annotation arrive together, so they are appended a column at a
    time (``extend``) instead of as one tuple per point: no tuple is built, none is
    taken apart again when the table is built, and the collector has none to walk.
    ``len()`` and ``del columns[n:]`` work as on a list of rows (items take rows back).
    """

    __slots__ = ("job_id", "cols")

    def __init__(self, job_id: str | None, width: int) -> None:
        self.job_id = job_id
        self.cols: tuple[list[Any], ...] = tuple([] for _ in range(width))

    def __len__(self) -> int:
        return len(self.cols[0])

    def __delitem__(self, index: slice) -> None:
        for col in self.cols:
            del col[index]

    def append(self, row: tuple[Any, ...]) -> None:
        """Add one row given as a tuple, ``job_id`` first (as the row lists take them)."""
        append_row(self.cols, row[1:])


def append_row(cols: Sequence[list[Any]], values: Sequence[Any]) -> None:
    """Append ``values[i]`` to ``cols[i]``, in one C loop (``list.append`` returns None,
    so ``any`` runs them all)."""
    if len(cols) != len(values):
        raise ValueError(f"expected a row of {len(cols)} values, got {len(values)}")
    any(map(list.append, cols, values))


_ItemState = tuple[tuple[int, ...], str | None, list[list[Any]]]


class _Item:
    """``with out.item(path):`` — :meth:`Out.begin`, then :meth:`Out.end` or :meth:`Out.fail`."""

    __slots__ = ("_out", "_state")

    def __init__(self, out: Out) -> None:
        self._out = out

    def __enter__(self) -> None:
        self._state = self._out.begin()

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None,
                 tb: Any) -> bool:
        out, state = self._out, self._state
        if typ is None:
            out.end(state)
            return False
        if isinstance(exc, Bad):
            out.fail(state, exc)  # raises again when strict
            return True
        if state[1] is not None:
            out._item_key = state[1]
        out._pending = state[2]
        return False


_LISTS = ("annotations", "points", "edges", "attributes", "cuboids_3d", "frames", "segments",
          "masks", "point_labels", "warnings")


class Out:
    """Row buffers of one job, the annotation-key allocator and the lenient policy.

    An *item* (one annotation, legend entry or frame) is read inside :meth:`item`: when
    its geometry cannot be read, its rows are taken back and one ``warnings`` row says
    why; the other items of the job land. A non-geometric field of an unexpected type
    is kept as given (:meth:`text`, :meth:`keep`) with a ``warnings`` row. With
    ``strict`` every such problem raises :class:`Bad` instead.
    """

    def __init__(self, job_id: str | None, strict: bool = False, columnar: bool = False) -> None:
        self.job_id = job_id
        self.strict = strict
        self.failures: list[Bad] = []
        self._pending: list[list[Any]] = []  # warnings waiting for their item's key
        self._item_key: str | None = None
        self.masks: list[tuple[Any, ...]] = []
        self.point_labels: list[pa.Table] = []
        self.warnings: list[tuple[Any, ...]] = []
        self.prefix = f"{job_id}/" if job_id else "/"
        self.seen: set[str] = set()
        self.next_suffix: dict[str, int] = {}
        self.frame_index: dict[str, int] = {}
        # columnar: the three tables of many rows are held as columns too (the fast path
        # appends to them a column at a time; the others append row tuples all the same)
        self.annotations: Any = self._rows("annotations", columnar)
        self.points = Columns(job_id, len(TABLES["points"]) - 1)
        self.edges: Any = self._rows("edges", columnar)
        self.attributes: Any = self._rows("attributes", columnar)
        self.cuboids_3d: list[tuple[Any, ...]] = []
        self.frames: list[tuple[Any, ...]] = []
        self.segments: list[tuple[Any, ...]] = []
        # the row lists in _LISTS order (never rebound: items truncate them in place)
        self._lists: tuple[list[Any], ...] = tuple(getattr(self, name) for name in _LISTS)

    def _rows(self, name: str, columnar: bool) -> list[tuple[Any, ...]] | Columns:
        return Columns(self.job_id, len(TABLES[name]) - 1) if columnar else []

    def key(self, base: str, frame_id: str | None) -> str:
        """A key unique within the job: ``job/_id``, ``@frame``, then ``#2``, ``#3``…"""
        key = self.prefix + base if frame_id is None else f"{self.prefix}{base}@{frame_id}"
        if key in self.seen:
            # continue from the last suffix issued: linear even for 100k equal ids
            n = self.next_suffix.get(key, 2)
            while f"{key}#{n}" in self.seen:
                n += 1
            self.next_suffix[key] = n + 1
            key = f"{key}#{n}"
        self.seen.add(key)
        if self._item_key is None:
            self._item_key = key
        return key

    # -- lenient policy ------------------------------------------------------------

    def warn(self, path: str, expected: str, got: Any, what: str = "kept as given") -> None:
        """Record a field of an unexpected type that was kept (raises when strict)."""
        if self.strict:
            raise bad(path, expected, got)
        self._pending.append([self.job_id, None, path, expected, describe(got),
                              f"at {path}: expected {expected}, got {describe(got)}; {what}"])

    def text(self, value: Any, path: str, expected: str = "a string") -> str | None:
        """A string field; any other JSON value is kept as its JSON text, with a warning."""
        if value is None or type(value) is str:
            return value  # type: ignore[no-any-return]
        self.warn(path, expected, value, "kept as its JSON text")
        return encode(value, path)

    def keep(self, value: Any, path: str, expected: str, extra: dict[str, Any],
             name: str) -> None:
        """A field that has no usable column value: kept in ``extra[name]``, warned."""
        self.warn(path, expected, value, f"kept in extra.{name}")
        extra[name] = value

    def integer(self, value: Any, path: str, extra: dict[str, Any], name: str) -> int | None:
        """An optional int64 field; anything else is kept in ``extra[name]`` and warned."""
        if value is None or (type(value) is int and -_INT64_MAX <= value <= _INT64_MAX):
            return value  # type: ignore[no-any-return]
        expected = "an integer that fits in 64 bits" if type(value) is int else "an integer"
        self.keep(value, path, expected, extra, name)
        return None

    def flag(self, value: Any, path: str, extra: dict[str, Any], name: str) -> bool | None:
        if value is None or type(value) is bool:
            return value  # type: ignore[no-any-return]
        self.keep(value, path, "true or false", extra, name)
        return None

    def item(self, path: str) -> _Item:
        """Read one item; when it fails, take its rows back and record one warning.

        Use as ``with out.item(path): ...``; the hot loops call :meth:`begin`,
        :meth:`end` and :meth:`fail` directly (a ``with`` costs a frame per item).
        """
        return _Item(self)

    def begin(self) -> _ItemState:
        """Start an item: remember the row counts, warnings wait for the item's key."""
        state = (tuple(map(len, self._lists)), self._item_key, self._pending)
        self._item_key = None
        self._pending = []
        return state

    def end(self, state: _ItemState) -> None:
        """The item was read: its warnings land, keyed by its annotation key."""
        pending = self._pending
        if pending:
            key = self._item_key
            warnings = self.warnings
            for row in pending:
                row[1] = key
                warnings.append(tuple(row))
        if state[1] is not None:
            self._item_key = state[1]
        self._pending = state[2]

    def fail(self, state: _ItemState, exc: Bad) -> None:
        """The item could not be read: take its rows back, one warning says why."""
        if self.strict:
            raise exc
        for rows, n in zip(self._lists, state[0], strict=True):
            del rows[n:]
        self.failures.append(exc)
        self.warnings.append((self.job_id, None, exc.path, exc.expected, exc.got,
                              f"at {exc.path}: {exc.detail}; the item was dropped"))
        if state[1] is not None:
            self._item_key = state[1]
        self._pending = state[2]

    def flush_warnings(self) -> None:
        """Warnings recorded outside any item (job-level fields)."""
        self.warnings.extend(tuple(row) for row in self._pending)
        self._pending = []

    def add_attributes(self, attrs: Any, path: str, key: str, frame_id: str | None,
                       extra: dict[str, Any]) -> None:
        """Explode an ``attributes`` object (or list) into rows of the attributes table.

        Keys of an attribute other than ``value`` and ``state`` go to
        ``extra["attributes"][name]``.
        """
        if attrs is None:
            return
        rows = self.attributes
        job_id = self.job_id
        if type(attrs) is list:
            items = []
            for i, item in enumerate(attrs):
                if type(item) is not dict or type(item.get("name")) is not str:
                    self.warn(f"{path}[{i}]", 'an object with a string "name"', item,
                              "kept in extra.attributes_unread")
                    extra.setdefault("attributes_unread", []).append(item)
                    continue
                items.append((item["name"], {k: v for k, v in item.items() if k != "name"}))
        elif type(attrs) is dict:
            items = list(attrs.items())
        else:
            self.keep(attrs, path, "an object or an array", extra, "attributes")
            return
        for name, entry in items:
            state = None
            if type(entry) is dict:
                value = entry.get("value")
                state = self.text(entry.get("state"), f"{path}.{name}.state")
                if len(entry) > ("value" in entry) + ("state" in entry):
                    rest = {k: v for k, v in entry.items() if k not in ("value", "state")}
                    extra.setdefault("attributes", {})[name] = rest
            else:
                value = entry
            if type(value) is str:
                rows.append((job_id, key, frame_id, name, value, None, state))
            elif type(value) is list:
                if not value:
                    rows.append((job_id, key, frame_id, name, None, None, state))
                for i, v in enumerate(value):
                    if type(v) is not str:
                        v = self._scalar(v, f"{path}.{name}.value[{i}]")
                    rows.append((job_id, key, frame_id, name, v, i, state))
            else:
                value = self._scalar(value, f"{path}.{name}.value")
                rows.append((job_id, key, frame_id, name, value, None, state))

    def _scalar(self, value: Any, path: str) -> str | None:
        # the JSON text of a scalar, without the cost of json.dumps
        t = type(value)
        if value is None:
            return None
        if t is bool:
            return "true" if value else "false"
        if t is int:
            return str(value)
        if t is float:
            if value - value == 0:
                return repr(value)
            return encode(value, path)  # raises: NaN / Infinity are not JSON
        self.warn(path, "a string, a number, a boolean or an array of them", value,
                  "kept as its JSON text")
        return encode(value, path)


def job_rows(out: Out | None, jobs_row: tuple[Any, ...],
             error_row: tuple[Any, ...] | None) -> dict[str, list[tuple[Any, ...]]]:
    """The rows one job contributes to each table (tables without rows are left out)."""
    rows: dict[str, list[tuple[Any, ...]]] = {"jobs": [jobs_row]}
    if out is not None:
        for name in _LISTS:
            table_rows = getattr(out, name)
            if table_rows:
                rows[name] = table_rows
    if error_row is not None:
        rows["errors"] = [error_row]
    return rows


def build_tables(rowsets: Sequence[Mapping[str, list[tuple[Any, ...]]]]) -> dict[str, pa.Table]:
    """One Arrow table per table name, in canonical order, from the rows of many jobs.

    Converting once for many jobs is what makes normalizing fast: each ``pa.array``
    call has a fixed cost that would otherwise be paid per job and column.
    """
    result = {}
    for name in TABLE_NAMES:
        parts = [rows[name] for rows in rowsets if name in rows]
        if not parts:
            result[name] = _EMPTY[name]
            continue
        if name in ARROW_TABLES:  # built as Arrow tables already (one per mask chunk)
            result[name] = pa.concat_tables([t for part in parts for t in part])
            continue
        if type(parts[0]) is Columns:
            result[name] = _columns_table(name, parts)
            continue
        table_rows = parts[0] if len(parts) == 1 else [r for part in parts for r in part]
        n = len(table_rows)
        columns = zip(*table_rows, strict=True)
        job_ids = next(columns)
        first = job_ids[0]
        if job_ids.count(first) == n:  # one job (or all rows of one job): a constant
            arrays = [pa.nulls(n, pa.string()) if first is None
                      else pa.repeat(pa.scalar(first, pa.string()), n)]
        else:
            arrays = [pa.array(job_ids, type=pa.string())]
        for col, typ in zip(columns, _TYPES[name], strict=True):
            arrays.append(column_array(col, n, typ))
        result[name] = pa.Table.from_arrays(arrays, schema=TABLES[name])
    return result


def column_array(col: Sequence[Any], n: int, typ: pa.DataType) -> pa.Array:
    """One column of ``n`` values as an Arrow array of ``typ``."""
    # all-null columns are common (no frames in an image job…) and pa.nulls is an
    # order of magnitude cheaper than converting Nones; the first value settles most
    if col[0] is None and col.count(None) == n:
        return pa.nulls(n, typ)
    return pa.array(col, type=typ)


def _columns_table(name: str, parts: list[Columns]) -> pa.Table:
    """The table of a name whose rows are held as :class:`Columns` (one per job)."""
    lengths = [len(part) for part in parts]
    n = sum(lengths)
    job_ids = [part.job_id for part in parts]
    first = job_ids[0]
    if job_ids.count(first) == len(job_ids):
        arrays = [pa.nulls(n, pa.string()) if first is None
                  else pa.repeat(pa.scalar(first, pa.string()), n)]
    else:
        arrays = [pa.array(list(chain.from_iterable(map(repeat, job_ids, lengths))),
                           type=pa.string())]
    for i, typ in enumerate(_TYPES[name]):
        col = parts[0].cols[i] if len(parts) == 1 else list(
            chain.from_iterable(part.cols[i] for part in parts))
        arrays.append(column_array(col, n, typ))
    return pa.Table.from_arrays(arrays, schema=TABLES[name])
