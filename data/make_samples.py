"""Generate the sample corpus in data/samples/: one fictional company, Kestrel Home Robotics GmbH.

Each document carries its own distinct facts (listed with their page in data/QUESTIONS.md),
so a demo or an integration test can ask a question and know which file and page must be cited.

    .venv/bin/python data/make_samples.py            # rewrites data/samples/
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

OUT = Path(__file__).resolve().parent / "samples"
PRODUCT = "Kestrel Sweep S3"


# ------------------------------------------------------------------------------------------ manual.pdf

MANUAL: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "1. Specifications",
        [
            (
                "p",
                f"The {PRODUCT} is a robot vacuum for hard floors and low-pile carpets. This manual covers "
                "setup, daily care, error codes and the warranty.",
            ),
            (
                "table",
                "Property|Value\nBattery|5200 mAh lithium-ion\nRuntime|up to 150 minutes in Eco mode\n"
                "Suction power|4000 Pa\nDustbin capacity|450 ml\nWeight|3.4 kg\nHeight|9.6 cm",
            ),
            (
                "p",
                "The battery capacity of the Sweep S3 is 5200 mAh. In Eco mode one charge lasts up to "
                "150 minutes, enough for about 180 square metres.",
            ),
        ],
    ),
    (
        "2. Setup",
        [
            (
                "p",
                "Place the charging dock against a wall on a hard, level floor. Keep 0.5 metres of free "
                "space on each side of the dock and 1.5 metres in front of it.",
            ),
            (
                "p",
                "Before the first cleaning run, charge the robot fully on the dock. The first full charge "
                "takes 4 hours; later charges take about 3 hours.",
            ),
            ("h2", "Connecting to Wi-Fi"),
            (
                "p",
                "The Sweep S3 connects to 2.4 GHz Wi-Fi networks only; 5 GHz networks are not supported. "
                "Install the Kestrel Home app, create an account and follow the pairing steps.",
            ),
        ],
    ),
    (
        "3. Maintenance",
        [
            (
                "p",
                "Empty the dustbin after every cleaning run. Regular care keeps suction strong and extends "
                "the life of the robot.",
            ),
            ("li", "Clean the main roller brush once a week and remove wrapped hair with the cutting tool."),
            ("li", "Replace the HEPA filter every 3 months. Do not rinse the HEPA filter with water."),
            ("li", "Replace the side brushes every 6 months."),
            ("li", "Wipe the cliff sensors and charging contacts with a dry cloth once a month."),
        ],
    ),
    (
        "4. Troubleshooting",
        [
            ("p", "When the robot stops, the status light blinks red and the app shows an error code."),
            (
                "table",
                "Code|Meaning|What to do\nE07|Drive wheel blocked|Lift the robot and free the wheels\n"
                "E12|Cliff sensor dirty|Wipe the cliff sensors with a dry cloth\n"
                "E21|Battery temperature out of range|Let the robot reach 0 to 40 degrees C",
            ),
            (
                "p",
                "Error E12 means a cliff sensor is dirty: wipe all four cliff sensors under the robot with a "
                "dry cloth and restart the run.",
            ),
            ("h2", "Factory reset"),
            (
                "p",
                "To restore factory settings, press and hold the Home and Spot buttons together for "
                "10 seconds until the robot chimes. Maps and schedules are erased.",
            ),
        ],
    ),
    (
        "5. Warranty and Service",
        [
            (
                "p",
                f"The warranty for the {PRODUCT} lasts 24 months from the date of purchase. The battery is "
                "covered for 12 months.",
            ),
            (
                "p",
                "Registering the robot in the Kestrel Home app within 60 days of purchase extends the "
                "warranty to 36 months.",
            ),
            (
                "p",
                "To make a warranty claim, e-mail service@kestrel-robotics.example with the serial number "
                "printed under the dustbin and a copy of the receipt.",
            ),
        ],
    ),
]


def make_manual(path: Path) -> None:
    from reportlab import rl_config
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import ListFlowable, ListItem, PageBreak, Paragraph, SimpleDocTemplate, Table

    rl_config.invariant = 1  # no timestamps or random ids: regenerating gives the same bytes
    styles = getSampleStyleSheet()

    def footer(canvas, doc) -> None:
        canvas.setFont("Helvetica", 8)
        canvas.drawString(72, 30, f"{PRODUCT} User Manual")
        canvas.drawRightString(523, 30, f"Page {doc.page}")

    story: list = [Paragraph(f"{PRODUCT} User Manual", styles["Title"])]
    for number, (heading, blocks) in enumerate(MANUAL):
        if number:
            story.append(PageBreak())
        story.append(Paragraph(heading, styles["Heading1"]))
        bullets: list = []
        for style, text in [*blocks, ("end", "")]:
            if style != "li" and bullets:
                story.append(ListFlowable(bullets, bulletType="bullet"))
                bullets = []
            if style == "li":
                bullets.append(ListItem(Paragraph(text, styles["BodyText"])))
            elif style == "table":
                table = Table([line.split("|") for line in text.split("\n")])
                table.setStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.grey)])
                story.append(table)
            elif style in ("p", "h2"):
                story.append(Paragraph(text, styles["BodyText" if style == "p" else "Heading2"]))
    doc = SimpleDocTemplate(str(path), pagesize=A4, title=f"{PRODUCT} User Manual", author="Kestrel")
    doc.build(story, onFirstPage=footer, onLaterPages=footer)


# --------------------------------------------------------------------------------- returns_policy.docx

POLICY = [
    ("title", "Returns and Refund Policy"),
    (
        "p",
        "This policy applies to all devices and accessories bought directly from Kestrel Home Robotics "
        "GmbH in our online shop. It does not limit your statutory rights.",
    ),
    ("h1", "Return window"),
    (
        "p",
        "Returns are accepted within 30 days of delivery. Start a return in your customer account or by "
        "contacting customer care with your order number.",
    ),
    ("h1", "Condition of returned items"),
    (
        "p",
        "Devices must be returned complete, with all accessories and the original packaging. A restocking "
        "fee of 10% applies to opened devices that are returned without a defect.",
    ),
    ("li", "Opened consumables such as filters, brushes and mop pads cannot be returned."),
    ("li", "Gift cards cannot be returned or exchanged for cash."),
    ("h1", "Refunds"),
    (
        "p",
        "Refunds are issued within 14 days after we receive the returned item, to the original payment "
        "method. Bank transfers can take a further 3 business days to appear.",
    ),
    ("h1", "Return shipping"),
    (
        "table",
        "Destination|Return shipping cost\nGermany|free\nOther EU countries|free\n"
        "Switzerland and United Kingdom|paid by the customer",
    ),
    ("h1", "Items damaged in transit"),
    (
        "p",
        "Report items that arrive damaged within 48 hours of delivery, with photos of the parcel, so that "
        "we can file a claim with the carrier and send a replacement.",
    ),
]


def make_policy(path: Path) -> None:
    import docx

    document = docx.Document()
    styles = {"title": "Title", "h1": "Heading 1", "li": "List Bullet"}
    for style, text in POLICY:
        if style == "table":
            rows = [line.split("|") for line in text.split("\n")]
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for r, row in enumerate(rows):
                for c, cell in enumerate(row):
                    table.cell(r, c).text = cell
        else:
            document.add_paragraph(text, style=styles.get(style))
    document.core_properties.title = "Returns and Refund Policy"
    document.core_properties.author = "Kestrel Home Robotics GmbH"
    document.save(str(path))


# ---------------------------------------------------------------------------------------------- faq.html

FAQ = [
    (
        "Does the Sweep S3 work with voice assistants?",
        "Yes. The Sweep S3 works with Amazon Alexa and Google Assistant once it is linked in the "
        "Kestrel Home app.",
    ),
    (
        "How high a threshold can the robot climb?",
        "The Sweep S3 climbs door thresholds and rug edges up to 2 cm high.",
    ),
    (
        "Can it remember maps of several floors?",
        "Yes. The robot stores maps of up to 4 floors and recognises the floor it is placed on.",
    ),
    (
        "How loud is it?",
        "In Standard mode the Sweep S3 runs at about 62 dB, roughly as loud as a normal conversation.",
    ),
    (
        "Can I use the robot without Wi-Fi?",
        "Yes. Press the Clean button on the robot to start a run; schedules, no-go zones and maps "
        "need the app.",
    ),
]


def make_faq(path: Path) -> None:
    items = "\n".join(f"<section><h2>{q}</h2>\n<p>{a}</p></section>" for q, a in FAQ)
    html = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{PRODUCT} - Frequently Asked Questions</title>
<style>body {{ font-family: sans-serif; }}</style></head>
<body>
<nav><a href="/">Home</a> | <a href="/shop">Shop</a> | <a href="/support">Support</a></nav>
<main>
<h1>Frequently Asked Questions</h1>
<p>Answers to the questions our customer care team hears most often about the {PRODUCT}.</p>
{items}
</main>
<script>window.analytics = "not content";</script>
</body>
</html>
"""
    path.write_text(html, encoding="utf-8")


# ------------------------------------------------------------------------------------------ privacy.md

PRIVACY_MD = """---
title: Privacy Notice for the Kestrel Home App
---

# Privacy Notice for the Kestrel Home App

Kestrel Home Robotics GmbH processes personal data only to run the app and the robot features you use.

## Where your data is stored

All account data and cleaning maps are stored in our data centre in Frankfurt, Germany. We do not transfer
them outside the European Union.

## Camera images

The obstacle camera of the Sweep S3 processes images on the robot itself. Camera images are never uploaded
to our servers.

## Deleting your data

When you delete your account, cleaning maps and cleaning history are erased within 30 days.

## Contact

Questions about privacy go to our data protection officer at dpo@kestrel-robotics.example.
"""


# ---------------------------------------------------------------------------------- release_notes.pptx

RELEASES = [
    (f"{PRODUCT} Firmware Release Notes", ["What changed in each firmware version, newest last."]),
    (
        "Firmware 2.1 (March 2025)",
        ["Adds no-go zones drawn on the map", "Adds room-by-room cleaning schedules"],
    ),
    (
        "Firmware 2.2 (June 2025)",
        [
            "Adds Carpet Boost: suction rises automatically on carpets",
            "Fixes false E07 wheel errors on thick rugs",
        ],
    ),
    (
        "Firmware 3.0 (October 2025)",
        ["Adds obstacle avoidance for cables, socks and pet waste", "Quiet mode lowers the noise to 55 dB"],
    ),
    (
        "How to update",
        [
            "Updates install from the Kestrel Home app",
            "The robot must be on its dock with the battery above 30%",
        ],
    ),
]


def make_release_notes(path: Path) -> None:
    import pptx

    presentation = pptx.Presentation()
    for number, (title, bullets) in enumerate(RELEASES, start=1):
        layout = presentation.slide_layouts[0 if number == 1 else 1]
        slide = presentation.slides.add_slide(layout)
        slide.shapes.title.text = title
        body = slide.placeholders[1].text_frame
        for i, bullet in enumerate(bullets):
            paragraph = body.paragraphs[0] if i == 0 else body.add_paragraph()
            paragraph.text = bullet
    presentation.core_properties.title = f"{PRODUCT} Firmware Release Notes"
    presentation.save(str(path))


# ------------------------------------------------------------------------------------ support_ticket.eml

TICKET_BODY = """Dear Ms Novak,

thank you for your patience. We have checked the photos you sent: the charging dock of your Sweep S3
is faulty.

A replacement charging dock (part DCK-300) will ship within 3 business days, free of charge under your
warranty. You will receive the tracking number by e-mail.

Please send the faulty dock back within 21 days using the prepaid return label attached to this e-mail.
Until the new dock arrives, you can charge the robot by placing it on the old dock with its contacts
cleaned, or start runs with the Clean button.

Kind regards,
Tomas Berger
Kestrel Customer Care
"""


def make_ticket(path: Path) -> None:
    msg = EmailMessage()
    msg["Subject"] = "Re: Ticket #48213 - Sweep S3 dock not charging"
    msg["From"] = "Kestrel Customer Care <care@kestrel-robotics.example>"
    msg["To"] = "Jana Novak <jana.novak@example.org>"
    msg["Date"] = format_datetime(datetime(2025, 9, 8, 10, 15, tzinfo=UTC))
    msg["Message-ID"] = "<ticket-48213-reply@kestrel-robotics.example>"
    msg.set_content(TICKET_BODY)
    label = b"%PDF-1.4\n% prepaid return label placeholder\n%%EOF\n"
    msg.add_attachment(label, maintype="application", subtype="pdf", filename="return_label.pdf")
    msg.set_boundary("kestrel-48213-boundary")  # not a random one: regenerating gives the same bytes
    path.write_bytes(msg.as_bytes())


# ------------------------------------------------------------------------------------- spare_parts.csv

PARTS = [
    ["part_no", "description", "price_eur", "notes"],
    ["BAT-5200", "Replacement battery 5200 mAh", "39.90", "covered by warranty for 12 months"],
    ["FLT-210", "HEPA filter (2-pack)", "12.50", "replace every 3 months"],
    ["BRS-110", "Main roller brush", "18.00", ""],
    ["SBR-020", "Side brush (2-pack)", "7.90", "replace every 6 months"],
    ["DCK-300", "Charging dock", "59.00", "includes power cable"],
    ["WHL-L40", "Left drive wheel module", "24.50", ""],
    ["WHL-R40", "Right drive wheel module", "24.50", ""],
    ["MOP-015", "Washable mop pads (3-pack)", "14.90", ""],
    ["TNK-250", "Water tank 250 ml", "22.00", ""],
    ["RMT-001", "Remote control", "19.90", "batteries not included"],
]


def make_parts(path: Path) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(PARTS)
    path.write_text(buffer.getvalue(), encoding="utf-8")


# ----------------------------------------------------------------------------- service_centres.txt

SERVICE_TXT = """Kestrel Service Centres and Hotline
===================================

Customer care hotline: +49 30 5550 1234, Monday to Friday, 08:00–18:00 CET.

Express repair
--------------

Out-of-warranty repairs cost a flat fee of 49 € plus parts. Repairs are finished within 5 business days
after the robot arrives at a service centre.

Service centres
---------------

- Berlin: Kestrel Home Robotics GmbH, Friedrichstraße 120, 10117 Berlin
- München: Service Süd, Leopoldstraße 8, 80802 München
- Wien: Technik Café Partner, Mariahilfer Straße 45, 1060 Wien
- Zürich: Robotik Service AG, Bahnhofstrasse 10, 8001 Zürich
"""


def freeze_zip(path: Path) -> None:
    """Rewrite an Office file with fixed member timestamps, so regenerating gives identical bytes."""
    import zipfile

    with zipfile.ZipFile(path) as src:
        members = [(info, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info, data in members:
            fixed = zipfile.ZipInfo(info.filename, date_time=(2025, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fixed, data)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    make_manual(OUT / "sweep_s3_manual.pdf")
    make_policy(OUT / "returns_policy.docx")
    make_faq(OUT / "faq.html")
    (OUT / "privacy_notice.md").write_text(PRIVACY_MD, encoding="utf-8")
    make_release_notes(OUT / "firmware_release_notes.pptx")
    freeze_zip(OUT / "returns_policy.docx")
    freeze_zip(OUT / "firmware_release_notes.pptx")
    make_ticket(OUT / "support_ticket_48213.eml")
    make_parts(OUT / "spare_parts.csv")
    # Windows-1252 on purpose: the corpus exercises legacy-encoding detection (€, ß, ü, é).
    (OUT / "service_centres.txt").write_bytes(SERVICE_TXT.encode("cp1252"))
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total / 1024:.0f} KB, to {OUT}")


if __name__ == "__main__":
    main()
