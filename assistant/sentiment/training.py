"""Fine-tuning the sentiment model: a LoRA adapter on MiniLM's top blocks and a head over a lexicon prior.

``train_model`` builds what ships in ``weights/`` (``helpmate sentiment train``): it trains on
everything, scores SST-2 dev, then re-trains with each VADER domain held out and scores that
domain against VADER (``held_out_domains``), writing every figure into ``metadata.json``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from assistant.config import Settings
from assistant.embeddings import get_embedder
from assistant.modelstore import embedding_model_path
from assistant.sentiment.data import (BANKING_ROWS, DEFAULT_DATASETS, VADER_DOMAINS, TrainingSet, load_training_set,
                                      read_labelled)
from assistant.sentiment.evaluation import evaluate, metrics
from assistant.sentiment.model import (ADAPTER_CONFIG, ADAPTER_FILE, HEAD_FILE, LABELS, MODEL_DIR, Sentiment,
                                       SentimentHead, SentimentModel, VaderBaseline, load_encoder, load_torch, mean_pool,
                                       save_model_files, sentiments_from, softmax, write_metadata)

EPOCHS = 3  # passes over the full training set for the shipped model
HELD_OUT_EPOCHS = 1  # the four leave-one-domain-out models train one pass ...
HELD_OUT_ROWS = 1500  # ... over at most this many rows of each remaining VADER domain (CPU time)
# ... once per seed, and their metrics are averaged: one such run swings by +-0.015-0.02 macro-F1
# from seed to seed, as much as the margins over VADER it is meant to measure.
HELD_OUT_SEEDS = (0, 1, 2)
LORA_RANK = 8
LORA_ALPHA = 16
LORA_TARGETS = ("query", "key", "value", "dense")  # every linear layer of the adapted transformer blocks
FROZEN_LAYERS = 2  # blocks 0-1 stay as packaged: their outputs are computed once and cached, blocks 2-5 learn
LEARNING_RATE = 7e-4  # LoRA matrices
HEAD_LEARNING_RATE = 2e-3
# One thread: sums run in one order, so a seed gives the same adapter bit for bit, and on a shared
# 2-core machine one thread trained about three times faster than two fighting for the cores.
TRAIN_THREADS = 1
BATCH_SIZE = 32
TRAIN_MAX_TOKENS = 128


def _batches_by_length(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar-length texts (less padding: about twice as fast on CPU)."""
    order = rng.permutation(len(lengths))
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start:start + pool]
        chunk = chunk[np.argsort([lengths[i] for i in chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


class FrozenStates:
    """Hidden states of every training text after the frozen lower blocks, computed once.

    Only the top blocks carry the adapter, so the lower ones give the same output in every epoch
    and every held-out run; caching them (float16, unpadded) makes fine-tuning about twice as fast.
    """

    def __init__(self, texts: Sequence[str], settings: Settings, show_progress: bool = False):
        torch = load_torch()
        self.tokenizer, self.encoder = load_encoder(embedding_model_path(settings), settings.device)
        self.encoder.eval()
        ids = self.tokenizer(list(texts), truncation=True, max_length=TRAIN_MAX_TOKENS)["input_ids"]
        self.lengths = [len(i) for i in ids]
        self.states: list = [None] * len(ids)
        order = np.argsort(self.lengths, kind="stable")
        chunks = range(0, len(order), 128)
        if show_progress:
            from tqdm import tqdm

            chunks = tqdm(chunks, desc="frozen blocks", unit="batch")
        with torch.inference_mode():
            for start in chunks:
                rows = order[start:start + 128]
                batch = self.tokenizer.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt")
                h = self.encoder.embeddings(input_ids=batch["input_ids"])
                mask = _attention_mask(self.encoder, h, batch["attention_mask"])
                for layer in self.encoder.encoder.layer[:FROZEN_LAYERS]:
                    h = layer(h, mask)
                for row, state, n in zip(rows, h.to(torch.float16), batch["attention_mask"].sum(1).tolist()):
                    self.states[row] = state[:n].clone()

    def pooled(self, encoder, rows: Sequence[int]):
        """Mean-pooled output of ``encoder``'s top blocks for the given texts (with gradients if enabled)."""
        torch = load_torch()
        states = [self.states[i] for i in rows]
        longest = max(len(x) for x in states)
        h = torch.zeros(len(states), longest, states[0].shape[1])
        attention = torch.zeros(len(states), longest, dtype=torch.long)
        for k, x in enumerate(states):
            h[k, :len(x)] = x.float()
            attention[k, :len(x)] = 1
        mask = _attention_mask(encoder, h, attention)
        for layer in encoder.encoder.layer[FROZEN_LAYERS:]:
            h = layer(h, mask)
        return mean_pool(h, attention)


def _attention_mask(encoder, states, attention):
    """The attention mask in the form the encoder's blocks expect (as BertModel.forward builds it)."""
    from transformers.masking_utils import create_bidirectional_mask

    return create_bidirectional_mask(config=encoder.config, inputs_embeds=states, attention_mask=attention)


def lexicon_prior(lexical: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coefficients (3, 4), intercepts (3,)) of a logistic regression from VADER's four scores to the
    three classes, with balanced classes: what the lexicon alone says about a text.

    Fine-tuning adds it to the head's logits and folds it into the head afterwards, so the model
    learns a correction to the lexicon rather than sentiment from scratch, and falls back on the
    lexicon where a domain is new to it. Without it, held-out tweets and NYT editorials scored
    below VADER itself (BENCHMARKS.md).
    """
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(class_weight="balanced", max_iter=2000).fit(lexical, labels)
    return fit.coef_.astype(np.float32), fit.intercept_.astype(np.float32)


def fine_tune(frozen: FrozenStates, rows: np.ndarray, labels: np.ndarray, lexical: np.ndarray, settings: Settings,
              seed: int = 0, epochs: int = EPOCHS, show_progress: bool = False,
              rated: np.ndarray | None = None):
    """Train a LoRA adapter on MiniLM's top blocks and the linear head over ``lexicon_prior``.

    ``rows`` index ``frozen``'s texts; ``labels``, ``lexical`` (VADER features) and ``rated`` are per
    row; ``rated`` marks the rows rated by people (the VADER domains, default: all), on which the
    lexicon prior is fitted (Banking77's requests are neutral by selection, not by rating).
    The loss is plain cross-entropy: balanced class weights made held-out models over-predict the
    rarer classes (negative on tweets and NYT editorials).
    Returns (peft model, tokenizer, head). Deterministic for a seed on the same machine: the seed
    fixes the adapter's initialisation, the batch order and dropout.
    """
    from peft import LoraConfig, get_peft_model

    torch = load_torch()
    rows, labels = np.asarray(rows), np.asarray(labels)
    counts = np.bincount(labels, minlength=len(LABELS))
    if (counts == 0).any():
        raise ValueError("the training data must hold all three classes")
    rated = np.ones(len(rows), dtype=bool) if rated is None else np.asarray(rated, dtype=bool)
    coef, intercept = lexicon_prior(np.asarray(lexical)[rated], labels[rated])
    torch.manual_seed(seed)
    tokenizer, encoder = load_encoder(embedding_model_path(settings), settings.device)
    n_layers = int(encoder.config.num_hidden_layers)
    config = LoraConfig(r=LORA_RANK, lora_alpha=LORA_ALPHA, lora_dropout=0.0, target_modules=list(LORA_TARGETS),
                        layers_to_transform=list(range(FROZEN_LAYERS, n_layers)))
    model = get_peft_model(encoder, config)
    bert = model.base_model.model
    hidden = int(encoder.config.hidden_size)
    head = torch.nn.Linear(hidden + 4, len(LABELS))
    optimizer = torch.optim.AdamW([
        {"params": [p for p in model.parameters() if p.requires_grad], "lr": LEARNING_RATE},
        {"params": list(head.parameters()), "lr": HEAD_LEARNING_RATE},
    ], weight_decay=0.01)
    rng = np.random.default_rng(seed)
    steps = epochs * -(-len(rows) // BATCH_SIZE)
    warmup = max(1, steps // 16)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / max(1, steps - warmup))))
    progress = None
    if show_progress:
        from tqdm import tqdm

        progress = tqdm(total=steps, desc="fine-tuning", unit="batch")
    model.train()
    target = torch.from_numpy(labels.astype(np.int64))
    extra = torch.from_numpy(np.asarray(lexical, dtype=np.float32))
    prior = extra @ torch.from_numpy(coef).T + torch.from_numpy(intercept)
    for _ in range(epochs):
        for batch in _batches_by_length([frozen.lengths[i] for i in rows], BATCH_SIZE, rng):
            index = torch.from_numpy(batch.astype(np.int64))
            pooled = frozen.pooled(bert, rows[batch])
            logits = head(torch.cat([pooled, extra[index]], dim=1)) + prior[index]
            loss = torch.nn.functional.cross_entropy(logits, target[index])
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{loss.item():.3f}")
    if progress is not None:
        progress.close()
    model.eval()
    weight, bias = head.weight.detach().numpy().copy(), head.bias.detach().numpy().copy()
    weight[:, -4:] += coef  # the prior's linear map of the four VADER features joins the head's
    return model, tokenizer, SentimentHead(weight, bias + intercept)


def _cached_predictions(frozen: FrozenStates, peft_model, head: SentimentHead, rows: np.ndarray,
                        lexical: np.ndarray) -> list[Sentiment]:
    """What the trained model says about training-set texts, reusing the cached lower blocks."""
    torch = load_torch()
    bert = peft_model.base_model.model
    order = np.argsort([frozen.lengths[i] for i in rows], kind="stable")
    pooled = np.zeros((len(rows), head.weight.shape[1] - 4), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), 128):
            chunk = order[start:start + 128]
            pooled[chunk] = frozen.pooled(bert, rows[chunk]).numpy()
    logits = np.hstack([pooled, lexical]) @ head.weight.T + head.bias
    return sentiments_from(softmax(logits))


def _as_scorer(peft_model, tokenizer, head: SentimentHead, metadata: dict, settings: Settings,
               lexicon: VaderBaseline) -> SentimentModel:
    """A trained adapter merged for scoring (the peft model is used up)."""
    torch = load_torch()
    with torch.no_grad():
        encoder = peft_model.merge_and_unload()
    return SentimentModel(encoder, tokenizer, head, metadata, None, lexicon, batch_size=settings.embedding_batch_size)


def _adapter_digest(peft_model, head: SentimentHead) -> str:
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(peft_model)
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().numpy().tobytes())
    digest.update(head.weight.tobytes())
    digest.update(head.bias.tobytes())
    return digest.hexdigest()[:12]


def fold_rows(domains: np.ndarray, keep_domains: Sequence[str], per_domain: int, seed: int) -> np.ndarray:
    """Row indices: at most ``per_domain`` random rows of each VADER domain, all rows of the others."""
    rng = np.random.default_rng(seed)
    rows = []
    for domain in keep_domains:
        found = np.flatnonzero(domains == domain)
        if domain in VADER_DOMAINS and len(found) > per_domain:
            found = np.sort(rng.permutation(found)[:per_domain])
        rows.append(found)
    return np.concatenate(rows)


def train_model(settings: Settings, datasets: Path = DEFAULT_DATASETS, output: Path | None = MODEL_DIR,
                seed: int = 0, banking_rows: int = BANKING_ROWS, show_progress: bool = False, epochs: int = EPOCHS,
                held_out_epochs: int = HELD_OUT_EPOCHS, held_out_rows: int = HELD_OUT_ROWS,
                held_out_seeds: Sequence[int] = HELD_OUT_SEEDS) -> SentimentModel:
    """Fine-tune, evaluate and (unless ``output`` is None) save the sentiment model.

    The model is trained on everything and scored on SST-2 dev, which it never saw; then each
    VADER domain is held out in turn (models trained on the other three and Banking77, one per
    seed of ``held_out_seeds``, are scored against VADER on it; their mean is the result). The metadata records all of it with the training files' sha256; it is
    rewritten after each held-out domain, so an interrupted run leaves a usable model.
    """
    torch = load_torch()
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)
    try:
        return _train(datasets, output, settings, seed, banking_rows, show_progress, epochs,
                      held_out_epochs, held_out_rows, held_out_seeds)
    finally:
        torch.set_num_threads(threads)


def _train(datasets: Path, output: Path | None, settings: Settings, seed: int, banking_rows: int, show_progress: bool,
           epochs: int, held_out_epochs: int, held_out_rows: int, held_out_seeds: Sequence[int]) -> SentimentModel:
    data = load_training_set(datasets, banking_rows, seed)
    vader = VaderBaseline()
    lexical = vader.lexicon_features(data.texts)
    domains = np.asarray(data.domains)
    present = [d for d in [*VADER_DOMAINS, "banking77"] if (domains == d).any()]
    base = embedding_model_path(settings)
    base_name = base.parent.name if base.name == "model" else base.name
    frozen = FrozenStates(data.texts, settings, show_progress)
    everything = np.arange(len(data.texts))
    peft_model, tokenizer, head = fine_tune(frozen, everything, data.labels, lexical, settings, seed, epochs, show_progress,
                                            rated=domains != "banking77")
    metadata = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "embedding_model": base_name,
        "embedding_dim": int(peft_model.config.hidden_size),
        "architecture": "all-MiniLM-L6-v2 fine-tuned with a LoRA adapter (merged at load), mean pooling, "
                        "linear head over [pooled states, VADER neg, neu, pos, compound], trained as a correction "
                        "to a logistic regression on the VADER scores (folded into the head)",
        "files": {"adapter": ADAPTER_FILE, "adapter_config": ADAPTER_CONFIG, "head": HEAD_FILE},
        "training": {"lora_rank": LORA_RANK, "lora_alpha": LORA_ALPHA, "lora_targets": list(LORA_TARGETS),
                     "learning_rate": LEARNING_RATE, "head_learning_rate": HEAD_LEARNING_RATE, "batch_size": BATCH_SIZE,
                     "adapted_blocks": f"{FROZEN_LAYERS}-{int(peft_model.config.num_hidden_layers) - 1} of 0-{int(peft_model.config.num_hidden_layers) - 1}",
                     "epochs": epochs, "max_tokens": TRAIN_MAX_TOKENS, "torch_threads": TRAIN_THREADS,
                     "loss": "cross-entropy over the head's logits plus a fixed lexicon prior (a logistic regression, "
                             "balanced classes, on the VADER scores of the VADER-domain rows), natural class frequencies",
                     "schedule": "linear warm-up (1/16 of steps) and linear decay, AdamW weight decay 0.01",
                     "held_out_models": f"{held_out_epochs} epoch(s) over at most {held_out_rows} random rows of each "
                                        "remaining VADER domain plus the Banking77 rows (CPU time), once per seed "
                                        f"{list(held_out_seeds)}; the metrics are the seeds' mean"},
        "labels": list(LABELS),
        "score": "P(positive) - P(negative)",
        "seed": seed,
        "training_data": data.sources,
        "training_rows": {domain: int((domains == domain).sum()) for domain in present},
        "version": f"sentiment-{_adapter_digest(peft_model, head)}",
    }
    if output is not None:
        save_model_files(peft_model, head, metadata, Path(output))
    model = _as_scorer(peft_model, tokenizer, head, metadata, settings, vader)
    sst2 = read_labelled(Path(datasets) / "sst2" / "dev.tsv", "tsv")
    held_out_metrics: dict = {}
    metadata["metrics"] = {
        "held_out_domains": held_out_metrics,
        "sst2_dev": {"trained_on": present, **evaluate(sst2, [model, vader])},
    }
    if output is not None:
        write_metadata(metadata, Path(output))

    def record(domain: str, result: dict) -> None:
        held_out_metrics[domain] = result
        if output is not None:
            write_metadata(metadata, Path(output))

    held_out_domains(data, frozen, lexical, settings, held_out_seeds, held_out_epochs, held_out_rows, show_progress, record)
    model.embedder = get_embedder(settings)
    return model


def held_out_domains(data: TrainingSet, frozen: FrozenStates, lexical: np.ndarray, settings: Settings,
                     seeds: Sequence[int] = HELD_OUT_SEEDS, epochs: int = HELD_OUT_EPOCHS,
                     rows_per_domain: int = HELD_OUT_ROWS, show_progress: bool = False,
                     after_each: Callable[[str, dict], None] | None = None,
                     held_out: Sequence[str] = tuple(VADER_DOMAINS)) -> dict:
    """Leave-one-domain-out: for each VADER domain in ``held_out``, models trained without it (one per
    seed, which picks the rows and the initialisation), scored on it against VADER; ``helpmate`` is
    their mean.

    ``after_each(domain, result)`` runs as each domain ends (training writes metadata.json there).
    """
    domains = np.asarray(data.domains)
    present = [d for d in [*VADER_DOMAINS, "banking77"] if (domains == d).any()]
    vader = VaderBaseline()
    results: dict = {}
    for domain in held_out:
        trained_on = [d for d in present if d != domain]
        test_rows = np.flatnonzero(domains == domain)
        gold = [LABELS[i] for i in data.labels[test_rows]]
        by_seed: dict[str, dict] = {}
        for seed in seeds:
            rows = fold_rows(domains, trained_on, rows_per_domain, seed)
            fold_model, _, fold_head = fine_tune(frozen, rows, data.labels[rows], lexical[rows], settings, seed, epochs,
                                                 show_progress, rated=domains[rows] != "banking77")
            predicted = _cached_predictions(frozen, fold_model, fold_head, test_rows, lexical[test_rows])
            by_seed[str(seed)] = metrics(gold, predicted, binary=False)
        results[domain] = {
            "n": len(test_rows),
            "trained_on": trained_on,
            "training_rows": {d: int((domains[rows] == d).sum()) for d in trained_on},
            "epochs": epochs,
            "helpmate": {key: round(float(np.mean([m[key] for m in by_seed.values()])), 4) for key in next(iter(by_seed.values()))},
            "helpmate_by_seed": by_seed,
            "vader": metrics(gold, vader.score_batch([data.texts[i] for i in test_rows]), binary=False),
        }
        if after_each is not None:
            after_each(domain, results[domain])
    return results
