"""Fault plans: which failures the emulator injects, how often, and where.

A :class:`FaultPlan` is a small frozen value. It is usually written as a one-line spec,
for example on the command line::

    500=0.1,503=0.05,429=0.05,reset=0.02,truncate=0.01,slow=0.01,expire=0.2;seed=7;retry_after=1;slow_seconds=2;only=job,storage

Fault kinds:

``500`` / ``502`` / ``503``
    answer that status with a server-error body (the JSON error envelope on the API host,
    S3-style XML on the storage host).
``429``
    answer 429 with a ``Retry-After`` header (``retry_after`` seconds).
``reset``
    close the connection without sending any response.
``truncate``
    announce the full ``Content-Length``, send only part of the body, close.
``slow``
    send the headers, wait ``slow_seconds``, then send the body.
``expire``
    storage host only: refuse a validly signed URL with ``403 AccessDenied``
    ("Request has expired"), as S3 does once a presigned URL is out of date.

Request classes (for ``only=``): ``listing`` (batch pages), ``job`` (job records),
``attachment`` (the redirect endpoint), ``storage`` (signed downloads), ``details``
(project details and stats).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from playment_datasets.errors import ConfigurationError

__all__ = ["FAULT_KINDS", "REQUEST_CLASSES", "FaultPlan", "coerce_fault_plan"]

FAULT_KINDS: tuple[str, ...] = (
    "500", "502", "503", "429", "reset", "truncate", "slow", "expire",
)
REQUEST_CLASSES: tuple[str, ...] = ("listing", "job", "attachment", "storage", "details")
_OPTIONS = ("seed", "retry_after", "slow_seconds", "only")


@dataclass(frozen=True)
class FaultPlan:
    """How often each fault kind strikes, seeded so runs are repeatable.

    ``rates`` maps a fault kind to the probability (0..1) that one request suffers it;
    the probabilities must add up to at most 1. Each request draws one number from a
    ``random.Random(seed)`` stream, so the same sequence of requests meets the same faults.

    Example:
        >>> plan = FaultPlan.parse("503=0.1,reset=0.05;seed=3;only=job")
        >>> plan.rates["503"], plan.seed, sorted(plan.only or ())
        (0.1, 3, ['job'])
        >>> FaultPlan.parse(plan.spec) == plan
        True
    """

    rates: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0
    retry_after: float = 1.0
    slow_seconds: float = 2.0
    only: frozenset[str] | None = None

    def __post_init__(self) -> None:
        rates = dict(self.rates)
        for kind, rate in rates.items():
            if kind not in FAULT_KINDS:
                raise ConfigurationError(
                    f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}"
                )
            if not isinstance(rate, (int, float)) or not 0.0 <= float(rate) <= 1.0:
                raise ConfigurationError(
                    f"fault rate for {kind!r} must be a number between 0 and 1, got {rate!r}"
                )
        total = sum(float(r) for r in rates.values())
        if total > 1.0 + 1e-9:
            raise ConfigurationError(
                f"fault rates add up to {total:g}; they must add up to at most 1 "
                "(each request meets at most one fault)"
            )
        if self.retry_after < 0 or self.slow_seconds < 0:
            raise ConfigurationError(
                "retry_after and slow_seconds must be >= 0, "
                f"got {self.retry_after!r} and {self.slow_seconds!r}"
            )
        only = None if self.only is None else frozenset(self.only)
        if only is not None:
            unknown = sorted(only - set(REQUEST_CLASSES))
            if unknown:
                raise ConfigurationError(
                    f"unknown request class(es) {', '.join(unknown)} in only=; "
                    f"expected some of {', '.join(REQUEST_CLASSES)}"
                )
        # Store a canonical, read-only copy so equal plans compare equal.
        object.__setattr__(self, "rates", _FrozenRates(
            (k, float(rates[k])) for k in FAULT_KINDS if k in rates and rates[k] > 0
        ))
        object.__setattr__(self, "only", only)

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """Build a plan from a spec string such as ``"503=0.1,reset=0.02;seed=7"``.

        Sections are separated by ``;``. A section that starts with ``seed=``,
        ``retry_after=``, ``slow_seconds=`` or ``only=`` sets that option (``only`` takes
        a comma-separated list of request classes); any other section is a
        comma-separated list of ``kind=rate`` pairs. An empty spec means no faults.

        Raises:
            ConfigurationError: the spec cannot be read; the message says which part.

        Example:
            >>> FaultPlan.parse("429=0.5;retry_after=2").retry_after
            2.0
        """
        if not isinstance(spec, str):
            raise ConfigurationError(f"a fault spec must be a string, got {type(spec).__name__}")
        rates: dict[str, float] = {}
        options: dict[str, object] = {}
        for raw_section in spec.split(";"):
            section = raw_section.strip()
            if not section:
                continue
            name, sep, value = section.partition("=")
            name = name.strip()
            if sep and name in _OPTIONS:
                options[name] = _parse_option(name, value.strip(), spec)
                continue
            for item in section.split(","):
                item = item.strip()
                if not item:
                    continue
                kind, sep, rate_text = item.partition("=")
                kind = kind.strip()
                if not sep:
                    raise ConfigurationError(
                        f"cannot read {item!r} in fault spec {spec!r}: expected kind=rate, "
                        "for example '503=0.1'"
                    )
                if kind not in FAULT_KINDS:
                    raise ConfigurationError(
                        f"unknown fault kind {kind!r} in fault spec {spec!r}; expected one of "
                        f"{', '.join(FAULT_KINDS)} (options: {', '.join(_OPTIONS)})"
                    )
                try:
                    rate = float(rate_text)
                except ValueError:
                    raise ConfigurationError(
                        f"fault rate {rate_text.strip()!r} for {kind!r} is not a number; "
                        "write a probability such as 0.05"
                    ) from None
                rates[kind] = rates.get(kind, 0.0) + rate
        return cls(rates=rates, **options)  # type: ignore[arg-type]

    @property
    def spec(self) -> str:
        """The plan written back as a spec string (``FaultPlan.parse(p.spec) == p``)."""
        parts = [",".join(f"{k}={v:g}" for k, v in self.rates.items())]
        parts.append(f"seed={self.seed}")
        parts.append(f"retry_after={self.retry_after:g}")
        parts.append(f"slow_seconds={self.slow_seconds:g}")
        if self.only is not None:
            parts.append("only=" + ",".join(c for c in REQUEST_CLASSES if c in self.only))
        return ";".join(p for p in parts if p)

    def applies_to(self, request_class: str) -> bool:
        """Whether requests of that class may meet a fault under this plan."""
        return self.only is None or request_class in self.only

    def draw(self, rng: random.Random, request_class: str) -> str | None:
        """Pick the fault (or ``None``) for one request of ``request_class``.

        One number is drawn for every request the plan applies to, so the fault
        sequence depends only on the seed and the order of requests.
        """
        if not self.rates or not self.applies_to(request_class):
            return None
        point = rng.random()
        cumulative = 0.0
        for kind, rate in self.rates.items():
            cumulative += rate
            if point < cumulative:
                if kind == "expire" and request_class != "storage":
                    return None
                return kind
        return None


class _FrozenRates(dict[str, float]):
    """A dict that refuses changes, so a frozen plan stays frozen (and hashable)."""

    def __init__(self, items: Iterable[tuple[str, float]]) -> None:
        super().__init__(items)

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise TypeError("FaultPlan.rates is read-only; build a new plan instead")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self.items()))


def _parse_option(name: str, value: str, spec: str) -> object:
    if name == "only":
        classes = frozenset(c.strip() for c in value.split(",") if c.strip())
        if not classes:
            raise ConfigurationError(
                f"only= in fault spec {spec!r} is empty; name request classes such as "
                f"'only=job,storage' (choices: {', '.join(REQUEST_CLASSES)})"
            )
        return classes
    try:
        return int(value) if name == "seed" else float(value)
    except ValueError:
        kind = "an integer" if name == "seed" else "a number of seconds"
        raise ConfigurationError(
            f"{name}= in fault spec {spec!r} must be {kind}, got {value!r}"
        ) from None


def coerce_fault_plan(faults: FaultPlan | str | None) -> FaultPlan | None:
    """Accept a plan, a spec string or ``None`` (no faults)."""
    if faults is None or isinstance(faults, FaultPlan):
        return faults
    if isinstance(faults, str):
        return FaultPlan.parse(faults)
    raise ConfigurationError(
        f"faults must be a FaultPlan, a spec string or None, got {type(faults).__name__}"
    )
