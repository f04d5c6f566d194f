"""An optional learned topic classifier, applied in the pipeline through Beam's RunInference.

The lexicon (:mod:`akhbar.transforms.classify`) stays the default and always runs: it produces
the evidence column, and it is the gate — a topic is only ever assigned when at least one of its
lexicon terms matched. A model trained on the user's own labelled articles replaces the lexicon's
*decision* and *score* for articles the gate lets through:

* features: TF-IDF over normalized tokens with Arabic proclitics stripped (the same tokenization
  and clitic rules as the lexicon), title tokens marked apart, plus a handful of lexicon features
  per topic (evidence, title match, paragraphs matched, number of matches);
* one logistic regression per topic; the decision threshold per topic is chosen by
  cross-validation on the training articles (out-of-fold predictions), never on the articles
  the model is then scored on.

scikit-learn and joblib are an optional extra (``pip install 'akhbar[ml]'``); nothing here imports
them until a model is trained or loaded. A model file is a joblib pickle: load only files you made.
"""
from __future__ import annotations

import io
import math
import platform
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference

from akhbar.transforms.arabic import normalize, tokens
from akhbar.transforms.classify import (
    TOPICS,
    Lexicon,
    _forms_of,
    _parse,
    bounded_body,
    load_lexicon,
    match_lexicon,
    score_matches,
)

MODEL_FORMAT = 1
ML_EXTRA_HINT = "the learned classifier needs scikit-learn and joblib: pip install 'akhbar[ml]'"


def _require_sklearn():
    try:
        import joblib  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(ML_EXTRA_HINT) from exc


def _one_thread():
    """Small sparse fits are far slower with a multi-threaded BLAS on a busy machine: use one."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


# --------------------------------------------------------------------------- features


def stem_tokens(text: str) -> list[str]:
    """Normalized tokens with the longest known proclitic reading removed (``والناتو`` → ``ناتو``)."""
    out = []
    for forms in _forms_of(tokens(normalize(text), normalized=True)):
        stem = forms[-1]
        # the article is optional in the lexicon; strip it here too, keeping 3+ letters
        if stem.startswith("ال") and len(stem) >= 5:
            stem = stem[2:]
        out.append(stem)
    return out


def document_text(title: str, body: str) -> str:
    """What the TF-IDF vectorizer sees: title stems prefixed ``t_`` (counted apart), then all stems
    (of the body as far as the lexicon reads it)."""
    title_stems = stem_tokens(title or "")
    body_stems = stem_tokens(bounded_body(body or ""))
    return " ".join([*("t_" + t for t in title_stems), *title_stems, *body_stems])


LEXICON_FEATURES = ("evidence", "title", "coverage", "hits")


def lexicon_features(title: str, body: str, lexicon: Lexicon) -> list[float]:
    """Per topic: log(1 + evidence), title matched, share of paragraphs matched, log(1 + matches)."""
    matches = match_lexicon(title, body, lexicon)
    row: list[float] = []
    for name in TOPICS:
        m = matches[name]
        _, evidence, _ = score_matches(lexicon.topic(name), m, lexicon.scoring)
        paras = len(m.paras)
        covered = sum(1 for p in m.paras if p)
        row += [
            math.log1p(evidence),
            1.0 if m.title else 0.0,
            covered / paras if paras else 0.0,
            math.log1p(m.n_hits),
        ]
    return row


def gate(title: str, body: str, lexicon: Lexicon) -> dict[str, bool]:
    """Whether each topic has at least one lexicon match (the model may assign it only then)."""
    return {name: m.n_hits > 0 for name, m in match_lexicon(title, body, lexicon).items()}


# --------------------------------------------------------------------------- the model


@dataclass
class Prepared:
    """Documents turned into vectorizer input and lexicon features."""

    texts: list[str]
    lex: list[list[float]]

    def subset(self, idx: Sequence[int]) -> "Prepared":
        return Prepared([self.texts[i] for i in idx], [self.lex[i] for i in idx])

    def has_term(self, i: int, topic: str) -> bool:
        """The gate: the topic's lexicon matched at least once (its ``hits`` feature is > 0)."""
        k = len(LEXICON_FEATURES)
        return self.lex[i][TOPICS.index(topic) * k + LEXICON_FEATURES.index("hits")] > 0


@dataclass
class TopicModel:
    """A trained model: vectorizer, one classifier per topic, thresholds, and what it was built from."""

    vectorizer: Any
    classifiers: dict[str, Any]
    thresholds: dict[str, float]
    lexicon_text: str
    lexicon_weight: float = 1.0
    info: dict[str, Any] = field(default_factory=dict)
    format: int = MODEL_FORMAT

    def __post_init__(self):
        self._lexicon: Lexicon | None = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_lexicon"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    @property
    def lexicon(self) -> Lexicon:
        if self._lexicon is None:
            self._lexicon = _parse(self.lexicon_text, "<lexicon stored in the model>")
        return self._lexicon

    def prepare(self, docs: Sequence[tuple[str, str]]) -> "Prepared":
        """The per-document work that does not depend on the fitted weights (done once in training)."""
        return Prepared(
            [document_text(t, b) for t, b in docs], [lexicon_features(t, b, self.lexicon) for t, b in docs]
        )

    def features(self, prep: "Prepared"):
        from scipy import sparse

        text = self.vectorizer.transform(prep.texts)
        lex = sparse.csr_matrix(prep.lex) * self.lexicon_weight
        return sparse.hstack([text, lex], format="csr")

    def predict_proba(self, docs: "Sequence[tuple[str, str]] | Prepared") -> list[dict[str, float]]:
        """Per document, the probability of each topic (lexicon gate applied: 0 without a term)."""
        prep = docs if isinstance(docs, Prepared) else self.prepare(docs)
        if not prep.texts:
            return []
        x = self.features(prep)
        with _one_thread():
            probs = {t: self.classifiers[t].predict_proba(x)[:, 1] for t in TOPICS}
        out = []
        for i, row in enumerate(prep.lex):
            out.append({t: float(probs[t][i]) if prep.has_term(i, t) else 0.0 for t in TOPICS})
        return out

    def decide(self, probs: Mapping[str, float]) -> list[str]:
        return [t for t in TOPICS if probs[t] > 0 and probs[t] >= self.thresholds[t]]


def prepare(docs: Sequence[tuple[str, str]], lexicon_text: str | None = None) -> Prepared:
    """:class:`Prepared` documents for training with a lexicon (default: the packaged one)."""
    if lexicon_text is None:
        from akhbar.transforms.classify import _default_path

        lexicon_text = _default_path().read_text(encoding="utf-8")
    return TopicModel(None, {}, {}, lexicon_text).prepare(docs)


def _fit_one(x, y: Sequence[bool], c: float):
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, solver="liblinear")
    with _one_thread():
        clf.fit(x, [int(v) for v in y])
    return clf


def _new_vectorizer():
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        token_pattern=r"\S+", lowercase=False, ngram_range=(1, 1), min_df=2, max_df=0.5,
        sublinear_tf=True, max_features=200_000,
    )


def _fit(
    prep: Prepared,
    labels: Mapping[str, Sequence[bool]],
    lexicon_text: str,
    c: float,
    lexicon_weight: float,
    thresholds: Mapping[str, float] | None = None,
) -> TopicModel:
    vec = _new_vectorizer()
    vec.fit(prep.texts)
    model = TopicModel(vec, {}, dict(thresholds or {t: 0.5 for t in TOPICS}), lexicon_text, lexicon_weight)
    x = model.features(prep)
    for t in TOPICS:
        if len(set(labels[t])) < 2:
            raise ValueError(f"the training labels for {t!r} are all {bool(labels[t][0])}: need both classes")
        model.classifiers[t] = _fit_one(x, labels[t], c)
    return model


def train_model(
    docs: "Sequence[tuple[str, str]] | Prepared",
    labels: Mapping[str, Sequence[bool]],
    *,
    lexicon_path: str | None = None,
    groups: Sequence[str] | None = None,
    c: float = 4.0,
    lexicon_weight: float = 1.0,
    threshold_folds: int = 5,
) -> TopicModel:
    """Fit a model on (title, body) pairs with boolean labels per topic.

    Thresholds: out-of-fold probabilities over ``threshold_folds`` folds (by ``groups`` when given,
    e.g. the outlet), then the F1-best cut per topic. With fewer than 2 groups or folds, 0.5.
    """
    _require_sklearn()
    from akhbar.transforms.evaluate import best_threshold, folds_by_group

    if lexicon_path is None:
        from akhbar.transforms.classify import _default_path

        lexicon_text = _default_path().read_text(encoding="utf-8")
    else:
        load_lexicon(lexicon_path)  # validate, with a named error
        with open(lexicon_path, encoding="utf-8") as fh:
            lexicon_text = fh.read()
    prep = docs if isinstance(docs, Prepared) else prepare(docs, lexicon_text)
    n = len(prep.texts)
    if n == 0:
        raise ValueError("no training articles")
    for t in TOPICS:
        if len(set(labels[t])) < 2:
            raise ValueError(f"the training labels for {t!r} are all {bool(labels[t][0])}: need both classes")
    thresholds = {t: 0.5 for t in TOPICS}
    folds = []
    if threshold_folds >= 2:
        if groups is None:
            groups = [str(i % threshold_folds) for i in range(n)]
        folds = folds_by_group(groups, threshold_folds)
    if len(set(folds)) >= 2:
        oof = {t: [0.0] * n for t in TOPICS}
        for f in sorted(set(folds)):
            train = [i for i in range(n) if folds[i] != f]
            test = [i for i in range(n) if folds[i] == f]
            sub_labels = {t: [labels[t][i] for i in train] for t in TOPICS}
            if any(len(set(v)) < 2 for v in sub_labels.values()):
                continue
            m = _fit(prep.subset(train), sub_labels, lexicon_text, c, lexicon_weight)
            for i, p in zip(test, m.predict_proba(prep.subset(test))):
                for t in TOPICS:
                    oof[t][i] = p[t]
        for t in TOPICS:
            cut, _ = best_threshold(oof[t], labels[t])
            if math.isfinite(cut):
                thresholds[t] = cut
    model = _fit(prep, labels, lexicon_text, c, lexicon_weight, thresholds)
    import sklearn

    model.info = {
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "articles": n,
        "positives": {t: int(sum(labels[t])) for t in TOPICS},
        "c": c,
        "lexicon_weight": lexicon_weight,
        "sklearn": sklearn.__version__,
        "python": platform.python_version(),
    }
    return model


def save_model(model: TopicModel, path: str) -> None:
    _require_sklearn()
    import joblib

    joblib.dump(model, path, compress=3)


def load_model(path: str) -> TopicModel:
    """Load a model file written by :func:`save_model`; ``ValueError`` naming the problem."""
    _require_sklearn()
    import joblib

    from akhbar.transforms import store

    try:
        # a gs:// model is read through the store: workers of a distributed runner load it there
        model = joblib.load(path) if store.is_local(path) else joblib.load(io.BytesIO(store.read_bytes(path)))
    except FileNotFoundError as exc:
        raise ValueError(f"{path}: no such model file") from exc
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a model"
        raise ValueError(f"{path}: not a readable akhbar model ({type(exc).__name__}: {exc})") from exc
    if not isinstance(model, TopicModel):
        raise ValueError(f"{path}: not an akhbar topic model (found {type(model).__name__})")
    if model.format != MODEL_FORMAT:
        raise ValueError(f"{path}: model format {model.format}, this akhbar reads format {MODEL_FORMAT}")
    return model


# --------------------------------------------------------------------------- Beam


class TopicModelHandler(ModelHandler[tuple[str, str], PredictionResult, TopicModel]):
    """RunInference handler: (title, body) in, PredictionResult with {topic: probability} out."""

    def __init__(self, model_path: str, *, min_batch_size: int = 1, max_batch_size: int = 64):
        super().__init__()
        self._model_path = model_path
        self._batch = {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}

    def load_model(self) -> TopicModel:
        return load_model(self._model_path)

    def run_inference(self, batch, model, inference_args=None) -> Iterable[PredictionResult]:
        probs = model.predict_proba(list(batch))
        return [PredictionResult(example, p, model_id=self._model_path) for example, p in zip(batch, probs)]

    def update_model_path(self, model_path: str | None = None):
        if model_path:
            self._model_path = model_path

    def get_metrics_namespace(self) -> str:
        return "akhbar_topic_model"

    def batch_elements_kwargs(self) -> Mapping[str, Any]:
        return self._batch


class _Decide(beam.DoFn):
    """(article, prediction) → the article with the model's topics and scores; evidence kept."""

    def __init__(self, model_path: str):
        self.model_path = model_path

    def setup(self):
        self.thresholds = load_model(self.model_path).thresholds

    def process(self, element):
        article, result = element
        # the run's lexicon gates too: a model trained with another lexicon (or another version of
        # it) must not give a topic whose terms this run's lexicon did not find in the article
        matched = {e.split(":", 1)[0] for e in article.evidence}
        probs = {t: result.inference[t] if t in matched else 0.0 for t in TOPICS}
        topics = tuple(t for t in TOPICS if probs[t] > 0 and probs[t] >= self.thresholds[t])
        beam.metrics.Metrics.counter("akhbar", "classify.model.articles").inc()
        for t in topics:
            beam.metrics.Metrics.counter("akhbar", f"classify.model.topic.{t}").inc()
        yield article.replace(topics=topics, nato_score=probs["nato"], ukraine_score=probs["ukraine"])


def _describe(error) -> tuple[str, str]:
    """(message, detail) from what RunInference reports: an exception or (type, value, trace)."""
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}", "".join(traceback.format_exception(error))
    if isinstance(error, tuple) and len(error) >= 2:
        kind = getattr(error[0], "__name__", str(error[0]))
        return f"{kind}: {error[1]}", "\n".join(str(e) for e in error[2:])
    return str(error), ""


def _failed_articles(batch_and_error):
    """(failed batch of (article, example), error) → (article, message, detail) per article."""
    batch, error = batch_and_error
    message, detail = _describe(error)
    for article, _ in batch:
        yield article, message, detail


class ApplyTopicModel(beam.PTransform):
    """Articles (already through the lexicon step) → articles decided by a trained model.

    Returns ``(articles, failed)``: ``failed`` holds (article, message, detail) for batches the
    model could not score; the caller turns them into dead letters.
    """

    def __init__(self, model_path: str, *, max_batch_size: int = 64):
        super().__init__()
        self.model_path = model_path
        self.max_batch_size = max_batch_size

    def expand(self, articles):
        handler = KeyedModelHandler(TopicModelHandler(self.model_path, max_batch_size=self.max_batch_size))
        keyed = articles | "Examples" >> beam.Map(lambda a: (a, (a.title or "", a.body or "")))
        main, other = keyed | "RunInference" >> RunInference(handler).with_exception_handling()
        decided = main | "Decide" >> beam.ParDo(_Decide(self.model_path))
        failed = other.failed_inferences | "FailedArticles" >> beam.FlatMap(_failed_articles)
        return decided, failed


__all__ = [
    "Prepared", "prepare", "TopicModel", "TopicModelHandler", "ApplyTopicModel", "train_model", "save_model", "load_model",
    "document_text", "stem_tokens", "lexicon_features", "gate", "ML_EXTRA_HINT",
]
