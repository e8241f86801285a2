"""Demo customer organisations: about 2,000 companies in and out of the EU."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from core.demo.registry import SeedContext, seeder
from core.orgs.countries import countries
from core.orgs.models import Organisation

ORGANISATION_COUNT = 2000

_FIRST = (
    "Alpine",
    "Amber",
    "Apex",
    "Aurora",
    "Azure",
    "Beacon",
    "Birch",
    "Blue",
    "Bright",
    "Brook",
    "Cedar",
    "Cobalt",
    "Copper",
    "Coral",
    "Crest",
    "Crystal",
    "Delta",
    "Drift",
    "Echo",
    "Ember",
    "Falcon",
    "Fern",
    "Fjord",
    "Flux",
    "Forge",
    "Granite",
    "Harbor",
    "Helix",
    "Horizon",
    "Iron",
    "Juniper",
    "Kestrel",
    "Lark",
    "Linden",
    "Lumen",
    "Maple",
    "Meridian",
    "Nimbus",
    "Nova",
    "Oak",
    "Onyx",
    "Orbit",
    "Pine",
    "Pioneer",
    "Polar",
    "Prism",
    "Quartz",
    "Raven",
    "Ridge",
    "River",
    "Sable",
    "Sage",
    "Silver",
    "Solar",
    "Spruce",
    "Stone",
    "Summit",
    "Tidal",
    "Triad",
    "Vector",
    "Velvet",
    "Vertex",
    "Willow",
    "Zenith",
)
_SECOND = (
    "Analytics",
    "Bank",
    "Bio",
    "Capital",
    "Cloud",
    "Commerce",
    "Data",
    "Dynamics",
    "Energy",
    "Foods",
    "Freight",
    "Games",
    "Health",
    "Insurance",
    "Labs",
    "Legal",
    "Logistics",
    "Media",
    "Medical",
    "Mobility",
    "Networks",
    "Pharma",
    "Retail",
    "Robotics",
    "Security",
    "Software",
    "Systems",
    "Telecom",
    "Travel",
    "Works",
)
_INDUSTRY = {
    "Analytics": "Software",
    "Bank": "Financial services",
    "Bio": "Life sciences",
    "Capital": "Financial services",
    "Cloud": "Software",
    "Commerce": "Retail",
    "Data": "Software",
    "Dynamics": "Manufacturing",
    "Energy": "Energy",
    "Foods": "Food & beverage",
    "Freight": "Logistics",
    "Games": "Media & gaming",
    "Health": "Healthcare",
    "Insurance": "Insurance",
    "Labs": "Research",
    "Legal": "Legal services",
    "Logistics": "Logistics",
    "Media": "Media & gaming",
    "Medical": "Healthcare",
    "Mobility": "Transport",
    "Networks": "Telecommunications",
    "Pharma": "Life sciences",
    "Retail": "Retail",
    "Robotics": "Manufacturing",
    "Security": "Software",
    "Software": "Software",
    "Systems": "Software",
    "Telecom": "Telecommunications",
    "Travel": "Travel",
    "Works": "Manufacturing",
}
_LEGAL_FORM = {
    "DE": "GmbH",
    "AT": "GmbH",
    "CH": "AG",
    "SI": "d.o.o.",
    "HR": "d.o.o.",
    "RS": "d.o.o.",
    "FR": "SAS",
    "BE": "SA",
    "LU": "S.à r.l.",
    "NL": "B.V.",
    "ES": "S.L.",
    "IT": "S.r.l.",
    "PL": "sp. z o.o.",
    "CZ": "s.r.o.",
    "SK": "s.r.o.",
    "SE": "AB",
    "DK": "ApS",
    "FI": "Oy",
    "NO": "AS",
    "PT": "Lda",
    "GB": "Ltd",
    "IE": "Ltd",
    "US": "Inc.",
    "CA": "Inc.",
    "AU": "Pty Ltd",
    "JP": "K.K.",
    "IN": "Pvt Ltd",
    "SG": "Pte Ltd",
    "BR": "Ltda",
    "EE": "OÜ",
    "LV": "SIA",
    "LT": "UAB",
    "HU": "Kft.",
    "RO": "S.R.L.",
    "BG": "EOOD",
    "GR": "IKE",
    "CY": "Ltd",
    "MT": "Ltd",
    "IL": "Ltd",
}
_TLD = {"US": "com", "GB": "co.uk"}


def _plan_for(employees: int, roll: float) -> str:
    if employees >= 1000:
        return "enterprise" if roll < 0.7 else "pro"
    if employees >= 100:
        return "pro" if roll < 0.55 else ("enterprise" if roll < 0.7 else "starter")
    return "free" if roll < 0.35 else ("starter" if roll < 0.8 else "pro")


@seeder("organisations", order=20)
def seed_organisations(ctx: SeedContext) -> str:
    rng = ctx.rng
    table = countries()
    codes = sorted(table)
    weights = [table[c].demo_weight for c in codes]
    start = ctx.anchor - timedelta(days=5 * 365)
    span_days = (ctx.anchor - start).days
    used: set[str] = set()
    created = 0
    while created < ORGANISATION_COUNT:
        first, second = rng.choice(_FIRST), rng.choice(_SECOND)
        country = rng.choices(codes, weights)[0]
        base = f"{first} {second}"
        if base in used:
            base = f"{first}{rng.choice(_FIRST).lower()} {second}"
            if base in used:
                continue
        used.add(base)
        name = f"{base} {_LEGAL_FORM.get(country, 'Ltd')}"
        employees = max(2, int(math.exp(rng.gauss(3.6, 1.5))))
        # Sign-ups accelerate: the square root skews them towards recent years.
        age = int(span_days * (1 - math.sqrt(rng.random())))
        slug = re.sub(r"[^a-z0-9]+", "", base.lower())
        ctx.session.add(
            Organisation(
                name=name,
                country=country,
                plan=_plan_for(employees, rng.random()),
                industry=_INDUSTRY[second],
                employees=employees,
                domain=f"{slug}.{_TLD.get(country, country.lower())}",
                signed_up_at=ctx.anchor - timedelta(days=age, minutes=rng.randrange(24 * 60)),
                created_at=ctx.anchor,
            )
        )
        created += 1
    return f"{created} customer organisations in {len(codes)} countries"
