"""Coverage-guided fuzzing of the AdmissionReview parser and every rule (atheris / libFuzzer).

Each input is a request body. It goes through the server's own pieces, for both webhooks
(``decode_review``, ``engine.decide`` with the shipped policies and the dev cluster view,
``build_response``) and the answer is checked by :mod:`oracle`: an
AdmissionReview echoing the uid or a 4xx Status with a reason, a patch that applies,
never an exception. A broken invariant is a crash: libFuzzer saves the input as
``crash-<sha1>`` (see ``-artifact_prefix``) and exits non-zero.

Inputs are mutated two ways: libFuzzer's byte mutations (invalid UTF-8, truncation,
odd numbers, duplicate keys) and, half of the time, a structural mutation of the JSON
(a node replaced by a value of another type, a huge string or array, deep nesting, a
key removed or added, metadata dropped), so most inputs stay JSON deep enough to reach
the rules. Without corpus directories, the 39 captured kube-apiserver reviews seed it.

    python fuzz/fuzz_admission.py -max_total_time=60                # seeds from the captures
    python fuzz/fuzz_admission.py -runs=20000 corpus/ -artifact_prefix=out/
    python fuzz/fuzz_admission.py crash-1234abcd                     # replay one input

Prints libFuzzer's statistics on stderr; exit status 0 means nothing broke.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["webhook", "oracle"]):
    import oracle

POLICIES = oracle.shipped_policies()
STATE = oracle.dev_state()
UNKNOWN = "x-unknown-field"


def test_one_input(data: bytes) -> None:
    """The libFuzzer target: both webhooks answer ``data`` correctly."""
    for webhook in ("validate", "mutate"):
        status, document = oracle.answer(data, webhook=webhook, policies=POLICIES, state=STATE)
        oracle.check(data, status, document)


# ----------------------------------------------------------------- structural mutation
def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


def _nested(depth: int, rng: random.Random) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value] if rng.random() < 0.5 else {"a": value}
    return value


def _odd_value(rng: random.Random) -> Any:
    """A value of a type or size the field does not expect."""
    choices = [
        lambda: None, lambda: True, lambda: 0, lambda: -1, lambda: 2**63, lambda: 2**70, lambda: 1e308,
        lambda: 0.5, lambda: "", lambda: "é\u0000\ud800", lambda: "*." * rng.randint(1, 200),
        lambda: "x" * rng.choice([64, 254, 4096, 1 << 20]), list, dict,
        lambda: [None] * rng.choice([1, 100, 10_000]), lambda: {UNKNOWN: 1},
        lambda: _nested(rng.choice([8, 100, 900, 2000]), rng), lambda: "CREATE", lambda: "a.example.com",
    ]
    return rng.choice(choices)()


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return doc


def _delete(doc: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return doc
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]
    return doc


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def mutate_structure(doc: Any, rng: random.Random) -> Any:
    """One to three structural edits of a decoded review."""
    for _ in range(rng.randint(1, 3)):
        paths = _paths(doc)
        path = rng.choice(paths)
        action = rng.random()
        if action < 0.45:
            doc = _set(doc, path, _odd_value(rng))
        elif action < 0.65:
            doc = _delete(doc, path)
        elif action < 0.8:
            target = _get(doc, path)
            if isinstance(target, dict):
                target[rng.choice([UNKNOWN, "metadata", "spec", "kind", "uid"])] = _odd_value(rng)
        else:  # graft another subtree here: right types in the wrong place
            doc = _set(doc, path, json.loads(json.dumps(_get(doc, rng.choice(paths)))))
    return doc


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if rng.random() < 0.5:
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError):
            doc = None
        if doc is not None:
            try:
                out = json.dumps(mutate_structure(doc, rng), ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
            except (RecursionError, ValueError):
                out = b""
            if out and len(out) <= max_size:
                return out
    return atheris.Mutate(data, max_size)


def seed_corpus() -> str:
    directory = Path(tempfile.mkdtemp(prefix="routewarden-fuzz-"))
    for i, body in enumerate(oracle.captured_bodies()):
        (directory / f"capture-{i:02d}.json").write_bytes(body)
    return str(directory)


def main(argv: list[str]) -> None:
    args = list(argv)
    if not any(not a.startswith("-") for a in args[1:]):
        args.append(seed_corpus())
    if not any(a.startswith("-max_len=") for a in args):
        args.append("-max_len=1048576")
    atheris.Setup(args, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
