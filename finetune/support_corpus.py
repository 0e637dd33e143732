"""Generated support documents with known answers: training data in the domain docqa serves.

SQuAD teaches extractive answers over encyclopaedia prose; a support bot mostly answers about
specifications, policies, prices, error codes and delivery times, where the wrong number from the
neighbouring line is the typical mistake. This module writes fictional companies' manuals, policies
and price lists (Markdown and text), with near-miss distractors beside every fact (the battery's
warranty next to the device's, the express fee next to the standard one), and a Q/A file that names
the document holding each answer. Everything is drawn from a seeded generator: the same seed gives
the same files, byte for byte. None of it describes the sample corpus in ``data/samples``.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

COMPANIES = [
    "Norrland Appliances AB",
    "Vireo Audio Ltd",
    "Pellucid Optics GmbH",
    "Harbor Bikes Inc.",
    "Tessellate Tools SA",
    "Quillon Kitchenware BV",
    "Ostara Garden Systems",
    "Brightwell Lighting Co.",
    "Calyx Coffee Machines",
    "Meridian Water Filters",
    "Solvang Heat Pumps",
    "Auklet Drones Oy",
]
PRODUCTS = [
    ("AirPure", "air purifier"),
    ("BrewMaster", "espresso machine"),
    ("TrailLite", "e-bike"),
    ("SoundArc", "soundbar"),
    ("ClearView", "security camera"),
    ("HeatWise", "heat pump"),
    ("AquaSafe", "water filter"),
    ("SkyHop", "camera drone"),
    ("GrowBox", "indoor garden"),
    ("DrillPro", "cordless drill"),
    ("LumaStrip", "LED light strip"),
    ("ChillCase", "wine fridge"),
]
CITIES = ["Lyon", "Porto", "Gdansk", "Utrecht", "Graz", "Tampere", "Bilbao", "Aarhus", "Brno", "Turin"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


@dataclass
class Fact:
    sentence: str
    question: str
    answer: str


def _product_facts(rng: random.Random, name: str, kind: str, model: str) -> tuple[list[Fact], list[str]]:
    """Facts about one product and distractor sentences that look like answers to its questions."""
    warranty = rng.choice([12, 18, 24, 36, 48])
    battery_warranty = rng.choice([w for w in (6, 12, 24) if w != warranty])
    capacity = rng.choice([2500, 3200, 4000, 4800, 5600, 6400])
    charge_h = rng.choice([2, 3, 4, 5, 6])
    runtime = rng.choice([45, 60, 90, 120, 150])
    weight = round(rng.uniform(0.8, 9.5), 1)
    filter_months = rng.choice([2, 3, 4, 6, 12])
    code = f"E{rng.randint(10, 59)}"
    other_code = f"E{rng.randint(60, 99)}"
    causes = [
        "a blocked air inlet",
        "an overheated motor",
        "a loose water tank",
        "a failed firmware update",
        "a dirty sensor window",
        "a jammed drive gear",
    ]
    cause, other_cause = rng.sample(causes, 2)
    power = rng.choice([30, 45, 65, 90, 120, 1200, 1500])
    noise = rng.choice([32, 38, 42, 48, 55])
    full = f"{name} {model}"
    facts = [
        Fact(
            f"The {full} comes with a warranty of {warranty} months from the date of purchase.",
            rng.choice([f"How long is the warranty on the {full}?", f"What warranty does the {full} have?"]),
            f"{warranty} months from the date of purchase",
        ),
        Fact(
            f"Its battery has a capacity of {capacity} mAh.",
            f"What is the battery capacity of the {full}?",
            f"{capacity} mAh",
        ),
        Fact(
            f"A full charge takes about {charge_h} hours.",
            rng.choice(
                [f"How long does it take to charge the {full}?", f"How long does a full charge of the {full} take?"]
            ),
            f"about {charge_h} hours",
        ),
        Fact(
            f"On one charge the {kind} runs for up to {runtime} minutes.",
            f"How long does the {full} run on one charge?",
            f"up to {runtime} minutes",
        ),
        Fact(f"The {kind} weighs {weight} kg.", f"How much does the {full} weigh?", f"{weight} kg"),
        Fact(
            f"Replace the filter every {filter_months} months.",
            f"How often should the filter of the {full} be replaced?",
            f"every {filter_months} months",
        ),
        Fact(f"Error {code} means {cause}.", f"What does error {code} on the {full} mean?", cause),
        Fact(
            f"The rated power is {power} W and the noise level is {noise} dB.",
            f"What is the rated power of the {full}?",
            f"{power} W",
        ),
    ]
    distractors = [
        f"The battery itself is covered for {battery_warranty} months.",
        f"Error {other_code} means {other_cause}.",
        f"The charging dock draws less than {rng.choice([1, 2, 3])} W in standby.",
    ]
    return facts, distractors


def _policy_facts(rng: random.Random, company: str) -> tuple[list[Fact], list[str]]:
    days = rng.choice([14, 30, 45, 60])
    refund = rng.choice([5, 7, 10, 14])
    fee = rng.choice([5, 10, 15, 20])
    express = round(rng.choice([29, 39, 49, 59]) + 0.9, 2)
    standard_days = rng.choice([3, 5, 7])
    city = rng.choice(CITIES)
    month = rng.choice(MONTHS)
    year = rng.choice([2023, 2024, 2025])
    hours = rng.choice(["8:00 to 18:00", "9:00 to 17:00", "7:30 to 16:30"])
    short = company.split()[0]
    facts = [
        Fact(
            f"Returns are accepted within {days} days of delivery.",
            f"Within how many days does {short} accept returns?",
            f"{days} days of delivery",
        ),
        Fact(
            f"A refund is issued within {refund} days after the returned item arrives.",
            f"How soon does {short} issue a refund?",
            f"within {refund} days",
        ),
        Fact(
            f"Opened items returned without a defect are charged a restocking fee of {fee}%.",
            f"What restocking fee does {short} charge on opened items?",
            f"{fee}%",
        ),
        Fact(
            f"Express repair costs a flat fee of {express} EUR plus parts.",
            f"How much does an express repair at {short} cost?",
            f"a flat fee of {express} EUR plus parts",
        ),
        Fact(
            f"Customer data is stored in a data centre in {city}.",
            f"Where does {short} store customer data?",
            f"in a data centre in {city}",
        ),
        Fact(
            f"The support hotline is open from {hours}, Monday to Friday.",
            f"When is the {short} support hotline open?",
            f"from {hours}, Monday to Friday",
        ),
        Fact(
            f"This policy has applied since {month} {year}.",
            f"Since when has the {short} returns policy applied?",
            f"since {month} {year}",
        ),
    ]
    distractors = [
        f"Standard repairs are completed within {standard_days} business days.",
        "Gift cards cannot be returned or refunded.",
        f"Shipping costs for exchanges are paid by {short}.",
    ]
    return facts, distractors


@dataclass
class SupportCorpus:
    docs_dir: Path
    qa_path: Path
    documents: int
    questions: int


def _paragraphs(rng: random.Random, facts: list[Fact], distractors: list[str], per: int = 3) -> list[str]:
    sentences = [f.sentence for f in facts] + distractors
    rng.shuffle(sentences)
    return [" ".join(sentences[i : i + per]) for i in range(0, len(sentences), per)]


def write_support_corpus(work_dir: Path, *, companies: int = 12, seed: int = 0) -> SupportCorpus:
    """Manuals (one per product) and a policy per company under ``work_dir/support/``, plus
    ``work_dir/support-qa.jsonl`` (question, answer, source, group = the company)."""
    rng = random.Random(seed)
    docs_dir = work_dir / "support"
    docs_dir.mkdir(parents=True, exist_ok=True)
    records = []
    documents = 0
    for c in range(min(companies, len(COMPANIES))):
        company = COMPANIES[c]
        slug = company.split()[0].lower()
        for name, kind in rng.sample(PRODUCTS, 2):
            model = f"{rng.choice('SXMQ')}{rng.randint(2, 9)}"
            facts, distractors = _product_facts(rng, name, kind, model)
            paragraphs = _paragraphs(rng, facts, distractors)
            path = docs_dir / f"{slug}_{name.lower()}_{model.lower()}_manual.md"
            body = [f"# {name} {model} {kind} - user manual", "", f"Published by {company}.", ""]
            for i, para in enumerate(paragraphs, 1):
                body += [f"## Section {i}", "", para, ""]
            path.write_text("\n".join(body), encoding="utf-8")
            documents += 1
            records += [(f, path, company) for f in facts]
        facts, distractors = _policy_facts(rng, company)
        path = docs_dir / f"{slug}_service_policy.txt"
        path.write_text(
            f"{company}: returns, repairs and privacy\n\n" + "\n\n".join(_paragraphs(rng, facts, distractors))
        )
        documents += 1
        records += [(f, path, company) for f in facts]
    qa_path = work_dir / "support-qa.jsonl"
    with open(qa_path, "w", encoding="utf-8") as fh:
        for fact, path, company in records:
            fh.write(
                json.dumps(
                    {
                        "question": fact.question,
                        "answer": fact.answer,
                        "source": str(path.resolve()),
                        "group": f"support:{company}",
                    }
                )
                + "\n"
            )
    return SupportCorpus(docs_dir, qa_path, documents, len(records))
