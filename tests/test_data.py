"""Templates, labels and the fixed stratified split."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from autotune.candidates.data import Example, load_dataset, stratified_split, template_fields
from autotune.cli import main
from autotune.spaces import SpaceError, load_space

ROWS = [{"phrase": f"phrase number {i}", "tone": "joy" if i % 2 else "fear"} for i in range(10)]


def jsonl(rows: list) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def with_row(line: int, row: object) -> list:
    """ROWS with `row` in place of the record on (1-based) `line`."""
    return ROWS[: line - 1] + [row] + ROWS[line:]


@pytest.fixture
def data_space(write_space, tmp_path):
    """data_space(name, content, **data) -> (space file, data file): the tiny space on that data,
    labels joy and fear."""

    def write(name: str, content: str | bytes, **data) -> tuple[Path, Path]:
        path = tmp_path / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        changes = {"data": {"files": str(path), "labels": ["joy", "fear"], **data}}
        return write_space(changes), path

    return write


def dry_run(space: Path, capsys, cache: Path | None = None) -> tuple[int, list[str]]:
    """`autotune --space SPACE --target cpu --dry-run`: its exit code and its stderr lines (a
    valid space builds the base into `cache`)."""
    extra = ["--cache", str(cache)] if cache else []
    code = main(["--space", str(space), "--target", "cpu", "--dry-run", *extra])
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_template_fields():
    assert template_fields("### Text: {phrase}\n### The tone is:\n") == ["phrase"]
    assert template_fields("{a} and {b}") == ["a", "b"]


def test_examples_render_the_reference_template(write_space):
    dataset = load_dataset(load_space(write_space(), "cpu"))
    example = dataset.train[0]
    assert example.prompt.startswith("### Text: ") and example.prompt.endswith(
        "\n### The tone is:\n"
    )
    assert example.completion in {"joy", "sadness", "fear", "surprise"}


def test_shipped_tone_data_is_balanced_varied_and_unique():
    from tests.conftest import DATA

    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    assert len(rows) >= 800
    counts = Counter(r["tone"] for r in rows)
    assert set(counts) == {"joy", "sadness", "fear", "surprise"}
    assert max(counts.values()) == min(counts.values())
    phrases = [r["phrase"].strip().lower() for r in rows]
    assert len(set(phrases)) == len(phrases)
    lengths = [len(p.split()) for p in phrases]
    assert min(lengths) <= 4 and max(lengths) >= 20


def test_split_is_stratified_disjoint_and_fixed():
    examples = [Example(f"p{i}", label) for label in "abcd" for i in range(50)]
    train, evaluation = stratified_split(examples, 0.2, seed=0)
    assert Counter(e.completion for e in evaluation) == {c: 10 for c in "abcd"}
    assert not set(train) & set(evaluation)
    assert len(train) + len(evaluation) == len(examples)
    assert stratified_split(list(reversed(examples)), 0.2, seed=0) == (train, evaluation)
    assert stratified_split(examples, 0.2, seed=1)[1] != evaluation


def test_template_field_missing_from_data(write_space):
    path = write_space({"data": {"prompt_template": "### Text: {sentence}\n"}})
    with pytest.raises(SpaceError, match="uses \\['sentence'\\]") as caught:
        load_dataset(load_space(path, "cpu"))
    assert caught.value.field == "data.prompt_template"


def test_completion_outside_labels(write_space):
    path = write_space({"data": {"labels": ["joy", "sadness", "fear"]}})
    with pytest.raises(SpaceError, match="surprise") as caught:
        load_dataset(load_space(path, "cpu"))
    assert caught.value.field == "data.labels"


def test_csv_data(write_space, tmp_path):
    csv = tmp_path / "tones.csv"
    csv.write_text(
        "phrase,tone\n"
        + "\n".join(f"phrase number {i},{'joy' if i % 2 else 'fear'}" for i in range(20))
    )
    path = write_space({"data": {"files": str(csv), "labels": ["joy", "fear"]}})
    dataset = load_dataset(load_space(path, "cpu"))
    assert len(dataset.train) == 16 and len(dataset.eval) == 4


NULL_TONE = "field 'tone' is null (the completion_template uses it); expected a string"
BROKEN = [
    # malformed JSON lines and JSON files, rows that are not objects, wrong CSV rows
    ("tones.jsonl", jsonl(ROWS[:2]) + '{"phrase": "x", "tone": }\n', "line 3: not valid JSON"),
    ("tones.jsonl", jsonl(ROWS[:3]) + '\n\n["a list"]\n', "line 6: expected a JSON object"),
    ("tones.json", "[\n" + ",\n".join(map(json.dumps, ROWS[:4])) + ",\n]", "line 6: not valid"),
    ("tones.json", json.dumps(ROWS[:3] + ["text"], indent=1), "line 14: expected a JSON object"),
    ("tones.json", json.dumps(ROWS[0], indent=1), "line 1: holds a single JSON object"),
    ("tones.csv", 'phrase,tone\nhi,joy\n\nho,fear\n"a, b",joy,x\n', "line 5: has 3 fields"),
    ("tones.jsonl", b'{"phrase": "caf\xe9", "tone": "joy"}\n', "line 1: expected UTF-8 text"),
    # no records
    ("tones.jsonl", "", "no records"),
    ("tones.jsonl", "\n \n", "no records"),
    ("tones.json", "[]", "no records"),
    ("tones.csv", "phrase,tone\n", "no records"),
    # a field a template uses: null, missing, not a string or a number
    ("tones.jsonl", jsonl(with_row(7, {"phrase": "x", "tone": None})), f"line 7: {NULL_TONE}"),
    (
        "tones.jsonl",
        jsonl(with_row(4, {"phrase": "x"})),
        "line 4: field 'tone' is missing (the completion_template uses it)",
    ),
    (
        "tones.jsonl",
        jsonl(with_row(2, {"tone": "joy"})),
        "line 2: field 'phrase' is missing (the prompt_template uses it)",
    ),
    (
        "tones.jsonl",
        jsonl(with_row(3, {"phrase": "x", "tone": ["joy"]})),
        "line 3: field 'tone' is a list",
    ),
    (
        "tones.json",
        json.dumps(with_row(2, {"phrase": None, "tone": "joy"}), indent=1),
        "line 6: field 'phrase' is null",
    ),
    ("tones.csv", "phrase,tone\nhello,joy\nhi,\n", "line 3: field 'tone' is empty"),
]


@pytest.mark.parametrize(("name", "content", "expected"), BROKEN)
def test_broken_data_is_one_line_naming_file_line_and_field(
    data_space, capsys, name, content, expected
):
    space, data = data_space(name, content)
    code, lines = dry_run(space, capsys)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"autotune: error: {data}: {expected}"), lines[0]


def test_malformed_jsonl_exits_2_without_traceback(data_space):
    space, data = data_space("tones.jsonl", jsonl(ROWS[:4]) + '{"phrase": "x",\n' + jsonl(ROWS))
    done = subprocess.run(
        [sys.executable, "-m", "autotune", "--space", str(space), "--target", "cpu", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"autotune: error: {data}: line 5: not valid JSON: Expecting property name enclosed in "
        "double quotes at column 16"
    ]


def test_parquet_rows_are_checked_and_a_broken_file_named(data_space, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    space, data = data_space("tones.parquet", b"")
    pq.write_table(pa.Table.from_pylist(with_row(2, {"phrase": "x", "tone": None})), data)
    assert dry_run(space, capsys) == (2, [f"autotune: error: {data}: row 2: {NULL_TONE}"])
    pq.write_table(pa.Table.from_pylist([{**r, "phrase": i} for i, r in enumerate(ROWS)]), data)
    dataset = load_dataset(load_space(space, "cpu"))
    assert {e.text for e in dataset.train + dataset.eval} == {str(i) for i in range(10)}
    data.write_bytes(b"not parquet at all")
    code, lines = dry_run(space, capsys)
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"autotune: error: {data}: not a readable parquet file: ")


@pytest.mark.parametrize(
    "content",
    [
        json.dumps(ROWS, indent=2),  # a list of objects
        jsonl(ROWS[:5]) + "\n" + jsonl(ROWS[5:]),  # JSON lines in a .json file
    ],
)
def test_json_files_hold_a_list_or_json_lines(data_space, content):
    space, _ = data_space("tones.json", content)
    dataset = load_dataset(load_space(space, "cpu"))
    assert sorted(e.prompt for e in dataset.train + dataset.eval) == sorted(
        f"### Text: {r['phrase']}\n### The tone is:\n" for r in ROWS
    )


def test_numbers_render_with_str(data_space):
    rows = [{"phrase": i, "tone": "joy" if i % 2 else "fear"} for i in range(10)]
    dataset = load_dataset(load_space(data_space("tones.jsonl", jsonl(rows))[0], "cpu"))
    assert {e.text for e in dataset.train + dataset.eval} == {str(i) for i in range(10)}


@pytest.mark.slow
def test_completions_match_labels_stripped(data_space, capsys, tmp_path):
    space, _ = data_space("tones.jsonl", jsonl(ROWS), completion_template=" {tone}")
    assert dry_run(space, capsys, tmp_path / "cache")[0] == 0
    dataset = load_dataset(load_space(space, "cpu"))
    assert {e.completion for e in dataset.train + dataset.eval} == {" joy", " fear"}
    assert Counter(e.completion.strip() for e in dataset.eval) == {"joy": 1, "fear": 1}
    assert dataset.label_texts == {"joy": " joy", "fear": " fear"}
    plain = load_dataset(load_space(data_space("plain.jsonl", jsonl(ROWS))[0], "cpu"))
    assert plain.label_texts == {"joy": "joy", "fear": "fear"}


def test_completion_outside_labels_names_the_line_and_repr(data_space, capsys):
    rows = with_row(5, {"phrase": "x", "tone": "Joy"})
    space, data = data_space("tones.jsonl", jsonl(rows), completion_template=" {tone}\n")
    code, lines = dry_run(space, capsys)
    assert code == 2 and len(lines) == 1
    assert lines[0] == (
        f"autotune: error: {space}: data.labels: expected every completion among ['joy', 'fear'] "
        f"(compared stripped of surrounding whitespace); {data}: line 5: the completion is "
        "' Joy\\n', the label 'joy' differs in case (1 record(s) in all are not among the labels)"
    )


def test_split_groups_completions_by_label_stripped():
    examples = [Example("p1", "a"), Example("p2", " a"), Example("p3", "b"), Example("p4", "b")]
    _, evaluation = stratified_split(examples, 0.5, seed=0)
    assert Counter(e.completion.strip() for e in evaluation) == {"a": 1, "b": 1}


def test_caps_keep_the_label_balance_and_grow_as_supersets(write_space):
    from autotune.candidates.subset import stratified_take

    full = load_dataset(load_space(write_space(), "cpu"))
    capped = load_dataset(
        load_space(write_space({"data": {"max_train": 100, "max_eval": 40}}), "cpu")
    )
    assert (len(capped.train), len(capped.eval)) == (100, 40)
    shares = Counter(e.completion for e in full.eval)
    for label, n in Counter(e.completion for e in capped.eval).items():
        assert abs(n - 40 * shares[label] / len(full.eval)) < 1
    assert set(capped.eval) <= set(full.eval) and set(capped.train) <= set(full.train)
    assert set(stratified_take(full.train, 50)) <= set(capped.train)
