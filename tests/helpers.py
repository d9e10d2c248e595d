"""Real small things for tests: a help-center folder in every supported format, an endpoint that receives webhooks."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:
    from assistant.config import Settings


def make_pdf(path: Path, pages: list[str], title: str | None = None) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def make_docx(path: Path, title: str, sections: dict[str, list[str]]) -> Path:
    import docx

    document = docx.Document()
    document.add_heading(title, level=1)
    for heading, paragraphs in sections.items():
        document.add_heading(heading, level=2)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    document.save(str(path))
    return path


def make_helpcenter(root: Path) -> Path:
    """A small knowledge base whose facts each live in exactly one file."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "returns.md").write_text(
        "# Returns policy\n\nWe want you to be happy with your purchase.\n\n"
        "## Return window\n\nYou can return any item within 30 days of delivery for a full refund.\n\n"
        "## Refunds\n\nRefunds are paid to the original payment method within 5 business days after we inspect the item.\n"
    )
    (root / "shipping.html").write_text(
        "<html><head><title>Shipping costs</title><script>var tracking = 'secret-script-text';</script></head>"
        "<body><nav>Home | Shop | Blog</nav><main><h1>Shipping costs</h1>"
        "<h2>Express delivery</h2><p>Express shipping costs 14.90 EUR and arrives the next business day.</p>"
        "<h2>Standard delivery</h2><p>Standard shipping costs 4.95 EUR and is free above 75 EUR.</p></main>"
        "<footer>Copyright Nimbus Gear footer-text</footer></body></html>"
    )
    (root / "hours.txt").write_text("Store opening hours\n\nOur Munich store is open Monday to Saturday from 9:00 to 19:00.\n")
    (root / "faq.csv").write_text(
        "question,answer\n"
        '"Can I pay with bitcoin?","No, we do not accept cryptocurrency. We accept cards, PayPal and Klarna."\n'
        '"Do gift cards expire?","Gift cards are valid for 3 years from the date of purchase."\n'
    )
    make_pdf(root / "warranty.pdf", [
        "Warranty policy. All products carry the two-year legal warranty.",
        "Nimbus-brand tents carry three extra years of warranty on seams and poles.",
    ], title="Warranty policy")
    make_docx(root / "rental.docx", "Rental program", {
        "Deposit": ["Renting a tent requires a deposit of 100 EUR, refunded when the tent comes back."],
        "Late returns": ["Late rentals cost 8 EUR per day."],
    })
    return root


@contextmanager
def ingested_helpcenter(root: Path, embedder) -> Iterator[tuple[Settings, Path]]:
    """``make_helpcenter`` ingested as knowledge base "help" in a fresh SQLite data directory under
    ``root``, with the local model backend; yields (settings, help-center folder)."""
    from assistant.access import Caller, set_visibility
    from assistant.config import get_settings
    from assistant.database import dispose_engines
    from ingest.pipeline import Ingestor

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HELPMATE_DATA_DIR", str(root / "data"))
        patch.delenv("HELPMATE_DATABASE_URL", raising=False)
        patch.setenv("HELPMATE_LLM_BACKEND", "local")
        get_settings.cache_clear()
        settings = get_settings()
        folder = make_helpcenter(root / "kb")
        Ingestor("help", settings, embedder, show_progress=False).run([folder])
        set_visibility(settings, "help", "public", Caller.staff("admin", "test"))  # a help center: offered to customers
        yield settings, folder
        dispose_engines()
        get_settings.cache_clear()


class WebhookReceiver:
    """A real HTTP endpoint on a free port: answers with the queued statuses (then 200) and keeps what it got."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/helpmate"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
