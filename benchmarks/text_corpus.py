"""The offline text corpus: Python standard-library docstrings, defined exactly as in
shared/reference/text-corpus.md so figures compare across runs."""
from __future__ import annotations

import importlib
import inspect
import re
import types
from dataclasses import dataclass

MODULES = sorted([
    "abc", "argparse", "array", "bisect", "cmath", "codecs", "collections", "configparser", "contextlib", "copy",
    "csv", "dataclasses", "datetime", "decimal", "difflib", "doctest", "email", "enum", "fnmatch", "fractions",
    "functools", "glob", "gzip", "heapq", "http.client", "inspect", "io", "itertools", "json", "logging", "math",
    "operator", "os", "pathlib", "pickle", "pprint", "queue", "random", "re", "selectors", "shutil", "socket",
    "sqlite3", "statistics", "string", "struct", "subprocess", "tarfile", "tempfile", "textwrap", "threading",
    "timeit", "traceback", "typing", "unittest", "urllib.parse", "warnings", "weakref", "xml.etree.ElementTree",
    "zipfile",
])


@dataclass
class Corpus:
    calibration: list[str]
    evaluation: list[str]


def _docs_of(module) -> list[str]:
    """The module's docstring, then each public callable or class, then each public method or
    property of those classes (looked up on the class, so classmethods count)."""
    docs = [inspect.getdoc(module)]
    for name in sorted(dir(module)):
        if name.startswith("_"):
            continue
        obj = getattr(module, name, None)
        if isinstance(obj, types.ModuleType) or not (callable(obj) or inspect.isclass(obj)):
            continue
        docs.append(inspect.getdoc(obj))
        if inspect.isclass(obj):
            for attr in sorted(vars(obj)):
                if attr.startswith("_"):
                    continue
                raw = vars(obj)[attr]
                if isinstance(raw, property):
                    docs.append(inspect.getdoc(raw))
                    continue
                try:
                    member = getattr(obj, attr)
                except Exception:  # descriptors that refuse class access
                    continue
                if callable(member):
                    docs.append(inspect.getdoc(member))
    return [d for d in docs if isinstance(d, str) and len(d.strip()) >= 40]


def load() -> Corpus:
    """Calibration (modules at even positions: 886 documents) and evaluation (odd: 1,005), read in
    a fresh interpreter: importing torch and friends adds public names to some stdlib modules."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "benchmarks.text_corpus"], capture_output=True, text=True,
                         check=True, cwd=str(__import__("pathlib").Path(__file__).parent.parent))
    return Corpus(**json.loads(out.stdout))


def _collect() -> Corpus:
    import warnings

    seen: set[str] = set()
    splits: tuple[list[str], list[str]] = ([], [])
    for position, name in enumerate(MODULES):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # typing.io / typing.re deprecation on attribute access
            module = importlib.import_module(name)
            found = _docs_of(module)
        for doc in found:
            if doc not in seen:
                seen.add(doc)
                splits[position % 2].append(doc)
    return Corpus(*splits)


_END = re.compile(r"[.?!] ")


def first_sentence(doc: str) -> tuple[str, str]:
    """(first sentence, remainder): the first paragraph cut after the first '.', '?' or '!'
    followed by a space."""
    paragraph = doc.split("\n\n", 1)[0]
    match = _END.search(paragraph)
    cut = match.end() if match else len(paragraph)
    return paragraph[:cut].strip(), doc[cut:].strip()


def sentences(doc: str, min_words: int = 3) -> list[str]:
    """Every sentence of every paragraph of `doc` (cut as first_sentence cuts), whitespace
    collapsed, keeping those of at least `min_words` words: more distinct training text from the
    same documents than (first sentence, remainder), whose remainder is truncated."""
    out = []
    for paragraph in doc.split("\n\n"):
        for part in _END.split(" ".join(paragraph.split())):
            if len(part.split()) >= min_words:
                out.append(part.strip())
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(vars(_collect())))
