"""Submitting a paper by arXiv id or link: a paper the store already has opens
(credited to the submitter); an unknown one is queued for the harvester.

"Already has" covers every way the store may know an id: as a paper's arXiv id
(any version asked for), as its public id, or as an alias left behind when a
paper changed id (a listing paper, first stored under its title hash, that the
harvester later matched to its arXiv record).
"""

from __future__ import annotations

import re
import sqlite3

from paperwire.model import parse_arxiv_id
from paperwire.store import accounts, submissions

# Links people paste: arxiv.org (abs, pdf, html; www. or export. or none), and the
# paper pages of Hugging Face and alphaXiv, which use arXiv ids.
_LINK = re.compile(
    r"^(?:https?://)?(?:(?:www|export)\.)?(?:arxiv\.org/(?:abs|pdf|html|format)/|huggingface\.co/papers/|"
    r"(?:www\.)?alphaxiv\.org/(?:abs|overview)/)([^?#\s]+?)/?(?:[?#].*)?$",
    re.I,
)
MAX_INPUT = 300


def arxiv_id_from_input(raw: str | None) -> str | None:
    """The versionless arXiv id in what a person typed (an id, ``arXiv:…`` or a link), or None."""
    s = (raw or "").strip()[:MAX_INPUT]
    m = _LINK.match(s)
    if m:
        s = m.group(1)
        s = s[:-4] if s.lower().endswith(".pdf") else s
    parsed = parse_arxiv_id(s)
    return parsed[0] if parsed else None


def submit(conn: sqlite3.Connection, user: dict, raw: str) -> tuple[str, dict]:
    """Submit a paper for ``user``. Returns ``(status, info)``:

    * ``known``: the store has it; ``info["paper_id"]`` is the page to open, and the
      paper is credited to the user if nobody submitted it before;
    * ``queued``: unknown here, queued for the next harvest (``submission_id``);
    * ``invalid``: not an arXiv id, or a paper the admins hid; ``info["message"]`` says which.
    """
    arxiv_id = arxiv_id_from_input(raw)
    if arxiv_id is None:
        shown = (raw or "").strip()[:100]
        return "invalid", {"message": f"{shown!r} is not an arXiv id or link (e.g. 2401.01234, "
                                      "hep-th/9901001 or https://arxiv.org/abs/2401.01234)."}
    paper = submissions.find_known_paper(conn, arxiv_id)
    if paper is not None:
        if paper["hidden"] and not user.get("is_admin"):
            return "invalid", {"message": f"arXiv:{arxiv_id} is on this site but hidden by its admins."}
        accounts.claim_submitted_by(conn, paper["id"], user["username"])
        return "known", {"paper_id": paper["paper_id"], "arxiv_id": arxiv_id}
    sub_id = submissions.queue_submission(conn, arxiv_id, user["id"])
    return "queued", {"submission_id": sub_id, "arxiv_id": arxiv_id}
