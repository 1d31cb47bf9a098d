"""The built wheel serves the chat page from any working directory.

A wheel of the project is built from a clean copy of the source tree, installed into a
temporary folder, and imported from there (never the source tree) by a subprocess that runs
in yet another folder: the page, every script and stylesheet it names, and every ES module
those scripts import must come back with the right content type. The wheel must not carry
the tests or the corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from qa.settings import Settings
from tests.paths import ROOT

# What a fresh checkout would hold, not what this working tree has accumulated.
_LOCAL_TOP = {".git", ".venv", "build", "dist", "index", "test-artifacts"}
_LOCAL_ANY = shutil.ignore_patterns(
    "*.egg-info", "__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache", ".hypothesis"
)


def _not_source(folder: str, names: list[str]) -> set[str]:
    skip = set(_LOCAL_ANY(folder, names))
    if Path(folder) == ROOT:
        skip |= _LOCAL_TOP & set(names)
    return skip


# The page's own files: each must be in the wheel and served from it.
PAGE_SUFFIXES = {".html", ".js", ".mjs", ".css", ".svg", ".ico"}
JS_TYPES = {"text/javascript", "application/javascript"}
CONTENT_TYPES = {
    ".css": {"text/css"},
    ".svg": {"image/svg+xml"},
    ".ico": {"image/vnd.microsoft.icon", "image/x-icon"},
}

# Runs in the subprocess: the installed copy of qa, the Flask app over the given index,
# the page and everything it pulls in through its <script>, <link> and ES module imports.
CHILD = r"""
import hashlib, json, posixpath, re, sys
from html.parser import HTMLParser
from pathlib import Path

import qa
import qa.web.page
from qa.settings import Settings
from qa.web.app import create_app

index_dir, seeds_dir, feedback_db = sys.argv[1:4]
settings = Settings.from_env(
    env={}, index_dir=Path(index_dir), seeds_dir=Path(seeds_dir),
    feedback_db=Path(feedback_db), rate_limit=0,
)
app = create_app(settings)
client = app.test_client()


class Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.refs.append(a["src"])
        elif tag == "link" and a.get("href"):
            self.refs.append(a["href"])


IMPORTS = [
    re.compile(r"\b(?:import|export)\b[^'\";]*?\bfrom\s*['\"]([^'\"]+)['\"]"),
    re.compile(r"\bimport\s*['\"]([^'\"]+)['\"]"),
    re.compile(r"\bimport\(\s*['\"]([^'\"]+)['\"]\s*\)"),
]
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")


def local(ref, base):
    # A same-origin path for ref (relative to the URL base), or None for anything else.
    ref = ref.split("#")[0].split("?")[0]
    if not ref or re.match(r"^[a-z][a-z0-9+.-]*:|^//", ref, re.I):
        return None
    if not ref.startswith("/"):
        if not ref.startswith((".", "/")):
            return None  # a bare module specifier: not a file of ours
        ref = posixpath.join(posixpath.dirname(base), ref)
    return posixpath.normpath(ref)


page = client.get("/")
html = page.get_data(as_text=True)
parser = Refs()
parser.feed(html)
todo = [r for r in (local(x, "/") for x in parser.refs) if r]
seen = {}
while todo:
    path = todo.pop(0)
    if path in seen:
        continue
    resp = client.get(path)
    body = resp.get_data()
    seen[path] = {
        "status": resp.status_code,
        "mimetype": resp.mimetype,
        "size": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    if resp.status_code != 200:
        continue
    text = body.decode("utf-8", "replace")
    if path.endswith((".js", ".mjs")):
        found = [m for rx in IMPORTS for m in rx.findall(text)]
        todo += [r for r in (local(x, path) for x in found) if r and r.endswith((".js", ".mjs"))]
    elif path.endswith(".css"):
        todo += [r for r in (local(x, path) for x in CSS_URL.findall(text)) if r]

health = client.get("/api/health")
print(json.dumps({
    "qa_file": qa.__file__,
    "page_pkg": str(Path(qa.web.page.__file__).parent),
    "static_folder": app.static_folder,
    "template_folder": app.template_folder,
    "page": {
        "status": page.status_code, "mimetype": page.mimetype, "html": html,
        "sha256": hashlib.sha256(page.get_data()).hexdigest(),
    },
    "refs": parser.refs,
    "assets": seen,
    "health": {"status": health.status_code, "body": health.get_json(silent=True)},
}))
"""


def pip(*args: str) -> None:
    """The running interpreter's pip."""
    subprocess.run([sys.executable, "-m", "pip", "--quiet", *args], check=True, timeout=180)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the built wheel, the copy of the source tree it was built from)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(ROOT, src, ignore=_not_source, symlinks=True)
    out = root / "dist"
    pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(src))
    (whl,) = out.glob("qa-*.whl")
    return whl, src


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def page_files(src: Path) -> dict[str, Path]:
    """The page's files in the source tree, by their path inside the wheel."""
    web = src / "web"
    return {
        "qa/web/page/" + p.relative_to(web).as_posix(): p
        for p in sorted(web.rglob("*"))
        if p.is_file() and p.suffix in PAGE_SUFFIXES
    }


def test_wheel_holds_the_package_and_the_page_but_no_tests_or_corpus(
    wheel: tuple[Path, Path],
) -> None:
    whl, src = wheel
    names = zipfile.ZipFile(whl).namelist()
    tops = {n.split("/")[0] for n in names}
    assert "tests" not in tops and "seeds" not in tops, sorted(tops)
    assert not [n for n in names if "/tests/" in f"/{n}" or "/seeds/" in f"/{n}"]
    seed_names = {p.name for p in (src / "seeds").glob("*")}
    assert not [n for n in names if n.rsplit("/", 1)[-1] in seed_names]
    assert {t for t in tops if not t.endswith(".dist-info")} == {"qa"}, sorted(tops)
    assert "qa/cli.py" in names and "qa/web/page/__init__.py" in names
    missing = sorted(set(page_files(src)) - set(names))
    assert not missing, f"page files left out of the wheel (see package-data): {missing}"


def test_installed_wheel_serves_the_page_from_anywhere(
    wheel: tuple[Path, Path], built_index: Settings, tmp_path: Path
) -> None:
    whl, src = wheel
    site = tmp_path / "site"
    pip("install", "--no-deps", "--no-compile", "--target", str(site), str(whl))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "child.py").write_text(CHILD)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("ANONYMIZED_TELEMETRY", "False")
    env.pop("QA_ENCODER", None)
    proc = subprocess.run(
        [
            sys.executable,
            "child.py",
            str(built_index.index_dir),
            str(built_index.seeds_dir),
            str(tmp_path / "feedback.sqlite3"),
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])

    # The installed copy was imported, and the page comes from it, not from web/.
    site = site.resolve()
    for key in ("qa_file", "page_pkg", "static_folder", "template_folder"):
        assert Path(got[key]).resolve().is_relative_to(site), (key, got[key])

    page = got["page"]
    assert page["status"] == 200 and page["mimetype"] == "text/html"
    assert page["sha256"] == sha256(src / "web" / "templates" / "index.html")
    assert 'id="app"' in page["html"]

    assets = got["assets"]
    scripts = [p for p in assets if p.endswith((".js", ".mjs"))]
    styles = [p for p in assets if p.endswith(".css")]
    assert scripts and styles, got["refs"]
    for path, a in assets.items():
        assert a["status"] == 200, f"{path}: {a['status']}"
        suffix = Path(path).suffix
        want = JS_TYPES if suffix in (".js", ".mjs") else CONTENT_TYPES.get(suffix)
        if want:
            assert a["mimetype"] in want, f"{path}: {a['mimetype']}"
        assert a["size"] > 0, path
        if path.startswith("/static/"):
            source = src / "web" / "static" / path.removeprefix("/static/")
            assert a["sha256"] == sha256(source), f"{path} is not {source}"

    # The app runs over the real index from the installed copy.
    health = got["health"]
    assert health["status"] == 200, health
    assert health["body"]["status"] == "ok" and health["body"]["documents"] > 0
