"""Turn rated and corrected answers into a training snapshot: redacted, de-duplicated, split, hashed.

One snapshot folder holds three views of the same feedback, each as a train and an eval file, in
the conversational formats TRL 1.x reads with ``load_dataset("json", ...)``:

* ``sft_{train,eval}.jsonl``: ``{"messages": [system, user, assistant]}``; the assistant message
  is the answer to learn (a corrected answer, or an answer rated good). LoRA training reads these.
* ``preference_{train,eval}.jsonl``: ``{"prompt": [...], "chosen": [assistant], "rejected":
  [assistant]}``; the corrected answer is chosen over the answer it corrected (DPO, ORPO).
* ``kto_{train,eval}.jsonl``: ``{"prompt": [...], "completion": [assistant], "label": bool}``;
  every rated answer with its thumb, plus each correction as a desirable completion (KTO).

The prompt of every example is the prompt the answer was generated from: the one recorded with the
answer, or else the assistant's own (:func:`assistant.answering.prompts.build_messages`), so an adapter
learns on exactly what it sees when serving. Every text is redacted first
(:mod:`assistant.conversations.redaction`). Examples are de-duplicated on their normalised prompt
and answer, and split into train and eval by conversation, never by message: the answers of one
conversation share context, and splitting them would leak eval material into training. The split
depends only on a hash of the conversation id, so a conversation stays on its side as feedback
accumulates.
``manifest.json`` records counts and a sha256 content hash of the snapshot, so a trained adapter
can name exactly the data it was trained on.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

from assistant.llm.base import Message
from assistant.answering.prompts import Turn, build_messages
from assistant.retrieval.types import Hit
from assistant.conversations.redaction import redact_counted

SNAPSHOT_FORMAT = "helpmate-feedback-snapshot/1"
MANIFEST = "manifest.json"
VIEWS = ("sft", "preference", "kto")
SPLITS = ("train", "eval")

Label = Literal["good", "bad"]


@dataclass(frozen=True)
class FeedbackRecord:
    """One rated answer, as the feedback tables store it.

    ``answer`` is what the assistant said and ``label`` the rating it got. ``corrected`` is an
    answer an agent or customer wrote instead; it is the answer to learn, and the preference
    pairs put it above ``answer``. ``prompt`` is the prompt the answer was generated from, when it
    was recorded; otherwise it is rebuilt the way the assistant builds it, from ``question``, the
    retrieved ``passages`` and the earlier turns of the conversation (``history``).
    """

    conversation_id: str
    answer: str
    label: Label
    question: str = ""
    passages: tuple[Hit, ...] = ()
    history: tuple[Turn, ...] = ()
    corrected: str | None = None
    prompt: tuple[Message, ...] = ()

    def prompt_messages(self) -> list[Message]:
        if self.prompt:
            return [dict(m) for m in self.prompt]
        return build_messages(self.question, self.passages, self.history)


@dataclass
class SnapshotManifest:
    """What ``manifest.json`` holds: where the snapshot came from and what is in it."""

    content_hash: str
    eval_share: float
    records: int
    conversations: dict[str, int]
    files: dict[str, dict[str, Any]]
    duplicates_dropped: dict[str, int]
    redactions: dict[str, int]
    format: str = SNAPSHOT_FORMAT

    def examples(self, view: str, split: str) -> int:
        return self.files[f"{view}_{split}.jsonl"]["examples"]


def is_eval_conversation(conversation_id: str, eval_share: float) -> bool:
    """Whether a conversation's examples go to the eval split: a fixed function of its id, so the
    split is the same on every machine and in every later snapshot."""
    digest = hashlib.sha256(str(conversation_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < eval_share


def _normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _key(*parts: Any) -> str:
    return _normalise(json.dumps(parts, ensure_ascii=False, sort_keys=True))


def _canonical(example: dict[str, Any]) -> str:
    return json.dumps(example, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _assistant(text: str) -> list[Message]:
    return [{"role": "assistant", "content": text}]


def _validate(index: int, record: FeedbackRecord) -> None:
    where = f"feedback record {index} (conversation {record.conversation_id!r})"
    if record.label not in ("good", "bad"):
        raise ValueError(f"{where}: label must be 'good' or 'bad', not {record.label!r}")
    if not record.answer.strip():
        raise ValueError(f"{where}: the answer is empty")
    if not record.prompt and not record.question.strip():
        raise ValueError(f"{where}: needs either the recorded prompt or the question")
    if record.prompt and record.prompt[-1].get("role") != "user":
        raise ValueError(f"{where}: the recorded prompt must end with the customer's message, not {record.prompt[-1].get('role')!r}")


class _Redactor:
    """Redacts texts and keeps the tally for the manifest."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, text: str) -> str:
        redacted, counts = redact_counted(text)
        self.counts.update(counts)
        return redacted


def _build_examples(records: Iterable[FeedbackRecord]) -> tuple[dict[str, list[tuple[str, dict[str, Any]]]], dict[str, int], Counter[str], int]:
    """Examples of each view as ``(conversation_id, example)``, duplicates dropped (first kept),
    with the number of duplicates per view, the redaction tally and the number of records."""
    redact = _Redactor()
    views: dict[str, list[tuple[str, dict[str, Any]]]] = {view: [] for view in VIEWS}
    seen: dict[str, set[str]] = {view: set() for view in VIEWS}
    dropped = dict.fromkeys(VIEWS, 0)

    def add(view: str, conversation_id: str, key: str, example: dict[str, Any]) -> None:
        if key in seen[view]:
            dropped[view] += 1
            return
        seen[view].add(key)
        views[view].append((conversation_id, example))

    count = 0
    for count, record in enumerate(records, start=1):
        _validate(count, record)
        prompt = [{"role": m["role"], "content": redact(m["content"])} for m in record.prompt_messages()]
        answer = redact(record.answer.strip())
        corrected = redact(record.corrected.strip()) if record.corrected and record.corrected.strip() else None
        if corrected is not None and _normalise(corrected) == _normalise(answer):
            corrected = None  # an unchanged "correction" carries no preference
        cid = str(record.conversation_id)
        target = corrected if corrected is not None else (answer if record.label == "good" else None)
        if target is not None:
            add("sft", cid, _key(prompt, target), {"messages": prompt + _assistant(target)})
        if corrected is not None:
            add("preference", cid, _key(prompt, corrected, answer),
                {"prompt": prompt, "chosen": _assistant(corrected), "rejected": _assistant(answer)})
            add("kto", cid, _key(prompt, corrected, True), {"prompt": prompt, "completion": _assistant(corrected), "label": True})
        # A corrected answer was wrong whatever thumb it got before the correction.
        desirable = record.label == "good" and corrected is None
        add("kto", cid, _key(prompt, answer, desirable), {"prompt": prompt, "completion": _assistant(answer), "label": desirable})
    return views, dropped, redact.counts, count


def write_snapshot(records: Iterable[FeedbackRecord], folder: Path, eval_share: float = 0.1) -> SnapshotManifest:
    """Write the three views, split by conversation, and ``manifest.json`` into the new ``folder``.

    The files are written to a temporary sibling folder that is renamed into place at the end, so
    an interrupted export never leaves a snapshot that looks complete. The content hash covers the
    files' exact bytes, which are canonical JSON (sorted keys, no spaces), so the same feedback
    always gives the same hash.
    """
    if not 0.0 <= eval_share < 1.0:
        raise ValueError(f"eval_share must be at least 0 and below 1, not {eval_share}")
    folder = Path(folder)
    if folder.exists():
        raise FileExistsError(f"{folder} already exists; snapshots are never overwritten, choose a new folder")
    views, dropped, redactions, count = _build_examples(records)
    if not count:
        raise ValueError("there is no feedback to export")

    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files: dict[str, dict[str, Any]] = {}
    conversations: dict[str, set[str]] = {split: set() for split in SPLITS}
    try:
        for view, examples in views.items():
            lines: dict[str, list[str]] = {split: [] for split in SPLITS}
            for cid, example in examples:
                split = "eval" if is_eval_conversation(cid, eval_share) else "train"
                lines[split].append(_canonical(example))
                conversations[split].add(cid)
            for split in SPLITS:
                name = f"{view}_{split}.jsonl"
                data = "".join(line + "\n" for line in lines[split]).encode()
                (tmp / name).write_bytes(data)
                files[name] = {"examples": len(lines[split]), "sha256": hashlib.sha256(data).hexdigest()}
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(f"{name}\n{files[name]['sha256']}\n".encode())
        manifest = SnapshotManifest(
            content_hash=digest.hexdigest(), eval_share=eval_share, records=count,
            conversations={split: len(ids) for split, ids in conversations.items()},
            files=files, duplicates_dropped=dropped, redactions=dict(sorted(redactions.items())),
        )
        (tmp / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2, sort_keys=True) + "\n")
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def read_manifest(folder: Path) -> SnapshotManifest:
    """The manifest of a snapshot folder; the error names the folder when it is not a snapshot."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{folder} is not a feedback snapshot (no {MANIFEST}); export one first")
    data = json.loads(path.read_text())
    if data.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"{path} has format {data.get('format')!r}; this version reads {SNAPSHOT_FORMAT!r}")
    return SnapshotManifest(**{k: v for k, v in data.items() if k in SnapshotManifest.__dataclass_fields__})


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The examples of one snapshot file; a broken line is reported with its file and line number."""
    examples = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    examples.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}, line {number}: not valid JSON ({error.msg})") from None
    return examples
