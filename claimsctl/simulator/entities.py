"""Pure generation of realistic fake motor-insurance entities from a seeded `random.Random`.

Nothing here does I/O or reads the clock: callers pass the simulated time and a sequence number, so the same
seed, time and sequence give the same entity. Keys the schema makes unique (national id, VIN, policy and claim
numbers, device ids, payment references) are derived from a sequence number through a bijective scramble, so
they look random but can never collide within a sequence space.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

CENT = Decimal("0.01")


def new_uuid(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID drawn from `rng` (reproducible, unlike uuid4())."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def money(value: float) -> Decimal:
    return Decimal(str(round(value, 2))).quantize(CENT)


def scramble(seq: int, modulus: int) -> int:
    """Bijection of [0, modulus) for moduli 10**k: an affine map with a multiplier coprime to 10."""
    if not 0 <= seq < modulus:
        raise ValueError(f"sequence {seq} outside [0, {modulus}): the sequence space is exhausted")
    return (seq * 387_420_489 + 123_456_789) % modulus


# -- VIN (ISO 3779 / FMVSS 565 check digit) ---------------------------------------------------------------
VIN_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"  # I, O and Q are never used
_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9))),
    **dict(zip("JKLMN", range(1, 6))),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10))),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
# Model-year code (position 10); the 30-year cycle repeats letters and digits.
_YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"


def vin_check_digit(vin: str) -> str:
    """The check digit (position 9) of a 17-character VIN; the character at position 9 is ignored."""
    if len(vin) != 17:
        raise ValueError(f"a VIN has 17 characters, got {len(vin)}: {vin!r}")
    try:
        total = sum(_VIN_VALUES[ch] * w for ch, w in zip(vin.upper(), _VIN_WEIGHTS))
    except KeyError as exc:
        raise ValueError(f"invalid VIN character {exc.args[0]!r} in {vin!r}") from None
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def is_valid_vin(vin: str) -> bool:
    """True when `vin` has 17 legal characters and a correct check digit."""
    try:
        return len(vin) == 17 and vin[8] == vin_check_digit(vin)
    except ValueError:
        return False


def vin_year_code(model_year: int) -> str:
    return _YEAR_CODES[(model_year - 1980) % 30]


def generate_vin(rng: random.Random, wmi: str, model_year: int, seq: int) -> str:
    """A valid VIN for manufacturer `wmi`; the plant code and serial come from `seq`, so VINs never repeat."""
    serial = scramble(seq % 1_000_000, 1_000_000)
    plant = VIN_ALPHABET[(seq // 1_000_000) % len(VIN_ALPHABET)]
    vds = "".join(rng.choice(VIN_ALPHABET) for _ in range(5))
    draft = f"{wmi}{vds}0{vin_year_code(model_year)}{plant}{serial:06d}"
    return draft[:8] + vin_check_digit(draft) + draft[9:]


# -- reference data ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Country:
    code: str
    dial: str
    domains: tuple[str, ...]
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    cities: tuple[tuple[str, float, float, str], ...]  # name, lat, lon, postcode prefix
    streets: tuple[str, ...]


COUNTRIES: tuple[Country, ...] = (
    Country("PT", "+351", ("sapo.pt", "gmail.com", "outlook.pt"),
            ("João", "Maria", "Ana", "Pedro", "Inês", "Tiago", "Beatriz", "Rui", "Sofia", "Gonçalo"),
            ("Silva", "Santos", "Ferreira", "Pereira", "Oliveira", "Costa", "Rodrigues", "Martins", "Gonçalves"),
            (("Lisboa", 38.7223, -9.1393, "1"), ("Porto", 41.1579, -8.6291, "4"), ("Braga", 41.5454, -8.4265, "47")),
            ("Rua Augusta", "Avenida da Liberdade", "Rua de Santa Catarina", "Rua do Ouro")),
    Country("ES", "+34", ("gmail.com", "hotmail.es", "telefonica.net"),
            ("José", "Lucía", "Javier", "Carmen", "Álvaro", "Marta", "Sergio", "Nuria", "Íñigo", "Paula"),
            ("García", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Núñez", "Jiménez"),
            (("Madrid", 40.4168, -3.7038, "28"), ("Barcelona", 41.3874, 2.1686, "08"), ("Valencia", 39.4699, -0.3763, "46")),
            ("Calle Mayor", "Gran Vía", "Calle de Alcalá", "Passeig de Gràcia")),
    Country("FR", "+33", ("orange.fr", "free.fr", "gmail.com"),
            ("Camille", "Léa", "Hugo", "Chloé", "Théo", "Manon", "Lucas", "Élodie", "François", "Zoé"),
            ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Lefèvre", "Moreau", "Girard", "Rousseau"),
            (("Paris", 48.8566, 2.3522, "75"), ("Lyon", 45.7640, 4.8357, "69"), ("Toulouse", 43.6047, 1.4442, "31")),
            ("Rue de Rivoli", "Avenue Jean Jaurès", "Boulevard Voltaire", "Rue de la République")),
    Country("DE", "+49", ("web.de", "gmx.de", "t-online.de"),
            ("Lukas", "Anna", "Jürgen", "Sophie", "Maximilian", "Lena", "Jörg", "Marie", "Felix", "Käthe"),
            ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schäfer"),
            (("Berlin", 52.5200, 13.4050, "10"), ("München", 48.1351, 11.5820, "80"), ("Hamburg", 53.5511, 9.9937, "20")),
            ("Hauptstraße", "Bahnhofstraße", "Schillerstraße", "Goethestraße")),
    Country("IT", "+39", ("libero.it", "gmail.com", "virgilio.it"),
            ("Giulia", "Marco", "Francesca", "Luca", "Chiara", "Niccolò", "Sara", "Matteo", "Alessia", "Davide"),
            ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino"),
            (("Milano", 45.4642, 9.1900, "201"), ("Roma", 41.9028, 12.4964, "001"), ("Torino", 45.0703, 7.6869, "101")),
            ("Via Roma", "Corso Italia", "Via Garibaldi", "Via Dante")),
    Country("NL", "+31", ("ziggo.nl", "gmail.com", "kpnmail.nl"),
            ("Daan", "Emma", "Sem", "Julia", "Lieke", "Bram", "Fleur", "Thijs", "Sanne", "Joël"),
            ("de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit", "Meijer", "de Boer"),
            (("Amsterdam", 52.3676, 4.9041, "10"), ("Rotterdam", 51.9244, 4.4777, "30"), ("Utrecht", 52.0907, 5.1214, "35")),
            ("Kerkstraat", "Dorpsstraat", "Stationsweg", "Molenweg")),
)

# make -> (WMI, models, typical new price in EUR)
MAKES: dict[str, tuple[str, tuple[str, ...], int]] = {
    "Volkswagen": ("WVW", ("Golf", "Polo", "Passat", "T-Roc", "ID.3"), 32_000),
    "BMW": ("WBA", ("320d", "118i", "X1", "X3", "i4"), 48_000),
    "Mercedes-Benz": ("WDD", ("A 180", "C 220 d", "GLA 200", "E 300"), 52_000),
    "Renault": ("VF1", ("Clio", "Mégane", "Captur", "Zoe"), 22_000),
    "Peugeot": ("VF3", ("208", "308", "2008", "3008"), 26_000),
    "Fiat": ("ZFA", ("500", "Panda", "Tipo"), 17_000),
    "SEAT": ("VSS", ("Ibiza", "León", "Arona", "Ateca"), 24_000),
    "Škoda": ("TMB", ("Octavia", "Fabia", "Kodiaq"), 28_000),
    "Toyota": ("JTD", ("Yaris", "Corolla", "C-HR", "RAV4"), 29_000),
    "Tesla": ("5YJ", ("Model 3", "Model Y"), 45_000),
    "Dacia": ("UU1", ("Sandero", "Duster", "Jogger"), 16_000),
}

PRODUCTS = ("motor_comprehensive", "motor_tpft", "motor_third_party")
COVER_OPTIONS = ("roadside_assistance", "courtesy_car", "glass", "legal_expenses", "personal_injury", "key_cover")
LOSS_TYPES = ("collision", "theft", "vandalism", "glass", "fire", "weather")
LOSS_TYPE_WEIGHTS = (0.55, 0.08, 0.10, 0.17, 0.03, 0.07)
CLAIM_TAGS = ("fast_track", "total_loss", "third_party_fault", "needs_inspection", "vip", "litigation", "recovery")

_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "collision": ("Rear-ended at traffic lights", "Hit a bollard while parking", "Side impact at a roundabout",
                  "Collided with a vehicle changing lanes", "Reversed into a wall"),
    "theft": ("Vehicle stolen from the street overnight", "Catalytic converter stolen", "Break-in, radio stolen"),
    "vandalism": ("Paint scratched along the driver side", "Tyres slashed", "Mirror kicked off"),
    "glass": ("Stone chip cracked the windscreen", "Rear window shattered", "Side window broken"),
    "fire": ("Engine bay fire after overheating", "Fire spread from a neighbouring vehicle"),
    "weather": ("Hail damage on roof and bonnet", "Tree branch fell on the car in a storm", "Flooded underground garage"),
}
_AMOUNT_RANGE: dict[str, tuple[float, float]] = {
    "collision": (400, 12_000), "theft": (300, 25_000), "vandalism": (150, 2_500),
    "glass": (120, 1_400), "fire": (2_000, 30_000), "weather": (300, 8_000),
}


# -- entities -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Customer:
    customer_id: uuid.UUID
    full_name: str
    date_of_birth: date
    email: str | None
    phone: str | None
    national_id: str
    address: dict[str, Any]
    marketing_opt_in: bool
    country: str


@dataclass(frozen=True)
class Policy:
    policy_id: uuid.UUID
    policy_number: str
    customer_id: uuid.UUID
    product: str
    inception_date: date
    expiry_date: date
    sum_insured: Decimal
    annual_premium: Decimal
    excess_amount: Decimal
    currency: str
    status: str
    cover_options: tuple[str, ...]


@dataclass(frozen=True)
class Vehicle:
    vehicle_id: uuid.UUID
    policy_id: uuid.UUID
    vin: str
    make: str
    model: str
    model_year: int
    registration: str
    market_value: Decimal | None
    telematics_device_id: str | None


@dataclass(frozen=True)
class Driver:
    driver_id: uuid.UUID
    policy_id: uuid.UUID
    customer_id: uuid.UUID | None
    full_name: str
    date_of_birth: date
    licence_number: str
    licence_issued: date
    is_main_driver: bool


@dataclass(frozen=True)
class Claim:
    claim_id: uuid.UUID
    claim_number: str
    policy_id: uuid.UUID
    vehicle_id: uuid.UUID | None
    driver_id: uuid.UUID | None
    status: str
    loss_time: datetime
    loss_local_time: datetime | None  # naive: what the claimant wrote on the form
    loss_lat: float | None
    loss_lon: float | None
    loss_type: str
    description: str | None
    reported_at: datetime
    claimed_amount: Decimal
    reserve_amount: Decimal
    sla_due_at: datetime
    third_party_involved: bool
    injury_count: int
    tags: tuple[str, ...]
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Adjuster:
    full_name: str
    email: str
    region: str
    skills: tuple[str, ...]
    max_open_claims: int


ADJUSTERS: tuple[Adjuster, ...] = tuple(
    Adjuster(name, f"{name.lower().replace(' ', '.')}@adjusters.claims.example", region, skills, cap)
    for name, region, skills, cap in (
        ("Helena Vogt", "DE", ("collision", "total_loss"), 40),
        ("Tomás Ribeiro", "PT", ("collision", "glass"), 35),
        ("Claire Fontaine", "FR", ("theft", "fraud"), 30),
        ("Marco Bellini", "IT", ("collision", "weather"), 40),
        ("Sanne Mulder", "NL", ("glass", "vandalism"), 45),
        ("Javier Ortega", "ES", ("collision", "injury"), 30),
        ("Ingrid Hoffmann", "DE", ("fire", "weather"), 25),
        ("Luís Carvalho", "PT", ("theft", "fraud"), 30),
        ("Nadia Rossi", "IT", ("injury", "litigation"), 20),
        ("Pieter de Wit", "NL", ("collision", "total_loss"), 40),
        ("Amélie Laurent", "FR", ("collision", "glass"), 40),
        ("Raúl Navarro", "ES", ("weather", "vandalism"), 35),
    )
)


def ascii_local_part(text: str) -> str:
    table = str.maketrans("áàâãäçéèêëíìîïñóòôõöúùûüšÁÉÍÓÚÖÜÄŠ", "aaaaaceeeeiiiinooooouuuusAEIOUOUAS")
    return text.translate(table).lower().replace(" ", "")


def phone_number(rng: random.Random, country: Country) -> str:
    return f"{country.dial} {rng.randint(600, 799)} {rng.randint(100, 999)} {rng.randint(100, 999)}"


def _registration(rng: random.Random, country: str) -> str:
    letters = "BCDFGHJKLMNPRSTVWXZ"

    def ls(n: int) -> str:
        return "".join(rng.choice(letters) for _ in range(n))

    def ds(n: int) -> str:
        return "".join(str(rng.randint(0, 9)) for _ in range(n))

    return {
        "PT": lambda: f"{ls(2)}-{ds(2)}-{ls(2)}",
        "ES": lambda: f"{ds(4)} {ls(3)}",
        "FR": lambda: f"{ls(2)}-{ds(3)}-{ls(2)}",
        "DE": lambda: f"{ls(1)}-{ls(2)} {ds(4)}",
        "IT": lambda: f"{ls(2)}{ds(3)}{ls(2)}",
        "NL": lambda: f"{ls(2)}-{ds(3)}-{ls(1)}",
    }[country]()


def generate_customer(rng: random.Random, *, seq: int, today: date) -> Customer:
    """A customer; `seq` (unique per customer) makes the national id unique."""
    country = rng.choice(COUNTRIES)
    first, last = rng.choice(country.first_names), rng.choice(country.last_names)
    city, _, _, postcode = rng.choice(country.cities)
    dob = today - timedelta(days=rng.randint(18 * 365, 85 * 365))
    email = None if rng.random() < 0.05 else (
        f"{ascii_local_part(first)}.{ascii_local_part(last)}{rng.randint(1, 999)}@{rng.choice(country.domains)}"
    )
    return Customer(
        customer_id=new_uuid(rng),
        full_name=f"{first} {last}",
        date_of_birth=dob,
        email=email,
        phone=None if rng.random() < 0.03 else phone_number(rng, country),
        national_id=f"{country.code}{scramble(seq, 10**9):09d}",
        address={
            "street": f"{rng.choice(country.streets)} {rng.randint(1, 250)}",
            "postcode": f"{postcode}{rng.randint(0, 10**(5 - len(postcode)) - 1):0{5 - len(postcode)}d}",
            "city": city,
            "country": country.code,
        },
        marketing_opt_in=rng.random() < 0.35,
        country=country.code,
    )


def policy_number(year: int, seq: int) -> str:
    return f"POL-{year:04d}-{seq:07d}"


def claim_number(year: int, seq: int) -> str:
    return f"CLM-{year:04d}-{seq:07d}"


def payment_reference(year: int, seq: int) -> str:
    return f"PAY-{year:04d}-{seq:08d}"


def telematics_device_id(seq: int) -> str:
    return f"TLM-{scramble(seq, 10**8):08d}"


def generate_policy(rng: random.Random, customer: Customer, *, seq: int, today: date) -> Policy:
    product = rng.choices(PRODUCTS, weights=(0.6, 0.25, 0.15))[0]
    inception = today - timedelta(days=rng.randint(0, 364))
    sum_insured = money(rng.uniform(8_000, 60_000)) if product != "motor_third_party" else money(0)
    base = {"motor_comprehensive": 650, "motor_tpft": 420, "motor_third_party": 280}[product]
    return Policy(
        policy_id=new_uuid(rng),
        policy_number=policy_number(inception.year, seq),
        customer_id=customer.customer_id,
        product=product,
        inception_date=inception,
        expiry_date=inception + timedelta(days=365),
        sum_insured=sum_insured,
        annual_premium=money(base * rng.uniform(0.6, 2.2)),
        excess_amount=money(rng.choice((0, 100, 150, 250, 300, 500))),
        currency="EUR",
        status="active",
        cover_options=tuple(sorted(rng.sample(COVER_OPTIONS, rng.randint(0, 3)))),
    )


def generate_vehicle(
    rng: random.Random, policy: Policy, *, seq: int, today: date, country: str, device_id: str | None
) -> Vehicle:
    make = rng.choice(sorted(MAKES))
    wmi, models, new_price = MAKES[make]
    model_year = today.year - min(int(rng.expovariate(1 / 5)), 25)
    age = today.year - model_year
    value = new_price * (0.85 ** age) * rng.uniform(0.8, 1.2)
    return Vehicle(
        vehicle_id=new_uuid(rng),
        policy_id=policy.policy_id,
        vin=generate_vin(rng, wmi, model_year, seq),
        make=make,
        model=rng.choice(models),
        model_year=model_year,
        registration=_registration(rng, country),
        market_value=None if rng.random() < 0.05 else money(max(value, 800)),
        telematics_device_id=device_id,
    )


def generate_driver(
    rng: random.Random, policy: Policy, *, today: date, customer: Customer | None, country: str
) -> Driver:
    """The policyholder as driver when `customer` is given, else a named extra driver."""
    if customer is not None:
        name, dob = customer.full_name, customer.date_of_birth
    else:
        c = next(c for c in COUNTRIES if c.code == country)
        name = f"{rng.choice(c.first_names)} {rng.choice(c.last_names)}"
        dob = today - timedelta(days=rng.randint(18 * 365, 80 * 365))
    issued = dob + timedelta(days=rng.randint(18 * 365, 18 * 365 + 8 * 365))
    issued = min(issued, today - timedelta(days=30))
    return Driver(
        driver_id=new_uuid(rng),
        policy_id=policy.policy_id,
        customer_id=customer.customer_id if customer else None,
        full_name=name,
        date_of_birth=dob,
        licence_number=f"{country}{''.join(rng.choice(VIN_ALPHABET) for _ in range(9))}",
        licence_issued=issued,
        is_main_driver=customer is not None,
    )


def city_of(country: str, rng: random.Random) -> tuple[str, float, float]:
    c = next(c for c in COUNTRIES if c.code == country)
    name, lat, lon, _ = rng.choice(c.cities)
    return name, lat, lon


def claim_description(rng: random.Random, loss_type: str) -> str:
    return rng.choice(_DESCRIPTIONS[loss_type])


def claimed_amount(rng: random.Random, loss_type: str) -> Decimal:
    low, high = _AMOUNT_RANGE[loss_type]
    # Log-uniform: many small claims, a few large ones.
    return money(low * (high / low) ** rng.random())
