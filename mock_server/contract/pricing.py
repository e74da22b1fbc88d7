"""What each model costs: the one price table behind the catalog's ``base_price``, the pricing endpoints and the
balance meter, so a quote, the catalog and the charge can never disagree.

Prices of the FLUX.1 Kontext endpoints come from the reference (wavespeed_api.md §7). Where no price is documented,
the fake assumes one and says so here and in the README:

- ``flux-kontext-pro`` (single-image edit): $0.04 per image, the price of every other pro endpoint;
- ``flux-kontext-max/text-to-image``: $0.08 per image, the price of every other max endpoint;
- ``flux-kontext-dev-lora`` and ``flux-kontext-dev-lora-ultra-fast``: the price of the same model without LoRA
  ($0.025 and $0.02 per image).

"image" prices are per output (times ``num_images``, and a prediction is charged for the outputs it really made);
"run" prices are per prediction whatever it makes. A model a ``--schemas`` folder adds is priced by its own
catalog entry (``base_price``, per image when its formula multiplies by ``num_images``); a generically served
model costs ``--generic-price`` per output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from mock_server.contract.validators import CompiledSchema

CURRENCY = "USD"
Unit = Literal["image", "run"]


@dataclass(frozen=True)
class Price:
    usd: float
    unit: Unit
    source: str  # where the figure comes from, or why it is assumed


_DOCS = "wavespeed_api.md §7"
KONTEXT_PRICES: dict[str, Price] = {
    "wavespeed-ai/flux-kontext-dev": Price(0.025, "image", _DOCS),
    "wavespeed-ai/flux-kontext-dev-ultra-fast": Price(0.02, "image", _DOCS),
    "wavespeed-ai/flux-kontext-dev/multi": Price(0.03, "run", _DOCS + " (model page: per run)"),
    "wavespeed-ai/flux-kontext-dev/multi-ultra-fast": Price(0.025, "image", _DOCS + " (per generation x num_images)"),
    "wavespeed-ai/flux-kontext-dev-lora": Price(0.025, "image", "assumed: the price of flux-kontext-dev"),
    "wavespeed-ai/flux-kontext-dev-lora-ultra-fast": Price(
        0.02, "image", "assumed: the price of flux-kontext-dev-ultra-fast"
    ),
    "wavespeed-ai/flux-kontext-pro": Price(0.04, "image", "assumed: the price of every other pro endpoint"),
    "wavespeed-ai/flux-kontext-pro/multi": Price(0.04, "image", _DOCS),
    "wavespeed-ai/flux-kontext-pro/text-to-image": Price(0.04, "image", _DOCS),
    "wavespeed-ai/flux-kontext-max": Price(0.08, "image", _DOCS),
    "wavespeed-ai/flux-kontext-max/multi": Price(0.08, "image", _DOCS),
    "wavespeed-ai/flux-kontext-max/text-to-image": Price(
        0.08, "image", "assumed: the price of every other max endpoint"
    ),
}


def catalog_price(model: str, entry: dict[str, Any]) -> tuple[float | None, str | None]:
    """(USD, unit) of a catalog entry: its own price when it has one, else the table's."""
    if entry.get("price_usd") is not None:
        return float(entry["price_usd"]), entry.get("price_unit") or "run"
    known = KONTEXT_PRICES.get(model)
    return (known.usd, known.unit) if known else (None, None)


@dataclass(frozen=True)
class Quote:
    """The price of one call with given inputs."""

    model_id: str
    base_price: float  # per unit
    unit: str
    units: int  # outputs asked for ("image" prices) or 1 ("run" prices)

    @property
    def total(self) -> float:
        return round(self.base_price * self.units, 6)


def outputs_asked(properties: dict[str, Any], inputs: dict[str, Any]) -> int:
    """``num_images`` when the model takes it and the value is one it accepts, else the model's default (1)."""
    spec = properties.get("num_images")
    if spec is None:
        return 1
    value = inputs.get("num_images")
    if isinstance(value, int) and _compiled(json.dumps(spec, sort_keys=True)).is_valid(value):
        return value
    default = spec.get("default", 1)
    return default if isinstance(default, int) else 1


@cache
def _compiled(schema_json: str) -> CompiledSchema:
    # Keyed by the schema's text: one num_images schema per endpoint, each compiled once per process.
    return CompiledSchema(json.loads(schema_json))


def quote(
    model: str, price_usd: float | None, price_unit: str | None, properties: dict[str, Any], inputs: dict[str, Any]
) -> Quote:
    usd = price_usd or 0.0
    unit = price_unit or "run"
    return Quote(model, usd, unit, outputs_asked(properties, inputs) if unit == "image" else 1)
