"""The labelled data sentiment is trained and measured on: VADER ground truth, Banking77, SST-2, and a team's own files.

Training uses only data whose licence allows it: VADER's ground truth (MIT; tweets, product
reviews, movie reviews, news editorials, each sentence rated by 20 people) and Banking77 (CC BY
4.0; customer-service requests, of which only plainly neutral ones serve as this domain's neutral
class). The movie snippets contain every sentence of SST-2's dev set, which is Helpmate's
evaluation set, so those snippets are removed before training.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from assistant.sentiment.model import LABELS, VaderBaseline

DEFAULT_DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"

VADER_DOMAINS: dict[str, str] = {
    "tweets": "tweets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "movie": "movieReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
}
# A mean rating (-4..4) above this is positive, below its negative is negative, else neutral.
RATING_BAND = 0.5

FileFormat = Literal["tsv", "csv", "vader"]


@dataclass
class LabelledSet:
    """Texts with gold labels; ``binary`` sets (0/1) have only negative and positive."""

    texts: list[str]
    labels: list[str]
    binary: bool


def rating_label(mean: float) -> str:
    """VADER ground truth's mean rating (-4..4) as a class: above 0.5 positive, below -0.5 negative."""
    if mean > RATING_BAND:
        return "positive"
    if mean < -RATING_BAND:
        return "negative"
    return "neutral"


def read_vader_groundtruth(path: Path) -> tuple[list[str], list[float]]:
    """Texts and mean ratings of a VADER ground-truth file (``id<TAB>mean<TAB>text``, no header, CRLF)."""
    texts, means = [], []
    # The files are mostly ASCII with a few stray bytes that are not valid UTF-8.
    for number, line in enumerate(Path(path).read_bytes().decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        try:
            if len(parts) != 3:
                raise ValueError
            mean = float(parts[1])
        except ValueError:
            raise ValueError(f"{path}, line {number}: expected id<TAB>mean rating<TAB>text (VADER ground truth)") from None
        texts.append(parts[2].strip())
        means.append(mean)
    return texts, means


_LABEL_NAMES = {"negative": "negative", "neg": "negative", "neutral": "neutral", "neu": "neutral",
                "positive": "positive", "pos": "positive", "0": "negative", "1": "positive"}
_TEXT_COLUMNS = ("text", "sentence", "message", "review")
_LABEL_COLUMNS = ("label", "sentiment", "class")


def read_labelled(path: Path, fmt: FileFormat | None = None, text_column: str | None = None,
                  label_column: str | None = None) -> LabelledSet:
    """A labelled evaluation file: TSV/CSV with a header, or VADER ground truth (``fmt="vader"``).

    Labels are negative/neutral/positive, or 0/1 for a binary set (never both). The text column is
    the first of text, sentence, message, review unless named; the label column likewise from
    label, sentiment, class. The format defaults to the file's extension.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"evaluation file {path} does not exist")
    fmt = fmt or ("csv" if path.suffix.lower() == ".csv" else "tsv")
    if fmt == "vader":
        texts, means = read_vader_groundtruth(path)
        return LabelledSet(texts, [rating_label(m) for m in means], binary=False)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t" if fmt == "tsv" else ",",
                                quoting=csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL)
        columns = [c.strip() for c in reader.fieldnames or []]
        reader.fieldnames = columns
        text_column = text_column or next((c for c in _TEXT_COLUMNS if c in columns), None)
        label_column = label_column or next((c for c in _LABEL_COLUMNS if c in columns), None)
        if text_column not in columns or label_column not in columns:
            raise ValueError(
                f"{path}: needs a text column and a label column; its header has {columns}. "
                "Name them with --text-column and --label-column (or use --format vader for VADER ground truth)"
            )
        texts, raw = [], []
        for row in reader:
            text, label = (row.get(text_column) or "").strip(), (row.get(label_column) or "").strip().lower()
            if label not in _LABEL_NAMES or not text:
                raise ValueError(
                    f"{path}, line {reader.line_num}: label {label!r} with text {text[:40]!r}; labels must be "
                    "negative/neutral/positive or 0/1, and the text must not be empty"
                )
            texts.append(text)
            raw.append(label)
    binary = any(label in ("0", "1") for label in raw)
    if binary and any(label not in ("0", "1") for label in raw):
        raise ValueError(f"{path}: mixes 0/1 labels with named labels; use one kind")
    return LabelledSet(texts, [_LABEL_NAMES[label] for label in raw], binary)


BANKING_ROWS = 1500  # at most this many Banking77 requests, as neutral customer-service text (of 10,003)
# A request with one of these is left out of the neutral class: "my refund still has not arrived" is a
# complaint, and labelling it neutral taught the first model that complaints are neutral.
COMPLAINT_CUES = re.compile(
    r"\b(still|yet|not|no|never|nothing|why|wrong|again|twice|already|lost|stolen|fraud\w*|declined|refused|"
    r"failed|fail|problem|issue|error|stuck|wait\w*|charged|extra|fee|cannot|can't|won't|unable)\b|n't\b",
    re.IGNORECASE)


@dataclass
class TrainingSet:
    """Training texts with class indices (into ``LABELS``), each text's domain, and the files used."""

    texts: list[str]
    labels: np.ndarray
    domains: list[str]
    sources: list[dict]


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _normalised(text: str) -> str:
    """Lower-case letters and digits only: SST-2 is tokenised ("does n't", "-lrb-"), the snippets are not."""
    return re.sub(r"[^a-z0-9]+", "", text.lower().replace("-lrb-", "(").replace("-rrb-", ")"))


def contains_any(texts: Sequence[str], held_out: Sequence[str]) -> list[bool]:
    """For each text, whether it contains one of the held-out sentences (after normalising both)."""
    needles = [n for n in {_normalised(t) for t in held_out} if n]
    return [any(needle in haystack for needle in needles) for haystack in (_normalised(t) for t in texts)]


def neutral_requests(requests: Sequence[str], lexicon: VaderBaseline) -> list[bool]:
    """Which customer requests are plainly neutral: no VADER lexicon word and no complaint cue."""
    compound = lexicon.lexicon_features(requests)[:, 3] if requests else np.zeros(0)
    return [c == 0.0 and not COMPLAINT_CUES.search(r) for r, c in zip(requests, compound)]


def load_training_set(datasets: Path, banking_rows: int = BANKING_ROWS, seed: int = 0) -> TrainingSet:
    """VADER's four ground-truth domains (classes from the mean rating) and neutral Banking77 requests.

    Movie snippets that contain an SST-2 dev sentence are dropped: SST was built from the same
    Rotten Tomatoes snippets, and SST-2 dev must stay unseen to measure the model honestly.
    Banking77 contributes only requests without sentiment words or complaint cues
    (``neutral_requests``), so customer questions are neutral but complaints are not.
    """
    datasets = Path(datasets)
    folder, sst2 = datasets / "vader_groundtruth", datasets / "sst2" / "dev.tsv"
    banking = datasets / "banking77" / "train.csv"
    for needed in [*(folder / name for name in VADER_DOMAINS.values()), sst2, banking]:
        if not needed.exists():
            raise FileNotFoundError(f"training needs {needed}; pass the datasets folder with --datasets")
    held_out = read_labelled(sst2, "tsv").texts
    texts: list[str] = []
    labels: list[int] = []
    domains: list[str] = []
    sources: list[dict] = []
    for domain, name in VADER_DOMAINS.items():
        domain_texts, means = read_vader_groundtruth(folder / name)
        keep = [True] * len(domain_texts)
        if domain == "movie":
            keep = [not hit for hit in contains_any(domain_texts, held_out)]
        kept = [(t, m) for t, m, k in zip(domain_texts, means, keep) if k]
        texts += [t for t, _ in kept]
        labels += [LABELS.index(rating_label(m)) for _, m in kept]
        domains += [domain] * len(kept)
        source = {"file": f"vader_groundtruth/{name}", "sha256": _sha256(folder / name), "rows": len(domain_texts),
                  "used": len(kept), "licence": "MIT", "labels": "mean rating > 0.5 positive, < -0.5 negative, else neutral"}
        if domain == "movie":
            source["dropped"] = f"{len(domain_texts) - len(kept)} snippets containing an SST-2 dev sentence (sst2/dev.tsv sha256 {_sha256(sst2)})"
        sources.append(source)
    with banking.open(newline="", encoding="utf-8") as handle:
        requests = [row["text"].strip() for row in csv.DictReader(handle) if row.get("text", "").strip()]
    plain = [i for i, ok in enumerate(neutral_requests(requests, VaderBaseline())) if ok]
    chosen = sorted(plain[i] for i in np.random.default_rng(seed).permutation(len(plain))[:banking_rows])
    texts += [requests[i] for i in chosen]
    labels += [LABELS.index("neutral")] * len(chosen)
    domains += ["banking77"] * len(chosen)
    sources.append({"file": "banking77/train.csv", "sha256": _sha256(banking), "rows": len(requests), "used": len(chosen),
                    "licence": "CC BY 4.0",
                    "labels": f"neutral: a random {len(chosen)} (seed {seed}) of the {len(plain)} requests with VADER compound 0 "
                              "and no complaint cue (assistant.sentiment.model.COMPLAINT_CUES); the other requests are not used"})
    return TrainingSet(texts, np.asarray(labels), domains, sources)
