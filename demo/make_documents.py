#!/usr/bin/env python3
"""Generate the binary help-center documents (PDF and DOCX) for the Nimbus Gear demo.

Nimbus Gear is a fictional company; all text below was written for this project.

Usage (from the repository root):

    python demo/make_documents.py

Requires ``fpdf2`` and ``python-docx``. The output is deterministic: PDF creation
dates, DOCX core properties and ZIP entry timestamps are fixed, so running the
script twice produces byte-identical files.

Outputs:
    demo/helpcenter/warranty/warranty-policy.pdf
    demo/helpcenter/products/care-instructions.pdf
    demo/helpcenter/rental/rental-program-terms.docx
    demo/helpcenter/repairs/repair-service-guide.docx
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import docx
from docx.shared import Pt
from fpdf import FPDF

HELPCENTER = Path(__file__).resolve().parent / "helpcenter"
FIXED_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)
ZIP_DATE = (2026, 1, 1, 0, 0, 0)

# ---------------------------------------------------------------------------
# Content
#
# Each document is a list of pages (PDF) or a flat list of blocks (DOCX).
# A block is a tuple: ("h1", text), ("h2", text), ("p", text),
# ("ul", [items]) or ("table", [header_row, *rows]).
# PDF text must only use latin-1 characters (core font Helvetica), so prices
# are written as "EUR" and no typographic quotes or dashes are used.
# ---------------------------------------------------------------------------

WARRANTY_POLICY = {
    "title": "Nimbus Gear Warranty Policy",
    "subject": "Legal guarantee, extended tent warranty and warranty claims",
    "pages": [
        [
            ("h1", "Nimbus Gear Warranty Policy"),
            ("p", "Valid for purchases from 1 January 2026, online and in our stores in Munich, "
                  "Vienna and Zurich. This policy explains the protection you have when a product "
                  "bought from Nimbus Gear turns out to be faulty. Page 1 describes the legal "
                  "guarantee, page 2 the extended warranty for Nimbus-brand tents and page 3 how "
                  "to make a claim."),
            ("h2", "1. Legal guarantee: 2 years on all products"),
            ("p", "Every product you buy from Nimbus Gear, whatever the brand, is covered by the "
                  "legal guarantee under EU consumer law for 2 years from the date of delivery (or "
                  "the date of purchase for store purchases). The legal guarantee covers defects "
                  "that already existed when you received the product, even if they only become "
                  "visible later."),
            ("p", "If a defect appears within the first 12 months, we assume that it already "
                  "existed at delivery; you do not need to prove it. After 12 months we may ask "
                  "for an assessment to show that the defect was not caused by use."),
            ("h2", "2. What the legal guarantee does not cover"),
            ("ul", [
                "normal wear and tear, for example worn soles, pilling of fleece or faded colours;",
                "damage caused by accidents, fire, sharp objects, animals or improper use;",
                "damage caused by not following the care instructions, for example washing a "
                "down sleeping bag with ordinary detergent;",
                "products that were modified or repaired by someone other than Nimbus Gear;",
                "products used commercially, for example by rental companies or outdoor schools;",
                "the gradual loss of capacity of rechargeable batteries, which is normal.",
            ]),
            ("h2", "3. Other brands"),
            ("p", "For products of other brands, the manufacturer may offer its own warranty in "
                  "addition to the legal guarantee. The manufacturer's conditions apply to it. "
                  "We are happy to forward your claim to the manufacturer for you."),
        ],
        [
            ("h1", "Extended Warranty for Nimbus Tents"),
            ("p", "We design our tents to last for many seasons. That is why every Nimbus-brand tent "
                  "(Ridge 1, Cirrus 2, Stratus 3, Cumulus 4 and Nordwand 2) receives 3 extra years "
                  "of warranty on top of the 2-year legal guarantee - 5 years of protection in "
                  "total, counted from the date of delivery."),
            ("h2", "4. Registration"),
            ("p", "To activate the extended warranty, register your tent within 60 days of purchase "
                  "under My account > My products > Register a product. You need the order number "
                  "or, for store purchases, the receipt number. Tents that are not registered "
                  "within 60 days are covered by the 2-year legal guarantee only."),
            ("h2", "5. What the extended warranty covers"),
            ("ul", [
                "seams that come apart and seam tape that peels off;",
                "tent poles that break without an external cause;",
                "zippers and zipper sliders that stop working;",
                "delamination of the waterproof coating on the floor or flysheet;",
                "faulty buckles, pole clips and tensioners.",
            ]),
            ("h2", "6. What the extended warranty does not cover"),
            ("ul", [
                "UV damage: fabric that becomes brittle or discoloured because the tent was left "
                "pitched in the sun for long periods;",
                "poles bent or broken by storms, snow load or people falling on the tent;",
                "holes caused by sparks, campfires, animals or sharp objects;",
                "mould and mildew caused by storing the tent wet;",
                "tents used for rental or other commercial purposes.",
            ]),
            ("h2", "7. Who is covered"),
            ("p", "The extended warranty applies to the original buyer only and cannot be transferred "
                  "if you sell or give away the tent. Nimbus-brand clothing, sleeping bags and "
                  "backpacks are covered by the 2-year legal guarantee; there is no extended "
                  "warranty for them. Second Ascent (used) tents are not eligible."),
        ],
        [
            ("h1", "How to Make a Warranty Claim"),
            ("h2", "8. Submitting your claim"),
            ("p", "Submit your claim with the warranty form under My account > My orders > "
                  "Warranty claim, or send an email to warranty@nimbusgear.example. Please "
                  "include:"),
            ("ul", [
                "your order number or a photo of your store receipt;",
                "a short description of the problem and when it started;",
                "at least two photos showing the defect and the whole product.",
            ]),
            ("p", "You can also hand in the product at any of our three stores."),
            ("h2", "9. Sending the product to us"),
            ("p", "After checking your claim, we email you a free shipping label for sending the "
                  "product to our workshop in Munich. The free label is available for addresses in "
                  "the EU and Switzerland. Please clean the product before sending it - tents must "
                  "be completely dry. We cannot accept dirty or wet products for assessment."),
            ("h2", "10. Assessment and outcome"),
            ("p", "Our workshop assesses the product within 10 business days of its arrival. If the "
                  "claim is accepted, we will:"),
            ("ul", [
                "first, repair the product free of charge;",
                "if a repair is not possible, replace it with the same or an equivalent product;",
                "if neither is possible, refund the purchase price.",
            ]),
            ("p", "A repair or replacement does not start a new warranty period: the original "
                  "period simply continues. If the claim is rejected, we send you a repair quote. "
                  "If you do not want the repair, we return the product free of charge."),
            ("h2", "11. Questions"),
            ("p", "Our customer service is happy to help with warranty questions by chat, phone "
                  "or email."),
        ],
    ],
}

CARE_INSTRUCTIONS = {
    "title": "Nimbus Gear Care Instructions",
    "subject": "How to clean, dry and store tents, down sleeping bags and waterproof jackets",
    "pages": [
        [
            ("h1", "Care Instructions for Your Outdoor Gear"),
            ("p", "Good care makes your gear last longer and keeps it performing. Please note that "
                  "damage caused by not following these instructions is not covered by the "
                  "warranty."),
            ("h2", "Tents"),
            ("ul", [
                "Never store a tent wet. If you packed it wet, set it up or hang it to dry within "
                "24 hours, otherwise mould can form.",
                "Clean the tent by hand with lukewarm water and a soft sponge. Never use detergent, "
                "a pressure washer or a washing machine - they destroy the waterproof coating.",
                "For long-term storage, keep the tent loosely packed in a breathable cotton bag in "
                "a dry, dark place, not in its tight stuff sack.",
                "Avoid leaving the tent pitched in strong sun for weeks: UV light weakens the "
                "flysheet fabric.",
                "Keep zippers free of sand with a soft brush. If a zipper runs stiffly, use a "
                "zipper lubricant stick - never oil or grease.",
                "When assembling poles, guide each section into the next; do not let the shock "
                "cord snap them together, which causes cracks at the joints.",
                "Check the seams once a year. Flysheets made of silicone-coated nylon should be "
                "re-sealed with a silicone seam sealer every 2 to 3 seasons.",
            ]),
            ("h2", "Down sleeping bags"),
            ("ul", [
                "Air the sleeping bag every morning on a trip, inside out if possible.",
                "Wash a down sleeping bag no more than once or twice a year, only when really "
                "needed. Use a front-loading washing machine without an agitator, the gentle "
                "cycle at 30 degrees C and a special down detergent. Add an extra rinse cycle.",
                "Dry it in a tumble dryer on low heat together with 2 to 3 clean tennis balls, "
                "which break up clumps of down. Drying takes 3 to 4 hours; stop only when no "
                "clumps are left.",
                "Store the sleeping bag uncompressed in the large cotton storage sack that comes "
                "with it. Use the small stuff sack only on trips.",
                "Prefer not to wash it yourself? Our Munich workshop offers a professional down "
                "wash - see the Repair service guide.",
            ]),
        ],
        [
            ("h2", "Waterproof jackets and trousers"),
            ("ul", [
                "Wash your waterproof jacket regularly: dirt and body oils reduce breathability. "
                "Wash at 30 degrees C with a liquid technical wash. Do not use powder detergent, "
                "fabric softener or bleach.",
                "Close all zips and hook-and-loop fasteners before washing and rinse twice.",
                "Reactivate the water-repellent finish (DWR) after washing: tumble dry on low "
                "heat for 20 minutes, or iron on the lowest setting with a thin towel between the "
                "iron and the jacket.",
                "When water no longer forms beads on the outer fabric after drying, re-proof the "
                "jacket with a spray-on DWR product and dry it again on low heat.",
                "Store jackets hanging and dry, never compressed for long periods.",
            ]),
            ("h2", "About NimbusTex"),
            ("p", "Nimbus Storm jackets and trousers use our three-layer NimbusTex membrane with a "
                  "waterproof rating of 20,000 mm and a breathability of 15,000 g/m2/24h. "
                  "The membrane itself does not wear out from washing - on the contrary, regular "
                  "washing helps it keep breathing."),
            ("h2", "Quick reference"),
            ("table", [
                ["Product", "Washing", "Drying", "Storage"],
                ["Tent", "Hand, lukewarm water, no detergent", "Pitched or hung, fully dry",
                 "Loose in cotton bag"],
                ["Down sleeping bag", "Front-loader, 30 C, down detergent", "Dryer low + tennis balls",
                 "Uncompressed in storage sack"],
                ["Waterproof jacket", "30 C, liquid technical wash", "Dryer low, 20 min",
                 "Hanging"],
            ]),
        ],
    ],
}

RENTAL_TERMS = [
    ("h1", "Nimbus Gear Rental Program Terms"),
    ("p", "Not sure whether you need your own tent yet, or only going camping once a year? Rent "
          "quality gear from Nimbus Gear. These terms apply to all rentals from 1 January 2026."),
    ("h2", "1. Where you can rent"),
    ("p", "Rental gear can be picked up and returned at our stores in Munich and Vienna. Rentals "
          "are not available in our Zurich store or by mail. You must return the gear to the same "
          "store where you picked it up."),
    ("h2", "2. Rental prices"),
    ("table", [
        ["Item", "Price per day", "Deposit"],
        ["Nimbus Cirrus 2 tent (2 persons)", "12 EUR", "150 EUR"],
        ["Nimbus Cumulus 4 tent (4 persons)", "18 EUR", "150 EUR"],
        ["Down sleeping bag (comfort -2 C)", "7 EUR", "50 EUR"],
        ["Self-inflating sleeping mat", "4 EUR", "50 EUR"],
        ["Trekking backpack 65 L", "6 EUR", "50 EUR"],
        ["Gas stove set with pot", "5 EUR", "50 EUR"],
    ]),
    ("p", "Weekend rate: if you pick up on Friday after 14:00 and return on Monday before 12:00, "
          "we charge only 2 days. Gas cartridges for the stove set are not included and must be "
          "bought separately."),
    ("h2", "3. Who can rent"),
    ("ul", [
        "You must be at least 18 years old.",
        "Please bring a valid photo ID (passport, identity card or driving licence).",
        "The deposit is reserved on a credit card in your name when you pick up the gear. We do "
        "not accept cash or debit cards for deposits.",
    ]),
    ("h2", "4. Reservations and cancellations"),
    ("ul", [
        "Reserve online on the Rentals page or at the rental counter, up to 90 days in advance.",
        "The rental fee is paid when you pick up the gear.",
        "Cancellation is free up to 48 hours before the pickup time. For later cancellations or if "
        "you do not pick up the gear, we charge 50% of the booked rental fee.",
    ]),
    ("h2", "5. Returning the gear"),
    ("p", "Return the gear by the agreed time during store opening hours. Late returns are charged "
          "at the normal daily price plus a late fee of 10 EUR for each day of delay."),
    ("p", "Tents must be returned dry and clean, with all poles, pegs and guy lines. If a tent is "
          "returned dirty or wet, we charge a cleaning fee of 25 EUR. Sleeping bags are "
          "professionally cleaned after every rental; this is included in the price."),
    ("h2", "6. Damage and loss"),
    ("p", "Normal signs of use are no problem. Damage beyond normal use, such as burn holes or "
          "broken poles, is charged according to our repair price list, up to the current retail "
          "price of the item. If an item is lost or stolen, we charge the current retail price "
          "minus 20%. The deposit is released once the gear has been checked, usually within "
          "2 business days."),
    ("h2", "7. Rent first, buy later"),
    ("p", "Liked it? If you buy the same model new within 14 days of returning it, we credit the "
          "rental fee of up to 3 rental days to your purchase. Show your rental receipt at the till "
          "or quote your rental number in the chat for online purchases."),
    ("h2", "8. Safety"),
    ("p", "You are responsible for using the gear safely. Never use a gas stove inside a tent. "
          "Our staff will show you how to pitch the tent and use the stove when you pick it up."),
]

REPAIR_GUIDE = [
    ("h1", "Nimbus Gear Repair Service Guide"),
    ("p", "Our repair workshop in the Munich store fixes outdoor gear of all brands - not only "
          "products bought from Nimbus Gear. Repairing instead of replacing saves money and "
          "resources."),
    ("h2", "1. What we repair and what it costs"),
    ("table", [
        ["Repair", "Price"],
        ["Zipper slider replacement (tent, jacket or sleeping bag)", "15 EUR"],
        ["Complete zipper replacement on a tent door", "45 EUR"],
        ["Fabric patch on tent, flysheet or jacket (per patch)", "18 EUR"],
        ["Tent pole segment replacement (per segment)", "12 EUR"],
        ["Re-taping seams on a waterproof jacket", "35 EUR"],
        ["Professional down wash for a sleeping bag", "39 EUR"],
        ["Wash and re-proof for a waterproof jacket", "25 EUR"],
        ["Resoling hiking boots (partner cobbler)", "79 EUR"],
    ]),
    ("p", "Prices include materials and labour. For repairs not listed here, we give you a free "
          "quote before starting any work."),
    ("h2", "2. Handing in a repair at a store"),
    ("p", "Bring your item to the repair counter in our Munich store. You can also hand in repairs "
          "at our Vienna and Zurich stores; they are sent to Munich, which adds about 7 days to "
          "the repair time. Please clean and dry the item before handing it in."),
    ("h2", "3. Sending a repair by post"),
    ("p", "Book a repair on the Repairs page of our website. For addresses in Germany and Austria "
          "you can buy a prepaid repair shipping label for 6.95 EUR. Pack the item with a note "
          "containing your repair number."),
    ("h2", "4. Quote and turnaround time"),
    ("ul", [
        "For repairs with a fixed price, we start straight away.",
        "For other repairs, you receive a quote by email within 5 business days of the item "
        "arriving in the workshop. We only start once you have accepted the quote.",
        "Most repairs are finished within 2 to 3 weeks. In the busy season from April to "
        "June it can take up to 4 weeks.",
        "If you decline the quote, you can collect the item free of charge, or we send it back "
        "for 6.95 EUR.",
    ]),
    ("h2", "5. Returning the repaired item"),
    ("p", "We email you when your item is ready. Items handed in at a store are returned to the "
          "same store for pickup. Items sent by post are shipped back for free. Items that are not "
          "collected within 3 months after we notified you may be donated to our Second Ascent "
          "program."),
    ("h2", "6. Guarantee on repairs"),
    ("p", "We give a 6-month guarantee on the repair work itself. If the same repair fails within "
          "6 months, we redo it free of charge."),
    ("h2", "7. Repairs under warranty"),
    ("p", "Repairs that are covered by the legal guarantee or by the extended warranty for Nimbus "
          "tents are free, including shipping. In that case please do not book a paid repair, but "
          "submit a warranty claim as described in our Warranty policy."),
    ("h2", "8. Field repair tips"),
    ("ul", [
        "Every Nimbus tent comes with a small repair kit: a pole splint and two self-adhesive "
        "fabric patches.",
        "A torn jacket can be fixed temporarily with repair tape - round off the corners so that "
        "the tape does not peel off.",
        "A zipper that no longer closes can often be fixed by gently pressing the slider together "
        "with pliers. Do this carefully, and bring the item to us afterwards.",
    ]),
]


# ---------------------------------------------------------------------------
# PDF
# ---------------------------------------------------------------------------

class HelpPDF(FPDF):
    def __init__(self, doc_title: str):
        super().__init__(format="A4")
        self.doc_title = doc_title
        self.set_margins(20, 20, 20)
        self.set_auto_page_break(auto=True, margin=20)

    def header(self):
        self.set_font("Helvetica", "B", 9)
        self.set_text_color(47, 93, 80)
        self.cell(0, 6, "NIMBUS GEAR  |  Help Center", new_x="LMARGIN", new_y="NEXT")
        self.set_draw_color(47, 93, 80)
        self.line(20, self.get_y(), 190, self.get_y())
        self.ln(4)
        self.set_text_color(0, 0, 0)

    def footer(self):
        self.set_y(-15)
        self.set_font("Helvetica", "", 8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 8, f"{self.doc_title} - page {self.page_no()} of {{nb}}", align="C")


def pdf_block(pdf: HelpPDF, block) -> None:
    kind, content = block
    width = pdf.w - pdf.l_margin - pdf.r_margin
    if kind == "h1":
        pdf.set_font("Helvetica", "B", 17)
        pdf.set_text_color(35, 64, 58)
        pdf.multi_cell(width, 9, content, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    elif kind == "h2":
        pdf.ln(2)
        pdf.set_font("Helvetica", "B", 12.5)
        pdf.set_text_color(47, 93, 80)
        pdf.multi_cell(width, 7, content, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    elif kind == "p":
        pdf.set_font("Helvetica", "", 10.5)
        pdf.set_text_color(0, 0, 0)
        pdf.multi_cell(width, 5.5, content, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    elif kind == "ul":
        pdf.set_font("Helvetica", "", 10.5)
        pdf.set_text_color(0, 0, 0)
        for item in content:
            pdf.set_x(pdf.l_margin + 3)
            pdf.cell(5, 5.5, "-")
            pdf.multi_cell(width - 8, 5.5, item, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(0.8)
        pdf.ln(1.5)
    elif kind == "table":
        pdf.set_font("Helvetica", "", 9.5)
        pdf.set_text_color(0, 0, 0)
        with pdf.table(line_height=5.5, text_align="LEFT") as table:
            for row in content:
                r = table.row()
                for cell in row:
                    r.cell(cell)
        pdf.ln(3)
    else:
        raise ValueError(kind)


def make_pdf(spec: dict, path: Path) -> None:
    pdf = HelpPDF(spec["title"])
    pdf.set_title(spec["title"])
    pdf.set_subject(spec["subject"])
    pdf.set_author("Nimbus Gear GmbH (fictional company)")
    pdf.set_creator("demo/make_documents.py")
    pdf.set_creation_date(FIXED_DATE)
    for page in spec["pages"]:
        pdf.add_page()
        for block in page:
            pdf_block(pdf, block)
    expected = len(spec["pages"])
    if pdf.pages_count != expected:
        raise RuntimeError(f"{path.name}: content overflowed, {pdf.pages_count} pages != {expected}")
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))


# ---------------------------------------------------------------------------
# DOCX
# ---------------------------------------------------------------------------

def make_docx(blocks: list, title: str, path: Path) -> None:
    document = docx.Document()
    document.styles["Normal"].font.name = "Calibri"
    document.styles["Normal"].font.size = Pt(11)
    for kind, content in blocks:
        if kind == "h1":
            document.add_heading(content, level=1)
        elif kind == "h2":
            document.add_heading(content, level=2)
        elif kind == "p":
            document.add_paragraph(content)
        elif kind == "ul":
            for item in content:
                document.add_paragraph(item, style="List Bullet")
        elif kind == "table":
            table = document.add_table(rows=0, cols=len(content[0]))
            table.style = "Table Grid"
            for i, row in enumerate(content):
                cells = table.add_row().cells
                for cell, text in zip(cells, row):
                    cell.text = text
                    if i == 0:
                        for run in cell.paragraphs[0].runs:
                            run.bold = True
            document.add_paragraph()
        else:
            raise ValueError(kind)
    props = document.core_properties
    props.title = title
    props.author = "Nimbus Gear GmbH (fictional company)"
    props.last_modified_by = "demo/make_documents.py"
    props.comments = "Sample content written for the Helpmate demo."
    props.created = FIXED_DATE.replace(tzinfo=None)
    props.modified = FIXED_DATE.replace(tzinfo=None)
    props.last_printed = FIXED_DATE.replace(tzinfo=None)
    props.revision = 1

    # python-docx stamps ZIP entries with the current time; re-pack with a fixed date.
    buffer = io.BytesIO()
    document.save(buffer)
    buffer.seek(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            dst.writestr(fixed, src.read(info.filename))


def main() -> None:
    outputs = {
        HELPCENTER / "warranty" / "warranty-policy.pdf": lambda p: make_pdf(WARRANTY_POLICY, p),
        HELPCENTER / "products" / "care-instructions.pdf": lambda p: make_pdf(CARE_INSTRUCTIONS, p),
        HELPCENTER / "rental" / "rental-program-terms.docx":
            lambda p: make_docx(RENTAL_TERMS, "Nimbus Gear Rental Program Terms", p),
        HELPCENTER / "repairs" / "repair-service-guide.docx":
            lambda p: make_docx(REPAIR_GUIDE, "Nimbus Gear Repair Service Guide", p),
    }
    for path, build in outputs.items():
        build(path)
        print(f"wrote {path.relative_to(HELPCENTER.parent.parent)}")


if __name__ == "__main__":
    main()
