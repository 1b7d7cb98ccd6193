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
    return Corpus(**_fresh("corpus"))


def outside_documents() -> list[str]:
    """Docstrings (defined as for the corpus) of the standard library's other top-level modules,
    none of them a corpus document: more unlabelled text for distillation toward a dense model,
    which needs no labels but overfits the calibration documents alone. Read in a fresh
    interpreter, like `load`."""
    return _fresh("outside")


# imported for their docstrings they would open a browser or a window, print, or take minutes
_NOT_IMPORTED = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "test", "lib2to3", "ensurepip",
                 "venv", "pydoc_data"}


def _fresh(what: str):
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "benchmarks.text_corpus", what], capture_output=True, text=True,
                         check=True, cwd=str(__import__("pathlib").Path(__file__).parent.parent))
    return json.loads(out.stdout)


def _collect() -> Corpus:
    seen: set[str] = set()
    splits: tuple[list[str], list[str]] = ([], [])
    for position, name in enumerate(MODULES):
        for doc in _docs_of_module(name):
            if doc not in seen:
                seen.add(doc)
                splits[position % 2].append(doc)
    return Corpus(*splits)


def _collect_outside() -> list[str]:
    import sys

    corpus = _collect()
    seen = set(corpus.calibration) | set(corpus.evaluation)
    out = []
    for name in sorted(sys.stdlib_module_names - set(MODULES) - _NOT_IMPORTED):
        if name.startswith("_"):
            continue
        try:
            found = _docs_of_module(name)
        except Exception:  # platform-only modules (winreg, msvcrt, ...) and optional C extensions
            continue
        for doc in found:
            if doc not in seen:
                seen.add(doc)
                out.append(doc)
    return out


def _docs_of_module(name: str) -> list[str]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # typing.io / typing.re and other deprecations on access
        return _docs_of(importlib.import_module(name))


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
    import sys

    print(json.dumps(_collect_outside() if sys.argv[1:] == ["outside"] else vars(_collect())))
