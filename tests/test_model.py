"""The optional learned topic model: training, the lexicon gate, the model file, RunInference on the
DirectRunner, the CLI. The training articles are a small fixture written here (no evaluation data)."""
from __future__ import annotations

import json
import random
from datetime import datetime, timezone

import pytest

pytest.importorskip("sklearn")

import apache_beam as beam  # noqa: E402
from apache_beam.testing.test_pipeline import TestPipeline  # noqa: E402
from apache_beam.testing.util import assert_that, equal_to  # noqa: E402

from akhbar.schemas.records import Article  # noqa: E402
from akhbar.transforms import steps  # noqa: E402
from akhbar.transforms.classify import TOPICS  # noqa: E402
from akhbar.transforms.model import (  # noqa: E402
    ApplyTopicModel,
    TopicModel,
    document_text,
    load_model,
    save_model,
    stem_tokens,
    train_model,
)

_NATO = [
    "اجتمع وزراء دفاع حلف شمال الأطلسي في بروكسل لبحث الإنفاق الدفاعي.",
    "وقال الأمين العام للناتو ستولتنبرغ إن الحلفاء متفقون على تعزيز الجناح الشرقي.",
    "وأجرت قوات الناتو مناورات واسعة في بولندا ودول البلطيق.",
    "وناقشت قمة الحلف طلب انضمام دول جديدة إلى الناتو.",
]
_UKRAINE = [
    "قال الرئيس الأوكراني زيلينسكي في كييف إن بلاده تحتاج دعما عسكريا.",
    "وتتواصل المعارك في دونباس بين القوات الأوكرانية والانفصاليين.",
    "وفرض الاتحاد الأوروبي عقوبات جديدة على روسيا بسبب ضم القرم.",
    "وأعلنت أوكرانيا أن سفنها احتجزت قرب مضيق كيرتش.",
]
_OTHER = [
    "ارتفعت أسعار النفط في الأسواق العالمية مع تراجع المخزونات.",
    "وافتتح وزير الصحة مستشفى جديدا في العاصمة.",
    "وتوقعت الأرصاد الجوية أمطارا غزيرة على المناطق الساحلية.",
    "وأعلن المنتخب الوطني قائمة لاعبيه للمباراة المقبلة.",
    "وناقش البرلمان مشروع قانون الضرائب الجديد.",
    "وقالت وزارة التعليم إن الامتحانات تبدأ الأسبوع المقبل.",
]
_PASSING_NATO = "وكان الوزير قد شارك في مؤتمر حضره ممثل عن الناتو قبل أعوام."
_PASSING_UKRAINE = "وتستورد البلاد القمح من أوكرانيا وروسيا منذ سنوات."


def _article(rng: random.Random, kind: str) -> tuple[str, str, bool, bool]:
    other = rng.sample(_OTHER, 4)
    if kind == "nato":
        return "الناتو يبحث تعزيز دفاعاته", "\n".join(rng.sample(_NATO, 3) + other[:2]), True, False
    if kind == "ukraine":
        return "أوكرانيا تطلب مزيدا من الدعم", "\n".join(rng.sample(_UKRAINE, 3) + other[:2]), False, True
    if kind == "both":
        body = rng.sample(_NATO, 2) + rng.sample(_UKRAINE, 2) + other[:1]
        return "الناتو يعد أوكرانيا بالدعم", "\n".join(body), True, True
    if kind == "passing":
        return "الأسواق والاقتصاد", "\n".join(other[:3] + [rng.choice([_PASSING_NATO, _PASSING_UKRAINE])]), False, False
    return "أخبار محلية", "\n".join(other), False, False


def _fixture(n_each: int = 6, seed: int = 7):
    rng = random.Random(seed)
    rows = []
    for kind in ("nato", "ukraine", "both", "passing", "none"):
        for i in range(n_each):
            title, body, nato, ukraine = _article(rng, kind)
            rows.append({"id": f"{kind}-{i}", "title": title, "body": body, "nato": nato, "ukraine": ukraine,
                         "source": f"s{i % 3}"})
    return rows


@pytest.fixture(scope="module")
def rows():
    return _fixture()


@pytest.fixture(scope="module")
def model(rows):
    docs = [(r["title"], r["body"]) for r in rows]
    gold = {t: [r[t] for r in rows] for t in TOPICS}
    return train_model(docs, gold, groups=[r["source"] for r in rows], threshold_folds=3)


@pytest.fixture(scope="module")
def model_path(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.joblib"
    save_model(model, str(path))
    return str(path)


def test_stems_strip_clitics_like_the_lexicon():
    assert stem_tokens("والناتو وبأوكرانيا للحلف") == ["ناتو", "اوكرانيا", "حلف"]
    text = document_text("الناتو", "قال الناتو")
    assert text.split()[0] == "t_ناتو" and text.count("ناتو") == 3


def test_model_learns_the_fixture(model):
    rng = random.Random(99)  # unseen combinations of the sentences
    for kind, want in (("nato", ["nato"]), ("ukraine", ["ukraine"]), ("both", ["nato", "ukraine"]),
                       ("none", [])):
        title, body, *_ = _article(rng, kind)
        probs = model.predict_proba([(title, body)])[0]
        assert model.decide(probs) == want, (kind, probs)
    assert set(model.thresholds) == set(TOPICS)
    assert all(0 < v < 1 for v in model.thresholds.values())
    assert model.info["articles"] == 30


def test_gate_no_term_no_topic(model):
    # topical vocabulary (summit, allies, sanctions, separatists, war) but no NATO / Ukraine term
    title = "قمة الحلفاء تبحث العقوبات والانفصاليين"
    body = "اجتمع وزراء الدفاع والحلفاء في بروكسل لبحث مناورات وعقوبات وحرب الانفصاليين والجناح الشرقي."
    probs = model.predict_proba([(title, body)])[0]
    assert probs == {"nato": 0.0, "ukraine": 0.0}
    assert model.decide(probs) == []


def test_model_file_round_trip_and_errors(model, model_path, tmp_path):
    again = load_model(model_path)
    assert isinstance(again, TopicModel)
    doc = [("الناتو يجتمع", "اجتمع وزراء دفاع حلف شمال الأطلسي في بروكسل.")]
    assert again.predict_proba(doc) == model.predict_proba(doc)
    with pytest.raises(ValueError, match="no such model file"):
        load_model(str(tmp_path / "missing.joblib"))
    import joblib

    joblib.dump({"not": "a model"}, tmp_path / "dict.joblib")
    with pytest.raises(ValueError, match="not an akhbar topic model"):
        load_model(str(tmp_path / "dict.joblib"))
    (tmp_path / "junk.joblib").write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match="not a readable akhbar model"):
        load_model(str(tmp_path / "junk.joblib"))


def test_training_needs_both_classes():
    docs = [("أخبار", "نص عادي عن الطقس.")] * 4
    with pytest.raises(ValueError, match="need both classes"):
        train_model(docs, {"nato": [False] * 4, "ukraine": [False] * 4}, threshold_folds=0)


def test_training_files_with_a_bom_are_read(rows, tmp_path):
    from akhbar.pipelines.train import load_training_set

    labels = tmp_path / "labels.tsv"  # as a spreadsheet saves "UTF-8 text": with a byte-order mark
    labels.write_text("\ufeffid\tnato\tukraine\n" + "".join(
        f"{r['id']}\t{int(r['nato'])}\t{int(r['ukraine'])}\n" for r in rows), encoding="utf-8")
    articles = tmp_path / "articles.jsonl"
    articles.write_text("\ufeff" + "".join(json.dumps({"id": r["id"], "title": r["title"], "body": r["body"]},
                                                      ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    docs, gold, _ = load_training_set(str(labels), str(articles))
    assert len(docs) == len(rows) and sum(gold["nato"]) == sum(r["nato"] for r in rows)


_LABEL = {"id": "a", "nato": 1, "ukraine": 0}


@pytest.mark.parametrize(
    "name, content, where, problem",
    [
        ("l.jsonl", "[1, 2, 3]\n", "l.jsonl:1", "expected a JSON object"),
        ("l.jsonl", json.dumps(_LABEL) + "\n\n5\n", "l.jsonl:3", "expected a JSON object"),
        ("l.json", json.dumps([_LABEL]) + "\n", "l.json:1", "expected a JSON object"),
        ("l.jsonl", json.dumps(_LABEL) + "\n" + json.dumps(_LABEL)[:-1] + "\n", "l.jsonl:2", "not valid JSON"),
        ("l.jsonl", json.dumps({**_LABEL, "title": 5, "body": ["y"]}) + "\n", "l.jsonl:1", "'title' must be a string"),
        ("l.jsonl", json.dumps({**_LABEL, "title": "x", "body": ["y"]}) + "\n", "l.jsonl:1", "'body' must be a string"),
        ("l.jsonl", json.dumps({**_LABEL, "id": {"a": 1}}) + "\n", "l.jsonl:1", "'id'/'docno' must be"),
        ("l.tsv", "id\tnato\tukraine\na\t1\t0\n".encode("utf-16"), "l.tsv:1", "not UTF-8 text"),
        ("l.jsonl.gz", b"id\tnato\n", "l.jsonl.gz:1", "cannot read"),
        ("a.jsonl", "[1, 2]\n", "a.jsonl:1", "expected a JSON object"),
        ("a.jsonl", json.dumps({"id": "a", "title": "x", "text": 7}) + "\n", "a.jsonl:1", "'text' must be a string"),
    ],
)
def test_bad_training_files_name_the_file_and_line(tmp_path, capsys, name, content, where, problem):
    """A label or article row that is not an object, not JSON, not text or of the wrong type is exit 2
    with the file and line, never a traceback."""
    from akhbar.pipelines.cli import main

    path = tmp_path / name
    labels = tmp_path / "labels.tsv"
    labels.write_text("id\tnato\tukraine\na\t1\t0\n", encoding="utf-8")
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    given = ["--labels", str(labels), "--articles", str(path)] if name.startswith("a.") else ["--labels", str(path)]
    assert main(["classify", "train", *given, "--out", str(tmp_path / "m.joblib")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / where}: " in err and problem in err, err


def _articles(rows, lexicon_step=True):
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    out = []
    for r in rows:
        out.append(Article(article_id=r["id"], url=f"http://127.0.0.1/{r['id']}", source_id=r["source"],
                           title=r["title"], body=r["body"], published_at=None, fetched_at=now, language="ar",
                           content_hash=r["id"]))
    return out


def test_run_inference_on_the_direct_runner(model, model_path):
    rng = random.Random(5)
    held_out = []
    for kind in ("nato", "ukraine", "both", "passing", "none"):
        title, body, nato, ukraine = _article(rng, kind)
        held_out.append({"id": kind, "title": title, "body": body, "nato": nato, "ukraine": ukraine, "source": "x"})
    expected_topics = [(r["id"], tuple(t for t in TOPICS if r[t])) for r in held_out]
    with TestPipeline() as p:
        lexed = (
            p
            | beam.Create(_articles(held_out))
            | "Lexicon" >> beam.ParDo(steps.Classify(None, None, "run")).with_outputs(steps.DEAD, main="articles")
        )
        decided, failed = lexed.articles | "Model" >> ApplyTopicModel(model_path)
        assert_that(decided | "ids" >> beam.Map(lambda a: (a.article_id, a.topics)), equal_to(expected_topics),
                    label="topics")
        # the evidence column still comes from the lexicon, and scores are the model's (0 when gated)
        assert_that(decided | "ev" >> beam.Map(lambda a: (a.article_id, bool(a.evidence))),
                    equal_to([("nato", True), ("ukraine", True), ("both", True), ("passing", True),
                              ("none", False)]), label="evidence")
        assert_that(decided | "none" >> beam.Filter(lambda a: a.article_id == "none")
                    | "scores" >> beam.Map(lambda a: (a.nato_score, a.ukraine_score)),
                    equal_to([(0.0, 0.0)]), label="gated scores")
        assert_that(failed, equal_to([]), label="no failures")


def test_model_failures_become_dead_letters(tmp_path):
    path = tmp_path / "m.joblib"
    # a model whose vectorizer cannot transform: every batch fails inside RunInference
    broken = TopicModel(vectorizer=object(), classifiers={}, thresholds={"nato": 0.5, "ukraine": 0.5},
                        lexicon_text=_default_lexicon_text())
    save_model(broken, str(path))
    rows = _fixture(1)
    with TestPipeline() as p:
        decided, failed = p | beam.Create(_articles(rows)) | ApplyTopicModel(str(path))
        dead = failed | beam.ParDo(steps.Classify.Failed("run"))
        assert_that(decided, equal_to([]), label="nothing decided")
        assert_that(dead | beam.Map(lambda d: (d.stage, d.reason, d.url.rsplit("/", 1)[1])),
                    equal_to([("classify", "internal_error", r["id"]) for r in rows]), label="dead letters")


def _default_lexicon_text():
    from akhbar.transforms.classify import _default_path

    return _default_path().read_text(encoding="utf-8")


def test_cli_train_then_run_refuses_a_bad_model(rows, tmp_path, capsys):
    from akhbar.pipelines.cli import main

    labels = tmp_path / "labels.tsv"
    labels.write_text("docno\tnato\tukraine\textra\n" + "".join(
        f"{r['id']}\t{int(r['nato'])}\t{int(r['ukraine'])}\tx\n" for r in rows), encoding="utf-8")
    articles = tmp_path / "articles.jsonl"
    articles.write_text("".join(json.dumps({"docno": r["id"], "title": r["title"], "text": r["body"],
                                            "src": r["source"]}, ensure_ascii=False) + "\n" for r in rows),
                        encoding="utf-8")
    out = tmp_path / "m.joblib"
    assert main(["classify", "train", "--labels", str(labels), "--articles", str(articles), "--out", str(out),
                 "--folds", "3"]) == 0
    assert "trained on 30 articles" in capsys.readouterr().out
    assert load_model(str(out)).info["positives"] == {"nato": 12, "ukraine": 12}
    # labels without texts: a clear configuration error
    assert main(["classify", "train", "--labels", str(labels), "--out", str(out)]) == 2
    assert "have no text" in capsys.readouterr().err
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n  - id: a\n    feeds: [http://127.0.0.1:1/rss]\n", encoding="utf-8")
    (tmp_path / "bad.joblib").write_bytes(b"junk")
    assert main(["run", "--sources", str(sources), "--output", str(tmp_path / "o"),
                 "--classifier", str(tmp_path / "bad.joblib")]) == 2
    assert "classifier:" in capsys.readouterr().err


def test_pipeline_with_classifier_on_the_sample_site(sample_site, model_path, tmp_path):
    from akhbar.pipelines.batch import RunConfig, build_pipeline, new_run_id
    from akhbar.sample.site import expected, sources_yaml
    from akhbar.schemas.sources import validate_text
    from akhbar.transforms.http import FetchConfig

    sources, problems = validate_text(sources_yaml(sample_site.base_url))
    assert not problems
    cfg = RunConfig(sources=tuple(sources), output=str(tmp_path / "out"), run_id=new_run_id(),
                    allow_private_hosts=True, fetch=FetchConfig(retries=0, host_interval=0),
                    classifier=model_path)
    truth = expected(sample_site.base_url)
    with TestPipeline() as p:
        out = build_pipeline(p, cfg)
        assert_that(out["articles"] | "urls" >> beam.Map(lambda a: a.url), equal_to(sorted(truth["articles"])),
                    label="every unique article once")
        # the gate: a topic only where the lexicon found one of its terms
        assert_that(out["articles"] | "gate" >> beam.FlatMap(
            lambda a: [a.url for t in a.topics if not any(e.startswith(t + ":") for e in a.evidence)]),
            equal_to([]), label="no topic without evidence")
        assert_that(out["dead_letters"] | "dl" >> beam.Map(lambda d: (d.url, d.reason)),
                    equal_to(sorted(truth["dead_letters"].items())), label="dead letters unchanged")


def test_the_runs_lexicon_gates_a_model_trained_with_another():
    """A model whose own lexicon found a term must still not give a topic the run's lexicon found
    no term for (a model trained with another lexicon file, or an older version of it)."""
    from apache_beam.ml.inference.base import PredictionResult

    from akhbar.transforms.model import _Decide

    decide = _Decide("unused")
    decide.thresholds = {"nato": 0.5, "ukraine": 0.5}
    (article,) = _articles([{"id": "a", "title": "عنوان", "body": "نص", "source": "x"}])
    article = article.replace(evidence=("ukraine:كييف",))
    (out,) = decide.process((article, PredictionResult(None, {"nato": 0.99, "ukraine": 0.9})))
    assert out.topics == ("ukraine",) and out.nato_score == 0.0 and out.ukraine_score == 0.9
