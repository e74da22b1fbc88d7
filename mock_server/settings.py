"""Settings: one frozen dataclass, read from arguments or WAVESPEED_MOCK_* environment variables, never at import."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mock_server.model.store import Limits

PREFIX = "WAVESPEED_MOCK_"
PROGRESSIONS = ("time", "polls", "manual")
REPLAY_MODES = ("strict", "lenient")
UNKNOWN_MODELS = ("generic", "reject")
_RATE_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}


def _opt(help: str, *, choices: tuple[str, ...] | None = None, repeat: bool = False, default: Any = MISSING) -> Any:
    meta = {"help": help, "choices": choices, "repeat": repeat}
    if repeat:
        return field(default_factory=tuple, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    """How one fake server behaves. Every field is also ``WAVESPEED_MOCK_<NAME>`` (lists comma-separated)."""

    host: str = _opt("interface to listen on", default="127.0.0.1")
    port: int = _opt("TCP port (0 picks a free one)", default=8000)
    api_keys: tuple[str, ...] = _opt(
        "accept only these API keys (repeatable); by default any non-empty key", repeat=True
    )
    progression: str = _opt(
        "how predictions advance: time (realistic latency), polls (every N polls), manual (only when told)",
        choices=PROGRESSIONS,
        default="time",
    )
    poll_every: int = _opt("with --progression polls: polls per lifecycle step", default=1)
    latency_scale: float = _opt("multiply every model's simulated latency (0 = instant)", default=1.0)
    sync_timeout: float = _opt(
        "seconds a sync-mode request may wait before the 5004 'Sync mode timed out' answer", default=90.0
    )
    frozen_clock: bool = _opt("freeze the clock: time moves only through the control API", default=False)
    public_url: str | None = _opt("absolute base URL for links (default: the URL the client used)", default=None)
    unknown_fields: str = _opt(
        "request fields no schema lists: accept (as the real API does) or reject with 400",
        choices=("accept", "reject"),
        default="accept",
    )
    fetch_inputs: bool = _opt(
        "download input image URLs from other hosts (off: a generated stand-in is used)", default=False
    )
    workers: int = _opt(
        "server processes; above 1 needs a shared --store (redis://...), since a poll may land on any worker", default=1
    )
    store: str = _opt(
        "where state lives: memory:// (this process) or redis://HOST:PORT/DB (shared by workers and "
        "hosts, kept across restarts)",
        default="memory://",
    )
    record_ttl: float = _opt(
        "seconds predictions, uploads and their inputs are kept (the real API keeps 7 days)", default=24 * 3600.0
    )
    max_predictions: int = _opt(
        "predictions (and uploads) kept at most; the oldest are forgotten first", default=10_000
    )
    journal_cap: int = _opt("request journal size; the oldest entries are dropped", default=1000)
    journal_bytes: int = _opt(
        "request journal size in bytes (bodies included); the oldest entries are dropped", default=16 * 1024 * 1024
    )
    max_body_bytes: int = _opt(
        "largest accepted JSON request body in bytes, uploads aside (larger: 413)", default=1024 * 1024
    )
    upload_max_bytes: int = _opt("largest accepted upload in bytes (larger: 413)", default=20 * 1024 * 1024)
    max_input_pixels: int = _opt(
        "largest input image in pixels (width x height, read from its header before any decoding; larger: 400)",
        default=40_000_000,
    )
    image_cache_bytes: int = _opt("memory for generated images in bytes", default=64 * 1024 * 1024)
    webhook_allow: tuple[str, ...] = _opt(
        "hosts that may receive webhook deliveries (repeatable); default: loopback only", repeat=True
    )
    outbound_allow: tuple[str, ...] = _opt(
        "hosts the fake may contact itself, for webhooks and --fetch-inputs (repeatable; * for any); default: "
        "loopback only",
        repeat=True,
    )
    fetch_max_bytes: int = _opt(
        "largest input image --fetch-inputs downloads, in bytes (larger: the task fails)", default=20 * 1024 * 1024
    )
    webhook_secret: str | None = _opt("webhook signing secret (whsec_...); default: random per server", default=None)
    webhook_retry_base: float = _opt(
        "seconds before the first webhook retry; doubled for each further retry", default=1.0
    )
    webhook_timeout: float = _opt(
        "seconds a webhook receiver may take to answer before the attempt counts as failed", default=10.0
    )
    starting_balance: float = _opt(
        "balance in USD every API key starts with; completed predictions are charged", default=10.0
    )
    control: bool = _opt("serve the /_mock/ control API (--no-control removes it)", default=True)
    control_token: str | None = _opt(
        "require this token in the X-Mock-Control-Token header of every /_mock/ call", default=None
    )
    control_hosts: tuple[str, ...] = _opt(
        "other host names the control API answers to (repeatable)",
        repeat=True,
    )
    scenario: str | None = _opt("JSON scenario file applied at start-up (outcomes, faults, latency)", default=None)
    schemas: str | None = _opt(
        "directory of extra endpoint schemas (`wavespeed-mock schemas add SOURCE --into DIR`) "
        "served on top of the shipped ones",
        default=None,
    )
    replay: str | None = _opt(
        "directory of lifecycle cassettes (`wavespeed-mock proxy --record DIR`): a submit that "
        "matches one replays its recorded statuses, timings, errors and outputs",
        default=None,
    )
    replay_speed: float = _opt(
        "with --replay: play the recorded timings this many times faster (0 = instant: each "
        "recorded status answers one read)",
        default=1.0,
    )
    replay_mode: str = _opt(
        "with --replay, a submit no cassette matches: strict (an error naming the nearest "
        "cassette) or lenient (the generated fake answers)",
        choices=REPLAY_MODES,
        default="strict",
    )
    seed: int | None = _opt("seed ids and randomness for reproducible runs", default=None)
    unknown_models: str = _opt(
        "a model path no schema describes: generic (served by a generic model, placeholder "
        "outputs) or reject (404 suggesting the nearest known id)",
        choices=UNKNOWN_MODELS,
        default="generic",
    )
    generic_price: float = _opt("USD per output charged for a generically served model", default=0.01)
    generic_latency: float = _opt(
        "seconds of generation of a generically served model (before --latency-scale)", default=5.0
    )
    output_ttl: float | None = _opt(
        "seconds output URLs stay downloadable after a prediction ends (then 410); default: --record-ttl", default=None
    )
    rate_limit: str | None = _opt(
        "submits each API key may start per window, e.g. 10/min (also N/s, N/h); beyond: 429 with Retry-After",
        default=None,
    )
    max_concurrency: int = _opt(
        "predictions of one API key that run at once; later ones wait in 'created' "
        "(first in, first out) until one ends. 0 = no limit",
        default=0,
    )
    log_level: str = _opt(
        "log level, of uvicorn and of the fake's events",
        choices=("critical", "error", "warning", "info", "debug"),
        default="info",
    )
    log_format: str = _opt(
        "log lines as text (uvicorn's format) or json (one object per line: time, level, logger, event and its fields)",
        choices=("text", "json"),
        default="text",
    )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, prefix: str = PREFIX, overrides: Mapping[str, Any] | None = None
    ) -> Settings:
        """Settings from ``environ`` (default: the process environment), then ``overrides`` (e.g. flags)."""
        environ = os.environ if environ is None else environ
        overrides = overrides or {}
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(prefix + f.name.upper())
            if raw is not None:
                values[f.name] = _convert(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).validated()

    def validated(self) -> Settings:
        problems = []
        # Environment variables bypass argparse's choices, so every choice is checked here too.
        for f in fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                problems.append(f"{f.name} must be one of {', '.join(choices)}, not {getattr(self, f.name)!r}")
        if self.poll_every < 1:
            problems.append("poll_every must be at least 1")
        if self.latency_scale < 0 or self.sync_timeout < 0:
            problems.append("latency_scale and sync_timeout must not be negative")
        if self.webhook_retry_base < 0 or self.webhook_timeout <= 0:
            problems.append("webhook_retry_base must not be negative and webhook_timeout must be positive")
        if (
            min(
                self.journal_cap,
                self.upload_max_bytes,
                self.max_body_bytes,
                self.fetch_max_bytes,
                self.max_input_pixels,
                self.journal_bytes,
            )
            < 1
        ):
            problems.append(
                "journal_cap, journal_bytes, max_body_bytes, upload_max_bytes, fetch_max_bytes and "
                "max_input_pixels must be positive"
            )
        if self.record_ttl <= 0 or self.max_predictions < 1:
            problems.append("record_ttl and max_predictions must be positive")
        if self.workers < 1:
            problems.append("workers must be at least 1")
        elif self.workers > 1 and self.store.startswith("memory:"):
            problems.append(
                f"--workers {self.workers} needs a shared store such as --store redis://127.0.0.1:6379/0: "
                "with the memory store each worker would hold its own predictions, and a poll landing on "
                "another worker would answer 404"
            )
        if not self.store.startswith(("memory:", "redis://", "rediss://", "unix://")):
            problems.append("store must be memory:// or redis://HOST:PORT/DB")
        if self.replay_speed < 0 or self.replay_mode not in REPLAY_MODES:
            problems.append(f"replay_speed must not be negative and replay_mode one of {', '.join(REPLAY_MODES)}")
        if self.unknown_models not in UNKNOWN_MODELS:
            problems.append(f"unknown_models must be one of {', '.join(UNKNOWN_MODELS)}")
        if self.generic_price < 0 or self.generic_latency < 0:
            problems.append("generic_price and generic_latency must not be negative")
        if self.output_ttl is not None and self.output_ttl <= 0:
            problems.append("output_ttl must be positive")
        if self.max_concurrency < 0:
            problems.append("max_concurrency must not be negative (0 = no limit)")
        try:
            self.rate_window()
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise ValueError("invalid settings: " + "; ".join(problems))
        return self

    def rate_window(self) -> tuple[int, float] | None:
        """``--rate-limit`` as (submits allowed, window seconds); None when there is no limit."""
        if not self.rate_limit:
            return None
        count, _, unit = self.rate_limit.strip().partition("/")
        seconds = _RATE_UNITS.get(unit.strip().lower() or "min")
        if not count.strip().isdigit() or int(count) < 1 or seconds is None:
            raise ValueError(f"rate_limit must look like 10/min (or N/s, N/h), not {self.rate_limit!r}")
        return int(count), seconds

    @property
    def effective_output_ttl(self) -> float:
        return self.record_ttl if self.output_ttl is None else self.output_ttl

    def limits(self) -> Limits:
        """The store's bounds, from these settings."""
        from mock_server.model.store import Limits  # settings imports nothing of ours at module level

        return Limits(
            record_ttl=self.record_ttl,
            max_records=self.max_predictions,
            blob_ttl=self.record_ttl,
            log_entries=self.journal_cap,
            log_bytes=self.journal_bytes,
        )

    def to_env(self, prefix: str = PREFIX) -> dict[str, str]:
        """These settings as ``WAVESPEED_MOCK_*`` variables: how uvicorn's worker processes receive them."""
        env: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            env[prefix + f.name.upper()] = (
                ",".join(value)
                if isinstance(value, tuple)
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
        return env

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes).validated()


def _convert(name: str, annotation: Any, raw: str) -> Any:
    kind = str(annotation)
    try:
        if "tuple" in kind:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if kind.startswith("bool"):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        if "int" in kind and "None" in kind:
            return int(raw) if raw else None
        return raw or None if "None" in kind else raw
    except ValueError:
        raise ValueError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting, each naming its environment variable in --help."""
    for f in fields(Settings):
        flag = (
            "--" + f.name.replace("_", "-").removesuffix("s")
            if f.metadata["repeat"]
            else "--" + f.name.replace("_", "-")
        )
        env = f"{PREFIX}{f.name.upper()}"
        default = None if f.default is MISSING else f.default
        kind = str(f.type)
        shown = (
            "none"
            if default is None or f.metadata["repeat"]
            else ("on" if default else "off")
            if isinstance(default, bool)
            else default
        )
        listed = ", comma-separated" if f.metadata["repeat"] else ""
        help_text = f"{f.metadata['help']} [env {env}{listed}; default {shown}]"
        if f.metadata["repeat"]:
            parser.add_argument(flag, dest=f.name, action="append", metavar="VALUE", help=help_text)
        elif kind.startswith("bool"):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            conv: Any = int if kind.startswith("int") else float if kind.startswith("float") else str
            if "int" in kind and "None" in kind:
                conv = int
            parser.add_argument(
                flag,
                dest=f.name,
                type=conv,
                choices=f.metadata["choices"],
                default=None,
                metavar=None if f.metadata["choices"] else f.name.upper(),
                help=help_text,
            )


def from_arguments(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    overrides = {f.name: getattr(args, f.name, None) for f in fields(Settings)}
    for name, value in overrides.items():
        if isinstance(value, list):
            overrides[name] = tuple(value)
    return Settings.from_env(environ, overrides=overrides)
