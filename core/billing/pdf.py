"""Invoice PDFs (fpdf2, pure Python). Text is set in DejaVu Sans, which ships inside matplotlib
(an MLflow dependency), so names like "Šimić d.o.o." print as written; where that font is
missing the text falls back to Latin-1 with accents stripped rather than failing."""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from pathlib import Path

from fpdf import FPDF

from core.auth.actor import Actor
from core.billing.formatting import money
from core.billing.invoices_read import InvoiceDetail, invoice_detail
from core.config import get_settings
from core.orgs.countries import countries

SELLER = "Omni Platform Ltd."


def _font_path() -> Path | None:
    try:
        import matplotlib
    except ImportError:
        return None
    path = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    return path if path.is_file() else None


class _Doc:
    def __init__(self) -> None:
        self.pdf = FPDF(format="A4")
        self.pdf.set_auto_page_break(auto=True, margin=18)
        self.pdf.add_page()
        font = _font_path()
        self.unicode = font is not None
        if font is not None:
            self.pdf.add_font("DejaVu", "", str(font))
            self.family = "DejaVu"
        else:
            self.family = "Helvetica"

    def text(self, value: str) -> str:
        if self.unicode:
            return value
        plain = unicodedata.normalize("NFKD", value).encode("latin-1", "ignore")
        return plain.decode("latin-1")

    def line(self, value: str, size: float = 10, height: float = 5.5, align: str = "L") -> None:
        self.pdf.set_font(self.family, size=size)
        self.pdf.cell(0, height, self.text(value), new_x="LMARGIN", new_y="NEXT", align=align)

    def row(self, cells: list[tuple[str, float, str]], size: float = 9) -> None:
        self.pdf.set_font(self.family, size=size)
        for value, width, align in cells:
            self.pdf.cell(width, 6, self.text(value), border="B", align=align)
        self.pdf.ln()


def render(detail: InvoiceDetail) -> bytes:
    inv, customer = detail.invoice, detail.customer
    doc = _Doc()
    title = f"Invoice {inv.number}" if inv.number else "Draft invoice (not yet finalised)"
    doc.line(SELLER, 9)
    doc.line(f"Established in {get_settings().billing_seller_country}", 9)
    doc.pdf.ln(4)
    doc.line(title, 16, 9)
    issued = f"{inv.issued_at:%d %B %Y}" if inv.issued_at else "-"
    due = f"{inv.due_at:%d %B %Y}" if inv.due_at else "-"
    last_day = detail.period_end - timedelta(days=1)
    doc.line(f"Issued {issued}   ·   Due {due}   ·   Status {inv.status}", 9)
    doc.line(
        f"Billing period {detail.period_start:%d %b %Y} to {last_day:%d %b %Y}",
        9,
    )
    doc.pdf.ln(4)
    country = countries().get(customer.country)
    doc.line("Bill to", 9)
    doc.line(customer.name, 11)
    doc.line(f"{customer.email} · {country.name if country else customer.country}", 9)
    if customer.vat_id:
        doc.line(f"VAT id {customer.vat_id}", 9)
    doc.pdf.ln(4)
    doc.row([("Description", 130, "L"), ("Qty", 20, "R"), ("Amount", 40, "R")], size=9)
    for line in detail.lines:
        doc.row(
            [
                (line.description[:90], 130, "L"),
                (f"{line.quantity:,}", 20, "R"),
                (money(line.amount, inv.currency), 40, "R"),
            ],
            size=8,
        )
    doc.pdf.ln(2)
    totals = [
        ("Subtotal", inv.subtotal),
        ("Discount", -inv.discount),
        (f"VAT {detail.tax_rate_bp / 100:g} %", inv.tax),
        ("Total", inv.total),
    ]
    if detail.amount_credited:
        totals.append(("Credited", -detail.amount_credited))
    if detail.amount_paid:
        totals.append(("Paid", -detail.amount_paid))
    totals.append(("Amount due", inv.amount_due))
    for label, amount in totals:
        if label == "Discount" and not amount:
            continue
        doc.row([(label, 150, "R"), (money(amount, inv.currency), 40, "R")], size=9)
    doc.pdf.ln(4)
    if detail.tax_note:
        doc.line(detail.tax_note, 8)
    return bytes(doc.pdf.output())


def invoice_pdf(actor: Actor, invoice_id: int) -> bytes:
    return render(invoice_detail(actor, invoice_id))
