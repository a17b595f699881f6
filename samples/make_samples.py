"""Regenerates the sample corpus's PDF and DOCX files from the text below.

The generated files are committed, so users never run this; it exists so the binary samples can be
reviewed and rebuilt. Needs the `samples` extra (reportlab, python-docx).
"""

from __future__ import annotations

from pathlib import Path

from docx import Document
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer

CORPUS = Path(__file__).parent / "corpus"

# Each inner list is one PDF page: (heading, paragraphs). The bridge extension sits on page 2 on
# purpose, so tests can check that page numbers survive parsing.
INCIDENT_PAGES: list[list[tuple[str, list[str]]]] = [
    [
        (
            "Incident response procedure",
            [
                "This procedure tells engineers at Northwind Robotics what to do when a production "
                "service fails or degrades. It applies to every service with a paging rotation.",
            ],
        ),
        (
            "Severity levels",
            [
                "Sev-1: a customer-facing outage or data loss. Sev-2: a major feature is degraded "
                "for many customers. Sev-3: a minor defect with a workaround.",
                "The person who notices the problem assigns the first severity; the incident lead "
                "may change it later.",
            ],
        ),
    ],
    [
        (
            "Paging and the incident bridge",
            [
                "A Sev-1 incident pages the on-call lead, who must acknowledge within 5 minutes. "
                "If nobody acknowledges, the page escalates to the engineering manager.",
                "All responders join the incident bridge, a standing conference line on telephone "
                "extension 4471. Keep the bridge open until the incident is resolved.",
            ],
        ),
        (
            "Communication",
            [
                "The incident lead posts a status update every 30 minutes in the incidents "
                "channel. "
                "Customer communication goes through the support team only.",
            ],
        ),
    ],
    [
        (
            "After the incident",
            [
                "Every Sev-1 and Sev-2 incident gets a blameless postmortem within five working "
                "days. The postmortem lists the timeline, the root cause and follow-up actions "
                "with owners and due dates.",
            ],
        ),
    ],
]

EXPENSE_SECTIONS: list[tuple[str, list[str]]] = [
    (
        "Travel and expense policy",
        [
            "This policy covers business travel and the expenses employees may claim back.",
        ],
    ),
    (
        "Hotels",
        [
            "Book hotels through the travel portal. The hotel cap is 180 EUR per night in most "
            "cities and 240 EUR per night in London, Zurich and New York.",
        ],
    ),
    (
        "Meals",
        [
            "Meals while travelling are reimbursed up to 60 EUR per day. "
            "Alcohol is not reimbursed.",
        ],
    ),
    (
        "Claims",
        [
            "Submit receipts in the expense tool within 30 days of the trip. Claims older than "
            "90 days are rejected. Your manager approves claims within five working days.",
        ],
    ),
]


def write_pdf(path: Path) -> None:
    styles = getSampleStyleSheet()
    story: list = []
    for page_number, page in enumerate(INCIDENT_PAGES):
        if page_number:
            story.append(PageBreak())
        for heading, paragraphs in page:
            story.append(Paragraph(heading, styles["Heading1"]))
            for text in paragraphs:
                story.append(Paragraph(text, styles["BodyText"]))
                story.append(Spacer(1, 6))
    document = SimpleDocTemplate(str(path), pagesize=A4, title="Incident response procedure")
    document.build(story)


def write_docx(path: Path) -> None:
    document = Document()
    for level, (heading, paragraphs) in enumerate(EXPENSE_SECTIONS):
        document.add_heading(heading, level=0 if level == 0 else 1)
        for text in paragraphs:
            document.add_paragraph(text)
    document.core_properties.title = "Travel and expense policy"
    document.save(str(path))


if __name__ == "__main__":
    write_pdf(CORPUS / "incident-response.pdf")
    write_docx(CORPUS / "expense-policy.docx")
    print(f"wrote {CORPUS / 'incident-response.pdf'} and {CORPUS / 'expense-policy.docx'}")
